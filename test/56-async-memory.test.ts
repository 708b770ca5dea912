// Async calls whose arrays change while a worker thread runs them (issue 20): buffers transferred away
// (structuredClone, postMessage to a worker) and collected, resizable buffers shrunk and grown,
// growable SharedArrayBuffers grown. The worker reads and writes only memory that stays valid
// (lib/async-arrays.ts): every call settles, either with the result of the untouched data or with a
// TypeError naming an output that changed, and never with a crash or — under scripts/sanitize.sh,
// which runs this file with AddressSanitizer — a read of freed memory.
import { strict as assert } from 'node:assert';
import { MessageChannel, Worker } from 'node:worker_threads';

import * as cbloss from '../lib';
import { randomLogits, rng } from './helpers';

type Values = Float32Array | Int32Array;
type BufferKind = 'plain' | 'resizable' | 'shared' | 'growable';
const BUFFER_KINDS: BufferKind[] = ['plain', 'resizable', 'shared', 'growable'];

// (Node 20 has both; this project's TypeScript lib does not declare their options yet)
const Resizable = ArrayBuffer as unknown as new (length: number, options: { maxByteLength: number }) => ArrayBuffer & {
  resize(length: number): void;
  maxByteLength: number;
};
const Growable = SharedArrayBuffer as unknown as new (length: number, options: { maxByteLength: number }) => SharedArrayBuffer & {
  grow(length: number): void;
  maxByteLength: number;
};

/** `values` copied into a buffer of the given kind (resizable and growable ones may double). */
function placed<T extends Values>(values: T, kind: BufferKind): T {
  const bytes = values.byteLength;
  const buffer =
    kind === 'plain'
      ? new ArrayBuffer(bytes)
      : kind === 'resizable'
        ? new Resizable(bytes, { maxByteLength: 2 * bytes + 8 })
        : kind === 'shared'
          ? new SharedArrayBuffer(bytes)
          : new Growable(bytes, { maxByteLength: 2 * bytes + 8 });
  const array = new (values.constructor as new (buffer: ArrayBufferLike) => T)(buffer);
  array.set(values as never);
  return array;
}

async function collectGarbage(): Promise<void> {
  global.gc?.();
  await new Promise((resolve) => setImmediate(resolve));
}

/** Transfers a view's buffer away (detaching it); false where it cannot be (a SharedArrayBuffer). */
function transferAway(array: Values, how: 'structuredClone' | 'postMessage', keep: unknown[]): boolean {
  if (array.buffer instanceof SharedArrayBuffer || array.byteLength === 0) return false;
  if (how === 'structuredClone') {
    const moved: unknown = structuredClone(array.buffer, { transfer: [array.buffer] });
    keep.push(moved);
  } else {
    const { port1, port2 } = new MessageChannel();
    port1.postMessage(array.buffer, [array.buffer]);
    port1.close();
    port2.close();
  }
  return true;
}

