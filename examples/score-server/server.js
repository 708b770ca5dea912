// A batch-scoring service on node:http: POST a batch, get its cross-entropy (or focal) loss per sample
// and its mean. Built so that a batch of any size costs the event loop only a few milliseconds:
// - the body is streamed straight into the memory the loss reads (a pooled SharedArrayBuffer, or a
//   pinned array where CUDA is usable), sized from Content-Length before the first byte is read;
// - bodies are read a few at a time, each a bounded number of bytes an event-loop turn;
// - the loss runs through the async API on a worker thread, which uses that memory in place (a small
//   batch, whose loss takes less than the trip to a worker, is scored on the spot);
// - the per-sample losses go out as the bytes the call wrote (float32), not as JSON text;
// - a bounded number of requests (and bytes) are in flight; beyond that the answer is 503 with
//   Retry-After, not a queue that grows with the load.
//
//   node examples/score-server/server.js [--port 8080] [--mode cbloss|js] [--max-mb 256]
//                                        [--max-in-flight 64] [--max-in-flight-mb 2048] [--json-max-rows 8192]
//
//   POST /score?classes=C[&loss=ce|focal&gamma=G]
//     body (Content-Length required), by Content-Type:
//       application/octet-stream (or none): N*C float32 logits (row-major) then N int32 labels,
//         little-endian (N from the length)
//       application/x-npy: two .npy files one after the other: float32 logits of shape (N, C), then
//         int32 or int64 labels of shape (N,) (`classes` may then be left out of the query)
//     answer, by Accept:
//       application/octet-stream: the N per-sample losses as little-endian float32
//       application/x-npy: the same as a .npy file of shape (N,)
//       application/json: {"rows":N,"classes":C,"loss":mean,"perSample":[...]} — up to --json-max-rows
//         rows (longer JSON would hold the event loop: 16–27 ms for 65536 losses)
//       none or */*: JSON up to --json-max-rows rows, float32 bytes beyond
//     binary answers carry the row count, classes and mean in the headers X-Rows, X-Classes, X-Loss-Mean
//     errors: {"error":"..."} with 400 (malformed request or body, a label out of range), 406 (no answer
//       type it can send), 411 (no Content-Length), 413 (a body over --max-mb, answered before it is
//       read), 415 (another Content-Type), 503 + Retry-After (over --max-in-flight requests or
//       --max-in-flight-mb bytes in flight)
//   GET /stats   {"requests", "errors", "refused", "inFlight", "eventLoopDelayMs": {"p50","p99","max"},
//                "rssMB"}: the event loop's lateness since the last /stats (a 1 ms timer's ticks, less the
//                1 ms), and the RSS
//
// A client that sends `Expect: 100-continue` gets its 413 or 503 before it sends the body at all.
// --mode js computes the same loss in a plain JavaScript loop on the event loop (the baseline of
// bench/score-server.js).
'use strict';
const http = require('node:http');
const { monitorEventLoopDelay } = require('node:perf_hooks');
const { parseArgs } = require('node:util');
const cbloss = require('cbloss');

const MIB = 2 ** 20;

class HttpError extends Error {
  constructor(status, message, headers = {}) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}

function readQuery(url, classesRequired) {
  const q = url.searchParams;
  let classes;
  if (q.has('classes') || classesRequired) {
    classes = Number(q.get('classes'));
    if (!Number.isInteger(classes) || classes < 1 || classes > 1 << 20) {
      throw new HttpError(400, `classes must be an integer in [1, 1048576], not '${q.get('classes')}'`);
    }
  }
  const loss = q.get('loss') ?? 'ce';
  if (loss !== 'ce' && loss !== 'focal') throw new HttpError(400, `loss must be ce or focal, not '${loss}'`);
  const gamma = q.has('gamma') ? Number(q.get('gamma')) : 2;
  if (!(gamma >= 0 && gamma <= 100)) throw new HttpError(400, `gamma must be a number in [0, 100], not '${q.get('gamma')}'`);
  return { classes, loss, gamma };
}

const RAW = 'application/octet-stream';
const NPY = 'application/x-npy';
const JSON_TYPE = 'application/json';

