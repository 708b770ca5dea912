// examples/score-server (issues 20 and 31): started on ephemeral ports, good and bad requests, stopped:
// JSON and binary answers, .npy bodies, 413 before the body is read, 503 beyond the requests in flight.
// Its load numbers come from `npm run bench:server` (bench/RESULTS.md), not from here.
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import * as net from 'node:net';

import * as cbloss from '../lib';
import { randomLogits, rng } from './helpers';

interface ScoreServerOptions {
  mode?: 'cbloss' | 'js';
  maxBytes?: number;
  maxInFlight?: number;
  maxInFlightBytes?: number;
  jsonMaxRows?: number;
  syncMaxElements?: number;
}
// (the example is plain JavaScript that requires 'cbloss' — this package, built into dist/)
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { createScoreServer } = require('../examples/score-server/server.js') as {
  createScoreServer(options: ScoreServerOptions): http.Server;
};

function bytesOf(array: ArrayBufferView): Buffer {
  return Buffer.from(array.buffer, array.byteOffset, array.byteLength);
}

function body(logits: Float32Array, labels: Int32Array): Buffer {
  return Buffer.concat([bytesOf(logits), bytesOf(labels)]);
}

/** A .npy file (format 1.0) of `data` with dtype `descr` and `shape`, its header padded to 64 bytes. */
function npy(descr: string, shape: number[], data: ArrayBufferView): Buffer {
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const padded = Math.ceil((10 + dict.length + 1) / 64) * 64;
  const head = Buffer.alloc(10);
  Buffer.from('\x93NUMPY', 'latin1').copy(head);
  head[6] = 1;
  head.writeUInt16LE(padded - 10, 8);
  return Buffer.concat([head, Buffer.from(dict + ' '.repeat(padded - 11 - dict.length) + '\n', 'latin1'), bytesOf(data)]);
}

async function start(options: ScoreServerOptions): Promise<{ server: http.Server; port: number; base: string }> {
  const server = createScoreServer(options);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return { server, port, base: `http://127.0.0.1:${port}` };
}

/** A request whose headers go out at once; the body (if any) only when `send` is called. */
function openRequest(port: number, path: string, headers: http.OutgoingHttpHeaders) {
  const req = http.request({ port, host: '127.0.0.1', method: 'POST', path, headers });
  const answer = new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer; continued: boolean }>((resolve, reject) => {
    let continued = false;
    req.on('continue', () => (continued = true));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), continued }));
    });
    req.on('error', reject);
  });
  req.flushHeaders();
  return { req, answer };
}

