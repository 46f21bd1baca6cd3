#!/usr/bin/env bash
# Tests the CUDA emulator's kernel library (scripts/build-cuda-emulator-kernels.sh) without a GPU: builds
# it, links src/test/native/cuda-emulator/selftest.cc against it and runs that. The self-test launches
# some of the project's kernels as the Java backend does (fill_f32, the segmented sum of squares,
# column_sums, relu_bias_backward, softmax_cross_entropy_rows, adam_update) and compares them with naive
# C++ references, then checks the runner itself: divergent barriers reported as deadlocks, a missing
# __syncthreads visible, CUDA's numbering of 3-D blocks, grids and warp lanes. It prints one line per
# check and a few timings.
#
# Usage: scripts/test-cuda-emulator-kernels.sh      (needs g++ on x86-64; prints "N passed, N failed")
set -uo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$repo_root/src/test/native/cuda-emulator"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if ! "$repo_root/scripts/build-cuda-emulator-kernels.sh" "$work/kernels" >"$work/build.log" 2>&1; then
  cat "$work/build.log"
  echo "test-cuda-emulator-kernels: the build failed"
  echo "test-cuda-emulator-kernels: 0 passed, 1 failed"
  exit 1
fi
tail -n 1 "$work/build.log"

# The self-test's own kernels need device.h, and its references the same float rounding as the kernels.
if ! g++ -std=c++20 -O2 -ffp-contract=off -fno-fast-math -Wall -Wextra -pthread -I"$work/kernels/include" -I"$src" \
    -o "$work/selftest" "$src/selftest.cc" "$work/kernels/libgsemu-kernels.a"; then
  echo "test-cuda-emulator-kernels: compiling the self-test failed"
  echo "test-cuda-emulator-kernels: 0 passed, 1 failed"
  exit 1
fi

# A deadlock the runner failed to detect would hang: a time limit turns that into a failure.
timeout 120 "$work/selftest"
rc=$?
[[ $rc -ne 124 ]] || echo "test-cuda-emulator-kernels: the self-test did not finish within 120 s (a hang?)"
exit "$rc"
