#!/usr/bin/env bash
# Cuts the small MNIST subset that the tests use from the real, verified files: the first 4000
# training and the first 1000 test images with their labels, written as valid IDX files under
# their standard names, gzip-compressed (gzip -n, so the same input gives the same bytes).
#
# Usage: scripts/make-mnist-subset.sh [SOURCE_DIR [OUT_DIR]]
#   SOURCE_DIR  the full MNIST, default data/mnist (fetched and verified by fetch-mnist.sh first)
#   OUT_DIR     default src/test/resources/mnist-subset
set -euo pipefail

readonly TRAIN_COUNT=4000
readonly TEST_COUNT=1000
readonly IMAGE_BYTES=$((28 * 28))

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(dirname "$script_dir")"
source_dir="${1:-$repo_root/data/mnist}"
out_dir="${2:-$repo_root/src/test/resources/mnist-subset}"

# Makes sure the source is the real MNIST (downloads it if missing; prints one line).
"$script_dir/fetch-mnist.sh" "$source_dir"

# Prints a 32-bit big-endian integer as 4 raw bytes.
be32() {
  printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)))"
}

# cut_idx NAME COUNT ITEM_BYTES: writes OUT_DIR/NAME.gz holding the first COUNT items of
# SOURCE_DIR/NAME, whose header is the magic and then one 4-byte size per dimension.
cut_idx() {
  local name="$1" count="$2" item_bytes="$3"
  local src="$source_dir/$name"
  local magic header_bytes
  magic="$(od -An -tx1 -N4 "$src" | tr -d ' \n')"
  case "$magic" in
    00000803) header_bytes=16 ;;  # magic, count, rows, columns
    00000801) header_bytes=8 ;;   # magic, count
    *) echo "make-mnist-subset: $src has magic 0x$magic, expected 0x00000803 or 0x00000801" >&2; exit 1 ;;
  esac
  {
    head -c 4 "$src"                 # magic
    be32 "$count"                    # the new item count
    head -c "$header_bytes" "$src" | tail -c +9   # the remaining dimensions (rows, columns), if any
    head -c $((header_bytes + count * item_bytes)) "$src" | tail -c +$((header_bytes + 1))
  } | gzip -n -9 >"$out_dir/$name.gz.tmp"
  mv -f "$out_dir/$name.gz.tmp" "$out_dir/$name.gz"
}

mkdir -p "$out_dir"
cut_idx train-images-idx3-ubyte "$TRAIN_COUNT" "$IMAGE_BYTES"
cut_idx train-labels-idx1-ubyte "$TRAIN_COUNT" 1
cut_idx t10k-images-idx3-ubyte "$TEST_COUNT" "$IMAGE_BYTES"
cut_idx t10k-labels-idx1-ubyte "$TEST_COUNT" 1
echo "MNIST subset ($TRAIN_COUNT train, $TEST_COUNT test) written to $out_dir"