describe('93 examples/score-server', () => {
  const N = 300;
  const C = 10;
  const rand = rng(93);
  const logits = randomLogits(rand, N * C, 3);
  const labels = Int32Array.from({ length: N }, () => Math.floor(rand() * C));
  const expected = new cbloss.CrossEntropyLoss({ reduction: 'none' }).forward(logits, labels) as Float32Array;
  const mean = expected.reduce((s, v) => s + v, 0) / N;
  const good = body(logits, labels);
  const started: http.Server[] = [];
  const open = async (options: ScoreServerOptions) => {
    const s = await start(options);
    started.push(s.server);
    return s;
  };
  let base = '';
  let port = 0;

  before(async () => {
    // (syncMaxElements 0: every batch through forwardAsync, as large ones are; the others score these
    // small batches with the sync call)
    ({ base, port } = await open({ mode: 'cbloss', maxBytes: 64 * 1024, syncMaxElements: 0 }));
  });
  after(async () => {
    for (const server of started) await new Promise((resolve) => server.close(resolve));
  });

  it('scores a batch as JSON by default: the mean and per-sample losses of CrossEntropyLoss, async, sync or in JavaScript', async () => {
    const sync = await open({ mode: 'cbloss' });
    const js = await open({ mode: 'js' });
    for (const url of [base, sync.base, js.base]) {
      const r = await fetch(`${url}/score?classes=${C}`, { method: 'POST', body: good });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-type'), 'application/json');
      const json = (await r.json()) as { rows: number; classes: number; loss: number; perSample: number[] };
      assert.equal(json.rows, N);
      assert.equal(json.classes, C);
      for (let n = 0; n < N; n++) assert.ok(Math.abs(json.perSample[n] - expected[n]) <= 1e-5 * Math.max(1, expected[n]), `row ${n}`);
      assert.ok(Math.abs(json.loss - mean) <= 1e-5 * mean);
    }
  });

  it('answers float32 bytes or a .npy file when Accept asks, with the rows, classes and mean in headers', async () => {
    const binary = await fetch(`${base}/score?classes=${C}`, { method: 'POST', body: good, headers: { accept: 'application/octet-stream' } });
    assert.equal(binary.status, 200);
    assert.equal(binary.headers.get('content-type'), 'application/octet-stream');
    assert.equal(binary.headers.get('x-rows'), String(N));
    assert.equal(binary.headers.get('x-classes'), String(C));
    assert.ok(Math.abs(Number(binary.headers.get('x-loss-mean')) - mean) <= 1e-6 * mean);
    const bytes = Buffer.from(await binary.arrayBuffer());
    assert.deepEqual(bytes, bytesOf(expected), 'the async call\'s float32 losses, bit for bit');

    const asNpy = await fetch(`${base}/score?classes=${C}`, { method: 'POST', body: good, headers: { accept: 'application/x-npy;q=1, application/json;q=0.5' } });
    assert.equal(asNpy.status, 200);
    assert.equal(asNpy.headers.get('content-type'), 'application/x-npy');
    const file = Buffer.from(await asNpy.arrayBuffer());
    assert.deepEqual(file, npy('<f4', [N], expected), 'a .npy file of shape (N,), its data at byte 64');
  });

  it('answers JSON only up to jsonMaxRows rows: float32 bytes beyond by default, 406 when only JSON is accepted', async () => {
    const small = await open({ jsonMaxRows: N - 1 });
    const r = await fetch(`${small.base}/score?classes=${C}`, { method: 'POST', body: good });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/octet-stream');
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), bytesOf(expected));
    const refused = await fetch(`${small.base}/score?classes=${C}`, { method: 'POST', body: good, headers: { accept: 'application/json' } });
    assert.equal(refused.status, 406);
    assert.deepEqual(await refused.json(), {
      error: `${N} rows are over the JSON limit of ${N - 1}: accept application/octet-stream or application/x-npy (float32 losses)`,
    });
    const none = await fetch(`${base}/score?classes=${C}`, { method: 'POST', body: good, headers: { accept: 'text/html' } });
    assert.equal(none.status, 406);
  });

  it('reads a body of two .npy arrays: float32 logits (N, C), int32 or int64 labels (N,)', async () => {
    const labels64 = BigInt64Array.from(labels, (v) => BigInt(v));
    for (const labelsFile of [npy('<i4', [N], labels), npy('<i8', [N], labels64)]) {
      for (const query of ['', `?classes=${C}`]) {
        const r = await fetch(`${base}/score${query}`, {
          method: 'POST',
          body: Buffer.concat([npy('<f4', [N, C], logits), labelsFile]),
          headers: { 'content-type': 'application/x-npy', accept: 'application/octet-stream' },
        });
        assert.equal(r.status, 200);
        assert.equal(r.headers.get('x-classes'), String(C));
        assert.deepEqual(Buffer.from(await r.arrayBuffer()), bytesOf(expected));
      }
    }
    const post = async (payload: Buffer, query = '') => {
      const r = await fetch(`${base}/score${query}`, { method: 'POST', body: payload, headers: { 'content-type': 'application/x-npy' } });
      return [r.status, ((await r.json()) as { error?: string }).error] as const;
    };
    const x = npy('<f4', [N, C], logits);
    const y = npy('<i4', [N], labels);
    assert.deepEqual(await post(Buffer.concat([npy('<f8', [N, C], Float64Array.from(logits)), y])), [400, "the logits are '<f8': send little-endian float32 ('<f4')"]);
    assert.deepEqual(await post(Buffer.concat([x, npy('<i4', [N - 1], labels.subarray(1))])), [400, `the labels have shape (${N - 1}): send (${N},), one a row of the logits`]);
    assert.deepEqual(await post(Buffer.concat([x, y]), '?classes=11'), [400, 'the logits have 10 classes, but the query says classes=11']);
    assert.deepEqual(await post(Buffer.concat([x, y.subarray(0, y.length - 4)])), [400, `the body has ${x.length + y.length - 4} bytes, but its two arrays end at byte ${x.length + y.length}`]);
    assert.deepEqual(await post(good), [400, 'the logits (at byte 0 of the body): not a .npy array (no \\x93NUMPY magic)']);
    const wrong64 = BigInt64Array.from(labels, (v) => BigInt(v));
    wrong64[3] = 2n ** 40n;
    assert.deepEqual(await post(Buffer.concat([x, npy('<i8', [N], wrong64)])), [400, 'target[3] does not fit in int32 (out of range [0, 10))']);
  });

  it('answers 413 from the Content-Length, before the body is read (or sent, with Expect: 100-continue)', async () => {
    // the headers alone: the answer comes though no byte of the body is sent
    const early = openRequest(port, `/score?classes=${C}`, { 'content-length': 1 << 30 });
    const a = await early.answer;
    early.req.destroy();
    assert.equal(a.status, 413);
    assert.equal(a.headers.connection, 'close');
    assert.deepEqual(JSON.parse(a.body.toString()), { error: `the body has ${1 << 30} bytes, over the limit of 65536` });
    // Expect: 100-continue: refused without a 100 Continue; a body in bounds gets one, then its answer
    const refused = openRequest(port, `/score?classes=${C}`, { 'content-length': 1 << 30, expect: '100-continue' });
    const b = await refused.answer;
    refused.req.destroy();
    assert.deepEqual([b.status, b.continued], [413, false]);
    const accepted = openRequest(port, `/score?classes=${C}`, { 'content-length': good.length, expect: '100-continue', accept: 'application/octet-stream' });
    accepted.req.on('continue', () => accepted.req.end(good));
    const c = await accepted.answer;
    assert.deepEqual([c.status, c.continued], [200, true]);
    assert.deepEqual(c.body, bytesOf(expected));
  });

  it('answers 503 with Retry-After beyond the requests or bytes in flight, and serves again once they are done', async () => {
    for (const limits of [{ maxInFlight: 1 }, { maxInFlightBytes: good.length + 100 }]) {
      const busy = await open(limits);
      // a first request holds its slot while its body is half sent
      const first = openRequest(busy.port, `/score?classes=${C}`, { 'content-length': good.length, accept: 'application/octet-stream' });
      first.req.write(good.subarray(0, 2000));
      for (let i = 0; i < 100; i++) {
        const inFlight = ((await (await fetch(`${busy.base}/stats`)).json()) as { inFlight: number }).inFlight;
        if (inFlight === 1) break;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const second = await fetch(`${busy.base}/score?classes=${C}`, { method: 'POST', body: good });
      assert.equal(second.status, 503, JSON.stringify(limits));
      assert.equal(second.headers.get('retry-after'), '1');
      assert.match(((await second.json()) as { error: string }).error, /^busy: 1 requests \(0\.0 MiB\) in flight, the limit is .*; retry later$/);
      first.req.end(good.subarray(2000));
      const a = await first.answer;
      assert.equal(a.status, 200);
      assert.deepEqual(a.body, bytesOf(expected));
      const third = await fetch(`${busy.base}/score?classes=${C}`, { method: 'POST', body: good });
      assert.equal(third.status, 200, 'serves again');
      const stats = (await (await fetch(`${busy.base}/stats`)).json()) as { refused: number; inFlight: number };
      assert.deepEqual([stats.refused, stats.inFlight], [1, 0]);
    }
  });

  it('answers bad requests with 4xx and a message, drops truncated bodies, and keeps serving', async () => {
    const post = async (path: string, payload: Uint8Array, headers: Record<string, string> = {}) => {
      const r = await fetch(`${base}${path}`, { method: 'POST', body: payload, headers });
      return [r.status, ((await r.json()) as { error?: string }).error] as const;
    };
    const before = (await (await fetch(`${base}/stats`)).json()) as { errors: number };
    const wrongLabel = Int32Array.from(labels);
    wrongLabel[7] = C;
    assert.deepEqual(await post(`/score?classes=${C}`, good.subarray(0, 1001)), [400, `a body of 1001 bytes is not N rows of ${C} float32 logits and one int32 label (44 bytes a row)`]);
    assert.deepEqual(await post('/score?classes=ten', good), [400, "classes must be an integer in [1, 1048576], not 'ten'"]);
    assert.deepEqual(await post(`/score?classes=${C}&loss=hinge`, good), [400, "loss must be ce or focal, not 'hinge'"]);
    assert.deepEqual(await post(`/score?classes=${C}`, body(logits, wrongLabel)), [400, `target[7] = ${C} is out of range [0, ${C})`]);
    assert.deepEqual(await post(`/score?classes=${C}`, new Uint8Array(65 * 1024)), [413, 'the body has 66560 bytes, over the limit of 65536']);
    assert.deepEqual(await post(`/score?classes=${C}`, good, { 'content-type': 'text/plain' }), [
      415,
      "a body of type 'text/plain' is not understood: send application/octet-stream (float32 logits then int32 labels) or application/x-npy (logits.npy then labels.npy)",
    ]);
    // a body that stops short of its Content-Length: dropped when the client goes, its memory given back
    await new Promise<void>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.write(`POST /score?classes=${C} HTTP/1.1\r\nHost: x\r\nContent-Length: 13200\r\n\r\n`);
        socket.end(Buffer.alloc(100), () => setTimeout(resolve, 20));
      });
    });
    // no Content-Length (a chunked body): 411
    const chunked = openRequest(port, `/score?classes=${C}`, { 'transfer-encoding': 'chunked' });
    chunked.req.end(good);
    const c = await chunked.answer;
    assert.deepEqual([c.status, JSON.parse(c.body.toString()).error], [411, 'send the body with a Content-Length (it is read into memory of that size)']);
    const r = await fetch(`${base}/score?classes=${C}`, { method: 'POST', body: good });
    assert.equal(r.status, 200, 'still serving');
    const stats = (await (await fetch(`${base}/stats`)).json()) as { errors: number; inFlight: number };
    assert.equal(stats.errors - before.errors, 8, 'six answered errors, the truncated body and the chunked one');
    assert.equal(stats.inFlight, 0, 'nothing left in flight');
  });
});
