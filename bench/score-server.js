// `npm run bench:server`: examples/score-server under load (issues 20 and 31), loopback only, against
// the transport's own limit. For batches of 1k and 64k rows × 100 classes and autocannon at concurrency
// 1, 16 and 64 (S seconds a run for 1k rows, 3S for 64k), back to back:
// - echo: a node:http server that reads the same request bytes and answers the same bytes as the score
//   server's binary answer (4 a row), doing nothing else — the most this machine's loopback and
//   node:http carry, the reference for the others;
// - cbloss: examples/score-server (the body streamed into pooled shared memory, forwardAsync, float32
//   answers);
// - js: the same server computing the loss in a JavaScript loop on the event loop.
// Each row: 2xx answers a second and as a fraction of the echo's in the same configuration, latency
// p50/p99, the server's event-loop lateness p99/max (its /stats), and non-2xx answers or errors. Then a
// soak of the cbloss server (default 60 s, concurrency 16, 1k rows) with its RSS sampled every 5 s and
// bad requests sent meanwhile (each must get its 400/413 with a message, or be dropped for a truncated
// body, while the good ones keep being answered).
// Options: --seconds S (default 5), --soak S (default 60; 0: none), --rows 1000,65536,
// --concurrency 1,16,64, --modes echo,cbloss,js, --server FILE (another version of the example, to
// compare). About 4.5 minutes with the defaults.
'use strict';
const { spawn } = require('node:child_process');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { monitorEventLoopDelay } = require('node:perf_hooks');
const { parseArgs } = require('node:util');

const { values: opts } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    soak: { type: 'string', default: '60' },
    rows: { type: 'string', default: '1000,65536' },
    concurrency: { type: 'string', default: '1,16,64' },
    modes: { type: 'string', default: 'echo,cbloss,js' },
    server: { type: 'string', default: path.join(__dirname, '..', 'examples', 'score-server', 'server.js') },
    'echo-server': { type: 'boolean', default: false },
  },
});
const SECONDS = Number(opts.seconds);
const SOAK = Number(opts.soak);
const CLASSES = 100;
const numbers = (list) => list.split(',').map(Number);

// The echo server (run as a child of this script): reads each body and answers 4 bytes a row of it,
// from one buffer; GET /stats as the score server's (event-loop lateness, reset on each read).
function echoServer() {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  let answer = Buffer.alloc(0);
  const server = http.createServer((req, res) => {
    if (req.method === 'GET') {
      const ms = (ns) => Number(Math.max(0, ns / 1e6 - 1).toFixed(3));
      const text = JSON.stringify({ eventLoopDelayMs: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max) } });
      delay.reset();
      res.writeHead(200, { 'content-type': 'application/json' }).end(text);
      return;
    }
    let length = 0;
    req.on('data', (chunk) => (length += chunk.length));
    req.on('end', () => {
      const rows = Math.floor(length / (4 * CLASSES + 4));
      if (answer.length < 4 * rows) answer = Buffer.alloc(4 * rows);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 4 * rows }).end(answer.subarray(0, 4 * rows));
    });
  });
  server.listen(0, '127.0.0.1', () => console.log(`echo on http://127.0.0.1:${server.address().port}`));
}

function batch(rows, seed = 1) {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const body = Buffer.alloc(rows * CLASSES * 4 + rows * 4);
  const logits = new Float32Array(body.buffer, body.byteOffset, rows * CLASSES);
  for (let i = 0; i < logits.length; i++) logits[i] = (rand() - 0.5) * 6;
  const labels = new Int32Array(body.buffer, body.byteOffset + logits.byteLength, rows);
  for (let i = 0; i < rows; i++) labels[i] = Math.floor(rand() * CLASSES);
  return body;
}

function startServer(mode) {
  return new Promise((resolve, reject) => {
    const args =
      mode === 'echo'
        ? [__filename, '--echo-server']
        : [path.resolve(opts.server), '--port', '0', '--mode', mode];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.once('data', (d) => {
      const m = /127\.0\.0\.1:(\d+)/.exec(String(d));
      if (m) resolve({ child, url: `http://127.0.0.1:${m[1]}`, port: Number(m[1]) });
      else reject(new Error(`the server said: ${d}`));
    });
    child.once('exit', (code) => reject(new Error(`the server exited (${code})`)));
  });
}

const stats = async (url) => (await fetch(`${url}/stats`)).json();

function load(url, body, connections, seconds) {
  const autocannon = require('autocannon');
  return autocannon({
    url: `${url}/score?classes=${CLASSES}`,
    method: 'POST',
    body,
    headers: { 'content-type': 'application/octet-stream', accept: 'application/octet-stream' },
    connections,
    duration: seconds,
    timeout: 30,
  });
}

