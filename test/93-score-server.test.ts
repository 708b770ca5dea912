// examples/score-server (issue 20): started on an ephemeral port, a few good and bad requests, stopped.
// Its load numbers come from `npm run bench:server` (bench/RESULTS.md), not from here.
import { strict as assert } from 'node:assert';
import type { Server } from 'node:http';
import * as net from 'node:net';

import * as cbloss from '../lib';
import { randomLogits, rng } from './helpers';

// (the example is plain JavaScript that requires 'cbloss' — this package, built into dist/)
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { createScoreServer } = require('../examples/score-server/server.js') as {
  createScoreServer(options: { mode?: 'cbloss' | 'js'; maxBytes?: number }): Server;
};

function body(logits: Float32Array, labels: Int32Array): Buffer {
  return Buffer.concat([Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength), Buffer.from(labels.buffer, labels.byteOffset, labels.byteLength)]);
}

describe('93 examples/score-server', () => {
  const N = 300;
  const C = 10;
  const rand = rng(93);
  const logits = randomLogits(rand, N * C, 3);
  const labels = Int32Array.from({ length: N }, () => Math.floor(rand() * C));
  const servers: Server[] = [];
  let base = '';

  before(async () => {
    for (const mode of ['cbloss', 'js'] as const) {
      const server = createScoreServer({ mode, maxBytes: 64 * 1024 });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      servers.push(server);
    }
    base = `http://127.0.0.1:${(servers[0].address() as net.AddressInfo).port}`;
  });
  after(async () => {
    for (const server of servers) await new Promise((resolve) => server.close(resolve));
  });

  it('scores a batch: the mean and per-sample losses of CrossEntropyLoss, in either mode', async () => {
    const expected = new cbloss.CrossEntropyLoss({ reduction: 'none' }).forward(logits, labels) as Float32Array;
    for (const server of servers) {
      const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/score?classes=${C}`;
      const r = await fetch(url, { method: 'POST', body: body(logits, labels) });
      assert.equal(r.status, 200);
      const json = (await r.json()) as { rows: number; classes: number; loss: number; perSample: number[] };
      assert.equal(json.rows, N);
      assert.equal(json.classes, C);
      for (let n = 0; n < N; n++) assert.ok(Math.abs(json.perSample[n] - expected[n]) <= 1e-5 * Math.max(1, expected[n]), `row ${n}`);
      const mean = expected.reduce((s, v) => s + v, 0) / N;
      assert.ok(Math.abs(json.loss - mean) <= 1e-5 * mean);
    }
  });

  it('answers bad requests with 400/413 and a message, and keeps serving', async () => {
    const post = async (path: string, payload: Uint8Array) => {
      const r = await fetch(`${base}${path}`, { method: 'POST', body: payload });
      return [r.status, ((await r.json()) as { error?: string }).error] as const;
    };
    const good = body(logits, labels);
    const wrongLabel = Int32Array.from(labels);
    wrongLabel[7] = C;
    assert.deepEqual(await post(`/score?classes=${C}`, good.subarray(0, 1001)), [400, `a body of 1001 bytes is not N rows of ${C} float32 logits and one int32 label (44 bytes a row)`]);
    assert.deepEqual(await post('/score?classes=ten', good), [400, "classes must be an integer in [1, 1048576], not 'ten'"]);
    assert.deepEqual(await post(`/score?classes=${C}&loss=hinge`, good), [400, "loss must be ce or focal, not 'hinge'"]);
    assert.deepEqual(await post(`/score?classes=${C}`, body(logits, wrongLabel)), [400, `target[7] = ${C} is out of range [0, ${C})`]);
    assert.deepEqual(await post(`/score?classes=${C}`, new Uint8Array(65 * 1024)), [413, 'the body has 66560 bytes, over the limit of 65536']);
    // a body that stops short of its Content-Length: dropped when the client goes
    await new Promise<void>((resolve) => {
      const socket = net.connect((servers[0].address() as net.AddressInfo).port, '127.0.0.1', () => {
        socket.write(`POST /score?classes=${C} HTTP/1.1\r\nHost: x\r\nContent-Length: 13200\r\n\r\n`);
        socket.end(Buffer.alloc(100), () => setTimeout(resolve, 20));
      });
    });
    const r = await fetch(`${base}/score?classes=${C}`, { method: 'POST', body: good });
    assert.equal(r.status, 200, 'still serving');
    const stats = (await (await fetch(`${base}/stats`)).json()) as { requests: number; errors: number };
    assert.equal(stats.errors, 6, 'five answered errors and the truncated body');
  });
});
