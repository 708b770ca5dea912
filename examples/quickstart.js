// A tour of cbloss: each loss on a tiny batch, loss and gradient in one call.
// Run: npm run example
'use strict';
const {
  CrossEntropyLoss,
  BCEWithLogitsLoss,
  FocalLoss,
  SigmoidFocalLoss,
  PolyLoss,
  AsymmetricLoss,
  ClassBalancedLoss,
  classBalancedWeights,
  backendInfo,
} = require('cbloss');

const fmt = (a) => Array.from(a, (v) => v.toFixed(4)).join(' ');

// Three samples, three classes (row-major N×C logits), class indices as targets.
const logits = new Float32Array([0.5, -0.5, 1, -1, 2, -1, 0, 0, 0]);
const labels = new Int32Array([2, 1, 0]);

const ce = new CrossEntropyLoss({ labelSmoothing: 0.1 });
const r = ce.forwardBackward(logits, labels);
console.log(`CrossEntropyLoss   loss ${r.loss.toFixed(6)}  grad[0..2] ${fmt(r.grad.subarray(0, 3))}`);

const focal = new FocalLoss({ numClasses: 3, gamma: 2 });
console.log(`FocalLoss          loss ${focal.forward(logits, labels).toFixed(6)}   (Python cbloss: 0.204423)`);

const binary = new FocalLoss({ numClasses: 2 });
const bx = new Float32Array([2.1, 0.5, 2.1, 0.5]);
const by = new Float32Array([0, 1, 1, 0]);
console.log(`FocalLoss binary   loss ${binary.forward(bx, by).toFixed(6)}   (Python cbloss: 0.551209)`);

const counts = [30, 100, 25];
console.log(`classBalancedWeights(${JSON.stringify(counts)}, 0.99) = ${fmt(classBalancedWeights(counts, 0.99))}`);
const cb = new ClassBalancedLoss({
  samplesPerCls: counts,
  beta: 0.99,
  numClasses: 3,
  lossFunc: new FocalLoss({ numClasses: 3, reduction: 'none' }),
});
console.log(`ClassBalancedLoss  loss ${cb.forward(logits, labels).toFixed(6)}   (docs/semantics.md worked example: 0.245579)`);

const multiLabel = new Float32Array([1, 0, 1, 0, 0, 1, 1, 1, 0]);
const bce = new BCEWithLogitsLoss({ posWeight: [1, 2, 3] });
console.log(`BCEWithLogitsLoss  loss ${bce.forward(logits, multiLabel).toFixed(6)}`);

const sfl = new SigmoidFocalLoss({ reduction: 'mean' });
console.log(`SigmoidFocalLoss   loss ${sfl.forward(logits, multiLabel).toFixed(6)}`);

const poly = new PolyLoss({ epsilon: 1 });
console.log(`PolyLoss (Poly-1)  loss ${poly.forward(logits, labels).toFixed(6)}   (CE + ε(1 − p_y), float64: 1.002780)`);

const asl = new AsymmetricLoss({ gammaPos: 1, gammaNeg: 4, clip: 0.05 });
console.log(`AsymmetricLoss     loss ${asl.forward(logits, multiLabel).toFixed(6)}   (float64: 0.310280)`);

const info = backendInfo();
console.log(`\ncbloss ${info.version}: CPU (${info.cpu.simd}, ${info.cpu.threads} thread(s)); CUDA compiled: ${info.compiled.cuda}; ` +
  `CUDA available: ${info.cuda.available}${info.cuda.available ? '' : ` (${info.cuda.reason})`}`);