describe('56 async memory', () => {
  it("the issue's repros: a resizable input shrunk, an input transferred away and collected, during the call", async () => {
    const N = 65536;
    const C = 256;
    const rand = rng(20);
    const values = randomLogits(rand, N * C);
    const labels = Int32Array.from({ length: N }, () => Math.floor(rand() * C));
    const loss = new cbloss.CrossEntropyLoss();
    const expected = loss.forwardBackward(values, labels);

    const resizable = placed(values, 'resizable');
    const shrunk = loss.forwardBackwardAsync(resizable, labels);
    (resizable.buffer as InstanceType<typeof Resizable>).resize(0);
    const a = await shrunk;
    assert.equal(a.loss, expected.loss);
    assert.deepEqual(a.grad, expected.grad);

    const x = Float32Array.from(values);
    const moved = loss.forwardBackwardAsync(x, labels);
    transferAway(x, 'structuredClone', []);
    await collectGarbage();
    const b = await moved;
    assert.equal(x.length, 0, 'the input was detached');
    assert.equal(b.loss, expected.loss);
    assert.deepEqual(b.grad, expected.grad);
  });

  it('an out.grad transferred away during the call is a TypeError naming it, and out.loss is left unwritten', async () => {
    const rand = rng(21);
    const N = 2048;
    const C = 100;
    const x = randomLogits(rand, N * C);
    const y = Int32Array.from({ length: N }, () => Math.floor(rand() * C));
    const none = new cbloss.CrossEntropyLoss({ reduction: 'none' });
    const grad = new Float32Array(N * C);
    const lossOut = new Float32Array(N).fill(7);
    const pending = none.forwardBackwardAsync(x, y, { out: { grad, loss: lossOut } });
    transferAway(grad, 'postMessage', []);
    await assert.rejects(pending, {
      name: 'TypeError',
      message: `Expected out.grad to keep its ${N * C * 4} bytes until the async call settled, but it was detached (its buffer transferred) or emptied meanwhile; the call's results were not delivered`,
    });
    assert.ok(lossOut.every((v) => v === 7), 'out.loss was not written');
  });

  it('a buffer sent to a worker thread during the call: the call settles with the untouched result', async () => {
    const rand = rng(22);
    const N = 4096;
    const C = 64;
    const x = randomLogits(rand, N * C);
    const t = Float32Array.from({ length: N * C }, () => (rand() < 0.3 ? 1 : 0));
    const bce = new cbloss.BCEWithLogitsLoss();
    const expected = bce.forwardBackward(x, t);
    const worker = new Worker('require("node:worker_threads").parentPort.once("message", (m) => { m.fill(0); process.exit(0); });', { eval: true });
    const pending = bce.forwardBackwardAsync(x, t);
    worker.postMessage(t, [t.buffer]);
    await new Promise((resolve) => worker.once('exit', resolve));
    await collectGarbage();
    const r = await pending;
    assert.equal(r.loss, expected.loss);
    assert.deepEqual(r.grad, expected.grad);
  });

  it('arrays on SharedArrayBuffers are read and written in place, with the sync result', async () => {
    const rand = rng(23);
    const N = 1000;
    const C = 37;
    const x = placed(randomLogits(rand, N * C), 'shared');
    const y = placed(Int32Array.from({ length: N }, () => Math.floor(rand() * C)), 'shared');
    const grad = placed(new Float32Array(N * C), 'shared');
    const focal = new cbloss.FocalLoss({ numClasses: C, gamma: 2 });
    const expected = focal.forwardBackward(Float32Array.from(x), Int32Array.from(y));
    const r = await focal.forwardBackwardAsync(x, y, { out: { grad } });
    assert.equal(r.grad, grad, 'the caller array itself is the result');
    assert.equal(r.loss, expected.loss);
    assert.deepEqual(Float32Array.from(grad), expected.grad);
  });

  it('seeded fuzz: many calls in flight while their arrays are transferred, resized and collected at random', async function () {
    this.timeout(600000);
    const rand = rng(2026);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)];
    const calls = Number(process.env.CBLOSS_ASYNC_FUZZ_CALLS ?? 240);
    let fulfilled = 0;
    let rejected = 0;
    for (let batch = 0; batch < calls / 8; batch++) {
      const inFlight: Array<Promise<void>> = [];
      const keep: unknown[] = [];
      for (let k = 0; k < 8; k++) {
        const N = 1 + Math.floor(rand() ** 2 * 3000);
        const C = 2 + Math.floor(rand() * 300);
        const kind = pick(['ce', 'ce none', 'focal', 'bce'] as const);
        const x0 = randomLogits(rand, N * C, 3);
        const t0: Values =
          kind === 'bce' ? Float32Array.from({ length: N * C }, () => (rand() < 0.2 ? 1 : 0)) : Int32Array.from({ length: N }, () => Math.floor(rand() * C));
        const loss =
          kind === 'bce'
            ? new cbloss.BCEWithLogitsLoss()
            : kind === 'focal'
              ? new cbloss.FocalLoss({ numClasses: C, gamma: 1.5 })
              : new cbloss.CrossEntropyLoss({ reduction: kind === 'ce none' ? 'none' : 'mean' });
        const expected = (loss as cbloss.CrossEntropyLoss).forwardBackward(x0, t0 as never) as { loss: number | Float32Array; grad: Float32Array };
        const arrays: Record<string, Values> = { input: placed(x0, pick(BUFFER_KINDS)), target: placed(t0, pick(BUFFER_KINDS)) };
        const out: { grad?: Float32Array; loss?: Float32Array } = {};
        if (rand() < 0.5) out.grad = arrays['out.grad'] = placed(new Float32Array(N * C).fill(7), pick(BUFFER_KINDS));
        if (kind === 'ce none' && rand() < 0.5) out.loss = arrays['out.loss'] = placed(new Float32Array(N).fill(7), pick(BUFFER_KINDS));
        const call = (loss as cbloss.CrossEntropyLoss).forwardBackwardAsync(arrays.input as Float32Array, arrays.target as never, { out }) as Promise<{
          loss: number | Float32Array;
          grad: Float32Array;
        }>;
        // The result as it was delivered (a change scheduled later may come after the call settled).
        const pending = call.then((r) => ({
          loss: typeof r.loss === 'number' ? r.loss : Float32Array.from(r.loss),
          grad: Float32Array.from(r.grad),
          callerGrad: r.grad === out.grad,
        }));
        // What happens to one of the call's arrays, and when.
        const name = pick(Object.keys(arrays));
        const array = arrays[name];
        const action = pick(['transfer', 'post', 'shrink', 'grow', 'gc', 'nothing'] as const);
        const change = async (): Promise<void> => {
          // (the resizing methods, which this project's TypeScript lib does not declare yet)
          const buffer = array.buffer as unknown as { byteLength: number; resizable?: boolean; growable?: boolean; resize(n: number): void; grow(n: number): void };
          if (action === 'transfer' || action === 'post') transferAway(array, action === 'transfer' ? 'structuredClone' : 'postMessage', keep);
          else if (action === 'shrink' && buffer.resizable) buffer.resize(Math.floor(rand() * buffer.byteLength));
          else if (action === 'grow' && (buffer.resizable || buffer.growable)) {
            const grown = buffer.byteLength + 4 * (1 + Math.floor(rand() * 8));
            if (buffer.resizable) buffer.resize(grown);
            else buffer.grow(grown);
          }
          if (rand() < 0.5) keep.length = 0; // the transferred buffers' new owners collected
          if (rand() < 0.5) await collectGarbage();
        };
        const when = pick(['now', 'immediate', 'timer'] as const);
        const changing =
          when === 'now'
            ? change()
            : new Promise<void>((resolve) => (when === 'immediate' ? setImmediate : (f: () => void) => setTimeout(f, rand() * 3))(() => void change().then(resolve)));
        inFlight.push(
          Promise.all([pending, changing]).then(
            ([r]) => {
              fulfilled++;
              if (typeof expected.loss === 'number') assert.equal(r.loss, expected.loss);
              else assert.deepEqual(r.loss, expected.loss);
              assert.deepEqual(r.grad, expected.grad);
              if (out.grad) assert.ok(r.callerGrad, 'the caller array is the result');
            },
            (err: unknown) => {
              rejected++;
              assert.ok(err instanceof TypeError, `a TypeError, not ${String(err)}`);
              assert.match(err.message, /^Expected (out\.grad|out\.loss|input|target) to keep its \d+ bytes until the async call settled/);
              // Only an output or an array used in place (on a SharedArrayBuffer) is checked at the end.
              assert.ok(name.startsWith('out.') || array.buffer instanceof SharedArrayBuffer, `${name} changed (${action}) but the call rejected: ${err.message}`);
              for (const o of [out.grad, out.loss]) {
                if (o && o !== array && o.length > 0) assert.ok(o.every((v) => v === 7), 'no caller array written on a rejection');
              }
            },
          ),
        );
      }
      await Promise.all(inFlight);
    }
    assert.equal(fulfilled + rejected, Math.ceil(calls / 8) * 8);
    assert.ok(rejected > 0 && fulfilled > rejected, `${fulfilled} fulfilled, ${rejected} rejected`);
  });
});
