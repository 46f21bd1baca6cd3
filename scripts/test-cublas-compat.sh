#!/usr/bin/env bash
# Tests the compatibility libcublas.so.12 (scripts/build-cublas-compat.sh) without a GPU or cuBLAS.
#
# It builds the library, checks what it exports (soname, and exactly the committed list of
# functions, each with version libcublas.so.12), then builds a FAKE libcublas.so.13 that defines a
# few of the same names with signatures chosen to stress the forwarding (integer and pointer
# arguments past the sixth, which go on the stack; more float/double arguments than there are
# vector registers; a large struct returned through a hidden pointer) and returns known values.
# A C program linked against the compatibility library calls them through the trampolines. It also
# checks that a function the fake lacks, or a missing libcublas.so.13, is named on stderr at load
# and, when called, named again and answered with CUBLAS_STATUS_NOT_SUPPORTED (or, for the functions
# that return no status, an abort), and, when the Maven jar is in ~/.m2, that JCublas2 12.6.0's
# real native library loads (RTLD_NOW, all its cuBLAS imports bound) against the compatibility
# library.
#
# Usage: scripts/test-cublas-compat.sh      (needs gcc on x86-64; prints "N passed, N failed")
set -uo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
list="$repo_root/src/main/native/cublas-compat/jcublas2-12.6.0-imports.txt"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok    $*"; }
fail() { failed=$((failed + 1)); echo "FAIL  $*"; }
check() { # check DESCRIPTION COMMAND...: passes when the command succeeds
  local what="$1"; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

if ! "$repo_root/scripts/build-cublas-compat.sh" "$work/compat" >"$work/build.log" 2>&1; then
  cat "$work/build.log"
  echo "test-cublas-compat: the build failed"
  echo "0 passed, 1 failed"
  exit 1
fi
lib="$work/compat/libcublas.so.12"

# --- What the library exports -------------------------------------------------------------------
soname="$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
check "soname is libcublas.so.12 (got '$soname')" test "$soname" = "libcublas.so.12"
check "defines version libcublas.so.12" \
  bash -c "readelf -V '$lib' | sed -n '/version_d/,/version_r/p' | grep -q 'Name: libcublas.so.12'"
grep -v -e '^#' -e '^[[:space:]]*$' "$list" | LC_ALL=C sort >"$work/expected"
# Defined, non-local dynamic symbols, less the ABS symbol that names the version node itself.
readelf --dyn-syms -W "$lib" | awk '$1 ~ /^[0-9]+:$/ && $7 != "UND" && $7 != "ABS" && $5 != "LOCAL"' >"$work/defined"
awk '{ print $8 }' "$work/defined" | LC_ALL=C sort >"$work/exported"
check "exports exactly the $(wc -l <"$work/expected") listed functions, each as NAME@@libcublas.so.12" \
  cmp -s <(sed 's/$/@@libcublas.so.12/' "$work/expected") "$work/exported"
check "every export is a function" bash -c "awk '\$4 != \"FUNC\"' '$work/defined' | grep -q . && exit 1 || exit 0"
check "needs nothing but libc (NEEDED: $(readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' '))" \
  bash -c "readelf -d '$lib' | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | grep -qv '^libc.so.6$' && exit 1 || exit 0"

# --- A fake libcublas.so.13 ---------------------------------------------------------------------
# The names are real entries of the list; the signatures are made up to exercise the calling
# convention. cublasDestroy_v2 and cublasGetStatusString are left out on purpose.
mkdir -p "$work/fake" "$work/nofake"
cat >"$work/fake/fake.c" <<'EOF'
#include <string.h>
struct big { long v[6]; };
int cublasGetVersion_v2(void *handle, int *version) { (void) handle; *version = 130100; return 0; }
/* cuBLAS's real SGEMM signature: 14 arguments, the last 8 on the stack. */
int cublasSgemm_v2(void *handle, int transa, int transb, int m, int n, int k, const float *alpha,
                   const float *a, int lda, const float *b, int ldb, const float *beta, float *c, int ldc) {
    if (handle != (void *) 0x1234) return -1;
    c[0] = *alpha * a[0] * b[0] + *beta * c[0];
    return transa + 10 * transb + 100 * m + 1000 * n + 10000 * k + 100000 * lda + 1000000 * ldb + 10000000 * ldc;
}
/* Ten doubles and two floats (eight vector registers, the rest on the stack) mixed with integers. */
double cublasSetMathMode(double d0, int i0, float f0, double d1, double d2, double d3, double d4, double d5,
                         double d6, long i1, double d7, double d8, float f1, double d9) {
    return d0 + 2 * d1 + 3 * d2 + 4 * d3 + 5 * d4 + 6 * d5 + 7 * d6 + 8 * d7 + 9 * d8 + 10 * d9
           + 100 * f0 + 1000 * f1 + 10000 * i0 + 100000 * i1;
}
/* A 48-byte struct is returned through a hidden pointer in %rdi, shifting every argument. */
struct big cublasGetStatusName(long a, long b, long c, long d, long e, long f, long g) {
    struct big r = {{a, b, c, d, e, f + g}};
    return r;
}
EOF
cat >"$work/fake/fake.map" <<'EOF'
libcublas.so.13 { global: cublas*; local: *; };
EOF
gcc -shared -fPIC -O2 -Wl,-soname,libcublas.so.13 -Wl,--version-script="$work/fake/fake.map" \
  -o "$work/fake/libcublas.so.13" "$work/fake/fake.c"

cat >"$work/caller.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
struct big { long v[6]; };
int cublasGetVersion_v2(void *handle, int *version);
int cublasSgemm_v2(void *handle, int transa, int transb, int m, int n, int k, const float *alpha,
                   const float *a, int lda, const float *b, int ldb, const float *beta, float *c, int ldc);
double cublasSetMathMode(double d0, int i0, float f0, double d1, double d2, double d3, double d4, double d5,
                         double d6, long i1, double d7, double d8, float f1, double d9);
struct big cublasGetStatusName(long a, long b, long c, long d, long e, long f, long g);
int cublasDestroy_v2(void *handle);
const char *cublasGetStatusString(int status);

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "forward";
    if (strcmp(what, "missing") == 0) { /* returns a status: CUBLAS_STATUS_NOT_SUPPORTED, twice */
        int first = cublasDestroy_v2(0), second = cublasDestroy_v2(0);
        printf("cublasDestroy_v2: %d, then %d\n", first, second);
        return first == 15 && second == 15 ? 0 : 1;
    }
    if (strcmp(what, "missing-no-status") == 0) { /* returns a string: no honest value, abort */
        printf("calling cublasGetStatusString\n");
        fflush(stdout);
        const char *s = cublasGetStatusString(0);
        printf("returned from cublasGetStatusString: %p\n", (const void *) s);
        return 0;
    }
    int bad = 0, version = 0;
    int status = cublasGetVersion_v2(0, &version);
    printf("cublasGetVersion_v2: status %d, version %d\n", status, version);
    bad |= status != 0 || version != 130100;
    if (strcmp(what, "version") == 0) {
        return bad;
    }

    float alpha = 2, beta = 0.5f, a = 3, b = 5, c = 4;
    int code = cublasSgemm_v2((void *) 0x1234, 1, 2, 3, 4, 5, &alpha, &a, 6, &b, 7, &beta, &c, 8);
    printf("cublasSgemm_v2: code %d, c %g\n", code, c);
    bad |= code != 87654321 || c != 32.0f;

    double x = cublasSetMathMode(1, 7, 0.5f, 2, 3, 4, 5, 6, 7, 9, 8, 9, 0.25f, 10);
    double expect = 1 + 4 + 9 + 16 + 25 + 36 + 49 + 64 + 81 + 100 + 50 + 250 + 70000 + 900000;
    printf("cublasSetMathMode: %.17g (expected %.17g)\n", x, expect);
    bad |= x != expect;

    struct big r = cublasGetStatusName(11, 22, 33, 44, 55, 66, 77);
    printf("cublasGetStatusName: %ld %ld %ld %ld %ld %ld\n", r.v[0], r.v[1], r.v[2], r.v[3], r.v[4], r.v[5]);
    bad |= r.v[0] != 11 || r.v[1] != 22 || r.v[2] != 33 || r.v[3] != 44 || r.v[4] != 55 || r.v[5] != 143;
    return bad;
}
EOF
gcc -O2 -o "$work/caller" "$work/caller.c" -L"$work/compat" -l:libcublas.so.12

