#!/usr/bin/env bash
# The whole test suite, as README and CI run it: set-up, a normal build with every test, a bounded
# libFuzzer run, then a separate AddressSanitizer + UndefinedBehaviorSanitizer build running the
# same tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

# The tree keeps to .clang-format (checked first: it takes a second, a build takes minutes).
git ls-files -z '*.cpp' '*.hpp' | xargs -0 clang-format --dry-run -Werror

scripts/build.sh build
ctest --test-dir build --output-on-failure -j2 --timeout 300

scripts/fuzz.sh  # libFuzzer, 60 s per target

scripts/build.sh build-asan -DAGENTD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DAGENTD_FAKES_FROM="$PWD/build"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j2 --timeout 600
