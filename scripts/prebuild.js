// `npm run prebuild [-- --target <platform>-<arch>] [--addon <built cbloss.node>] [--if-missing]`: the prebuilt addon the
// package ships, in prebuilds/<platform>-<arch>/node.napi.<libc>.node — the layout and name tags that
// node-gyp-build (the loader, lib/native.ts) matches: N-API (one binary for every Node with N-API 8,
// Node >= 20.17 here), glibc or musl. Built with cmake-js into build-prebuild/: CUDA (sm_80, sm_90 and
// PTX) where nvcc is found, else the CPU backend only; `--addon` packages a build made already (CI
// packages the one `npm ci` built); `--if-missing` (npm pack's prepack) keeps a prebuild already there. Beside it, cbloss.json says what the binary holds. Prebuilds are
// build outputs of the package, not kept in git. Other targets must be built on (or for) that
// platform: docs/devices.md, "Prebuilt addons", says how a release CI would build each.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const argv = process.argv.slice(2);
const option = (name) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};

function libc() {
  // (node-gyp-build's own test: musl where the report names no glibc)
  const report = process.report && process.report.getReport ? process.report.getReport() : null;
  return report && report.header && report.header.glibcVersionRuntime ? 'glibc' : 'musl';
}

const host = `${os.platform()}-${os.arch()}`;
const target = option('--target') || host;
if (argv.includes('--if-missing') && fs.existsSync(path.join(root, 'prebuilds', target, 'cbloss.json'))) {
  console.log(`cbloss prebuild: prebuilds/${target} is there (npm run prebuild rebuilds it)`);
  process.exit(0);
}
let addon = option('--addon');
if (!addon) {
  if (target !== host) {
    console.error(`cbloss prebuild: this machine builds ${host}; build ${target} on (or for) that platform, then pass --addon`);
    process.exit(1);
  }
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const r = spawnSync(process.execPath, [cmakeJs, 'compile', '--out', 'build-prebuild'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status || 1);
  addon = path.join(root, 'build-prebuild', 'Release', 'cbloss.node');
}
addon = path.resolve(addon);

// What the binary holds, from the binary itself (its abi() and backendInfo()).
const binding = require(addon);
const info = binding.backendInfo();
const abi = binding.abi();
const dir = path.join(root, 'prebuilds', target);
const tag = target.startsWith('linux-') ? `.${libc()}` : '';
const file = path.join(dir, `node.napi${tag}.node`);
fs.rmSync(dir, { recursive: true, force: true });
fs.mkdirSync(dir, { recursive: true });
fs.copyFileSync(addon, file);
const manifest = {
  target,
  file: path.basename(file),
  napi: 8,
  cuda: info.cuda.compiled,
  cudaArchitectures: info.cuda.compiled ? info.cuda.architectures || null : null,
  configSlots: abi.configSlots.length,
  runArguments: abi.runArguments.length,
  bytes: fs.statSync(file).size,
};
fs.writeFileSync(path.join(dir, 'cbloss.json'), `${JSON.stringify(manifest, null, 2)}\n`);
console.log(
  `cbloss prebuild: ${path.relative(root, file)} (${(manifest.bytes / 1048576).toFixed(1)} MB, ` +
    `${manifest.cuda ? 'CUDA compiled in' : 'CPU only'})`,
);