check "the caller binds cuBLAS names with version libcublas.so.12, as JCublas2 does" \
  bash -c "readelf --dyn-syms -W '$work/caller' | grep -q 'cublasSgemm_v2@libcublas.so.12'"

# Through LD_LIBRARY_PATH, the way the bundle's run script does it.
if LD_LIBRARY_PATH="$work/compat:$work/fake" "$work/caller" >"$work/out" 2>"$work/err"; then
  pass "arguments and results pass through the trampolines unchanged (LD_LIBRARY_PATH)"
else
  fail "arguments and results pass through the trampolines unchanged (LD_LIBRARY_PATH)"
  cat "$work/out" "$work/err"
fi
check "load-time stderr names the function the fake lacks (cublasDestroy_v2)" \
  grep -q 'not in libcublas.so.13, so calling it fails:.* cublasDestroy_v2 ' "$work/err"
check "load-time stderr counts the missing functions ($(grep -o '([0-9]* of [0-9]*)' "$work/err"))" \
  grep -q "($(( $(wc -l <"$work/expected") - 4 )) of $(wc -l <"$work/expected"))" "$work/err"

# Through GRADSCOPE_CUBLAS13, with the verbose report.
if GRADSCOPE_CUBLAS13="$work/fake/libcublas.so.13" GRADSCOPE_CUBLAS_COMPAT_VERBOSE=1 \
    LD_LIBRARY_PATH="$work/compat:$work/nofake" "$work/caller" >"$work/out" 2>"$work/err"; then
  pass "forwarding works with GRADSCOPE_CUBLAS13 naming the file"
