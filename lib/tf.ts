// tf.js integration (docs/semantics.md, "tf.js"). tf.js is an optional peer dependency: it is loaded on
// first use, when a tensor reaches a loss, so that `cbloss` imports and runs without it. The loss is a
// tf.customGrad op whose gradient is the fused kernel's: one native pass computes both, and
// backpropagation only scales the stored gradient by the upstream one.

/** The part of the tf.js API this module uses (structural, so tf.js's types are not needed to build). */
export interface TfTensor {
  readonly shape: number[];
  readonly dtype: string;
  dataSync(): ArrayLike<number>;
}

interface TfNamespace {
  customGrad(
    f: (x: TfTensor) => { value: TfTensor; gradFunc: (dy: TfTensor) => TfTensor[] | TfTensor },
  ): (x: TfTensor) => TfTensor;
  tensor(values: Float32Array, shape: number[]): TfTensor;
  scalar(value: number): TfTensor;
  mul(a: TfTensor, b: TfTensor): TfTensor;
  reshape(x: TfTensor, shape: number[]): TfTensor;
  mean(x: TfTensor, axis?: number): TfTensor;
}

let cached: TfNamespace | undefined;

/** tf.js, from '@tensorflow/tfjs-core' (the package every tf.js flavour builds on) or '@tensorflow/tfjs'. */
export function loadTf(): TfNamespace {
  if (cached) return cached;
  const tried: string[] = [];
  for (const name of ['@tensorflow/tfjs-core', '@tensorflow/tfjs']) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      cached = require(name) as TfNamespace;
      return cached;
    } catch (err) {
      tried.push(`${name}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(`cbloss: a tf.js tensor was given, but tf.js could not be loaded (${tried.join('; ')})`);
}

/** What one native evaluation on a tensor produced, for the customGrad op. */
export interface TensorEvaluation {
  /** Per-output-element losses ('none'), or null for a reduced loss. */
  perElement: Float32Array | null;
  reduced: number;
  /** d loss / d input at upstream gradient 1 (scaled per element by the upstream gradient later). */
  grad: Float32Array;
  /** Whether each output element is a row of C logits (softmax losses) or one logit. */
  rowOutputs: boolean;
  rows: number;
  classes: number;
}

/**
 * Runs `evaluate` as a tf.js op on `input` with the fused gradient: for a reduced loss the gradient
 * is grad × dy; for per-element losses each element's (or row's) gradient is scaled by its dy.
 */
export function tensorLoss(input: TfTensor, evaluate: (x: TfTensor) => TensorEvaluation): TfTensor {
  const tf = loadTf();
  const op = tf.customGrad((x: TfTensor) => {
    const r = evaluate(x);
    const shape = x.shape.slice();
    let value: TfTensor;
    let dyShape: number[];
    if (r.perElement === null) {
      value = tf.scalar(r.reduced);
      dyShape = [];
    } else if (r.rowOutputs) {
      const outShape = shape.length >= 2 ? shape.slice(0, -1) : [r.rows];
      value = tf.tensor(r.perElement, outShape);
      dyShape = shape.length >= 2 ? [...outShape, 1] : [r.rows, 1];
    } else {
      value = tf.tensor(r.perElement, shape);
      dyShape = shape;
    }
    const gradFunc = (dy: TfTensor): TfTensor[] => {
      const g = tf.tensor(r.grad, shape.length >= 2 || !r.rowOutputs ? shape : [r.rows, r.classes]);
      const scaled = dyShape.length === 0 ? tf.mul(g, dy) : tf.mul(g, tf.reshape(dy, dyShape));
      return [shape.length >= 2 || !r.rowOutputs ? scaled : tf.reshape(scaled, shape)];
    };
    return { value, gradFunc };
  });
  return op(input);
}
