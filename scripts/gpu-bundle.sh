#!/usr/bin/env bash
# Builds a self-contained folder that runs GradScope's GPU check on a GPU host without Java, Maven
# or network: copy the folder there and run its `run` script (README: "Running on a GPU host
# without Java"; the bundle's own summary is scripts/README-gpu-snippet.md).
#
# Usage: scripts/gpu-bundle.sh [OUT_DIR]          (default: target/gpu-bundle, ignored by git)
#
# The folder holds (the whole must stay under 64 MiB; the script prints the sizes and fails over):
#   runtime.tar.xz      a jlink Java runtime from the Temurin 25 JDK (GRADSCOPE_BUNDLE_JDK names
#                       another), with only the modules the jars need (jdeps) plus java.base,
#                       jdk.unsupported, java.logging and java.management; `run` unpacks it once
#   gradscope.jar       target/gradscope.jar (the shaded application jar), less JCuda's 24 MB
#                       libJNvPTXCompiler native library, which nothing uses
#   tests/              the test classes (target/test-classes), the test-only dependency jars, and
#                       the JUnit console launcher matching the pom's JUnit version
#   cublas-compat/      libcublas.so.12 from scripts/build-cublas-compat.sh (used on CUDA 13 hosts)
#   mnist/              the four MNIST files as .gz (from data/mnist; fetched when missing)
#   run                 scripts/gpu-bundle-run.sh: info, GPU tests, bench, peers, short training runs
#   compare-peers.py    scripts/compare-peers.py: the same benchmark in PyTorch and JAX, which `run` starts
#                       with the host's python3 when it has either
#   bundle-info.txt     what went in: commit, versions, modules, sizes
#
# It uses the normal build folder target/: when target/gradscope.jar or target/test-classes is
# missing or older than pom.xml or src/, it runs `mvn -q -DskipTests package` first. The runtime
# and the compressed MNIST are reused from an earlier bundle in OUT_DIR when nothing they depend on
# changed. Needs: mvn, the JDK above, gcc (x86-64), zip, unzip, xz, gzip.
set -euo pipefail

readonly LIMIT_BYTES=$((64 * 1024 * 1024))
readonly BASE_MODULES="java.base,jdk.unsupported,java.logging,java.management"
readonly DEPENDENCY_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$repo_root/target/gpu-bundle}"
jdk="${GRADSCOPE_BUNDLE_JDK:-/usr/lib/jvm/temurin-25-jdk-amd64}"
target="$repo_root/target"

fail() {
  echo "gpu-bundle: $*" >&2
  exit 1
}
step() { echo "gpu-bundle: $*"; }

for tool in mvn gcc zip unzip xz gzip; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is needed and not installed"
done
[[ -x "$jdk/bin/jlink" && -x "$jdk/bin/jdeps" ]] \
  || fail "no JDK with jlink and jdeps at $jdk (set GRADSCOPE_BUNDLE_JDK to a JDK 22+)"

mkdir -p "$(dirname "$out")"
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
stage="$out.new"
rm -rf "$stage"
mkdir -p "$stage/tests/lib" "$stage/mnist"
work="$(mktemp -d)"
trap 'rm -rf "$work" "$stage"' EXIT

# --- 1. The application jar and the test classes (normal target/) --------------------------------
jar="$target/gradscope.jar"
stale() {
  [[ -f "$jar" && -d "$target/test-classes" ]] || return 0
  [[ -n "$(find "$repo_root/pom.xml" "$repo_root/src" -newer "$jar" -type f -print -quit)" ]]
}
if stale; then
  step "building target/gradscope.jar and the test classes (mvn -q -DskipTests package)"
  (cd "$repo_root" && mvn -q -B -Dstyle.color=never -DskipTests package) \
    || fail "the build failed; run 'mvn -DskipTests package' to see why"
fi
[[ -f "$jar" ]] || fail "the build made no $jar"
cp "$jar" "$stage/gradscope.jar"
ptx_compiler="$(unzip -Z1 "$stage/gradscope.jar" | grep -E '(^|/)libJNvPTXCompiler[^/]*$' || true)"
if [[ -n "$ptx_compiler" ]]; then
  zip -q -d "$stage/gradscope.jar" $ptx_compiler
  step "left out of gradscope.jar: $(echo $ptx_compiler)"