// The body's format from its Content-Type: 'raw' or 'npy'.
function bodyFormat(contentType) {
  const type = (contentType ?? '').split(';')[0].trim().toLowerCase();
  if (type === '' || type === RAW) return 'raw';
  if (type === NPY) return 'npy';
  throw new HttpError(415, `a body of type '${type}' is not understood: send ${RAW} (float32 logits then int32 labels) or ${NPY} (logits.npy then labels.npy)`);
}

// The answer's type from Accept: the acceptable type of highest q (the most specific media range
// that matches a type gives its q); on a tie, JSON for small batches and float32 bytes for large ones.
// JSON is not offered beyond jsonMaxRows rows.
function answerType(accept, rows, jsonMaxRows) {
  const ranges = (accept || '*/*').split(',').map((part) => {
    const [range, ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    return { range, q: q === undefined ? 1 : Number(q.slice(2)) };
  });
  const qualityOf = (type) => {
    let best = { specificity: -1, q: 0 };
    for (const { range, q } of ranges) {
      const specificity = range === type ? 2 : range === 'application/*' ? 1 : range === '*/*' ? 0 : -1;
      if (specificity > best.specificity) best = { specificity, q: Number.isFinite(q) ? q : 0 };
    }
    return best.q;
  };
  const preference = rows <= jsonMaxRows ? [JSON_TYPE, RAW, NPY] : [RAW, NPY, JSON_TYPE];
  let chosen;
  let chosenQ = 0;
  for (const type of preference) {
    const q = qualityOf(type);
    if (type === JSON_TYPE && rows > jsonMaxRows) continue;
    if (q > chosenQ) [chosen, chosenQ] = [type, q];
  }
  if (chosen === undefined) {
    const jsonOnly = qualityOf(JSON_TYPE) > 0;
    throw new HttpError(
      406,
      jsonOnly
        ? `${rows} rows are over the JSON limit of ${jsonMaxRows}: accept ${RAW} or ${NPY} (float32 losses)`
        : `cannot answer as '${accept}': accept ${RAW}, ${NPY} or ${JSON_TYPE}`,
    );
  }
  return chosen;
}

// The body's declared length: required (the memory it goes into is allocated before it is read).
function declaredLength(req, maxBytes) {
  const declared = req.headers['content-length'];
  if (declared === undefined) throw new HttpError(411, 'send the body with a Content-Length (it is read into memory of that size)');
  const length = Number(declared);
  if (length > maxBytes) throw new HttpError(413, `the body has ${declared} bytes, over the limit of ${maxBytes}`);
  if (length === 0) throw new HttpError(400, 'the body is empty');
  return length;
}

// Bodies' memory, reused from request to request: a fresh 26 MB buffer a request costs page faults on
// first touch and the collections that dead external memory sets off. Buffers come in powers of two
// (a body of 26 MB takes a 32 MB one), on a SharedArrayBuffer — or in pinned memory where CUDA is
// usable, which a GPU reads without staging copies; either is used in place by an async call. Free
// buffers are kept up to `retainBytes` and dropped after `idleMs` without a request.
class BodyBuffers {
  constructor({ retainBytes, idleMs = 5000 }) {
    this.retainBytes = retainBytes;
    this.idleMs = idleMs;
    this.free = new Map(); // capacity -> [ArrayBuffer | SharedArrayBuffer]
    this.freeBytes = 0;
    this.pinned = cbloss.backendInfo().available.cuda;
    this.timer = undefined;
  }

  /** A Buffer of exactly byteLength bytes, at offset 0 of a buffer of its own. */
  take(byteLength) {
    const capacity = 2 ** Math.max(12, Math.ceil(Math.log2(byteLength)));
    let buffer = this.free.get(capacity)?.pop();
    if (buffer !== undefined) this.freeBytes -= capacity;
    else buffer = this.pinned ? cbloss.pinnedArray(capacity / 4).buffer : new SharedArrayBuffer(capacity);
    return Buffer.from(buffer, 0, byteLength);
  }

  /** Gives a body's memory back (once no call reads it any more). */
  give(body) {
    const buffer = body.buffer;
    const list = this.free.get(buffer.byteLength) ?? [];
    if (this.freeBytes + buffer.byteLength > this.retainBytes) return; // (dropped: collected)
    list.push(buffer);
    this.free.set(buffer.byteLength, list);
    this.freeBytes += buffer.byteLength;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.clear(), this.idleMs).unref();
  }

  clear() {
    this.free.clear();
    this.freeBytes = 0;
  }
}

