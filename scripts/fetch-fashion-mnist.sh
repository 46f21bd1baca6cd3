#!/usr/bin/env bash
# Downloads Fashion-MNIST into DIR (default: data/fashion-mnist under the repository root) and verifies it.
#
# The copy comes from Debian's package dataset-fashion-mnist, version 0.0~git20200523.55506a9-1 (in
# bookworm and later; 30.9 MB), fetched with `apt-get download` (no root needed: nothing is installed)
# and unpacked with dpkg-deb, or where there is none (macOS, Fedora) with bsdtar, or ar and tar. It ships the four IDX files gzip-compressed under
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

# The tool that unpacks the .deb: dpkg-deb where it is installed (Debian, Ubuntu); else bsdtar (macOS, the
# BSDs: libarchive reads the .deb's ar container and its compression); else ar (binutils) and tar. Known
# before anything is downloaded.
if command -v dpkg-deb >/dev/null 2>&1; then
  unpacker=dpkg-deb
elif command -v bsdtar >/dev/null 2>&1; then
  unpacker=bsdtar
elif command -v ar >/dev/null 2>&1 && command -v tar >/dev/null 2>&1; then
  unpacker=ar
else
  fail "none of dpkg-deb, bsdtar, or ar with tar is installed; one is needed to unpack $PACKAGE (a Debian package; ar is in binutils, bsdtar in libarchive), or put the four files in $dir yourself: ${NAMES[*]}"
fi

# The member of the .deb $1 (an ar archive) that holds its files: data.tar, compressed or not, as listed by
# the command $2... (one name a line).
data_member() {
  local deb="$1" member
  shift
  "$@" >"$work/members" 2>"$work/unpack.log" || {
    cat "$work/unpack.log" >&2
    fail "$1 could not read $deb (output above); is it a Debian package?"
  }
  member="$(grep -E '^data\.tar(\.[a-z0-9]+)?$' "$work/members" | head -n 1 || true)"
  [[ -n "$member" ]] || fail "$deb has no data.tar member (it has: $(tr '\n' ' ' <"$work/members")); is it a Debian package?"
  echo "$member"
}

# unpack_deb DEB TO: unpacks the files of the Debian package DEB into TO.
unpack_deb() {
  local deb="$1" to="$2" member decompress
  mkdir -p "$to"
  case "$unpacker" in
    dpkg-deb)
      dpkg-deb -x "$deb" "$to" 2>"$work/unpack.log" || {
        cat "$work/unpack.log" >&2
        fail "dpkg-deb could not unpack $deb (output above)"
      }
      ;;
    bsdtar)
      member="$(data_member "$deb" bsdtar -tf "$deb")"
      # The second bsdtar recognises the member's compression itself.
      bsdtar -xOf "$deb" "$member" 2>"$work/unpack.log" | bsdtar -xf - -C "$to" 2>>"$work/unpack.log" || {
        cat "$work/unpack.log" >&2
        fail "bsdtar could not unpack $member of $deb (output above)"
      }
      ;;
    ar)
      member="$(data_member "$deb" ar t "$deb")"
      case "$member" in
        data.tar) decompress=cat ;;
        data.tar.xz) decompress=xz ;;
        data.tar.gz) decompress=gzip ;;
        data.tar.bz2) decompress=bzip2 ;;
        data.tar.zst) decompress=zstd ;;
        *) fail "$deb holds its files in $member, a compression this script does not know" ;;
      esac
      command -v "$decompress" >/dev/null 2>&1 \
        || fail "$decompress is not installed; it is needed to unpack $member of $deb (or install dpkg-deb or bsdtar)"
      [[ "$decompress" == cat ]] || decompress="$decompress -dc"
      ar p "$deb" "$member" 2>"$work/unpack.log" | $decompress 2>>"$work/unpack.log" \
        | tar -xf - -C "$to" 2>>"$work/unpack.log" || {
        cat "$work/unpack.log" >&2
        fail "ar, $decompress and tar could not unpack $member of $deb (output above)"
      }
      ;;
  esac
}

begin_fetch "$dir"

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
unpack_deb "$deb" "$work/extracted"

stage_verified "$work/extracted" "$staging" "$source_name"
install_staged "$staging" "$dir"
echo "Fashion-MNIST fetched from $source_name into $dir (MD5 verified)"
