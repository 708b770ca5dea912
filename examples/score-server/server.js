// A batch-scoring service on node:http: POST a batch, get its cross-entropy (mean and per sample) as
// JSON. The loss runs through the async API, off the event loop, so the service keeps answering while
// a large batch is scored.
//
//   node examples/score-server/server.js [--port 8080] [--mode cbloss|js] [--max-mb 256]
//
//   POST /score?classes=C[&loss=ce|focal&gamma=G]
//     body: N*C float32 logits (row-major) then N int32 labels, little-endian (N from the body's length)
//     200 {"rows":N,"classes":C,"loss":mean,"perSample":[...]}
//     400 {"error":"..."}  malformed request (bad query, a body that is not N rows, a label out of range)
//     413 {"error":"..."}  a body over --max-mb
//   GET /stats   {"requests", "errors", "eventLoopDelayMs": {"p50","p99","max"}, "rssMB"}: the event loop's
//                lateness since the last /stats (a 1 ms timer's ticks, less the 1 ms), and the RSS
//
// --mode js computes the same loss in a plain JavaScript loop on the event loop (the baseline of
// bench/score-server.js). The body is read straight into a SharedArrayBuffer: an async call uses such
// arrays in place, where an ordinary ArrayBuffer would be copied first (README, "Async").
'use strict';
const http = require('node:http');
const { monitorEventLoopDelay } = require('node:perf_hooks');
const { parseArgs } = require('node:util');
const cbloss = require('cbloss');

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function readQuery(url) {
  const q = url.searchParams;
  const classes = Number(q.get('classes'));
  if (!Number.isInteger(classes) || classes < 1 || classes > 1 << 20) {
    throw new HttpError(400, `classes must be an integer in [1, 1048576], not '${q.get('classes')}'`);
  }
  const loss = q.get('loss') ?? 'ce';
  if (loss !== 'ce' && loss !== 'focal') throw new HttpError(400, `loss must be ce or focal, not '${loss}'`);
  const gamma = q.has('gamma') ? Number(q.get('gamma')) : 2;
  if (!(gamma >= 0 && gamma <= 100)) throw new HttpError(400, `gamma must be a number in [0, 100], not '${q.get('gamma')}'`);
  return { classes, loss, gamma };
}

// The request body, into one SharedArrayBuffer (sized from Content-Length when it is given).
function readBody(req, maxBytes) {
  return new Promise((resolve, reject) => {
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > maxBytes) {
      reject(new HttpError(413, `the body has ${declared} bytes, over the limit of ${maxBytes}`));
      return;
    }
    let body = new Uint8Array(new SharedArrayBuffer(declared !== undefined ? Number(declared) : 1 << 16));
    let length = 0;
    req.on('data', (chunk) => {
      if (length + chunk.length > maxBytes) {
        reject(new HttpError(413, `the body is over the limit of ${maxBytes} bytes`));
        req.destroy();
        return;
      }
      if (length + chunk.length > body.length) {
        const grown = new Uint8Array(new SharedArrayBuffer(Math.max(2 * body.length, length + chunk.length)));
        grown.set(body.subarray(0, length));
        body = grown;
      }
      body.set(chunk, length);
      length += chunk.length;
    });
    req.on('end', () => resolve(body.subarray(0, length)));
    req.on('error', reject);
  });
}

// The logits and labels of a body of N*C float32 values and N int32 labels.
function splitBatch(body, classes) {
  const rowBytes = 4 * classes + 4;
  if (body.length === 0 || body.length % rowBytes !== 0) {
    throw new HttpError(400, `a body of ${body.length} bytes is not N rows of ${classes} float32 logits and one int32 label (${rowBytes} bytes a row)`);
  }
  const rows = body.length / rowBytes;
  // (a body grown while read may start at an offset: float32 views need it 4-byte aligned — it is, as
  // every SharedArrayBuffer here starts the body at 0)
  const logits = new Float32Array(body.buffer, body.byteOffset, rows * classes);
  const labels = new Int32Array(body.buffer, body.byteOffset + 4 * rows * classes, rows);
  return { rows, logits, labels };
}

