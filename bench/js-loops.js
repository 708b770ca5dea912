// The straightforward JavaScript a Node user would write for each loss: forward and backward in
// plain loops over Float32Arrays (numerically careful, not tuned). The peer "JS loop" of the bench.
'use strict';

function softmaxRow(x, off, C, e) {
  let m = -Infinity;
  for (let c = 0; c < C; c++) if (x[off + c] > m) m = x[off + c];
  let s = 0;
  for (let c = 0; c < C; c++) s += e[c] = Math.exp(x[off + c] - m);
  return { m, s };
}

/** Cross-entropy (mean), optionally weighted per row by w[y] (class-balanced, .mean()). */
function crossEntropy(x, y, N, C, grad, rowWeight) {
  const e = new Float64Array(C);
  let total = 0;
  for (let n = 0; n < N; n++) {
    const off = n * C;
    const { m, s } = softmaxRow(x, off, C, e);
    const label = y[n];
    const w = rowWeight ? rowWeight[label] : 1;
    total += w * (m + Math.log(s) - x[off + label]);
    for (let c = 0; c < C; c++) grad[off + c] = (w * (e[c] / s - (c === label ? 1 : 0))) / N;
  }
  return total / N;
}

/** Softmax focal loss (Python cbloss), optionally class-balanced by w[y]. */
function focal(x, y, N, C, grad, gamma, rowWeight) {
  const e = new Float64Array(C);
  let total = 0;
  for (let n = 0; n < N; n++) {
    const off = n * C;
    const { m, s } = softmaxRow(x, off, C, e);
    const label = y[n];
    const w = rowWeight ? rowWeight[label] : 1;
    const ce = m + Math.log(s) - x[off + label];
    const p = Math.exp(-ce);
    const u = -Math.expm1(-ce);
    total += w * Math.pow(u, gamma) * ce;
    const k = (w * Math.pow(u, gamma) * (1 + (gamma * p * ce) / (u > 0 ? u : 1))) / N;
    for (let c = 0; c < C; c++) grad[off + c] = k * (e[c] / s - (c === label ? 1 : 0));
  }
  return total / N;
}

function bce(x, t, M, grad) {
  let total = 0;
  for (let i = 0; i < M; i++) {
    const v = x[i];
    const ti = t[i];
    total += Math.max(v, 0) - v * ti + Math.log1p(Math.exp(-Math.abs(v)));
    grad[i] = (1 / (1 + Math.exp(-v)) - ti) / M;
  }
  return total / M;
}

function sigmoidFocal(x, t, M, grad, alpha, gamma) {
  let total = 0;
  for (let i = 0; i < M; i++) {
    const v = x[i];
    const ti = t[i];
    const p = 1 / (1 + Math.exp(-v));
    const ce = Math.max(v, 0) - v * ti + Math.log1p(Math.exp(-Math.abs(v)));
    const a = ti * (1 - p) + (1 - ti) * p;
    const at = alpha * ti + (1 - alpha) * (1 - ti);
    total += at * Math.pow(a, gamma) * ce;
    const ag = Math.pow(a, gamma);
    grad[i] = (at * (ag * (p - ti) + (a > 0 ? (gamma * ag * (1 - 2 * ti) * p * (1 - p) * ce) / a : 0))) / M;
  }
  return total / M;
}

module.exports = { crossEntropy, focal, bce, sigmoidFocal };
