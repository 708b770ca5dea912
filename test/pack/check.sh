#!/usr/bin/env bash
# The published package, as a user gets it: `npm pack`, then `npm install ./cbloss-*.tgz` in a fresh
# folder outside the repository (which builds the addon), then load it from CommonJS and ESM, run a
# loss, and type-check a small TypeScript consumer against the published types (CommonJS and
# NodeNext resolution). Prints `pack: ok` or `pack: FAILED <step>`; exits non-zero on failure.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/cbloss-pack.XXXXXX)
trap 'rm -rf "$work"' EXIT
step() { printf '\n--- %s\n' "$1"; }
die() { echo "pack: FAILED $1"; exit 1; }

step "npm pack"
(cd "$repo" && npm pack --silent --pack-destination "$work" >/dev/null) || die "npm pack"
tgz=$(ls "$work"/cbloss-*.tgz) || die "no tarball"
tar -tzf "$tgz" | sed 's#^package/##' | sort > "$work/files.txt"
for f in dist/index.js dist/index.mjs dist/index.d.ts dist/index.d.mts binding.d.ts CMakeLists.txt binding.gyp \
         native/binding/addon.cpp native/cpu/kernels_simd.h scripts/install.js bin/cbloss.js; do
  grep -qx "$f" "$work/files.txt" || die "tarball lacks $f"
done
if grep -qE '^(test|build|node_modules)/' "$work/files.txt"; then die "tarball ships test/, build/ or node_modules/"; fi

step "npm install ./$(basename "$tgz") in $work/app"
mkdir -p "$work/app" && cd "$work/app" || die "mkdir"
npm init -y >/dev/null 2>&1
npm install --no-audit --no-fund "$tgz" > "$work/install.log" 2>&1 || { tail -30 "$work/install.log"; die "npm install"; }

step "CommonJS"
node -e "
const c = require('cbloss');
const v = new c.FocalLoss({ numClasses: 2 }).forward(new Float32Array([2.1, 0.5, 2.1, 0.5]), new Float32Array([0, 1, 1, 0]));
if (Math.abs(v - 0.551209) > 1e-6) throw new Error('wrong value ' + v);
console.log('cjs ok', v, c.backendInfo().cpu.simd);
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
node esm.mjs || die "import from 'cbloss'"

step "the cbloss command"
npx --no-install cbloss info > info.txt || die "npx cbloss info"
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
// @ts-expect-error unknown options are type errors too
new FocalLoss({ numClasses: 3, gama: 2 });
export { v, perRow, r, any, w, simd };
TS
cp consumer.ts consumer.mts
tsc="$repo/node_modules/.bin/tsc"
# no @types/node here: the published declarations must not need Node's types
echo '{ "compilerOptions": { "strict": true, "noEmit": true, "target": "es2022", "types": [], "module": "commonjs", "moduleResolution": "node10" }, "files": ["consumer.ts"] }' > tsconfig.cjs.json
echo '{ "compilerOptions": { "strict": true, "noEmit": true, "target": "es2022", "types": [], "module": "nodenext", "moduleResolution": "nodenext" }, "files": ["consumer.mts"] }' > tsconfig.esm.json
"$tsc" -p tsconfig.cjs.json || die "tsc (commonjs)"
"$tsc" -p tsconfig.esm.json || die "tsc (nodenext)"
echo "pack: ok"
