#!/usr/bin/env bash
# Builds OUT_DIR/libcublas.so.12: the forwarding library that lets JCublas2 12.6.0 (built for
# CUDA 12) run on a machine that has only CUDA 13's libcublas.so.13. See
# src/main/native/cublas-compat/cublas_compat.c for how it works, and the README's GPU bundle section.
#
# Usage:
#   scripts/build-cublas-compat.sh OUT_DIR          build OUT_DIR/libcublas.so.12 (needs gcc, x86-64)
#   scripts/build-cublas-compat.sh --refresh-symbols
#       regenerate the committed import list from JCublas2's native library in the Maven jar
#       org.jcuda:jcublas-natives:12.6.0:linux-x86_64 (fetched with mvn if not in ~/.m2, or in
#       MAVEN_REPO when that names another local repository)
#
# The build reads only the committed list, so it needs neither Maven nor the jar. It checks its
# result: soname libcublas.so.12, and every listed function exported with version libcublas.so.12.
set -euo pipefail

readonly JCUDA_VERSION="12.6.0"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$repo_root/src/main/native/cublas-compat"
list="$src/jcublas2-$JCUDA_VERSION-imports.txt"

fail() {
  echo "build-cublas-compat: $*" >&2
  exit 1
}

# The function names of the list: comments and blank lines dropped, each name checked.
list_names() {
  local bad
  bad="$(grep -v -e '^#' -e '^[[:space:]]*$' "$list" | grep -v -E '^cublas[A-Za-z0-9_]*$' || true)"
  [[ -z "$bad" ]] || fail "$list has lines that are not cuBLAS function names: $bad"
  grep -v -e '^#' -e '^[[:space:]]*$' "$list"
}

refresh_symbols() {
  local m2="${MAVEN_REPO:-$HOME/.m2/repository}"
  local jar="$m2/org/jcuda/jcublas-natives/$JCUDA_VERSION/jcublas-natives-$JCUDA_VERSION-linux-x86_64.jar"
  if [[ ! -f "$jar" ]]; then
    command -v mvn >/dev/null 2>&1 || fail "mvn is needed to fetch $jar"
    mvn -q -B org.apache.maven.plugins:maven-dependency-plugin:3.8.1:get -Dtransitive=false \
      ${MAVEN_REPO:+-Dmaven.repo.local="$MAVEN_REPO"} \
      -Dartifact="org.jcuda:jcublas-natives:$JCUDA_VERSION:jar:linux-x86_64" >&2 \
      || fail "mvn dependency:get of org.jcuda:jcublas-natives:$JCUDA_VERSION:jar:linux-x86_64 failed"
  fi
  [[ -f "$jar" ]] || fail "$jar is still missing after mvn dependency:get (is MAVEN_REPO right?)"
  local work
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  local native="lib/libJCublas2-$JCUDA_VERSION-linux-x86_64.so"
  unzip -q -o "$jar" "$native" -d "$work" || fail "$jar has no $native"
  {
    echo "# The cuBLAS functions that JCublas2 $JCUDA_VERSION's native library imports with symbol version"
    echo "# libcublas.so.12: one name a line, sorted. scripts/build-cublas-compat.sh makes one forwarding"
    echo "# trampoline per name; regenerate with \`scripts/build-cublas-compat.sh --refresh-symbols\`."
    echo "# Source: $native in org.jcuda:jcublas-natives:$JCUDA_VERSION:linux-x86_64,"
    echo "# \`readelf --dyn-syms -W\`, undefined symbols ending in @libcublas.so.12."
    readelf --dyn-syms -W "$work/$native" \
      | awk '$7 == "UND" && $8 ~ /@libcublas\.so\.12$/ { sub(/@.*/, "", $8); print $8 }' \
      | LC_ALL=C sort -u
  } >"$work/list"
  local count
  count="$(grep -vc '^#' "$work/list")"
  [[ "$count" -gt 0 ]] || fail "found no symbols with version libcublas.so.12 in $native"
  if [[ -f "$list" ]] && cmp -s "$work/list" "$list"; then
    echo "build-cublas-compat: $list is up to date ($count functions)"
  else
    mv "$work/list" "$list"
    echo "build-cublas-compat: wrote $list ($count functions); review it with git diff"
  fi
}

build() {
  local out="$1"
  case "$(gcc -dumpmachine 2>/dev/null || true)" in
    x86_64-*) ;;
    "") fail "gcc is needed to build the compatibility library" ;;
    *) fail "the trampolines are x86-64 assembly; this gcc targets $(gcc -dumpmachine)" ;;
  esac
  [[ -f "$list" ]] || fail "$list is missing; run $0 --refresh-symbols"
  mkdir -p "$out"
  out="$(cd "$out" && pwd)"
  local work
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  list_names | sed 's/.*/GS_CUBLAS_SYMBOL(&)/' >"$work/gs_cublas_symbols.h"
  local count
  count="$(wc -l <"$work/gs_cublas_symbols.h")"
  gcc -std=gnu11 -O2 -Wall -Wextra -Werror -shared -fPIC -I"$work" \
    -Wl,-soname,libcublas.so.12 -Wl,--version-script="$src/libcublas.so.12.map" \
    -Wl,-z,noexecstack -Wl,-z,now -Wl,--no-undefined \
    -o "$work/libcublas.so.12" "$src/cublas_compat.c" -ldl

  # Check the result before it replaces anything in OUT_DIR.
  local soname exported
  soname="$(readelf -d "$work/libcublas.so.12" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
  [[ "$soname" == "libcublas.so.12" ]] || fail "built library has soname '$soname', not libcublas.so.12"
  exported="$(readelf --dyn-syms -W "$work/libcublas.so.12" \
    | awk '$5 == "GLOBAL" && $7 != "UND" && $8 ~ /@libcublas\.so\.12$/' | wc -l)"
  [[ "$exported" -eq "$count" ]] \
    || fail "built library exports $exported functions with version libcublas.so.12, expected $count"
  mv -f "$work/libcublas.so.12" "$out/libcublas.so.12"
  echo "build-cublas-compat: built $out/libcublas.so.12 ($count cuBLAS functions forwarded to libcublas.so.13)"
}

case "${1:-}" in
  --refresh-symbols) [[ $# -eq 1 ]] || fail "usage: $0 --refresh-symbols"; refresh_symbols ;;
  -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' ;;
  ""|-*) fail "usage: $0 OUT_DIR | --refresh-symbols" ;;
  *) [[ $# -eq 1 ]] || fail "usage: $0 OUT_DIR"; build "$1" ;;
esac
