#!/usr/bin/env bash
# The published package, as a user gets it. `npm pack` (with the prebuilt addon of this platform in
# prebuilds/, made by scripts/prebuild.js when it is missing), then:
#  1. `npm install ./cbloss-*.tgz` in a fresh folder with a PATH that holds node, npm and sh only (no
#     cmake, g++, make, nvcc, python): it must take the prebuild, in 30 s or less; then load it from
#     CommonJS and ESM, compute the Python package's values, name the prebuild in backendInfo(), run
#     `npx cbloss info`, and type-check a small TypeScript consumer against the published types
#     (CommonJS and NodeNext resolution);
#  2. the same tarball with a compiler and npm_config_build_from_source=true (CBLOSS_CUDA=0: the CPU
#     configuration, to keep CI short): it must build the addon and load that build.
# Prints the tarball's size and the install's time; `pack: ok` or `pack: FAILED <step>`.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/cbloss-pack.XXXXXX)
trap 'rm -rf "$work"' EXIT
step() { printf '\n--- %s\n' "$1"; }
die() { echo "pack: FAILED $1"; exit 1; }
target="$(node -p 'process.platform + "-" + process.arch')"

step "the prebuilt addon for $target"
if [ ! -f "$repo/prebuilds/$target/cbloss.json" ]; then
  (cd "$repo" && node scripts/prebuild.js) || die "npm run prebuild"
fi
cat "$repo/prebuilds/$target/cbloss.json"
cuda_compiled=$(node -p "require('$repo/prebuilds/$target/cbloss.json').cuda")

step "npm pack"
(cd "$repo" && npm pack --silent --pack-destination "$work" >/dev/null) || die "npm pack"
tgz=$(ls "$work"/cbloss-*.tgz) || die "no tarball"
bytes=$(stat -c %s "$tgz")
echo "tarball: $(basename "$tgz"), $((bytes / 1048576)).$(((bytes % 1048576) * 10 / 1048576)) MB"
[ "$bytes" -le $((25 * 1048576)) ] || die "tarball over 25 MB"
tar -tzf "$tgz" | sed 's#^package/##' | sort > "$work/files.txt"
for f in dist/index.js dist/index.mjs dist/index.d.ts dist/index.d.mts binding.d.ts CMakeLists.txt binding.gyp \
         native/binding/addon.cpp native/cpu/kernels_simd.h scripts/install.js bin/cbloss.js \
         "prebuilds/$target/cbloss.json"; do
  grep -qx "$f" "$work/files.txt" || die "tarball lacks $f"
done
grep -qE "^prebuilds/$target/node\.napi(\.glibc|\.musl)?\.node$" "$work/files.txt" || die "tarball lacks the prebuilt addon"
if grep -qE '^(test|build|build-prebuild|node_modules)/' "$work/files.txt"; then die "tarball ships test/, build/ or node_modules/"; fi

step "npm install ./$(basename "$tgz") with node, npm and sh alone on the PATH"
mkdir -p "$work/bin" "$work/app"
for tool in node npm npx sh; do ln -s "$(command -v "$tool")" "$work/bin/$tool"; done
cd "$work/app" || die "cd"
PATH="$work/bin" npm init -y >/dev/null 2>&1
started=$(date +%s%N)
PATH="$work/bin" npm install --no-audit --no-fund --foreground-scripts "$tgz" > "$work/install.log" 2>&1 || { tail -30 "$work/install.log"; die "npm install (no compiler)"; }
elapsed_ms=$((($(date +%s%N) - started) / 1000000))
grep 'cbloss:' "$work/install.log"
echo "install time: $((elapsed_ms / 1000)).$(printf %03d $((elapsed_ms % 1000))) s (no compiler on the PATH)"
grep -q 'cbloss: using the prebuilt addon' "$work/install.log" || die "the install did not take the prebuilt addon"
[ "$elapsed_ms" -le 30000 ] || die "the install took over 30 s"

step "CommonJS"
PATH="$work/bin" node -e "
const c = require('cbloss');
const v = new c.FocalLoss({ numClasses: 2 }).forward(new Float32Array([2.1, 0.5, 2.1, 0.5]), new Float32Array([0, 1, 1, 0]));
if (Math.abs(v - 0.551209) > 1e-6) throw new Error('wrong value ' + v);
const info = c.backendInfo();
if (info.addon.source !== 'prebuild') throw new Error('loaded ' + info.addon.file + ' (' + info.addon.source + '), not the prebuild');
if (String(info.compiled.cuda) !== '$cuda_compiled') throw new Error('CUDA compiled in: ' + info.compiled.cuda + ', the prebuild says $cuda_compiled');
console.log('cjs ok', v, info.cpu.simd, info.addon.source, info.addon.file.replace(/.*node_modules./, ''), 'cuda compiled:', info.compiled.cuda, info.cuda.architectures);
" || die "require('cbloss')"

