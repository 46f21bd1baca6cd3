# What the fetch scripts of the data sets in MNIST's format share (sourced by fetch-mnist.sh and
# fetch-fashion-mnist.sh, not run): the four file names, MD5 checks, and staging then installing the files.
#
# The sourcing script sets, before it sources this file:
#   SCRIPT        its name, for messages (fetch-mnist)
#   EXPECTED_MD5  an associative array: file name -> MD5 of the uncompressed file
# Files are stored uncompressed under their standard names, and only after all four have the expected sums.
# The sourcing script calls begin_fetch DIR before it downloads, stage_verified FROM "$staging" SOURCE, then
# install_staged "$staging" DIR.

readonly NAMES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

fail() {
  echo "$SCRIPT: $*" >&2
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

# Says, on stderr, which of the four files in $1 are there but damaged (a wrong sum), before they are
# fetched again. Missing files are not reported: fetching is how they arrive the first time.
report_defects() {
  local name actual
  for name in "${NAMES[@]}"; do
    [[ -f "$1/$name" ]] || continue
    actual="$(md5_of "$1/$name")"
    [[ "$actual" == "${EXPECTED_MD5[$name]}" ]] \
      || echo "$SCRIPT: $1/$name has MD5 $actual, expected ${EXPECTED_MD5[$name]}; fetching it again" >&2
  done
}

# stage_verified FROM TO SOURCE: finds each file under FROM, plain or .gz, writes it uncompressed into TO
# and checks its sum; fails (naming SOURCE, where FROM came from) at the first file that is missing or wrong.
stage_verified() {
  local from="$1" to="$2" source="$3" name found actual
  mkdir -p "$to"
  for name in "${NAMES[@]}"; do
    found="$(find "$from" -type f \( -name "$name" -o -name "$name.gz" \) | head -n 1)"
    [[ -n "$found" ]] || fail "$source does not contain $name (or $name.gz)"
    if [[ "$found" == *.gz ]]; then
      gzip -dc "$found" >"$to/$name"
    else
      cp "$found" "$to/$name"
    fi
    actual="$(md5_of "$to/$name")"
    [[ "$actual" == "${EXPECTED_MD5[$name]}" ]] \
      || fail "$name from $source has MD5 $actual, expected ${EXPECTED_MD5[$name]}; not installing it"
  done
}

# begin_fetch DIR: makes $work, a temporary folder for what is downloaded and unpacked, and $staging, a
# hidden folder inside DIR (made if need be) where stage_verified writes the files. Staging on DIR's own
# filesystem makes each move of install_staged a rename, which an interruption cannot leave half done: a
# move from /tmp to another filesystem is a copy, and Ctrl-C during it would leave a truncated file under
# its final name. Both folders are removed when the script exits, interrupted or not, and so is DIR if this
# made it and it stayed empty.
begin_fetch() {
  work="" staging="" made_dir=""
  trap end_fetch EXIT
  # An interrupted script exits (running the EXIT trap) with the status a shell reports for the signal.
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
  if [[ ! -d "$1" ]]; then
    mkdir -p "$1" || fail "cannot make the folder $1"
    made_dir="$1"
  fi
  staging="$(mktemp -d "$1/.staging.XXXXXX")" || fail "cannot write in $1"
  work="$(mktemp -d)" || fail "cannot make a temporary folder"
}

end_fetch() {
  # A second Ctrl-C must not cut the cleaning short (ignored signals are ignored by rm too).
  trap '' HUP INT TERM
  rm -rf "${work:-}" "${staging:-}"
  if [[ -n "${made_dir:-}" ]]; then
    rmdir "$made_dir" 2>/dev/null || true
  fi
}

# install_staged FROM DIR: moves the four verified files from FROM, a folder on DIR's filesystem (see
# begin_fetch), into DIR. Only verified files reach DIR, and each arrives whole.
install_staged() {
  local name
  for name in "${NAMES[@]}"; do
    mv -f "$1/$name" "$2/$name"
  done
}
