#!/usr/bin/env bash
# Builds the CUDA emulator into OUT_DIR: libcuda.so.1 (the driver API GradScope uses, with the kernels
# of src/main/cuda compiled as C++ and run on the CPU) and libcublas.so.12 (handle, SGEMM, SSCAL). With
# OUT_DIR first on LD_LIBRARY_PATH, JCuda loads them instead of NVIDIA's, and the CUDA backend, its
# tests and `gradscope --device cuda` run on a machine without a GPU. What it shows and what it cannot:
# src/test/native/cuda-emulator/README.md.
#
# Usage: scripts/build-cuda-emulator.sh OUT_DIR
#
# The Maven build runs it at generate-test-resources with OUT_DIR = target/cuda-emulator, for the test
# run `gpu-emulated` (pom.xml). Without g++ on x86-64 it says so in one line and exits 0 (that run's
# tests then skip, saying libcuda.so.1 was not found). Libraries newer than every input are not rebuilt.
set -euo pipefail

if [[ $# -ne 1 || "$1" == -* ]]; then
  echo "usage: $0 OUT_DIR" >&2
  exit 2
fi
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$repo_root/src/test/native/cuda-emulator"
cublas_map="$repo_root/src/main/native/cublas-compat/libcublas.so.12.map"
cublas_imports="$repo_root/src/main/native/cublas-compat/jcublas2-12.6.0-imports.txt"
driver_imports="$src/jcuda-driver-12.6.0-imports.txt"
out="$1"

fail() {
  echo "build-cuda-emulator: $*" >&2
  exit 1
}

case "$(g++ -dumpmachine 2>/dev/null || true)" in
  x86_64-*) ;;
  "") echo "build-cuda-emulator: no g++, the CUDA emulator was not built (the emulated GPU tests will skip)"; exit 0 ;;
  *) echo "build-cuda-emulator: the emulator's fibers are x86-64 code and this g++ targets $(g++ -dumpmachine);" \
       "not built (the emulated GPU tests will skip)"; exit 0 ;;
esac

mkdir -p "$out"
out="$(cd "$out" && pwd)"

# Up to date: both libraries newer than every source, list and script they come from.
inputs=("$repo_root"/src/main/cuda/* "$src"/* "$cublas_map" "$cublas_imports" "${BASH_SOURCE[0]}"
  "$repo_root/scripts/build-cuda-emulator-kernels.sh")
up_to_date=true
for lib in "$out/libcuda.so.1" "$out/libcublas.so.12"; do
  if [[ ! -f "$lib" ]]; then
    up_to_date=false
  else
    for input in "${inputs[@]}"; do
      [[ "$input" -nt "$lib" ]] && up_to_date=false
    done
  fi
done
if $up_to_date; then
  echo "build-cuda-emulator: $out is up to date"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

bash "$repo_root/scripts/build-cuda-emulator-kernels.sh" "$work/kernels" >"$work/kernels.log" 2>&1 \
  || { cat "$work/kernels.log" >&2; fail "building the kernels failed"; }

cxx=(g++ -std=c++20 -O2 -fPIC -Wall -Wextra -ffp-contract=off -fno-fast-math -I"$work/kernels/include" -I"$src")

# One stub per imported name that the library does not define: it names itself and fails.
# $1 object, $2 import list, $3 C return type, $4 the failure value, $5 stub source to write.
write_stubs() {
  local object="$1" list="$2" type="$3" failure="$4" stubs="$5"
  nm --defined-only -g "$object" | awk '{print $3}' | sort -u >"$work/defined"
  {
    echo '#include "driver.h"'
    grep -v -e '^#' -e '^[[:space:]]*$' "$list" | LC_ALL=C sort -u | LC_ALL=C comm -23 - "$work/defined" \
      | while read -r name; do
          echo "extern \"C\" $type $name(...) { gsemu::report(\"$name is not emulated\"); return $failure; }"
        done
  } >"$stubs"
}

"${cxx[@]}" -c -o "$work/driver.o" "$src/driver.cc"
write_stubs "$work/driver.o" "$driver_imports" int CUDA_ERROR_NOT_SUPPORTED "$work/driver-stubs.cc"
"${cxx[@]}" -Wno-unused-parameter -c -o "$work/driver-stubs.o" "$work/driver-stubs.cc"
cat >"$work/libcuda.map" <<'EOF'
{
  global:
    cu*;
    extern "C++" { gsemu::*; };
  local:
    *;
};
EOF
"${cxx[@]}" -shared -o "$work/libcuda.so.1" -Wl,-soname,libcuda.so.1 -Wl,--version-script="$work/libcuda.map" \
  -Wl,-z,noexecstack "$work/driver.o" "$work/driver-stubs.o" \
  -Wl,--whole-archive "$work/kernels/libgsemu-kernels.a" -Wl,--no-whole-archive -Wl,--no-undefined -lpthread

# The cuBLAS stubs include driver.h for report(): CUBLAS_STATUS_NOT_SUPPORTED is 15.
# -O3: the SGEMM's inner loop vectorised (runs of the emulated training are mostly GEMM time).
"${cxx[@]}" -O3 -c -o "$work/cublas.o" "$src/cublas.cc"
write_stubs "$work/cublas.o" "$cublas_imports" int 15 "$work/cublas-stubs.cc"
"${cxx[@]}" -c -o "$work/cublas-stubs.o" "$work/cublas-stubs.cc"
"${cxx[@]}" -shared -o "$work/libcublas.so.12" -Wl,-soname,libcublas.so.12 -Wl,--version-script="$cublas_map" \
  -Wl,-z,noexecstack "$work/cublas.o" "$work/cublas-stubs.o" -L"$work" -l:libcuda.so.1 -Wl,-rpath,'$ORIGIN' \
  -Wl,--no-undefined

# Check the results before they replace anything in OUT_DIR: sonames, and every import list name exported.
for lib in libcuda.so.1 libcublas.so.12; do
  soname="$(readelf -d "$work/$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
  [[ "$soname" == "$lib" ]] || fail "built $lib has soname '$soname'"
done
missing_cublas="$(grep -v -e '^#' -e '^[[:space:]]*$' "$cublas_imports" | LC_ALL=C sort -u | LC_ALL=C comm -23 - \
  <(readelf --dyn-syms -W "$work/libcublas.so.12" | awk '$7 != "UND" && $8 ~ /@libcublas\.so\.12$/ {sub(/@.*/, "", $8); print $8}' \
    | LC_ALL=C sort -u))"
[[ -z "$missing_cublas" ]] || fail "libcublas.so.12 does not export, with version libcublas.so.12: $missing_cublas"
missing_driver="$(grep -v -e '^#' -e '^[[:space:]]*$' "$driver_imports" | LC_ALL=C sort -u | LC_ALL=C comm -23 - \
  <(nm -D --defined-only "$work/libcuda.so.1" | awk '{print $3}' | sed 's/@.*//' | LC_ALL=C sort -u))"
[[ -z "$missing_driver" ]] || fail "libcuda.so.1 does not export: $missing_driver"

mv -f "$work/libcuda.so.1" "$work/libcublas.so.12" "$out/"
emulated="$(nm --defined-only -g "$work/driver.o" | awk '$3 ~ /^cu/' | wc -l)"
kernels="$(grep -o '[0-9]* kernels from [0-9]* families' "$work/kernels.log" || echo "the kernels")"
echo "build-cuda-emulator: built $out/libcuda.so.1 ($emulated driver functions, $kernels) and libcublas.so.12"
