// Small calls' overhead: CE forward, forward+backward into a reused gradient, and with sampleWeight, on
// 4 rows of 3 classes; median of 7 × 100,000 calls each (ns a call). `node bench/small-calls.js [package]`.
'use strict';
const c = require(process.argv[2] ? require('node:path').resolve(process.argv[2]) : '..');
const loss = new c.CrossEntropyLoss();
const x = new Float32Array(12).map((_, i) => Math.sin(i)); const y = new Int32Array([0, 1, 2, 1]);
const g = new Float32Array(12);
const sw = new Float32Array([1, 2, 1, 0.5]);
function run(n, f) { const t = process.hrtime.bigint(); for (let i = 0; i < n; i++) f(); return Number(process.hrtime.bigint() - t) / n; }
const res = { fwd: [], fb: [], fbsw: [] };
for (let r = 0; r < 7; r++) {
  res.fwd.push(run(100000, () => loss.forward(x, y)));
  res.fb.push(run(100000, () => loss.forwardBackward(x, y, { out: { grad: g } })));
  res.fbsw.push(run(100000, () => loss.forwardBackward(x, y, { out: { grad: g }, sampleWeight: sw })));
}
const med = (a) => a.sort((p, q) => p - q)[a.length >> 1];
console.log(Object.entries(res).map(([k, v]) => `${k} ${med(v).toFixed(0)} ns`).join(', '));
