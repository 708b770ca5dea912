// Every loss × option × reduction on random inputs against the independent float64 reference
// (test/reference.ts): the loss against its value, the gradient against central finite differences.
// The families are the loss descriptor's (test/losses.ts); the smoke scope runs the first of each loss.
import { strict as assert } from 'node:assert';

import { familySeed, referenceFamilies, runFamily } from './families';
import { forEachKernelLevel, scopedFirstOfEachLoss } from './helpers';
import { referenceLoss, type RefCase } from './reference';

forEachKernelLevel('20 float64 reference and finite differences', () => {
  for (const f of scopedFirstOfEachLoss(referenceFamilies(), (family) => family.loss)) {
    const seed = familySeed(f);
    it(f.name, () => {
      for (let run = 0; run < (f.runs ?? 3); run++) runFamily(f, seed + run);
    });
  }

  it('the reference itself is not trivially zero', () => {
    const c: RefCase = { loss: 'CrossEntropyLoss', options: {}, target: { kind: 'int', values: [0, 1] } };
    const z = new Float64Array([1, 2, 3, 4]);
    const v = referenceLoss(c, z) as number;
    assert.ok(Math.abs(v - (Math.log(Math.E + Math.E ** 2) - 1 + Math.log(Math.E ** 3 + Math.E ** 4) - 4) / 2) < 1e-12);
  });
});