fi
cp -r "$target/test-classes" "$stage/tests/classes"

# --- 2. Test dependencies and the JUnit console launcher -----------------------------------------
# The test-only jars: the dependencies of test scope (the others are inside gradscope.jar) less JUnit
# itself (the console launcher bundles it; a second Jupiter engine would be an error). They come from
# dependency:list, which names each one's scope: build-classpath's includeScope=runtime lists the test
# scope's jars too, so the difference of the two classpaths held none.
classpath_of() { # classpath_of SCOPE FILE
  (cd "$repo_root" && mvn -q -B -Dstyle.color=never "$DEPENDENCY_PLUGIN:build-classpath" \
    -Dmdep.includeScope="$1" -Dmdep.outputFile="$2") || fail "mvn dependency:build-classpath ($1) failed"
  tr ':' '\n' <"$2" | sed '/^$/d' | LC_ALL=C sort -u >"$2.lines"
}
classpath_of test "$work/test.cp"
(cd "$repo_root" && mvn -q -B -Dstyle.color=never "$DEPENDENCY_PLUGIN:list" -DoutputAbsoluteArtifactFilename=true \
  -DoutputFile="$work/dependencies.txt") || fail "mvn dependency:list failed"
platform_jar="$(grep -m1 '/junit-platform-engine-[^/]*\.jar$' "$work/test.cp.lines" || true)"
[[ -n "$platform_jar" ]] || fail "no junit-platform-engine on the test classpath; cannot tell the JUnit version"
platform_version="$(basename "$(dirname "$platform_jar")")"
grep -o -E ':test:/[^ ]+\.jar' "$work/dependencies.txt" | sed 's/^:test://' | LC_ALL=C sort -u \
  | grep -v -E '/org/(junit|opentest4j|apiguardian)/' >"$work/test-only.lines" || true
while IFS= read -r dep; do cp "$dep" "$stage/tests/lib/"; done <"$work/test-only.lines"
# ONNX Runtime's jar (the export tests' runtime) carries its native library for five platforms, 75 MB in all; the
# GPU host is linux-x64, and the others would take the bundle past its limit.
for ort in "$stage"/tests/lib/onnxruntime-*.jar; do
  [[ -e "$ort" ]] || continue
  zip -q -d "$ort" 'ai/onnxruntime/native/osx*' 'ai/onnxruntime/native/win*' 'ai/onnxruntime/native/linux-aarch64*' \
    >/dev/null || fail "cannot take the other platforms' native libraries out of $(basename "$ort")"
done
launcher="junit-platform-console-standalone-$platform_version.jar"
(cd "$repo_root" && mvn -q -B -Dstyle.color=never "$DEPENDENCY_PLUGIN:copy" \
  -Dartifact="org.junit.platform:junit-platform-console-standalone:$platform_version" \
  -DoutputDirectory="$stage/tests") || fail "cannot fetch org.junit.platform:junit-platform-console-standalone:$platform_version"
[[ -f "$stage/tests/$launcher" ]] || fail "mvn dependency:copy did not produce tests/$launcher"
step "tests: $(find "$stage/tests/classes" -name '*.class' | wc -l) test classes, $(wc -l <"$work/test-only.lines") test-only jars, $launcher"