// Bodies read one after another, a few at a time: the rest wait, unread, in arrival order (their
// sockets not read, so the clients' TCP windows hold them back; admission bounds how many wait). Read
// all at once, every body advances slowly and they all end late together — at concurrency 64 of
// 26 MB bodies almost none ended within 6 s — and each holds its memory meanwhile.
class ReadTurns {
  constructor(limit) {
    this.limit = limit;
    this.reading = 0;
    this.waiting = []; // [{ grant, req, onClose }]
  }

  /** Resolves when `req` may read its body; rejects if its client goes first. */
  enter(req) {
    if (this.reading < this.limit) {
      this.reading++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const entry = {
        req,
        grant: () => {
          req.off('close', entry.onClose);
          resolve();
        },
        onClose: () => {
          this.waiting.splice(this.waiting.indexOf(entry), 1);
          reject(new HttpError(400, 'the client went before its body was read'));
        },
      };
      req.once('close', entry.onClose);
      this.waiting.push(entry);
    });
  }

  /** Once a body is read (or failed): the next waiting one may read. */
  leave() {
    const next = this.waiting.shift();
    if (next !== undefined) next.grant();
    else this.reading--;
  }
}

// Reads the request body into `body` (exactly its length), chunk by chunk as it arrives: each chunk is
// copied once, into the memory the loss will read. Rejects when the client goes before the end.
//
// Two details keep the event loop free while many large bodies arrive at once:
// - Each body reads at most `turnBytes` an event-loop turn, then pauses until the next turn (libuv
//   otherwise reads up to 32 chunks of 64 KiB from each socket a turn: an echo server reading 16 or
//   64 bodies of 26 MB at once was late by 30–100 ms at its 99th percentile).
// - A chunk is copied with Buffer#fill (given a chunk exactly the length of the range, it is one
//   memcpy), not TypedArray#set: V8 copies into shared memory with relaxed atomics, byte by byte when
//   source and target are not equally aligned — and the chunks after the headers are not. That made
//   the copy the server's largest cost (65536x100 at concurrency 16: ~30 against ~42 req/s).
function readInto(req, body, turnBytes) {
  return new Promise((resolve, reject) => {
    let length = 0;
    let readThisTurn = 0;
    const onData = (chunk) => {
      if (length + chunk.length > body.length) {
        // (node:http stops a body at its Content-Length: this cannot happen, but never write past it)
        cleanup();
        reject(new HttpError(400, `the body is longer than its Content-Length of ${body.length}`));
        req.destroy();
        return;
      }
      if (chunk.length === 0) return;
      body.fill(chunk, length, length + chunk.length);
      length += chunk.length;
      readThisTurn += chunk.length;
      if (readThisTurn >= turnBytes && length < body.length) {
        req.pause();
        setImmediate(() => {
          readThisTurn = 0;
          req.resume();
        });
      }
    };
    const onEnd = () => {
      cleanup();
      if (length === body.length) resolve(body);
      else reject(new HttpError(400, `the body ended after ${length} of its ${body.length} bytes`));
    };
    const onClose = () => {
      cleanup();
      reject(new HttpError(400, `the client went after ${length} of the body's ${body.length} bytes`));
    };
    const onError = (e) => {
      cleanup();
      reject(new HttpError(400, `the body could not be read: ${e.message}`));
    };
    const cleanup = () => {
      req.off('data', onData).off('end', onEnd).off('close', onClose).off('error', onError);
    };
    req.on('data', onData).on('end', onEnd).on('close', onClose).on('error', onError);
  });
}

// The logits and labels of a raw body: N*C float32 values then N int32 labels (views, not copies).
function rawRows(byteLength, classes) {
  const rowBytes = 4 * classes + 4;
  if (byteLength % rowBytes !== 0) {
    throw new HttpError(400, `a body of ${byteLength} bytes is not N rows of ${classes} float32 logits and one int32 label (${rowBytes} bytes a row)`);
  }
  return byteLength / rowBytes;
}

