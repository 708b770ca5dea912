// `npm install`: uses the package's prebuilt addon when one matches this platform (prebuilds/, built
// by scripts/prebuild.js; node-gyp-build matches platform, arch, libc and N-API) and loads, and says so
// in one line. Otherwise — or when asked: npm_config_build_from_source=true (`npm install
// --build-from-source`) or CBLOSS_BUILD=cmake|node-gyp — it builds the addon: with cmake-js
// (CMakeLists.txt: CPU and, when nvcc is found, CUDA; CBLOSS_CUDA=0 hides CUDA) when CMake is
// available, else with node-gyp (binding.gyp: CPU only). A build in build/Release is kept when
// CBLOSS_SKIP_BUILD=1.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const addon = path.join(root, 'build', 'Release', 'cbloss.node');

function run(cmd, args) {
  console.log(`cbloss: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  return r.status === 0;
}

function haveCmake() {
  const r = spawnSync('cmake', ['--version'], { encoding: 'utf8' });
  return r.status === 0;
}

function nodeGyp() {
  // npm brings node-gyp with it; fall back to one on the PATH.
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ].filter(Boolean);
  for (const c of candidates) if (fs.existsSync(c)) return [process.execPath, [c]];
  return ['node-gyp', []];
}

// The prebuilt addon for this machine, if the package has one that loads here: its path and what it
// holds (the binary's own backendInfo()), else null.
function usablePrebuild() {
  let file;
  try {
    file = require('node-gyp-build').path(root);
  } catch {
    return null;
  }
  if (!path.relative(root, file).startsWith('prebuilds')) return null;
  try {
    const info = require(file).backendInfo();
    return { file, cuda: info.cuda.compiled ? `CUDA compiled in (${info.cuda.architectures})` : 'CPU only' };
  } catch (err) {
    console.log(`cbloss: the prebuilt addon ${path.relative(root, file)} does not load here (${err.message.split('\n')[0]}); building from source`);
    return null;
  }
}

if (process.env.CBLOSS_SKIP_BUILD === '1' && fs.existsSync(addon)) {
  console.log('cbloss: CBLOSS_SKIP_BUILD=1, keeping build/Release/cbloss.node');
  process.exit(0);
}
// (`npm run build:native` passes --from-source: a developer's build, whatever prebuilds/ holds)
const fromSource =
  process.argv.includes('--from-source') || process.env.npm_config_build_from_source === 'true' || Boolean(process.env.CBLOSS_BUILD);
if (!fromSource) {
  const prebuild = usablePrebuild();
  if (prebuild) {
    console.log(
      `cbloss: using the prebuilt addon ${path.relative(root, prebuild.file)} (${prebuild.cuda}); ` +
        'npm_config_build_from_source=true builds from source instead',
    );
    process.exit(0);
  }
}
const choice = process.env.CBLOSS_BUILD || (haveCmake() ? 'cmake' : 'node-gyp');
console.log(`cbloss: building the addon from source with ${choice}${fromSource ? ' (asked for)' : ' (no prebuilt addon for this platform)'}`);
let ok;
if (choice === 'cmake') {
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  ok = run(process.execPath, [cmakeJs, 'compile', ...(process.env.CBLOSS_CUDA === '0' ? ['--CDCBLOSS_CUDA=OFF'] : [])]);
} else if (choice === 'node-gyp') {
  console.log('cbloss: CMake not found (or CBLOSS_BUILD=node-gyp): building the CPU-only addon with node-gyp');
  const [cmd, pre] = nodeGyp();
  // Build against the headers of the running Node when they are installed beside it (no download).
  const prefix = path.join(path.dirname(process.execPath), '..');
  const local = !process.env.npm_config_nodedir && fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'));
  ok = run(cmd, [...pre, 'rebuild', ...(local ? [`--nodedir=${path.resolve(prefix)}`] : [])]);
} else {
  console.error(`cbloss: CBLOSS_BUILD must be cmake or node-gyp, not '${choice}'`);
  process.exit(1);
}
if (!ok) {
  console.error(
    'cbloss: building the native addon failed. It needs a C++17 compiler and either CMake >= 3.18 ' +
      '(cmake-js) or Python 3 with make (node-gyp). See the README.',
  );
  process.exit(1);
}
