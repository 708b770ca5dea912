// `npm run bench:server`: examples/score-server under load (issue 20), loopback only. For each mode —
// cbloss (the async API, off the event loop) and js (the same loss in a JavaScript loop on the event
// loop) — and batches of 1k and 64k rows × 100 classes, autocannon at concurrency 1, 16 and 64 for a
// bounded time (S seconds for 1k rows, 3S for 64k): requests a second, latency p50/p99, the event
// loop's lateness (the server's /stats). Then a soak of the cbloss server (default 60 s, concurrency
// 16, 1k rows) with its RSS sampled every 5 s, malformed, truncated and oversized requests sent
// meanwhile (each must get its 400/413, or be dropped for a truncated body, while the good ones keep
// being answered). Options: --seconds S (default 5), --soak S (default 60). About 3.5 minutes.
'use strict';
const { spawn } = require('node:child_process');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const { parseArgs } = require('node:util');
const autocannon = require('autocannon');

const { values: opts } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, soak: { type: 'string', default: '60' } } });
const SECONDS = Number(opts.seconds);
const SOAK = Number(opts.soak);
const CLASSES = 100;

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
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'examples', 'score-server', 'server.js'), '--port', '0', '--mode', mode], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
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
  return autocannon({
    url: `${url}/score?classes=${CLASSES}`,
    method: 'POST',
    body,
    headers: { 'content-type': 'application/octet-stream' },
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
      res.resume();
      resolve(res.statusCode);
      req.destroy();
    });
    req.on('error', () => resolve('error'));
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
  console.log(`score server under load: ${CLASSES} classes, ${SECONDS} s a run, loopback; Node ${process.version}`);
  console.log('mode    rows   conc   req/s   p50 ms   p99 ms   loop lateness p50/p99/max ms   errors');
  for (const mode of ['cbloss', 'js']) {
    const server = await startServer(mode);
    for (const rows of [1000, 65536]) {
      const body = batch(rows);
      for (const connections of [1, 16, 64]) {
        await stats(server.url); // (resets the server's lateness histogram)
        const r = await load(server.url, body, connections, rows > 1000 ? 3 * SECONDS : SECONDS);
        const s = await stats(server.url);
        const lag = s.eventLoopDelayMs;
        console.log(
          `${mode.padEnd(7)} ${String(rows).padStart(5)} ${String(connections).padStart(6)} ${r.requests.average.toFixed(1).padStart(7)} ${String(r.latency.p50).padStart(8)} ${String(r.latency.p99).padStart(8)}   ${`${lag.p50}/${lag.p99}/${lag.max}`.padStart(28)}   ${r.errors + r.non2xx}`,
        );
      }
    }
    server.child.kill();
  }

  // The soak: the cbloss server, 1k rows at concurrency 16, RSS every 5 s, bad requests meanwhile.
  const server = await startServer('cbloss');
  const body = batch(1000);
  const running = load(server.url, body, 16, SOAK);
  const rss = [];
  const bad = { 400: 0, 413: 0, other: 0, truncated: 0 };
  for (let t = 0; t < SOAK; t += 5) {
    await new Promise((resolve) => setTimeout(resolve, 5000));
    rss.push((await stats(server.url)).rssMB);
    const answers = await Promise.all([
      fetch(`${server.url}/score?classes=${CLASSES}`, { method: 'POST', body: body.subarray(0, 1001) }).then((a) => a.status), // not whole rows
      fetch(`${server.url}/score?classes=abc`, { method: 'POST', body }).then((a) => a.status), // a malformed query
      oversized(server.port), // over 256 MB
    ]);
    for (const status of answers) bad[status === 400 || status === 413 ? status : 'other']++;
    await truncated(server.port);
    bad.truncated++;
  }
  const r = await running;
  const final = await stats(server.url);
  server.child.kill();
  console.log(`\nsoak ${SOAK} s (cbloss, 1000 rows, concurrency 16): ${r.requests.average.toFixed(1)} req/s, p99 ${r.latency.p99} ms, ${r.non2xx} non-2xx of ${r.requests.total} load requests`);
  console.log(`RSS MB every 5 s: ${rss.join(' ')} (first ${rss[0]}, last ${rss[rss.length - 1]}, max ${Math.max(...rss)})`);
  console.log(`bad requests meanwhile: ${bad[400]} answered 400, ${bad[413]} answered 413, ${bad.other} otherwise, ${bad.truncated} truncated bodies dropped; the server answered ${final.requests} scoring requests`);
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