# --- 3. The Java runtime --------------------------------------------------------------------------
# The modules that jdeps finds the given classes need (its last line: "java.base,java.sql,...").
jdeps_modules() {
  local listing
  listing="$("$jdk/bin/jdeps" --multi-release "$jdk_feature" --ignore-missing-deps --print-module-deps "$@" 2>&1)" \
    || { echo "$listing" >&2; return 1; }
  echo "$listing" | grep -E '^[a-z][a-z0-9.]*(,[a-z][a-z0-9.]*)*$' | tail -n 1
}
jdk_feature="$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$jdk/release")"
shopt -s nullglob
test_jars=("$stage/tests/$launcher" "$stage/tests"/lib/*.jar)
shopt -u nullglob
modules="$( { echo "$BASE_MODULES"
  jdeps_modules "$stage/gradscope.jar" || fail "jdeps failed on gradscope.jar"
  jdeps_modules --class-path "$stage/gradscope.jar:$(IFS=:; echo "${test_jars[*]}")" \
    "$stage/tests/classes" "${test_jars[@]}" || fail "jdeps failed on the tests"
} | tr ',' '\n' | sed '/^$/d' | LC_ALL=C sort -u | paste -sd ',')"
jdk_release="$(sed -n 's/^JAVA_RUNTIME_VERSION="\(.*\)"/\1/p' "$jdk/release")"
runtime_stamp="jdk $jdk_release; modules $modules; jlink --strip-debug --no-header-files --no-man-pages; xz -9"
if [[ -f "$out/runtime.tar.xz" && -f "$out/runtime.txt" && "$(cat "$out/runtime.txt")" == "$runtime_stamp" ]]; then
  cp "$out/runtime.tar.xz" "$stage/runtime.tar.xz"
  step "runtime: reused from the last bundle ($modules)"
else
  step "runtime: jlink $modules (Temurin $jdk_release), then xz -9"
  # No jlink --compress: the image goes into tar.xz, and xz packs an uncompressed image far better
  # (21 MB here against 35 MB for --compress=zip-6).
  "$jdk/bin/jlink" --add-modules "$modules" --strip-debug --no-header-files --no-man-pages \
    --output "$work/runtime"
  tar -C "$work" -cf - runtime | xz -9 -T0 >"$stage/runtime.tar.xz"
fi
echo "$runtime_stamp" >"$stage/runtime.txt"

# --- 4. The cuBLAS compatibility library ----------------------------------------------------------
"$repo_root/scripts/build-cublas-compat.sh" "$stage/cublas-compat" >/dev/null
step "cublas-compat: libcublas.so.12 ($(grep -vc -e '^#' "$repo_root/src/main/native/cublas-compat/jcublas2-12.6.0-imports.txt") functions)"

# --- 5. MNIST as .gz ------------------------------------------------------------------------------
mnist="$repo_root/data/mnist"
names=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
"$repo_root/scripts/fetch-mnist.sh" "$mnist" >/dev/null || fail "cannot fetch MNIST into $mnist"
for name in "${names[@]}"; do
  if [[ -f "$out/mnist/$name.gz" && "$out/mnist/$name.gz" -nt "$mnist/$name" ]] \
      && gzip -t "$out/mnist/$name.gz" 2>/dev/null; then
    cp -p "$out/mnist/$name.gz" "$stage/mnist/$name.gz"
  else
    gzip -n -9 -c "$mnist/$name" >"$stage/mnist/$name.gz"
  fi
done
step "mnist: ${names[*]} (.gz)"

# --- 6. The run script, the peer benchmark and what went in ---------------------------------------
cp "$repo_root/scripts/gpu-bundle-run.sh" "$stage/run"
chmod +x "$stage/run"
cp "$repo_root/scripts/compare-peers.py" "$stage/compare-peers.py"
size_of() { du -sb "$1" | cut -f1; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
commit="$(git -C "$repo_root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
[[ -n "$(git -C "$repo_root" status --porcelain 2>/dev/null)" ]] && commit+=" + uncommitted changes"
{
  echo "GradScope GPU bundle built $(date -u '+%Y-%m-%d %H:%M:%S UTC') from commit $commit"
  echo "runtime: Temurin $jdk_release, modules $modules"
  echo "tests: $launcher; test-only jars: $(cd "$stage/tests/lib" && ls | paste -sd ' ' | sed 's/^$/none/')"
  echo "gradscope.jar: $(size_of "$stage/gradscope.jar") bytes, sha256 $(sha256sum "$stage/gradscope.jar" | cut -c1-16)"
} >"$stage/bundle-info.txt"

# --- 7. Sizes, the limit, and the swap into OUT_DIR ------------------------------------------------
total="$(size_of "$stage")"
echo "gpu-bundle: sizes"
for item in runtime.tar.xz gradscope.jar tests mnist cublas-compat run compare-peers.py bundle-info.txt runtime.txt; do
  printf '  %-18s %10s  %s\n' "$item" "$(size_of "$stage/$item")" "$(mib "$(size_of "$stage/$item")")"
done
printf '  %-18s %10s  %s (limit 64 MiB)\n' total "$total" "$(mib "$total")"
((total < LIMIT_BYTES)) || fail "the bundle is $(mib "$total"), over the 64 MiB limit; not installed"
rm -rf "$out"
mv "$stage" "$out"
echo "gpu-bundle: built $out ($(mib "$total")); on the GPU host run: $out/run [OUT_DIR]"