step "ESM"
cat > esm.mjs <<'JS'
import { ClassBalancedLoss, FocalLoss } from 'cbloss';
import cbloss from 'cbloss';
const loss = new ClassBalancedLoss({ samplesPerCls: [30, 100, 25], beta: 0.99, numClasses: 3,
  lossFunc: new FocalLoss({ numClasses: 3, reduction: 'none' }) });
const v = loss.forward(new Float32Array([0.5, -0.5, 1, -1, 2, -1, 0, 0, 0]), [2, 1, 0]);
if (Math.abs(v - 0.245579) > 1e-6) throw new Error('wrong value ' + v);
if (cbloss.FocalLoss !== FocalLoss) throw new Error('default export differs');
console.log('esm ok', v);
JS
PATH="$work/bin" node esm.mjs || die "import from 'cbloss'"

step "the cbloss command"
PATH="$work/bin" npx --no-install cbloss info > info.txt || die "npx cbloss info"
grep -q '^cbloss ' info.txt || die "cbloss info output"

step "TypeScript consumer"
cat > consumer.ts <<'TS'
import { CrossEntropyLoss, FocalLoss, classBalancedWeights, backendInfo, type Loss, type ForwardBackwardResult } from 'cbloss';
const ce = new CrossEntropyLoss({ labelSmoothing: 0.1 });
const v: number = ce.forward(new Float32Array(6), [0, 1]);
const none = new FocalLoss({ numClasses: 3, reduction: 'none' });
const perRow: Float32Array = none.forward(new Float32Array(6), [0, 1]);
const r: ForwardBackwardResult<'mean'> = ce.forwardBackward(new Float32Array(6), new Int32Array([0, 1]), { gradOutput: 2 });
const any: Loss = none;
const w: Float64Array = classBalancedWeights([10, 20], 0.9);
const simd: string = backendInfo().cpu.simd;
const source: 'CBLOSS_ADDON' | 'local build' | 'prebuild' = backendInfo().addon.source;
// @ts-expect-error unknown options are type errors too
new FocalLoss({ numClasses: 3, gama: 2 });
export { v, perRow, r, any, w, simd, source };
TS
cp consumer.ts consumer.mts
tsc="$repo/node_modules/.bin/tsc"
# no @types/node here: the published declarations must not need Node's types
echo '{ "compilerOptions": { "strict": true, "noEmit": true, "target": "es2022", "types": [], "module": "commonjs", "moduleResolution": "node10" }, "files": ["consumer.ts"] }' > tsconfig.cjs.json
echo '{ "compilerOptions": { "strict": true, "noEmit": true, "target": "es2022", "types": [], "module": "nodenext", "moduleResolution": "nodenext" }, "files": ["consumer.mts"] }' > tsconfig.esm.json
"$tsc" -p tsconfig.cjs.json || die "tsc (commonjs)"
"$tsc" -p tsconfig.esm.json || die "tsc (nodenext)"

step "npm install with a compiler and npm_config_build_from_source=true (CPU configuration)"
mkdir -p "$work/source" && cd "$work/source" || die "cd"
npm init -y >/dev/null 2>&1
npm_config_build_from_source=true CBLOSS_CUDA=0 npm install --no-audit --no-fund --foreground-scripts "$tgz" > "$work/source.log" 2>&1 || { tail -30 "$work/source.log"; die "npm install (from source)"; }
grep -q 'cbloss: building the addon from source' "$work/source.log" || die "the install did not build from source"
node -e "
const c = require('cbloss');
const info = c.backendInfo();
if (info.addon.source !== 'local build') throw new Error('loaded ' + info.addon.file + ' (' + info.addon.source + '), not the source build');
const v = new c.FocalLoss({ numClasses: 2 }).forward(new Float32Array([2.1, 0.5, 2.1, 0.5]), new Float32Array([0, 1, 1, 0]));
if (Math.abs(v - 0.551209) > 1e-6) throw new Error('wrong value ' + v);
console.log('source build ok', v, info.addon.file.replace(/.*node_modules./, ''));
" || die "the source build"
echo "pack: ok"
