// A seeded fuzz of the command's file readers (issue 20, item 5): valid .npy files with random byte
// flips, truncations, huge, negative or malformed shapes and odd dtypes, and raw files truncated,
// extended or flipped under any dtype and shape, through `cbloss score` in process. Every run either scores or fails with the command's one-line error naming a file (exit
// code 1: bad data) — never another exception, never a crash.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { CliError } from '../lib/cli/args';
import { score } from '../lib/cli/score';
import { randomLogits, rng } from './helpers';

function npy(descr: string, shape: number[], data: ArrayBufferView): Buffer {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  while ((10 + header.length + 1) % 64 !== 0) header += ' ';
  header += '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

/** One mutation of a valid file, chosen by the seed. */
function mutate(valid: Buffer, rand: () => number): Buffer {
  const b = Buffer.from(valid);
  const headerEnd = 10 + b.readUInt16LE(8);
  const text = (): string => b.subarray(0, headerEnd).toString('latin1');
  const replaced = (from: RegExp, to: string): Buffer => {
    const head = text().replace(from, to);
    return Buffer.concat([Buffer.from(head, 'latin1'), b.subarray(headerEnd)]);
  };
  switch (Math.floor(rand() * 8)) {
    case 0: // flip bytes anywhere
      for (let k = 1 + Math.floor(rand() * 8); k > 0; k--) b[Math.floor(rand() * b.length)] ^= 1 + Math.floor(rand() * 255);
      return b;
    case 1: // flip bytes in the header
      for (let k = 1 + Math.floor(rand() * 4); k > 0; k--) b[Math.floor(rand() * headerEnd)] ^= 1 + Math.floor(rand() * 255);
      return b;
    case 2: // truncate
      return b.subarray(0, Math.floor(rand() * b.length));
    case 3: // a huge shape
      return replaced(/'shape': \([^)]*\)/, `'shape': (${[2 ** 53, 1e15, 4294967297, 1e300][Math.floor(rand() * 4)]}, 7)`);
    case 4: // a negative or malformed shape
      return replaced(/'shape': \([^)]*\)/, `'shape': (${['-3, 7', '50, -7', 'x, 7', '', '50, 7, 2, 2', '1.5, 7'][Math.floor(rand() * 6)]})`);
    case 5: // an odd dtype
      return replaced(/'descr': '[^']*'/, `'descr': '${['<c8', '|O', '<f2', '>i8', '<U3', 'V8', '<M8[s]', ''][Math.floor(rand() * 8)]}'`);
    case 6: // a header length beyond the file
      b.writeUInt16LE(60000, 8);
      return b;
    default: // another format version, or none
      b[6] = [0, 2, 3, 9][Math.floor(rand() * 4)];
      return b;
  }
}

describe('92 the command reads any file without crashing (seeded fuzz)', () => {
  const N = 50;
  const C = 7;
  const rand = rng(92);
  let dir: string;
  let logits: Buffer;
  let targets: Buffer;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbloss-fuzz-'));
    logits = npy('<f4', [N, C], randomLogits(rand, N * C));
    targets = npy('<i8', [N], BigInt64Array.from({ length: N }, () => BigInt(Math.floor(rand() * C))));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const which of ['--logits', '--targets'] as const) {
    it(`300 mutated ${which} files: a score or one line naming a file, exit code 1`, () => {
      const r = rng(which.length * 7919);
      const x = path.join(dir, 'x.npy');
      const y = path.join(dir, 'y.npy');
      let scored = 0;
      for (let i = 0; i < 300; i++) {
        fs.writeFileSync(x, which === '--logits' ? mutate(logits, r) : logits);
        fs.writeFileSync(y, which === '--targets' ? mutate(targets, r) : targets);
        try {
          const result = score(['--logits', x, '--targets', y, '--loss', 'ce', '--json']);
          assert.equal(typeof result.loss, 'number');
          scored++;
        } catch (err) {
          assert.ok(err instanceof CliError, `case ${i}: ${(err as Error).constructor.name}: ${(err as Error).message}`);
          assert.equal(err.exitCode, 1, `case ${i}: exit code (bad data): ${err.message}`);
          assert.ok(!err.message.includes('\n'), `case ${i}: one line: ${err.message}`);
          // (a shape that no longer matches the other file's may be reported on either)
          assert.ok(err.message.includes(x) || err.message.includes(y), `case ${i}: names a file: ${err.message}`);
        }
      }
      assert.ok(scored < 150, `the mutations broke something: ${scored} of 300 scored`);
    });
  }

  // Raw (headerless) files: truncated, extended, their bytes flipped (NaN patterns, labels out of
  // range), read as any of the dtypes with shapes that may not match their length.
  it('300 mutated raw logits and targets, any dtype and shape: a score or one line naming a file, exit code 1', () => {
    const r = rng(9292);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(r() * items.length)];
    const x = path.join(dir, 'x.raw');
    const y = path.join(dir, 'y.raw');
    const rawLogits = Buffer.from(randomLogits(rand, N * C).buffer);
    const rawTargets = Buffer.from(Int32Array.from({ length: N }, () => Math.floor(rand() * C)).buffer);
    const mutateRaw = (valid: Buffer): Buffer => {
      const b = Buffer.from(valid);
      switch (Math.floor(r() * 4)) {
        case 0:
          for (let k = 1 + Math.floor(r() * 8); k > 0; k--) b[Math.floor(r() * b.length)] ^= 1 + Math.floor(r() * 255);
          return b;
        case 1:
          return b.subarray(0, Math.floor(r() * b.length));
        case 2:
          return Buffer.concat([b, Buffer.alloc(1 + Math.floor(r() * 40), 0xff)]);
        default:
          return b;
      }
    };
    let scored = 0;
    for (let i = 0; i < 300; i++) {
      fs.writeFileSync(x, mutateRaw(rawLogits));
      fs.writeFileSync(y, mutateRaw(rawTargets));
      const shape = pick([`${N},${C}`, `${N},${C}`, `${N}`, `${N * C}`, `${N + 1},${C}`, `${N},${C - 1}`, `1,${N * C}`, `${2 ** 40},${C}`]);
      const args = ['--logits', x, '--shape', shape, '--dtype', pick(['float32', 'float32', 'float64']), '--targets', y, '--targets-dtype', pick(['int32', 'int32', 'int64', 'uint8', 'float32', 'float64'])];
      try {
        const result = score([...args, '--loss', pick(['ce', 'bce', 'focal']), '--json']);
        assert.equal(typeof result.loss, 'number');
        scored++;
      } catch (err) {
        assert.ok(err instanceof CliError, `case ${i} (${args.join(' ')}): ${(err as Error).constructor.name}: ${(err as Error).message}`);
        assert.equal(err.exitCode, 1, `case ${i} (${args.join(' ')}): exit code (bad data): ${err.message}`);
        assert.ok(!err.message.includes('\n'), `case ${i}: one line: ${err.message}`);
        assert.ok(err.message.includes(x) || err.message.includes(y), `case ${i} (${args.join(' ')}): names a file: ${err.message}`);
      }
    }
    assert.ok(scored > 0 && scored < 250, `${scored} of 300 scored`);
  });
});
