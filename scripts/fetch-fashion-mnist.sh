#!/usr/bin/env bash
# Downloads Fashion-MNIST into DIR (default: data/fashion-mnist under the repository root) and verifies it.
#
# The copy comes from Debian's package dataset-fashion-mnist, version 0.0~git20200523.55506a9-1 (in
# bookworm and later; 30.9 MB), fetched with `apt-get download` (no root needed: nothing is installed)
# and unpacked with dpkg-deb. It ships the four IDX files gzip-compressed under
# /usr/share/datasets/fashion-mnist/; they are stored in DIR uncompressed, as fetch-mnist.sh stores
# MNIST, and the MD5 sums below are those of the uncompressed files: the same bytes as Zalando's
# originals unpacked (Debian's .gz files themselves differ from Zalando's, so their sums would not
# say that). If all four are already there with the right sums, nothing is downloaded; a file there
# with a wrong sum is reported and fetched again. Prints one line on success; on failure says why
# and exits 1.
#
# Without apt (or offline), download the .deb elsewhere and pass it: FASHION_MNIST_DEB=FILE.deb.
#
# Usage: scripts/fetch-fashion-mnist.sh [DIR]
set -euo pipefail

readonly SCRIPT=fetch-fashion-mnist
readonly PACKAGE=dataset-fashion-mnist
readonly VERSION=0.0~git20200523.55506a9-1
declare -A EXPECTED_MD5=(
  [train-images-idx3-ubyte]=f4a8712d7a061bf5bd6d2ca38dc4d50a
  [train-labels-idx1-ubyte]=9018921c3c673c538a1fc5bad174d6f9
  [t10k-images-idx3-ubyte]=8181f5470baa50b63fa0f6fddb340f0a
  [t10k-labels-idx1-ubyte]=15d484375f8d13e6eb1aabb0c3f46965
)

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=fetch-common.sh
source "$script_dir/fetch-common.sh"
dir="${1:-$(dirname "$script_dir")/data/fashion-mnist}"

if all_verified "$dir"; then
  echo "Fashion-MNIST already in $dir (MD5 verified)"
  exit 0
fi
report_defects "$dir"

command -v dpkg-deb >/dev/null 2>&1 \
  || fail "dpkg-deb is not installed; it is needed to unpack $PACKAGE (a Debian package), or put the four files in $dir yourself: ${NAMES[*]}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [[ -n "${FASHION_MNIST_DEB:-}" ]]; then
  deb="$FASHION_MNIST_DEB"
  [[ -f "$deb" ]] || fail "FASHION_MNIST_DEB=$deb: no such file"
  source_name="$deb"
else
  command -v apt-get >/dev/null 2>&1 \
    || fail "apt-get is not installed; $PACKAGE=$VERSION is a Debian package: download it elsewhere and pass it as FASHION_MNIST_DEB=FILE.deb, or put the four files in $dir yourself: ${NAMES[*]}"
  # apt checks the package against its signed index, so what arrives is Debian's file.
  if ! (cd "$work" && apt-get download "$PACKAGE=$VERSION") >"$work/apt.log" 2>&1; then
    cat "$work/apt.log" >&2
    fail "apt-get download $PACKAGE=$VERSION failed (output above): apt could not reach Debian, or its package lists do not have this version (it is in Debian bookworm and later; run apt-get update as root, or pass a downloaded .deb as FASHION_MNIST_DEB=FILE.deb)"
  fi
  deb="$(find "$work" -maxdepth 1 -name "${PACKAGE}_*.deb" | head -n 1)"
  [[ -n "$deb" ]] || fail "apt-get download $PACKAGE=$VERSION left no .deb in $work"
  source_name="$PACKAGE=$VERSION"
fi
dpkg-deb -x "$deb" "$work/extracted" 2>"$work/dpkg.log" || {
  cat "$work/dpkg.log" >&2
  fail "dpkg-deb could not unpack $deb (output above)"
}

stage_verified "$work/extracted" "$work/staged" "$source_name"
install_staged "$work/staged" "$dir"
echo "Fashion-MNIST fetched from $source_name into $dir (MD5 verified)"
