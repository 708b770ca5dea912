// Every loss × option × reduction on random inputs against the independent float64 reference
// (test/reference.ts): the loss against its value, the gradient against central finite differences.
import { strict as assert } from 'node:assert';

import { cbFamilies, families, runFamily } from './families';
import { forEachKernelLevel } from './helpers';
import { referenceLoss, type RefCase } from './reference';

forEachKernelLevel('20 float64 reference and finite differences', () => {
  let seed = 1000;
  for (const f of families) {
    const s = seed++;
    it(f.name, () => {
      for (let repeat = 0; repeat < 3; repeat++) runFamily(f, s * 7 + repeat);
    });
  }
  for (const f of cbFamilies()) {
    const s = seed++;
    it(f.name, () => runFamily(f, s));
  }

  it('the reference itself is not trivially zero', () => {
    const c: RefCase = { loss: 'CrossEntropyLoss', options: {}, target: { kind: 'int', values: [0, 1] } };
    const z = new Float64Array([1, 2, 3, 4]);
    const v = referenceLoss(c, z) as number;
    assert.ok(Math.abs(v - (Math.log(Math.E + Math.E ** 2) - 1 + Math.log(Math.E ** 3 + Math.E ** 4) - 4) / 2) < 1e-12);
  });
});
