#!/usr/bin/env bash
# Shows that the emulator's traffic tests (test/76-traffic.test.ts) catch what they are for (issue 21):
# each patch of test/mutations/ — a second read of the logits in the held-rows kernel, and lanes that
# own their runs side by side (a strided access: each warp instruction spreads over R times the
# sectors) — is applied, the emulated build rebuilt, and test 76 must fail; then the patch is undone
# and the build restored. Exit 1 when a mutant passes. Several minutes (three incremental builds).
set -uo pipefail
cd "$(dirname "$0")/.."
rc=0
for patch in test/mutations/*.patch; do
  name=$(basename "$patch" .patch)
  git apply "$patch" || { echo "$name: the patch does not apply"; exit 1; }
  if npm run build:emulated >/tmp/cbloss-mutant-build.log 2>&1; then
    out=$(CBLOSS_ADDON=build-emu/Release/cbloss.node npx mocha -g '^76 ' 2>&1)
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' <<<"$out" | tail -n 1)
    first=$(grep -m 1 -E 'AssertionError' <<<"$out")
    if grep -qE ', [1-9][0-9]* failed' <<<"$summary"; then
      echo "mutant $name: caught ($summary; first: ${first})"
    else
      echo "mutant $name: NOT caught ($summary)"
      rc=1
    fi
  else
    echo "mutant $name: does not build"; tail -20 /tmp/cbloss-mutant-build.log; rc=1
  fi
  git apply -R "$patch"
done
npm run build:emulated >/dev/null 2>&1 || { echo "the emulated build did not come back"; rc=1; }
exit $rc
