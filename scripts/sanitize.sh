#!/usr/bin/env bash
# Builds the addon with AddressSanitizer and UndefinedBehaviorSanitizer (CPU only, in build-asan/)
# and runs the test suite against it. Node itself is not instrumented, so the ASan runtime is
# preloaded; leak checking is off (V8 keeps memory until exit by design). Any ASan or UBSan report
# aborts the process, which fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
npx cmake-js compile --out build-asan --CDCBLOSS_CUDA=OFF --CDCBLOSS_SANITIZE=ON
asan=$(g++ -print-file-name=libasan.so)
ubsan=$(g++ -print-file-name=libubsan.so)
export LD_PRELOAD="$asan:$ubsan"
export ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0:abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export CBLOSS_ADDON=build-asan/Release/cbloss.node
export CBLOSS_EXPECT_CUDA_COMPILED=0
export CBLOSS_PROPERTY_RUNS=60
export CBLOSS_SANITIZER=1
npx mocha "$@"
