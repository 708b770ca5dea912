// Every error of docs/semantics.md, "Errors": its class and its message (the argument, what was expected,
// what was received), thrown before anything is written.
import { strict as assert } from 'node:assert';

import { AsymmetricLoss, BalancedSoftmaxLoss, BCEWithLogitsLoss, ClassBalancedLoss, CrossEntropyLoss, FocalLoss, LDAMLoss, PolyLoss, SigmoidFocalLoss, backendInfo, classBalancedWeights, ldamMargins, logitAdjustment, setNumThreads } from '../lib';

const x6 = new Float32Array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]);

function throwsExactly(fn: () => unknown, type: ErrorConstructor | TypeErrorConstructor | RangeErrorConstructor, message: string | RegExp): void {
  assert.throws(fn, (e: Error) => {
    assert.equal(e.constructor, type, `${e.constructor.name}: ${e.message}`);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

describe('40 errors', () => {
  describe('input and target types', () => {
    const ce = new CrossEntropyLoss();
    it('input that is not a float typed array is a TypeError', () => {
      throwsExactly(() => ce.forward([1, 2] as never, [0]), TypeError, 'Expected a Float32Array or Float64Array of logits for input but received Array(2)');
      throwsExactly(() => ce.forward(new Int32Array(4) as never, [0]), TypeError, /for input but received Int32Array\(4\)/);
      throwsExactly(() => ce.forward(null as never, [0]), TypeError, /for input but received null/);
    });
    it('a target of the wrong type is a TypeError', () => {
      throwsExactly(() => ce.forward(x6, 'abc' as never), TypeError, /for target but received 'abc'/);
      throwsExactly(() => ce.forward(x6, { length: 2 } as never), TypeError, /for target but received an object/);
    });
    it('a float array where class indices are needed is a TypeError', () => {
      throwsExactly(() => new FocalLoss({ numClasses: 3 }).forward(x6, new Float32Array([0, 1])), TypeError, /Expected class indices .* for target but received Float32Array\(2\)/);
      throwsExactly(() => new CrossEntropyLoss({ numClasses: 3 }).forward(x6, new Float32Array([0, 1])), TypeError, /class indices as an integer array \(length 2\)/);
    });
    it('non-integer class indices in a number[] are a TypeError naming the element', () => {
      throwsExactly(() => ce.forward(x6, [0, 1.5]), TypeError, 'target[1] = 1.5 is not an integer class index');
      throwsExactly(() => ce.forward(x6, [0, '1' as never]), TypeError, "target[1] = '1' is not an integer class index");
    });
    it('probability targets without a class count are a TypeError', () => {
      throwsExactly(() => ce.forward(x6, new Float32Array(6)), TypeError, /for numClasses but received undefined/);
    });
  });

  describe('labels and lengths', () => {
    it('a label out of range is a RangeError naming the row and the value', () => {
      const x = new Float32Array(18 * 3);
      const y = new Int32Array(18);
      y[17] = 5;
      throwsExactly(() => new CrossEntropyLoss().forward(x, y), RangeError, 'target[17] = 5 is out of range [0, 3)');
      throwsExactly(() => new FocalLoss({ numClasses: 3 }).forward(x, Array.from(y)), RangeError, 'target[17] = 5 is out of range [0, 3)');
      y[17] = -1;
      throwsExactly(() => new CrossEntropyLoss().forward(x, y), RangeError, 'target[17] = -1 is out of range [0, 3)');
      assert.doesNotThrow(() => new CrossEntropyLoss({ ignoreIndex: -1 }).forward(x, y), 'the ignored label is accepted');
    });
    it('in a large batch (checked over the threads in blocks), the first bad row is reported and nothing is written', () => {
      const N = 300_000;
      const x = new Float32Array(N * 2);
      const y = new Int32Array(N);
      y[250_001] = 7; // a later block
      y[140_000] = 3; // the first bad row, in a middle block
      const grad = new Float32Array(N * 2).fill(9);
      for (const threads of [1, 2, 4]) {
        setNumThreads(threads);
        throwsExactly(() => new CrossEntropyLoss().forwardBackward(x, y, { out: { grad } }), RangeError, 'target[140000] = 3 is out of range [0, 2)');
      }
      setNumThreads(backendInfo().cpu.hardwareThreads);
      assert.ok(grad.every((v) => v === 9), 'the gradient buffer is untouched');
    });
    it('labels at ±2^31 and huge BigInts are out of range', () => {
      throwsExactly(() => new CrossEntropyLoss().forward(x6, new Uint32Array([0, 2 ** 31])), RangeError, 'target[1] = 2147483648 is out of range [0, 3)');
      throwsExactly(() => new CrossEntropyLoss().forward(x6, new BigInt64Array([0n, -(2n ** 40n)])), RangeError, 'target[1] = -1099511627776 is out of range [0, 3)');
    });
    it('integer element targets other than 0/1 are a RangeError', () => {
      throwsExactly(() => new FocalLoss({ numClasses: 2 }).forward(x6, [0, 1, 2, 0, 1, 0]), RangeError, 'target[2] = 2 is not 0 or 1');
    });
    it('an input length that does not divide is a RangeError', () => {
      throwsExactly(() => new CrossEntropyLoss({ numClasses: 4 }).forward(x6, [0]), RangeError, 'Expected length a multiple of 4 (numClasses) for input but received length 6');
      throwsExactly(() => new CrossEntropyLoss().forward(x6, [0, 1, 2, 0]), RangeError, "Expected length a divisor of the input's length 6 (one class index per row) for target but received length 4");
      throwsExactly(() => new CrossEntropyLoss({ numClasses: 3 }).forward(x6, [0, 1, 2]), RangeError, 'Expected length 2 (one class index per row of 3 logits) for target but received length 3');
    });
    it('element targets of another length are a RangeError', () => {
      throwsExactly(() => new BCEWithLogitsLoss().forward(x6, new Float32Array(5)), RangeError, "Expected length 6 (the input's length) for target but received length 5");
      throwsExactly(() => new SigmoidFocalLoss({ numClasses: 3 }).forward(x6, new Float64Array(3)), RangeError, /for target but received length 3/);
      throwsExactly(() => new FocalLoss({ numClasses: 2 }).forward(x6, new Int32Array(4)), RangeError, /binary: one target per logit.*received length 4/);
    });
    it('a weight of the wrong length is a RangeError', () => {
      throwsExactly(() => new CrossEntropyLoss({ weight: [1, 2] }).forward(x6, [0, 1]), RangeError, 'Expected length 3 (one class index per row of 2 logits) for target but received length 2');
      throwsExactly(() => new CrossEntropyLoss({ numClasses: 3, weight: [1, 2] }), RangeError, 'Expected length 3 (one per class) for weight but received length 2');
      throwsExactly(() => new BCEWithLogitsLoss({ numClasses: 3, posWeight: [1, 2] }), RangeError, 'Expected length 3 (one per class) for posWeight but received length 2');
      throwsExactly(() => new FocalLoss({ numClasses: 3, alpha: [1, 2] }), RangeError, 'Expected length 3 (one per class) for alpha but received length 2');
    });
  });

  describe('options', () => {
    it('PolyLoss: ε finite, class indices only, the logit map options unknown', () => {
      throwsExactly(() => new PolyLoss({ epsilon: Infinity }), RangeError, /for epsilon but received Infinity/);
      throwsExactly(() => new PolyLoss({ epsilon: '1' as never }), TypeError, /for epsilon but received '1'/);
      throwsExactly(() => new PolyLoss({ logitBias: [0, 1] } as never), TypeError, /^Unknown option 'logitBias' for PolyLoss/);
      throwsExactly(() => new PolyLoss({ ignore_index: 1.5 }), RangeError, /a 32-bit integer for ignore_index but received 1.5/);
      throwsExactly(() => new PolyLoss({ numClasses: 3 }).forward(x6, new Float32Array(6)), TypeError, /class indices \(an integer array\) for PolyLoss/);
      throwsExactly(() => new PolyLoss().forward(x6, [0, 3]), RangeError, 'target[1] = 3 is out of range [0, 3)');
    });
    it('AsymmetricLoss: γ ≥ 0, clip in [0, 1), detachFocusing a boolean, snake_case aliases', () => {
      throwsExactly(() => new AsymmetricLoss({ gammaPos: -1 }), RangeError, /a finite number ≥ 0 for gammaPos but received -1/);
      throwsExactly(() => new AsymmetricLoss({ gamma_neg: NaN }), RangeError, /for gamma_neg but received NaN/);
      throwsExactly(() => new AsymmetricLoss({ clip: 1 }), RangeError, /a number in \[0, 1\) for clip but received 1/);
      throwsExactly(() => new AsymmetricLoss({ clip: -0.1 }), RangeError, /a number in \[0, 1\) for clip but received -0.1/);
      throwsExactly(() => new AsymmetricLoss({ detach_focusing: 1 as never }), TypeError, /true or false for detach_focusing but received 1/);
      throwsExactly(() => new AsymmetricLoss({ gammaPos: 1, gamma_pos: 2 }), TypeError, /was given twice/);
      throwsExactly(() => new AsymmetricLoss({ margin: [1] } as never), TypeError, /^Unknown option 'margin' for AsymmetricLoss/);
      throwsExactly(() => new AsymmetricLoss({ numClasses: 4 }).forward(x6, new Float32Array(6)), RangeError, 'Expected length a multiple of 4 (numClasses) for input but received length 6');
    });
    it('an unknown option is a TypeError (typos are caught)', () => {
      throwsExactly(() => new FocalLoss({ numClasses: 3, gama: 2 } as never), TypeError, "Unknown option 'gama' for FocalLoss: expected one of reduction, device, numClasses, alpha, gamma, logitBias, margin, scale");
    });
    it('one option under both its names is a TypeError', () => {
      throwsExactly(() => new CrossEntropyLoss({ ignoreIndex: 1, ignore_index: 2 }), TypeError, "Option ignoreIndex of CrossEntropyLoss was given twice, as 'ignoreIndex' and as 'ignore_index': use one name");
    });
    it('a missing required option is a TypeError', () => {
      throwsExactly(() => new FocalLoss({} as never), TypeError, 'Missing required option numClasses of FocalLoss: expected an integer ≥ 2');
      throwsExactly(() => new FocalLoss(undefined as never), TypeError, /Missing required option numClasses/);
      throwsExactly(() => new ClassBalancedLoss({ beta: 0.9, numClasses: 2, lossFunc: new FocalLoss({ numClasses: 2, reduction: 'none' }) }), TypeError, /Missing required option samplesPerCls/);
      throwsExactly(() => new ClassBalancedLoss({ samplesPerCls: [1, 2], beta: 0.9, numClasses: 2 }), TypeError, /Missing required option lossFunc/);
    });
    it('options that are not an object are a TypeError', () => {
      throwsExactly(() => new CrossEntropyLoss(5 as never), TypeError, 'Expected an object for the options of CrossEntropyLoss but received 5');
    });
    it('numClasses < 2 for FocalLoss is a RangeError', () => {
      throwsExactly(() => new FocalLoss({ numClasses: 1 }), RangeError, 'Expected an integer ≥ 2 for numClasses but received 1');
      throwsExactly(() => new FocalLoss({ numClasses: 2.5 }), RangeError, /numClasses but received 2.5/);
      throwsExactly(() => new FocalLoss({ numClasses: '3' as never }), TypeError, /numClasses but received '3'/);
    });
    it('gamma < 0 is a RangeError; NaN too', () => {
      throwsExactly(() => new FocalLoss({ numClasses: 3, gamma: -1 }), RangeError, 'Expected a finite number ≥ 0 for gamma but received -1');
      throwsExactly(() => new SigmoidFocalLoss({ gamma: Number.NaN }), RangeError, /gamma but received NaN/);
    });
    it('a reduction name that does not exist is a RangeError; a non-string a TypeError', () => {
      throwsExactly(() => new CrossEntropyLoss({ reduction: 'avg' as never }), RangeError, "Expected one of 'none', 'mean', 'sum' for reduction but received 'avg'");
      throwsExactly(() => new CrossEntropyLoss({ reduction: 1 as never }), TypeError, /for reduction but received 1/);
      throwsExactly(() => new FocalLoss({ numClasses: 3, reduction: 'batchmean' as never }), RangeError, /for reduction but received 'batchmean'/);
    });
    it('labelSmoothing outside [0, 1] is a RangeError', () => {
      throwsExactly(() => new CrossEntropyLoss({ labelSmoothing: 1.5 }), RangeError, 'Expected a number in [0, 1] for labelSmoothing but received 1.5');
      throwsExactly(() => new CrossEntropyLoss({ label_smoothing: -0.1 }), RangeError, 'Expected a number in [0, 1] for label_smoothing but received -0.1');
    });
    it('a weight with a non-finite entry is a RangeError naming the element', () => {
      throwsExactly(() => new CrossEntropyLoss({ weight: [1, Number.NaN] }), RangeError, 'weight[1] = NaN is not a finite number');
      throwsExactly(() => new CrossEntropyLoss({ weight: 'abc' as never }), TypeError, "Expected an array of numbers for weight but received 'abc'");
    });
  });

  describe('class-balanced loss', () => {
    const base = (): FocalLoss<'none'> => new FocalLoss({ numClasses: 3, reduction: 'none' });
    it('beta outside [0, 1] is a RangeError', () => {
      throwsExactly(() => new ClassBalancedLoss({ samplesPerCls: [1, 2, 3], beta: 1.5, numClasses: 3, lossFunc: base() }), RangeError, 'Expected a number in [0, 1] for beta but received 1.5');
      throwsExactly(() => classBalancedWeights([1, 2], -0.1), RangeError, 'Expected a number in [0, 1] for beta but received -0.1');
    });
    it('a count that is not a finite number > 0 is a RangeError', () => {
      throwsExactly(() => classBalancedWeights([1, 0, 3], 0.9), RangeError, 'samplesPerCls[1] = 0 is not a finite number > 0');
      throwsExactly(() => classBalancedWeights([1, Infinity], 0.9), RangeError, 'samplesPerCls[1] = Infinity is not a finite number > 0');
      throwsExactly(() => classBalancedWeights([1, -2], 0.9), RangeError, 'samplesPerCls[1] = -2 is not a finite number > 0');
    });
    it('samplesPerCls of another length than numClasses is a RangeError', () => {
      throwsExactly(() => new ClassBalancedLoss({ samplesPerCls: [1, 2], beta: 0.9, numClasses: 3, lossFunc: base() }), RangeError, 'Expected length 3 (numClasses) for samplesPerCls but received length 2');
    });
    it('a lossFunc that is not one of these losses is a TypeError', () => {
      throwsExactly(() => new ClassBalancedLoss({ samplesPerCls: [1, 2, 3], beta: 0.9, numClasses: 3, lossFunc: {} as never }), TypeError, /for lossFunc but received an object/);
      throwsExactly(() => new ClassBalancedLoss({ samplesPerCls: [1, 2, 3], beta: 0.9, numClasses: 3, loss_func: (() => 0) as never }), TypeError, /for loss_func but received a function/);
    });
    it("a base loss whose reduction is not 'none' is a RangeError", () => {
      throwsExactly(() => new ClassBalancedLoss({ samplesPerCls: [1, 2, 3], beta: 0.9, numClasses: 3, lossFunc: new FocalLoss({ numClasses: 3 }) as never }), RangeError, /Expected reduction 'none' for lossFunc but received 'mean'/);
    });
    it('a base loss with another class count is a RangeError', () => {
      throwsExactly(() => new ClassBalancedLoss({ samplesPerCls: [1, 2, 3], beta: 0.9, numClasses: 3, lossFunc: new FocalLoss({ numClasses: 4, reduction: 'none' }) }), RangeError, /Expected numClasses 3 for lossFunc .* but received 4/);
      throwsExactly(() => new ClassBalancedLoss({ samplesPerCls: [1, 2, 3], beta: 0.9, numClasses: 3, lossFunc: new CrossEntropyLoss({ weight: [1, 1], reduction: 'none' }) }), RangeError, 'Expected length 3 (numClasses) for lossFunc.weight but received length 2');
    });
  });

  describe('gradOutput and out buffers', () => {
    const ce = new CrossEntropyLoss();
    const none = new CrossEntropyLoss({ reduction: 'none' });
    it('an array gradOutput for a reduced loss is a TypeError', () => {
      throwsExactly(() => ce.forwardBackward(x6, [0, 1], { gradOutput: [1, 2] }), TypeError, 'Expected a number (the loss is reduced to one value) for gradOutput but received Array(2)');
    });
    it('a gradOutput of the wrong length is a RangeError', () => {
      throwsExactly(() => none.forwardBackward(x6, [0, 1], { gradOutput: [1, 2, 3] }), RangeError, 'Expected length 2 (one per output element) for gradOutput but received length 3');
      throwsExactly(() => none.forwardBackward(x6, [0, 1], { gradOutput: 'x' as never }), TypeError, /for gradOutput but received 'x'/);
    });
    it('an unknown key in the call options or in out is a TypeError (a typo must not be ignored)', () => {
      const grad = new Float32Array(6);
      throwsExactly(() => ce.forwardBackward(x6, [0, 1], { grad } as never), TypeError, "Unknown option 'grad' in opts: expected one of gradOutput, out, sampleWeight, avgFactor");
      throwsExactly(() => ce.forwardBackward(x6, [0, 1], { out: { gard: grad } } as never), TypeError, "Unknown option 'gard' in opts.out: expected one of grad, loss");
      assert.deepStrictEqual(grad, new Float32Array(6), 'nothing written');
    });
    it('out buffers of the wrong type or length', () => {
      throwsExactly(() => ce.forwardBackward(x6, [0, 1], { out: { grad: new Float64Array(6) as never } }), TypeError, 'Expected a Float32Array for out.grad but received Float64Array(6)');
      throwsExactly(() => ce.forwardBackward(x6, [0, 1], { out: { grad: new Float32Array(5) } }), RangeError, "Expected length 6 (the input's length) for out.grad but received length 5");
      throwsExactly(() => none.forwardBackward(x6, [0, 1], { out: { loss: new Float32Array(3) } }), RangeError, 'Expected length 2 (one per output element) for out.loss but received length 3');
    });
    it('outputs that overlap inputs (other than grad = input) are a RangeError', () => {
      const buf = new Float32Array(12);
      const input = buf.subarray(0, 6);
      input.set(x6);
      throwsExactly(() => ce.forwardBackward(input, [0, 1], { out: { grad: buf.subarray(3, 9) } }), RangeError, /out.grad not to share memory with input/);
      const target = new Float32Array(12);
      assert.doesNotThrow(() => new BCEWithLogitsLoss().forwardBackward(x6, target.subarray(0, 6), { out: { grad: target.subarray(6, 12) } }), 'disjoint parts of one buffer');
      throwsExactly(() => new BCEWithLogitsLoss().forwardBackward(x6, target.subarray(0, 6), { out: { grad: target.subarray(2, 8) } }), RangeError, /out.grad not to share memory with target/);
      const both = new Float32Array(8);
      throwsExactly(() => none.forwardBackward(x6, [0, 1], { out: { grad: both.subarray(0, 6), loss: both.subarray(5, 7) } }), RangeError, /out.grad and out.loss not to share memory/);
    });
  });

  describe('no partial writes', () => {
    it('a failing call leaves the caller\'s buffers untouched', () => {
      const x = new Float32Array(300);
      const y = new Int32Array(100);
      y[99] = 7;
      const grad = new Float32Array(300).fill(42);
      const loss = new Float32Array(100).fill(42);
      assert.throws(() => new CrossEntropyLoss({ reduction: 'none' }).forwardBackward(x, y, { out: { grad, loss } }), RangeError);
      assert.ok(grad.every((v) => v === 42) && loss.every((v) => v === 42));
      assert.throws(() => new CrossEntropyLoss({ reduction: 'none' }).forwardBackward(x, new Int32Array(100), { out: { grad, loss }, gradOutput: new Float32Array(99) }), RangeError);
      assert.ok(grad.every((v) => v === 42) && loss.every((v) => v === 42));
    });
  });

  describe('async forms reject with the same errors', () => {
    it('forwardAsync / forwardBackwardAsync', async () => {
      const ce = new CrossEntropyLoss();
      await assert.rejects(ce.forwardAsync(x6, [0, 5]), { name: 'RangeError', message: 'target[1] = 5 is out of range [0, 3)' });
      await assert.rejects(ce.forwardBackwardAsync([1] as never, [0]), TypeError);
    });
  });

  describe('logit maps (docs/semantics.md, "Logit maps")', () => {
    it('bias, margin and scale: non-finite values, wrong lengths and scale <= 0 are RangeErrors', () => {
      throwsExactly(() => new CrossEntropyLoss({ logitBias: [0, Number.NaN, 1] }), RangeError, 'logitBias[1] = NaN is not a finite number');
      throwsExactly(() => new CrossEntropyLoss({ margin: [0, Infinity] }), RangeError, 'margin[1] = Infinity is not a finite number');
      throwsExactly(() => new CrossEntropyLoss({ scale: 0 }), RangeError, 'Expected a finite number > 0 for scale but received 0');
      throwsExactly(() => new CrossEntropyLoss({ scale: -2 }), RangeError, 'Expected a finite number > 0 for scale but received -2');
      throwsExactly(() => new CrossEntropyLoss({ numClasses: 3, logitBias: [1, 2] }), RangeError, 'Expected length 3 (one per class) for logitBias but received length 2');
      throwsExactly(() => new CrossEntropyLoss({ logitBias: [1, 2, 3], margin: [1, 2] }), RangeError, 'Expected length 3 (one per class) for margin but received length 2');
      const biased = new CrossEntropyLoss({ logitBias: [1, 2], reduction: 'none' });
      throwsExactly(() => new ClassBalancedLoss({ samplesPerCls: [1, 2, 3], beta: 0.9, numClasses: 3, lossFunc: biased }), RangeError, 'Expected length 3 (numClasses) for lossFunc.logitBias but received length 2');
      throwsExactly(() => new FocalLoss({ numClasses: 3, margin: [1, 2] }), RangeError, 'Expected length 3 (one per class) for margin but received length 2');
    });
    it('a margin with probability targets is a TypeError; the options on an element-wise loss are unknown options', () => {
      throwsExactly(() => new CrossEntropyLoss({ margin: [0.1, 0.2, 0.3] }).forward(x6, new Float32Array(6)), TypeError, /class indices \(an integer array\): margin applies to the target class/);
      throwsExactly(() => new BCEWithLogitsLoss({ logitBias: [0, 1] } as never), TypeError, /Unknown option 'logitBias' for BCEWithLogitsLoss/);
      throwsExactly(() => new PolyLoss({ scale: 2 } as never), TypeError, /Unknown option 'scale' for PolyLoss/);
      throwsExactly(() => new AsymmetricLoss({ margin: [1] } as never), TypeError, /Unknown option 'margin' for AsymmetricLoss/);
    });
    it('FocalLoss with numClasses 2 and a map is the two-class softmax: binary element targets are a TypeError', () => {
      const focal = new FocalLoss({ numClasses: 2, logitBias: [0, -1] });
      throwsExactly(() => focal.forward(new Float32Array(4), new Float32Array(4)), TypeError, /class indices, one per row of 2 logits/);
      assert.ok(Number.isFinite(focal.forward(new Float32Array(4), [0, 1])));
    });
    it('BalancedSoftmaxLoss and LDAMLoss set their own bias or margin, and take C from the counts', () => {
      throwsExactly(() => new BalancedSoftmaxLoss({ samplesPerCls: [5, 1], logitBias: [0, 0] } as never), TypeError, /Unknown option 'logitBias' for BalancedSoftmaxLoss/);
      throwsExactly(() => new LDAMLoss({ samplesPerCls: [5, 1], margin: [0, 0] } as never), TypeError, /Unknown option 'margin' for LDAMLoss/);
      throwsExactly(() => new LDAMLoss({} as never), TypeError, /Missing required option samplesPerCls of LDAMLoss/);
      throwsExactly(() => new BalancedSoftmaxLoss({ samplesPerCls: [5, 1], numClasses: 3 }), RangeError, 'Expected length 3 (numClasses) for samplesPerCls but received length 2');
      throwsExactly(() => new BalancedSoftmaxLoss({ samplesPerCls: [5, 0] }), RangeError, 'samplesPerCls[1] = 0 is not a finite number > 0');
      throwsExactly(() => new BalancedSoftmaxLoss({ samplesPerCls: [5, 1], tau: Number.NaN }), RangeError, 'Expected a finite number for tau but received NaN');
      throwsExactly(() => new LDAMLoss({ samplesPerCls: [5, 1], maxMargin: -0.1 }), RangeError, 'Expected a finite number ≥ 0 for maxMargin but received -0.1');
      throwsExactly(() => new LDAMLoss({ samples_per_cls: [5, 1], max_m: 0.5, scale: 0 } as never), RangeError, 'Expected a finite number > 0 for scale but received 0');
      throwsExactly(() => logitAdjustment([1, Number.POSITIVE_INFINITY]), RangeError, 'samplesPerCls[1] = Infinity is not a finite number > 0');
      throwsExactly(() => ldamMargins([1, 2], Number.NaN), RangeError, 'Expected a finite number ≥ 0 for maxMargin but received NaN');
    });
    it('the helpers: logit adjustment is τ log π_c, LDAM margins are maxMargin (n_c / n_min)^(-1/4)', () => {
      const counts = [1000, 100, 10];
      assert.deepEqual(Array.from(logitAdjustment(counts, 2)), counts.map((n) => 2 * Math.log(n / 1110)));
      const m = ldamMargins(counts, 0.5);
      assert.equal(m[2], 0.5);
      assert.ok(Math.abs(m[0] - 0.5 * Math.pow(10 / 1000, 0.25)) < 1e-15);
    });
  });

  describe('per-call weights (docs/semantics.md, "Per-call options")', () => {
    const ce = new CrossEntropyLoss();
    const bce = new BCEWithLogitsLoss();
    it('a wrong length, a non-finite weight (named by index) or a bad avgFactor is a RangeError', () => {
      throwsExactly(() => ce.forward(x6, [0, 1], { sampleWeight: [1, 2, 3] }), RangeError, 'Expected length 2 (one per row) for sampleWeight but received length 3');
      throwsExactly(() => bce.forward(x6, new Float32Array(6), { sampleWeight: [1, 2] }), RangeError, 'Expected length 6 (one per row) for sampleWeight but received length 2');
      throwsExactly(() => new BCEWithLogitsLoss({ numClasses: 3 }).forward(x6, new Float32Array(6), { sampleWeight: [1, 2, 3] }), RangeError, 'Expected length 2 (one per row) or 6 (one per element) for sampleWeight but received length 3');
      throwsExactly(() => ce.forward(x6, [0, 1], { sampleWeight: [1, Number.NaN] }), RangeError, 'sampleWeight[1] = NaN is not a finite number');
      // (a Float32Array is checked by the addon, with the same message)
      throwsExactly(() => ce.forward(x6, [0, 1], { sampleWeight: Float32Array.from([1, Infinity]) }), RangeError, 'sampleWeight[1] = Infinity is not a finite number');
      throwsExactly(() => bce.forward(x6, new Float32Array(6), { sampleWeight: Float32Array.from([1, 2, 3, 4, 5, -Infinity]) }), RangeError, 'sampleWeight[5] = -Infinity is not a finite number');
      throwsExactly(() => ce.forward(x6, [0, 1], { sampleWeight: ['1', 2] as never }), TypeError, "sampleWeight[0] = '1' is not a number");
      throwsExactly(() => ce.forward(x6, [0, 1], { avgFactor: 0 }), RangeError, 'Expected a finite number > 0 for avgFactor but received 0');
      throwsExactly(() => ce.forward(x6, [0, 1], { avgFactor: Infinity }), RangeError, 'Expected a finite number > 0 for avgFactor but received Infinity');
      throwsExactly(() => new CrossEntropyLoss({ reduction: 'sum' }).forward(x6, [0, 1], { avgFactor: 2 }), RangeError, /for avgFactor but received 2/);
      throwsExactly(() => new CrossEntropyLoss({ reduction: 'none' }).forwardBackward(x6, [0, 1], { avgFactor: 2 }), RangeError, /for avgFactor but received 2/);
      throwsExactly(() => ce.forward(x6, [0, 1], { gradOutput: 2 } as never), TypeError, "Unknown option 'gradOutput' in opts: expected one of sampleWeight, avgFactor");
    });
    it('nothing is written when the weights are bad', () => {
      const grad = new Float32Array(6).fill(3);
      throwsExactly(() => ce.forwardBackward(x6, [0, 1], { sampleWeight: [1, Infinity], out: { grad } }), RangeError, /sampleWeight\[1\]/);
      throwsExactly(() => ce.forwardBackward(x6, [0, 1], { sampleWeight: Float32Array.from([Number.NaN, 1]), out: { grad } }), RangeError, /sampleWeight\[0\] = NaN/);
      throwsExactly(() => ce.forwardBackward(x6, [0, 1], { avgFactor: -1, out: { grad } }), RangeError, /avgFactor/);
      assert.deepEqual(Array.from(grad), new Array(6).fill(3));
    });
    it('an output that overlaps the sample weights is a RangeError; async calls reject with the same errors', async () => {
      const buf = new Float32Array(8);
      assert.doesNotThrow(() => ce.forwardBackward(x6, [0, 1], { sampleWeight: buf.subarray(0, 2), out: { grad: buf.subarray(2, 8) } }));
      throwsExactly(() => ce.forwardBackward(x6, [0, 1], { sampleWeight: buf.subarray(0, 2), out: { grad: buf.subarray(1, 7) } }), RangeError, /out.grad not to share memory with sampleWeight/);
      await assert.rejects(ce.forwardAsync(x6, [0, 1], { sampleWeight: [1] }), { name: 'RangeError', message: 'Expected length 2 (one per row) for sampleWeight but received length 1' });
      await assert.rejects(ce.forwardBackwardAsync(x6, [0, 1], { avgFactor: 'x' as never }), TypeError);
      await assert.rejects(ce.forwardBackwardAsync(x6, [0, 1], { sampleWeight: Float32Array.from([1, Number.NaN]) }), { name: 'RangeError', message: 'sampleWeight[1] = NaN is not a finite number' });
    });
  });
});