function splitRaw(body, classes) {
  const rows = body.length / (4 * classes + 4);
  return {
    rows,
    classes,
    logits: new Float32Array(body.buffer, body.byteOffset, rows * classes),
    labels: new Int32Array(body.buffer, body.byteOffset + 4 * rows * classes, rows),
  };
}

// One .npy array's header at `offset` of the body: { descr, shape, dataOffset }.
function npyHeader(body, offset, what) {
  const bad = (why) => new HttpError(400, `${what} (at byte ${offset} of the body): ${why}`);
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
  if (body.length < offset + 10 || magic.some((b, i) => body[offset + i] !== b)) throw bad('not a .npy array (no \\x93NUMPY magic)');
  const major = body[offset + 6];
  if (major < 1 || major > 3) throw bad(`.npy format version ${major} is not 1, 2 or 3`);
  const view = new DataView(body.buffer, body.byteOffset + offset);
  const lengthBytes = major === 1 ? 2 : 4;
  if (body.length < offset + 8 + lengthBytes) throw bad('truncated header');
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = offset + 8 + lengthBytes;
  if (body.length < start + headerLength) throw bad('truncated header');
  const header = Buffer.from(body.buffer, body.byteOffset + start, headerLength).toString('latin1');
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortranOrder = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortranOrder === undefined || shapeText === undefined) throw bad('a header without descr, fortran_order or shape');
  if (fortranOrder === 'True') throw bad('Fortran order: send a C-order (row-major) array');
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw bad(`shape (${shapeText}) is not a list of sizes`);
  return { descr, shape, dataOffset: start + headerLength };
}

// The logits and labels of a body of two .npy arrays: views of the body for float32 logits and int32
// labels (the data of a .npy array starts at a multiple of 16 or 64 bytes), int64 labels converted to
// int32 (N values).
function splitNpy(body, classesAsked) {
  const x = npyHeader(body, 0, 'the logits');
  if (x.descr !== '<f4') throw new HttpError(400, `the logits are '${x.descr}': send little-endian float32 ('<f4')`);
  if (x.shape.length !== 2 || x.shape[1] < 1) throw new HttpError(400, `the logits have shape (${x.shape.join(', ')}): send (N, C)`);
  const [rows, classes] = x.shape;
  if (classesAsked !== undefined && classesAsked !== classes) {
    throw new HttpError(400, `the logits have ${classes} classes, but the query says classes=${classesAsked}`);
  }
  if (classes > 1 << 20) throw new HttpError(400, `the logits have ${classes} classes, over 1048576`);
  const labelsAt = x.dataOffset + 4 * rows * classes;
  if (labelsAt > body.length) throw new HttpError(400, `the logits' data is truncated: shape (${rows}, ${classes}) needs ${labelsAt - x.dataOffset} bytes`);
  const y = npyHeader(body, labelsAt, 'the labels');
  if (y.shape.length !== 1 || y.shape[0] !== rows) throw new HttpError(400, `the labels have shape (${y.shape.join(', ')}): send (${rows},), one a row of the logits`);
  const itemBytes = y.descr === '<i4' ? 4 : y.descr === '<i8' ? 8 : 0;
  if (itemBytes === 0) throw new HttpError(400, `the labels are '${y.descr}': send little-endian int32 ('<i4') or int64 ('<i8')`);
  const end = y.dataOffset + itemBytes * rows;
  if (end !== body.length) throw new HttpError(400, `the body has ${body.length} bytes, but its two arrays end at byte ${end}`);
  if ((body.byteOffset + x.dataOffset) % 4 !== 0 || (body.byteOffset + y.dataOffset) % 4 !== 0) {
    throw new HttpError(400, 'an array\'s data does not start at a multiple of 4 bytes (numpy pads its headers to 16 or 64)');
  }
  const logits = new Float32Array(body.buffer, body.byteOffset + x.dataOffset, rows * classes);
  const words = new Int32Array(body.buffer, body.byteOffset + y.dataOffset, (itemBytes / 4) * rows);
  let labels = words;
  if (itemBytes === 8) {
    labels = new Int32Array(rows);
    for (let n = 0; n < rows; n++) {
      const low = words[2 * n];
      const high = words[2 * n + 1];
      if (high !== low >> 31) throw new HttpError(400, `target[${n}] does not fit in int32 (out of range [0, ${classes}))`);
      labels[n] = low;
    }
  }
  return { rows, classes, logits, labels };
}

