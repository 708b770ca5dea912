// A loss call whose input is a DeviceTensor: everything runs on that tensor's CUDA device. Host
// targets or upstream gradients are copied there for the call; the gradient (and the 'none' losses)
// come back as DeviceTensors; the reduced loss is the only value that crosses the bus.
import type { ResolvedDevice } from './device';
import { DeviceTensor, tensorDeviceIndex } from './device-tensor';
import { describe, invalidLength, invalidType, invalidValue } from './errors';
import { readGradOutput } from './inputs';
import { CALL_INPUTS, runPlan, runPlanAsync, type CallInput } from './native';
import { Divisor, type LossPlan } from './plan';

export interface DeviceCallOptions {
  gradOutput?: unknown;
  out?: unknown;
}

export interface DeviceCallResult {
  loss: number | DeviceTensor;
  grad: DeviceTensor | null;
}

export interface DeviceCall {
  run(): DeviceCallResult;
  runAsync(): Promise<DeviceCallResult>;
}

/** Validates a device call and returns it ready to run; allocates its outputs. */
export function deviceCall(
  plan: LossPlan,
  lossDevice: ResolvedDevice,
  wantGrad: boolean,
  opts: DeviceCallOptions | undefined,
): DeviceCall {
  const logits = plan.logits as DeviceTensor;
  const device = logits.device;
  const index = tensorDeviceIndex(logits);
  if (lossDevice.kind === 'cpu') {
    throw invalidType('input', "host arrays (this loss's device is 'cpu')", logits);
  }
  if (lossDevice.kind === 'cuda' && lossDevice.index !== index) {
    throw invalidValue('input', `a DeviceTensor on cuda:${lossDevice.index} (the loss's device)`, logits);
  }
  plan.device = index;
  const none = plan.divisor === Divisor.None;

  const sameDevice = (name: string, t: DeviceTensor): void => {
    if (t.disposed) throw new TypeError(`Expected a live DeviceTensor for ${name} but received a disposed one`);
    if (t.device !== device) throw invalidValue(name, `a DeviceTensor on ${device} (the input's device)`, t);
  };
  sameDevice('input', logits);
  if (plan.labels instanceof DeviceTensor) sameDevice('target', plan.labels);
  if (plan.targets instanceof DeviceTensor) sameDevice('target', plan.targets);
  if (plan.sampleWeight instanceof DeviceTensor) sameDevice('sampleWeight', plan.sampleWeight);

  // Upstream gradient: a number, a float32 DeviceTensor, or host values (copied for the call).
  let gradOutput: number | DeviceTensor | Float32Array;
  if (opts?.gradOutput instanceof DeviceTensor) {
    const g = opts.gradOutput;
    if (!none) throw invalidType('gradOutput', 'a number (the loss is reduced to one value)', g);
    if (g.dtype !== 'float32') throw invalidType('gradOutput', 'a float32 DeviceTensor', g);
    if (g.length !== plan.outputLength) throw invalidLength('gradOutput', `${plan.outputLength} (one per output element)`, g.length);
    sameDevice('gradOutput', g);
    gradOutput = g;
  } else {
    gradOutput = readGradOutput(opts?.gradOutput, none, plan.outputLength);
  }

  const out = readDeviceOut(opts?.out, plan, logits, none, wantGrad);
  const inputs: Record<CallInput, unknown> = {
    logits,
    labels: plan.labels,
    targets: plan.targets,
    sampleWeight: plan.sampleWeight,
    gradOutput,
  };
  for (const [name, t] of [['out.grad', out.grad], ['out.loss', out.loss]] as const) {
    if (!t) continue;
    sameDevice(name, t);
    const clash =
      (CALL_INPUTS.some(([argument]) => inputs[argument] === t) && !(t === logits && name === 'out.grad')) ||
      (out.grad !== undefined && out.grad === out.loss);
    if (clash) {
      throw new RangeError(
        `Expected ${name} not to be one of the call's other tensors (only out.grad may be the input itself) but received ${describe(t)}`,
      );
    }
  }

  // From here on, device memory is allocated: free what this call made if anything fails.
  const temporaries: DeviceTensor[] = [];
  const created: DeviceTensor[] = [];
  const upload = (values: Float32Array | Int32Array): DeviceTensor => {
    const t = DeviceTensor.from(values, { device });
    temporaries.push(t);
    return t;
  };
  try {
    if (plan.labels instanceof Int32Array) plan.labels = upload(plan.labels);
    if (plan.targets instanceof Float32Array) plan.targets = upload(plan.targets);
    if (plan.sampleWeight instanceof Float32Array) plan.sampleWeight = upload(plan.sampleWeight);
    if (gradOutput instanceof Float32Array) gradOutput = upload(gradOutput);
    const lossOut = none ? (out.loss ?? make(created, DeviceTensor.empty(plan.outputLength, { device }))) : null;
    const gradOut = wantGrad
      ? (out.grad ?? make(created, DeviceTensor.empty(logits.length, { device, dtype: logits.dtype })))
      : null;
    const upstream = gradOutput;
    const finish = (value: number): DeviceCallResult => ({ loss: none ? (lossOut as DeviceTensor) : value, grad: gradOut });
    const release = (failed: boolean): void => {
      for (const t of temporaries) t.dispose();
      if (failed) for (const t of created) t.dispose();
    };
    return {
      run: () => {
        let value: number;
        try {
          value = runPlan(plan, upstream, lossOut, gradOut);
        } catch (err) {
          release(true);
          throw err;
        }
        release(false);
        return finish(value);
      },
      runAsync: () => {
        let pending: Promise<number>;
        try {
          pending = runPlanAsync(plan, upstream, lossOut, gradOut); // (its argument checks throw here)
        } catch (err) {
          release(true);
          throw err;
        }
        return pending.then(
          (value) => {
            release(false);
            return finish(value);
          },
          (err: unknown) => {
            release(true);
            throw err;
          },
        );
      },
    };
  } catch (err) {
    for (const t of [...temporaries, ...created]) t.dispose();
    throw err;
  }
}

function make(list: DeviceTensor[], t: DeviceTensor): DeviceTensor {
  list.push(t);
  return t;
}

interface DeviceOut {
  grad?: DeviceTensor;
  loss?: DeviceTensor;
}

function readDeviceOut(value: unknown, plan: LossPlan, logits: DeviceTensor, none: boolean, wantGrad: boolean): DeviceOut {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null) throw invalidType('out', 'an object { grad?, loss? }', value);
  const { grad, loss } = value as { grad?: unknown; loss?: unknown };
  const result: DeviceOut = {};
  if (wantGrad && grad !== undefined) {
    if (!(grad instanceof DeviceTensor) || grad.dtype !== logits.dtype) {
      throw invalidType('out.grad', `a ${logits.dtype} DeviceTensor (the input's type)`, grad);
    }
    if (grad.length !== logits.length) throw invalidLength('out.grad', `${logits.length} (the input's length)`, grad.length);
    result.grad = grad;
  }
  if (none && loss !== undefined) {
    if (!(loss instanceof DeviceTensor) || loss.dtype !== 'float32') {
      throw invalidType('out.loss', 'a float32 DeviceTensor', loss);
    }
    if (loss.length !== plan.outputLength) {
      throw invalidLength('out.loss', `${plan.outputLength} (one per output element)`, loss.length);
    }
    result.loss = loss;
  }
  return result;
}