else
  fail "forwarding works with GRADSCOPE_CUBLAS13 naming the file"
  cat "$work/out" "$work/err"
fi
check "verbose mode names the file it forwards to" \
  grep -q "forwarding 4 of [0-9]* cuBLAS functions to $work/fake/libcublas.so.13" "$work/err"

# A function libcublas.so.13 lacks: named, and CUBLAS_STATUS_NOT_SUPPORTED, never a jump into nowhere.
LD_LIBRARY_PATH="$work/compat:$work/fake" "$work/caller" missing >"$work/out" 2>"$work/err"
rc=$?
check "calling a missing function returns CUBLAS_STATUS_NOT_SUPPORTED (15), every time (exit $rc)" test "$rc" -eq 0
check "... naming it on stderr once" \
  test "$(grep -c 'cublasDestroy_v2 was called, but it is not in libcublas.so.13; returning CUBLAS_STATUS_NOT_SUPPORTED' "$work/err")" -eq 1
rc=$( (LD_LIBRARY_PATH="$work/compat:$work/fake" "$work/caller" missing-no-status >"$work/out" 2>"$work/err"; echo $?) 2>/dev/null)
check "a missing function that returns no status aborts (exit $rc, SIGABRT is 134)" test "$rc" -eq 134
check "... naming it on stderr" grep -q 'cublasGetStatusString was called, but it is not in libcublas.so.13, so it cannot be forwarded; aborting' "$work/err"
check "... before returning to the caller" bash -c "! grep -q returned '$work/out'"

# No libcublas.so.13 at all: the library still loads, says why on stderr, and every call fails by name.
LD_LIBRARY_PATH="$work/compat:$work/nofake" "$work/caller" version >"$work/out" 2>"$work/err"
rc=$?
check "without libcublas.so.13 calls fail (exit $rc) with status 15" \
  bash -c "test $rc -eq 1 && grep -q 'cublasGetVersion_v2: status 15' '$work/out'"
check "... after a load-time message that says what to do" \
  grep -q 'cannot load libcublas.so.13 .*Put the folder of CUDA 13' "$work/err"
check "... and each call's name" grep -q 'cublasGetVersion_v2 was called' "$work/err"

# GRADSCOPE_CUBLAS13 naming the compatibility library itself must not make it jump to itself.
GRADSCOPE_CUBLAS13="$lib" LD_LIBRARY_PATH="$work/compat" timeout 20 "$work/caller" version >"$work/out" 2>"$work/err"
rc=$?
check "forwarding to itself is refused: calls fail by name, no endless loop (exit $rc)" \
  bash -c "test $rc -eq 1 && grep -q 'cublasGetVersion_v2 was called' '$work/err'"

# The real client: JCublas2 12.6.0's native library, if the jar is in the local Maven repository.
jar="${MAVEN_REPO:-$HOME/.m2/repository}/org/jcuda/jcublas-natives/12.6.0/jcublas-natives-12.6.0-linux-x86_64.jar"
if [[ -f "$jar" ]] && unzip -q "$jar" 'lib/libJCublas2-*' -d "$work/jcublas" 2>/dev/null; then
  cat >"$work/load.c" <<'EOF'
#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv) {
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) { printf("dlopen failed: %s\n", dlerror()); return 1; }
    printf("loaded; Java_jcuda_jcublas_JCublas2_cublasCreateNative %s\n",
           dlsym(h, "Java_jcuda_jcublas_JCublas2_cublasCreateNative") ? "found" : "MISSING");
    return 0;
}
EOF
  gcc -o "$work/load" "$work/load.c" -ldl
  native="$(ls "$work"/jcublas/lib/libJCublas2-*.so)"
  check "JCublas2's native library does not load without the compatibility library (as on the GPU host)" \
    bash -c "! LD_LIBRARY_PATH='$work/fake' '$work/load' '$native' >/dev/null 2>&1"
  if LD_LIBRARY_PATH="$work/compat:$work/fake" "$work/load" "$native" >"$work/out" 2>"$work/err" \
      && grep -q 'found' "$work/out"; then
    pass "JCublas2's native library loads with RTLD_NOW against it (all its cuBLAS imports bound)"
  else
    fail "JCublas2's native library loads with RTLD_NOW against it (all its cuBLAS imports bound)"
    cat "$work/out"
  fi
else
  echo "skip  JCublas2's native library: $jar is not in the local Maven repository"
fi

echo "test-cublas-compat: $passed passed, $failed failed"
[[ "$failed" -eq 0 ]]