// The .npy header of a float32 vector of `rows` values (format 1.0, the data at byte 64 or beyond).
function npyVectorHeader(rows) {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows},), }`;
  const padded = Math.ceil((10 + dict.length + 1) / 64) * 64;
  const header = Buffer.alloc(padded, 0x20);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(header, 0);
  header.writeUInt16LE(padded - 10, 8);
  header.write(dict, 10, 'latin1');
  header[padded - 1] = 0x0a;
  return header;
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

function createScoreServer({
  mode = 'cbloss',
  maxBytes = 256 * MIB,
  maxInFlight = 64,
  maxInFlightBytes = 2048 * MIB,
  jsonMaxRows = 8192,
  maxReading = 4,
  syncMaxElements = 262144,
  turnBytes = 1024 * 1024,
} = {}) {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const stats = { requests: 0, errors: 0, refused: 0 };
  const inFlight = { requests: 0, bytes: 0 };
  const bodies = new BodyBuffers({ retainBytes: maxInFlightBytes });
  const readTurns = new ReadTurns(maxReading);
  const losses = new Map(); // one loss object per (loss, gamma, classes)
  const lossFor = ({ loss, gamma }, classes) => {
    const key = `${loss}/${gamma}/${classes}`;
    if (!losses.has(key)) {
      losses.set(
        key,
        loss === 'ce' ? new cbloss.CrossEntropyLoss({ reduction: 'none' }) : new cbloss.FocalLoss({ numClasses: classes, gamma, reduction: 'none' }),
      );
    }
    return losses.get(key);
  };
  const sendJson = (res, status, value, headers = {}) => {
    const text = JSON.stringify(value);
    res.writeHead(status, { ...headers, 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  // The answer, written from the call's output: its bytes as they are (float32, little-endian on every
  // platform Node runs on), or JSON for small batches.
  const sendLosses = (res, type, { rows, classes }, perSample) => {
    let sum = 0;
    for (let n = 0; n < rows; n++) sum += perSample[n];
    const mean = sum / rows;
    if (type === JSON_TYPE) {
      sendJson(res, 200, { rows, classes, loss: mean, perSample: Array.from(perSample) });
      return;
    }
    const bytes = Buffer.from(perSample.buffer, perSample.byteOffset, perSample.byteLength);
    const header = type === NPY ? npyVectorHeader(rows) : null;
    res.writeHead(200, {
      'content-type': type,
      'content-length': bytes.length + (header?.length ?? 0),
      'x-rows': rows,
      'x-classes': classes,
      'x-loss-mean': String(mean),
    });
    if (header !== null) res.write(header);
    res.end(bytes);
  };

  // Scores one POST /score. Everything that can be refused from the headers is refused before the body
  // is read (and, for a client that asked with Expect: 100-continue, before it is sent).
  const score = async (req, res, url, expectsContinue) => {
    const format = bodyFormat(req.headers['content-type']);
    const query = readQuery(url, format === 'raw');
    const byteLength = declaredLength(req, maxBytes);
    let type;
    if (format === 'raw') type = answerType(req.headers.accept, rawRows(byteLength, query.classes), jsonMaxRows);
    if (inFlight.requests + 1 > maxInFlight || inFlight.bytes + byteLength > maxInFlightBytes) {
      stats.refused++;
      throw new HttpError(
        503,
        `busy: ${inFlight.requests} requests (${(inFlight.bytes / MIB).toFixed(1)} MiB) in flight, the limit is ${maxInFlight} (${maxInFlightBytes / MIB} MiB); retry later`,
        { 'retry-after': '1' },
      );
    }
    inFlight.requests++;
    inFlight.bytes += byteLength;
    let body;
    try {
      await readTurns.enter(req);
      try {
        if (expectsContinue) res.writeContinue();
        body = bodies.take(byteLength);
        await readInto(req, body, turnBytes);
      } finally {
        readTurns.leave();
      }
      const batch = format === 'raw' ? splitRaw(body, query.classes) : splitNpy(body, query.classes);
      if (type === undefined) type = answerType(req.headers.accept, batch.rows, jsonMaxRows);
      let perSample;
      if (mode === 'js') perSample = perSampleInJs(batch.logits, batch.labels, batch.classes, query.loss, query.gamma);
      else {
        try {
          // A small batch is scored on the event loop: up to 262144 logits take ~0.1 ms, less than a
          // worker thread's round trip (1000x100 at concurrency 64: ~3600 req/s against ~2300 async).
          const loss = lossFor(query, batch.classes);
          perSample = batch.logits.length <= syncMaxElements ? loss.forward(batch.logits, batch.labels) : await loss.forwardAsync(batch.logits, batch.labels);
        } catch (e) {
          throw e instanceof RangeError || e instanceof TypeError ? new HttpError(400, e.message) : e;
        }
      }
      sendLosses(res, type, batch, perSample);
    } finally {
      // (the call has settled here, whichever way: no worker reads the body any more)
      if (body !== undefined) bodies.give(body);
      inFlight.requests--;
      inFlight.bytes -= byteLength;
    }
  };

  const handle = async (req, res, expectsContinue) => {
    const url = new URL(req.url, 'http://localhost');
    try {
      if (url.pathname === '/stats' && req.method === 'GET') {
        const ms = (ns) => Number(Math.max(0, ns / 1e6 - 1).toFixed(3));
        sendJson(res, 200, {
          ...stats,
          inFlight: inFlight.requests,
          eventLoopDelayMs: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max) },
          rssMB: Number((process.memoryUsage().rss / MIB).toFixed(1)),
        });
        delay.reset();
        return;
      }
      if (url.pathname !== '/score') throw new HttpError(404, `no such path: ${url.pathname} (POST /score, GET /stats)`);
      if (req.method !== 'POST') throw new HttpError(405, `${req.method} /score: use POST`);
      stats.requests++;
      await score(req, res, url, expectsContinue);
    } catch (e) {
      stats.errors++;
      const status = e instanceof HttpError ? e.status : 500;
      if (res.headersSent || res.destroyed || req.socket.destroyed) return; // (a client gone: nothing to answer)
      // A body over the limit is not read to be discarded: the connection is closed instead. (The body of
      // any other refusal is read and dropped by node:http, which keeps the connection and lets the
      // client read its answer; one that sent `Expect: 100-continue` sends no body.)
      if (status === 413) res.setHeader('connection', 'close');
      sendJson(res, status, { error: e.message }, e.headers);
    }
  };

  const server = http.createServer((req, res) => void handle(req, res, false));
  server.on('checkContinue', (req, res) => void handle(req, res, true));
  server.on('close', () => {
    delay.disable();
    bodies.clear();
  });
  return server;
}

module.exports = { createScoreServer };

if (require.main === module) {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '8080' },
      mode: { type: 'string', default: 'cbloss' },
      'max-mb': { type: 'string', default: '256' },
      'max-in-flight': { type: 'string', default: '64' },
      'max-in-flight-mb': { type: 'string', default: '2048' },
      'json-max-rows': { type: 'string', default: '8192' },
    },
  });
  if (values.mode !== 'cbloss' && values.mode !== 'js') throw new Error(`--mode must be cbloss or js, not '${values.mode}'`);
  const server = createScoreServer({
    mode: values.mode,
    maxBytes: Number(values['max-mb']) * MIB,
    maxInFlight: Number(values['max-in-flight']),
    maxInFlightBytes: Number(values['max-in-flight-mb']) * MIB,
    jsonMaxRows: Number(values['json-max-rows']),
  });
  server.listen(Number(values.port), '127.0.0.1', () => {
    const { port } = server.address();
    console.log(`score server (${values.mode}) on http://127.0.0.1:${port}: POST /score?classes=C, GET /stats`);
  });
}
