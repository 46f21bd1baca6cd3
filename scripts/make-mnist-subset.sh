#!/usr/bin/env bash
# Cuts the small subset of a data set in MNIST's format that the tests use from the real, verified
# files: the first training and test images with their labels, written as valid IDX files under their
# standard names, gzip-compressed (gzip -n, so the same input gives the same bytes).
#   mnist          the first 4000 training and 1000 test images -> src/test/resources/mnist-subset
#   fashion_mnist  the first 2000 training and 500 test images   -> src/test/resources/fashion-mnist-subset
#
# Usage: scripts/make-mnist-subset.sh [--dataset mnist|fashion_mnist] [SOURCE_DIR [OUT_DIR]]
#   SOURCE_DIR  the full data set, default data/mnist or data/fashion-mnist (fetched and verified by its
#               fetch script first)
#   OUT_DIR     default the subset's folder above
set -euo pipefail

readonly IMAGE_BYTES=$((28 * 28))

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(dirname "$script_dir")"

dataset=mnist
if [[ "${1:-}" == --dataset ]]; then
  dataset="${2:-}"
  shift 2 || true
elif [[ "${1:-}" == --dataset=* ]]; then
  dataset="${1#--dataset=}"
  shift
fi
case "$dataset" in
  mnist) title=MNIST train_count=4000 test_count=1000 data=mnist fetch=fetch-mnist.sh ;;
  fashion_mnist) title=Fashion-MNIST train_count=2000 test_count=500 data=fashion-mnist fetch=fetch-fashion-mnist.sh ;;
  *) echo "make-mnist-subset: unknown dataset '$dataset'; valid: mnist, fashion_mnist" >&2; exit 2 ;;
esac
source_dir="${1:-$repo_root/data/$data}"
out_dir="${2:-$repo_root/src/test/resources/$data-subset}"

# Makes sure the source is the real data set (downloads it if missing; prints one line).
"$script_dir/$fetch" "$source_dir"

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
cut_idx train-images-idx3-ubyte "$train_count" "$IMAGE_BYTES"
cut_idx train-labels-idx1-ubyte "$train_count" 1
cut_idx t10k-images-idx3-ubyte "$test_count" "$IMAGE_BYTES"
cut_idx t10k-labels-idx1-ubyte "$test_count" 1
echo "$title subset ($train_count train, $test_count test) written to $out_dir"