// The same per-sample losses in a plain JavaScript loop, on the event loop.
function perSampleInJs(logits, labels, classes, loss, gamma) {
  const rows = labels.length;
  const out = new Float32Array(rows);
  for (let n = 0; n < rows; n++) {
    const y = labels[n];
    if (!(y >= 0 && y < classes)) throw new HttpError(400, `target[${n}] = ${y} is out of range [0, ${classes})`);
    const o = n * classes;
    let max = -Infinity;
    for (let c = 0; c < classes; c++) if (logits[o + c] > max) max = logits[o + c];
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(logits[o + c] - max);
    const logp = logits[o + y] - max - Math.log(sum);
    out[n] = loss === 'focal' ? -((1 - Math.exp(logp)) ** gamma) * logp : -logp;
  }
  return out;
}

function createScoreServer({ mode = 'cbloss', maxBytes = 256 * 2 ** 20 } = {}) {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const stats = { requests: 0, errors: 0 };
  const losses = new Map(); // one loss object per (loss, gamma, classes)
  const lossFor = ({ classes, loss, gamma }) => {
    const key = `${loss}/${gamma}/${classes}`;
    if (!losses.has(key)) {
      losses.set(
        key,
        loss === 'ce' ? new cbloss.CrossEntropyLoss({ reduction: 'none' }) : new cbloss.FocalLoss({ numClasses: classes, gamma, reduction: 'none' }),
      );
    }
    return losses.get(key);
  };
  const send = (res, status, value) => {
    const text = JSON.stringify(value);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    try {
      if (url.pathname === '/stats' && req.method === 'GET') {
        const ms = (ns) => Number(Math.max(0, ns / 1e6 - 1).toFixed(3));
        send(res, 200, {
          ...stats,
          eventLoopDelayMs: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max) },
          rssMB: Number((process.memoryUsage().rss / 2 ** 20).toFixed(1)),
        });
        delay.reset();
        return;
      }
      if (url.pathname !== '/score') throw new HttpError(404, `no such path: ${url.pathname} (POST /score, GET /stats)`);
      if (req.method !== 'POST') throw new HttpError(405, `${req.method} /score: use POST`);
      stats.requests++;
      const query = readQuery(url);
      const { rows, logits, labels } = splitBatch(await readBody(req, maxBytes), query.classes);
      let perSample;
      if (mode === 'js') perSample = perSampleInJs(logits, labels, query.classes, query.loss, query.gamma);
      else {
        try {
          perSample = await lossFor(query).forwardAsync(logits, labels);
        } catch (e) {
          throw e instanceof RangeError || e instanceof TypeError ? new HttpError(400, e.message) : e;
        }
      }
      let sum = 0;
      for (const v of perSample) sum += v;
      send(res, 200, { rows, classes: query.classes, loss: sum / rows, perSample: Array.from(perSample) });
    } catch (e) {
      stats.errors++;
      const status = e instanceof HttpError ? e.status : 500;
      if (status === 413) res.setHeader('connection', 'close');
      if (!res.headersSent && !res.destroyed) send(res, status, { error: e.message });
    }
  });
  server.on('close', () => delay.disable());
  return server;
}

module.exports = { createScoreServer };

if (require.main === module) {
  const { values } = parseArgs({
    options: { port: { type: 'string', default: '8080' }, mode: { type: 'string', default: 'cbloss' }, 'max-mb': { type: 'string', default: '256' } },
  });
  if (values.mode !== 'cbloss' && values.mode !== 'js') throw new Error(`--mode must be cbloss or js, not '${values.mode}'`);
  const server = createScoreServer({ mode: values.mode, maxBytes: Number(values['max-mb']) * 2 ** 20 });
  server.listen(Number(values.port), '127.0.0.1', () => {
    const { port } = server.address();
    console.log(`score server (${values.mode}) on http://127.0.0.1:${port}: POST /score?classes=C, GET /stats`);
  });
}
