// What the GPU scripts share: a median wall time, and a run with some switches in the environment.
'use strict';

/** The median of `reps` timed calls of fn (ms), after one untimed call. */
function median(fn, reps = 10) {
  fn();
  const t = [];
  for (let i = 0; i < reps; i++) {
    const s = process.hrtime.bigint();
    fn();
    t.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  t.sort((p, q) => p - q);
  return t[t.length >> 1];
}

/** fn() with `env` set (the CBLOSS_CUDA_* switches are read at each call), then unset. */
function withEnv(env, fn) {
  Object.assign(process.env, env);
  try {
    return fn();
  } finally {
    for (const name of Object.keys(env)) delete process.env[name];
  }
}

module.exports = { median, withEnv };