// A request announcing a body over the server's limit: the answer comes before the body is sent.
function oversized(port) {
  return new Promise((resolve) => {
    const req = http.request({ port, host: '127.0.0.1', method: 'POST', path: `/score?classes=${CLASSES}`, headers: { 'content-length': 300 * 2 ** 20 } });
    req.on('response', (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        resolve([res.statusCode, JSON.parse(text).error]);
        req.destroy();
      });
    });
    req.on('error', () => resolve(['error']));
    req.flushHeaders();
  });
}

// A request whose body stops short of its Content-Length: the server must drop it and keep serving.
function truncated(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(`POST /score?classes=${CLASSES} HTTP/1.1\r\nHost: x\r\nContent-Length: 40400\r\n\r\n`);
      socket.write(Buffer.alloc(1000));
      setTimeout(() => socket.destroy() && resolve(), 50);
    });
    socket.on('error', () => resolve());
  });
}

async function main() {
  const modes = opts.modes.split(',');
  console.log(`score server under load: ${CLASSES} classes, ${SECONDS} s a run (${3 * SECONDS} s beyond 1000 rows), loopback; ${os.cpus()[0].model}, ${os.cpus().length} cores; Node ${process.version}`);
  console.log('mode     rows   conc   req/s   of echo   p50 ms   p99 ms   loop lateness p99/max ms   non-2xx');
  const servers = {};
  for (const mode of modes) servers[mode] = await startServer(mode);
  for (const rows of numbers(opts.rows)) {
    const body = batch(rows);
    for (const connections of numbers(opts.concurrency)) {
      let echoRate;
      for (const mode of modes) {
        const server = servers[mode];
        await stats(server.url); // (resets the server's lateness histogram)
        const r = await load(server.url, body, connections, rows > 1000 ? 3 * SECONDS : SECONDS);
        const lag = (await stats(server.url)).eventLoopDelayMs;
        const rate = r['2xx'] / r.duration;
        if (mode === 'echo') echoRate = rate;
        const ofEcho = echoRate === undefined ? '' : `${Math.round((100 * rate) / echoRate)}%`;
        console.log(
          `${mode.padEnd(7)} ${String(rows).padStart(6)} ${String(connections).padStart(6)} ${rate.toFixed(1).padStart(7)} ${ofEcho.padStart(9)} ${String(r.latency.p50).padStart(8)} ${String(r.latency.p99).padStart(8)}   ${`${lag.p99}/${lag.max}`.padStart(24)}   ${r.errors + r.non2xx}`,
        );
      }
    }
  }
  for (const server of Object.values(servers)) server.child.kill();
  if (SOAK <= 0) return;

  // The soak: the cbloss server, 1k rows at concurrency 16, RSS every 5 s, bad requests meanwhile.
  const server = await startServer('cbloss');
  const body = batch(1000);
  const running = load(server.url, body, 16, SOAK);
  const rss = [];
  const bad = { 400: 0, 413: 0, other: 0, withoutMessage: 0, truncated: 0 };
  const answer = async (r) => [r.status, ((await r.json()) ?? {}).error];
  for (let t = 0; t < SOAK; t += 5) {
    await new Promise((resolve) => setTimeout(resolve, 5000));
    rss.push((await stats(server.url)).rssMB);
    const answers = await Promise.all([
      fetch(`${server.url}/score?classes=${CLASSES}`, { method: 'POST', body: body.subarray(0, 1001) }).then(answer), // not whole rows
      fetch(`${server.url}/score?classes=abc`, { method: 'POST', body }).then(answer), // a malformed query
      oversized(server.port), // over 256 MB
    ]);
    for (const [status, message] of answers) {
      bad[status === 400 || status === 413 ? status : 'other']++;
      if (typeof message !== 'string' || message === '') bad.withoutMessage++;
    }
    await truncated(server.port);
    bad.truncated++;
  }
  const r = await running;
  const final = await stats(server.url);
  server.child.kill();
  console.log(`\nsoak ${SOAK} s (cbloss, 1000 rows, concurrency 16): ${r.requests.average.toFixed(1)} req/s, p99 ${r.latency.p99} ms, ${r.non2xx + r.errors} non-2xx or failed of ${r.requests.total} load requests`);
  console.log(`RSS MB every 5 s: ${rss.join(' ')} (first ${rss[0]}, last ${rss[rss.length - 1]}, max ${Math.max(...rss)})`);
  console.log(
    `bad requests meanwhile: ${bad[400]} answered 400, ${bad[413]} answered 413, ${bad.other} otherwise, ${bad.withoutMessage} without a message, ${bad.truncated} truncated bodies dropped; the server answered ${final.requests} scoring requests`,
  );
}

if (opts['echo-server']) echoServer();
else {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
