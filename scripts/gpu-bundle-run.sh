#!/usr/bin/env bash
# GradScope's GPU check, run ON a GPU host from the bundle that scripts/gpu-bundle.sh builds (where
# it is copied as `run`). The host needs no Java, Maven or network: the bundle brings a Java runtime.
#
# Usage: ./run [OUT_DIR]      results go to OUT_DIR, else to $OUT, else to ./results
#
# In order, each step with its own log and time limit, going on after a failure:
#   info           gradscope info
#   gpu-tests      the JUnit tests tagged "gpu" (JUnit console launcher)
#   bench          gradscope bench --device cuda --op-times (each op of a step timed), then with --no-graph,
#                  --steps-per-graph 8, --steps-per-graph 1000 (a whole-epoch graph), the weight gradients
#                  in line (-Dgradscope.cuda.aside=false), reductions in chunks of 4096
#                  (-Dgradscope.cuda.reductionChunk=4096), --tf32 and --profile-cost (their JSON into
#                  logs.txt), and every `bench` subcommand its --help lists
#   peers          compare-peers.py --epochs 3: the same benchmark in PyTorch and JAX, from bench's initial
#                  weights (--save-initial-weights, --initial-weights), with a Python that
#                  has either (GRADSCOPE_PEERS_PYTHON, python3, /opt/*/bin/python3, ...); "skipped", which
#                  does not fail the run, when there is none or no variant can run
#   train-cuda     gradscope train --device cuda --epochs 2 on the full MNIST
#   train-cpu      gradscope train --device cpu --train-limit 6000 --epochs 1, for comparison
# then prints a summary table (step, status, seconds, key figure) as the very last thing, and exits
# 0 when every step succeeded, 1 otherwise.
#
# Writes at most 8 files into OUT_DIR: logs.txt (every step's output, in order), junit.xml,
# bench.json (+ one bench-SUBCOMMAND.json), peers.json, history-cuda.json, history-cpu.json, summary.txt.
#
# cuBLAS: JCublas2 12.6.0 needs libcublas.so.12. If the system has one (ldconfig or
# LD_LIBRARY_PATH), it is used as it is. Otherwise the bundle's compatibility libcublas.so.12
# (cublas-compat/), which forwards to CUDA 13's libcublas.so.13, goes first on LD_LIBRARY_PATH,
# with the folder of libcublas.so.13 (GRADSCOPE_CUBLAS13_DIR, else ldconfig, /usr/local/cuda*,
# python's nvidia/cublas/lib) after it.
#
# The runtime is unpacked once into $TMPDIR/gradscope-runtime-CHECKSUM (or GRADSCOPE_RUNTIME_DIR);
# scratch files go to a temporary folder; the bundle itself is not changed.
#
# Environment: GRADSCOPE_RUN_BUDGET_S (default 480) caps the whole run; each step's limit is cut
# so that the run ends inside it. GRADSCOPE_CUBLAS13_DIR names libcublas.so.13's folder.
# GRADSCOPE_PEERS_PYTHON names a Python (a virtual environment's) with PyTorch or JAX for `peers`.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-${OUT:-$here/results}}"
mkdir -p "$out" || { echo "run: cannot create $out" >&2; exit 1; }
out="$(cd "$out" && pwd)"
# Scratch space outside the bundle (which stays as it was copied): step logs, reports, train output.
work="$(mktemp -d "${TMPDIR:-/tmp}/gradscope-run.XXXXXX")" || { echo "run: cannot create a temporary folder" >&2; exit 1; }
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/logs" "$work/junit"
budget="${GRADSCOPE_RUN_BUDGET_S:-480}"
log="$out/logs.txt"
rm -f "$out"/logs.txt "$out"/junit.xml "$out"/bench*.json "$out"/peers.json "$out"/history-*.json "$out"/summary.txt
: >"$log"

now() { if [[ -n "${EPOCHREALTIME:-}" ]]; then echo "${EPOCHREALTIME/,/.}"; else date +%s.%N; fi; }
started="$(now)"
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
say() { echo "$*" | tee -a "$log"; }

# --- The summary, one row per step ----------------------------------------------------------------
rows=()
record() { # record STEP STATUS SECONDS FIGURE
  rows+=("$(printf '%-18s %-9s %8s  %s' "$1" "$2" "$3" "$4")")
}
status_of() {
  case "$1" in
    0) echo ok ;;
    124 | 137) echo timeout ;; # timeout's own status, or its SIGKILL after --kill-after
    134) echo aborted ;;      # SIGABRT: a native abort() or a JVM crash
    *) if (($1 > 128)); then echo "signal $(($1 - 128))"; else echo "exit $1"; fi ;;
  esac
}

# run_step NAME CAP_SECONDS COMMAND...: runs the command with its output in work/logs/NAME.log,
# under `timeout` (CAP_SECONDS, or less when the run's budget is nearly spent), appends that log to
# logs.txt, and leaves STEP_RC, STEP_SECONDS and STEP_LOG for the caller's summary row.
run_step() {
  local name="$1" cap="$2"
  shift 2
  STEP_LOG="$work/logs/$name.log"
  local left limit
  left="$(awk -v s="$started" -v n="$(now)" -v b="$budget" 'BEGIN { printf "%d", b - (n - s) - 15 }')"
  limit=$((cap < left ? cap : left))
  if ((limit < 10)); then
    say "===== $name: skipped, the run's ${budget}s budget is spent"
    STEP_RC=skipped STEP_SECONDS=0
    : >"$STEP_LOG"
    return
  fi
  say "===== $name (limit ${limit}s): $*"
  local t0
  t0="$(now)"
  timeout --kill-after=10 "$limit" "$@" >"$STEP_LOG" 2>&1 </dev/null
  STEP_RC=$?
  STEP_SECONDS="$(elapsed "$t0")"
  cat "$STEP_LOG" >>"$log"
  local crash
  for crash in "$work"/hs_err_pid*.log; do
    [[ -f "$crash" ]] || continue
    say "----- $name: the JVM crashed; the first 80 lines of its report ($(basename "$crash")):"
    head -n 80 "$crash" | tee -a "$STEP_LOG" >>"$log"
    rm -f "$crash"
  done
  say "----- $name: $(status_of "$STEP_RC") after ${STEP_SECONDS}s"
  if [[ "$STEP_RC" != 0 ]]; then # the end of a failed step's output, for whoever reads only stdout
    tail -n 15 "$STEP_LOG" | sed 's/^/    | /'
  fi
}
row_status() { [[ "$STEP_RC" == skipped ]] && echo skipped || status_of "$STEP_RC"; }

# A number from a JSON file written by GradScope (python3 when there is one, else sed).
json_number() { # json_number FILE KEY [INDEX: -1 = last element of an array]
  local file="$1" key="$2" index="${3:-}"
  [[ -f "$file" ]] || return 0
  if command -v python3 >/dev/null 2>&1; then
    python3 - "$file" "$key" "$index" <<'EOF' 2>/dev/null
import json, sys
value = json.load(open(sys.argv[1])).get(sys.argv[2])
if isinstance(value, list):
    value = (value[int(sys.argv[3])] if sys.argv[3] else sum(value) / len(value)) if value else None
if isinstance(value, bool):
    pass
elif isinstance(value, int):
    print(value)
elif isinstance(value, float):
    print("%.4g" % value)
EOF
  else
    sed -n "s/^ *\"$key\" *: *\([-0-9.eE+]*\).*/\1/p" "$file" | head -n 1
  fi
}

# --- Environment ----------------------------------------------------------------------------------
say "GradScope GPU bundle run, $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(hostname), results in $out"
[[ -f "$here/bundle-info.txt" ]] && sed 's/^/  /' "$here/bundle-info.txt" | tee -a "$log"
say "host: $(uname -srm); $(ldd --version 2>/dev/null | head -n 1)"
if command -v nvidia-smi >/dev/null 2>&1; then
  say "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -n 4 | paste -sd ';')"
else
  say "gpu: nvidia-smi not found"
fi

# --- Java runtime, unpacked once per runtime.tar.xz (outside the bundle) -------------------------
runtime_home="${GRADSCOPE_RUNTIME_DIR:-${TMPDIR:-/tmp}/gradscope-runtime-$(cksum <"$here/runtime.tar.xz" | cut -d' ' -f1)}"
java="$runtime_home/runtime/bin/java"
if [[ -x "$java" ]]; then
  say "runtime: $runtime_home/runtime (unpacked before)"
else
  t0="$(now)"
  rm -rf "$runtime_home.tmp" && mkdir -p "$runtime_home.tmp" \
    && tar -xJf "$here/runtime.tar.xz" -C "$runtime_home.tmp" 2>"$work/logs/unpack.log" \
    && rm -rf "$runtime_home" && mv "$runtime_home.tmp" "$runtime_home"
  if [[ -x "$java" ]]; then
    say "runtime: unpacked runtime.tar.xz into $runtime_home/runtime in $(elapsed "$t0")s"
  else
    say "runtime: unpacking runtime.tar.xz into $runtime_home failed: $(cat "$work/logs/unpack.log" 2>/dev/null)"
  fi
fi
say "java: $("$java" -version 2>&1 | head -n 2 | paste -sd ' ')"
# A JVM crash (in native code: JCuda, cuBLAS, a driver) leaves its report in work/, which run_step
# copies into logs.txt; every step runs in work/ so that nothing lands in the bundle.
java_cmd=("$java" --enable-native-access=ALL-UNNAMED "-XX:ErrorFile=$work/hs_err_pid%p.log")
cd "$work" || exit 1
gradscope=("${java_cmd[@]}" -jar "$here/gradscope.jar")

# --- cuBLAS: a real libcublas.so.12, else the compatibility library + libcublas.so.13 -------------
ld_cache() { # ld_cache NAME: the path the loader's cache gives for NAME (x86-64), if any
  { ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null; } | awk -v n="$1" '$1 == n && /x86-64/ { print $NF; exit }'
}
# PyTorch and JAX (the peers step) bring their own CUDA libraries: they get the environment as it came.
peers_env=(env -u GRADSCOPE_CUBLAS_COMPAT_VERBOSE)
if [[ -n "${LD_LIBRARY_PATH+set}" ]]; then peers_env+=("LD_LIBRARY_PATH=$LD_LIBRARY_PATH"); else peers_env+=(-u LD_LIBRARY_PATH); fi
real12=""
IFS=: read -r -a ld_dirs <<<"${LD_LIBRARY_PATH:-}"
for d in "${ld_dirs[@]}"; do
  [[ -n "$d" && -e "$d/libcublas.so.12" ]] && { real12="$d/libcublas.so.12"; break; }
done
[[ -n "$real12" ]] || real12="$(ld_cache libcublas.so.12)"
if [[ -n "$real12" ]]; then
  say "cublas: using the system's $real12; the compatibility library is not needed"
else
  dir13=""
  candidates=()
  [[ -n "${GRADSCOPE_CUBLAS13_DIR:-}" ]] && candidates+=("$GRADSCOPE_CUBLAS13_DIR")
  candidates+=("${ld_dirs[@]}")
  from_cache="$(ld_cache libcublas.so.13)"
  [[ -n "$from_cache" ]] && candidates+=("$(dirname "$from_cache")")
  for d in /usr/local/cuda*/targets/x86_64-linux/lib /usr/local/cuda*/lib64; do candidates+=("$d"); done
  if command -v python3 >/dev/null 2>&1; then
    while IFS= read -r d; do candidates+=("$d"); done < <(python3 -c '
import site, sys, glob, os
roots = list(site.getsitepackages()) + [site.getusersitepackages()] + sys.path
for r in dict.fromkeys(roots):
    for d in glob.glob(os.path.join(r, "nvidia", "cublas", "lib")):
        print(d)' 2>/dev/null)
  fi
  for d in /usr/lib/python3*/*-packages/nvidia/cublas/lib /usr/local/lib/python3*/*-packages/nvidia/cublas/lib \
      /opt/*/lib/python3*/site-packages/nvidia/cublas/lib; do candidates+=("$d"); done
  for d in "${candidates[@]}"; do
    [[ -n "$d" && -e "$d/libcublas.so.13" ]] && { dir13="$d"; break; }
  done
  if [[ -n "$dir13" ]]; then
    export LD_LIBRARY_PATH="$here/cublas-compat:$dir13${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export GRADSCOPE_CUBLAS_COMPAT_VERBOSE=1
    say "cublas: no libcublas.so.12 here; using the bundle's compatibility library ($here/cublas-compat)" \
      "forwarding to $dir13/libcublas.so.13"
  else
    say "cublas: neither libcublas.so.12 nor libcublas.so.13 found (set GRADSCOPE_CUBLAS13_DIR);" \
      "anything that needs cuBLAS will fail"
  fi
fi
say "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"

# --- 1. gradscope info ----------------------------------------------------------------------------
run_step info 60 "${gradscope[@]}" info --data-dir "$here/mnist"
record info "$(row_status)" "$STEP_SECONDS" "$(grep -m1 '^cuda:' "$STEP_LOG" | cut -c1-70)"

# --- 2. the GPU tests -----------------------------------------------------------------------------
junit_jar="$(ls "$here"/tests/junit-platform-console-standalone-*.jar 2>/dev/null | head -n 1)"
test_cp="$here/tests/classes:$here/gradscope.jar"
for jar in "$here"/tests/lib/*.jar; do [[ -e "$jar" ]] && test_cp+=":$jar"; done
run_step gpu-tests 180 "${java_cmd[@]}" -jar "$junit_jar" execute \
  --class-path "$test_cp" --scan-class-path "$here/tests/classes" --include-tag gpu \
  --fail-if-no-tests --reports-dir "$work/junit" --details tree --disable-banner --disable-ansi-colors
junit_count() { sed -n "s/^\[ *\([0-9]*\) tests $1 *\]$/\1/p" "$STEP_LOG" | tail -n 1; }
if [[ -z "$(junit_count found)" ]]; then
  record gpu-tests "$(row_status)" "$STEP_SECONDS" "$(grep -m1 -i -E 'error|exception' "$STEP_LOG" | cut -c1-70)"
elif [[ "$(junit_count found)" == 0 ]]; then
  record gpu-tests "$(row_status)" "$STEP_SECONDS" "no test tagged \"gpu\" was found"
else
  # Tests that JUnit aborted (a failed assumption, e.g. "no usable CUDA device") did not run: the
  # step does not count as passed then, and the first reason is shown.
  status="$(row_status)"
  figure="$(junit_count successful) passed, $(junit_count failed) failed, $(junit_count aborted) aborted, $(junit_count skipped) skipped, of $(junit_count found)"
  if [[ "$status" == ok && "$(junit_count aborted)" != 0 ]]; then
    status="not run"
    figure+="; $(grep -m1 -o 'Assumption failed: .*' "$STEP_LOG" | cut -c1-60)"
  fi
  record gpu-tests "$status" "$STEP_SECONDS" "$figure"
fi
shopt -s nullglob
reports=("$work"/junit/TEST-*.xml)
if ((${#reports[@]} == 1)); then
  cp "${reports[0]}" "$out/junit.xml"
elif ((${#reports[@]} > 1)); then # one XML per test engine: merge them under one root
  {
    echo '<?xml version="1.0" encoding="UTF-8"?>'
    echo '<testsuites>'
    for r in "${reports[@]}"; do sed '/^<?xml/d' "$r"; done
    echo '</testsuites>'
  } >"$out/junit.xml"
fi
shopt -u nullglob

# --- 3. benchmarks --------------------------------------------------------------------------------
run_step bench-help 30 "${gradscope[@]}" bench --help
bench_help="$STEP_LOG"
# --op-times (where listed): every op of a step timed on the device, the table in logs.txt, op_times in bench.json.
op_times=()
grep -q -- '--op-times' "$bench_help" && op_times=(--op-times)
# GradScope's initial weights (where listed), so that the peers step starts PyTorch and JAX from them too.
initial_weights=()
grep -q -- '--save-initial-weights' "$bench_help" && initial_weights=(--save-initial-weights "$work/initial.safetensors")
run_step bench 120 "${gradscope[@]}" bench --device cuda --data-dir "$here/mnist" --out "$out/bench.json" \
  "${op_times[@]}" "${initial_weights[@]}"
if [[ -f "$out/bench.json" ]]; then
  record bench "$(row_status)" "$STEP_SECONDS" \
    "median epoch $(json_number "$out/bench.json" median_epoch_seconds) s ($(json_number "$out/bench.json" train_examples) examples), $(json_number "$out/bench.json" kernels_per_step) kernels/step"
else
  record bench "$(row_status)" "$STEP_SECONDS" "$(grep -m1 -i 'error' "$STEP_LOG" | cut -c1-70)"
fi
# Issue 5's comparisons, each a bench run of its own: eager steps (--no-graph) against the CUDA graph,
# graphs of several steps, the weight gradients in line instead of on the side stream, TF32 GEMMs, and
# the profiler's cost (epochs alternating off and on). Their JSON goes into logs.txt (OUT_DIR keeps to 8
# files); the summary gets each one's figure. Leading -Dname=value arguments go to the JVM.
bench_variant() { # bench_variant NAME CAP FIGURE_KEY [-Dname=value...] ARGS...
  local name="$1" cap="$2" key="$3"
  shift 3
  local properties=()
  while [[ $# -gt 0 && "$1" == -D* ]]; do properties+=("$1"); shift; done
  run_step "$name" "$cap" "${java_cmd[@]}" "${properties[@]}" -jar "$here/gradscope.jar" bench --device cuda \
    --data-dir "$here/mnist" --out "$work/$name.json" "$@"
  if [[ -f "$work/$name.json" ]]; then
    { echo "----- $name.json"; cat "$work/$name.json"; echo; } >>"$log"
    record "$name" "$(row_status)" "$STEP_SECONDS" "$key $(json_number "$work/$name.json" "$key")"
  else
    record "$name" "$(row_status)" "$STEP_SECONDS" "$(grep -m1 -i 'error' "$STEP_LOG" | cut -c1-70)"
  fi
}
if grep -q -- '--no-graph' "$bench_help"; then
  bench_variant bench-no-graph 90 median_epoch_seconds --no-graph
fi
# Several steps per graph launch: 8, and the epoch's full batches as one graph (1000 is cut to them).
if grep -q -- '--steps-per-graph' "$bench_help"; then
  bench_variant bench-graph-8 90 median_epoch_seconds --steps-per-graph 8
  bench_variant bench-graph-epoch 90 median_epoch_seconds --steps-per-graph 1000
fi
# The side stream's saving: the same bench with every weight-gradient GEMM in line (CudaBackend reads the
# property; an older jar ignores it and the two rows agree).
bench_variant bench-no-aside 90 median_epoch_seconds -Dgradscope.cuda.aside=false
# The segmented reductions (the optimizer's kernel, which also measures the step's norms) in chunks of 4096
# instead of 8192: 141 blocks for the MLP's 575,050 parameters instead of 71, more than an H100's 132 multiprocessors.
bench_variant bench-chunk-4096 90 median_epoch_seconds -Dgradscope.cuda.reductionChunk=4096
if grep -q -- '--tf32' "$bench_help"; then
  bench_variant bench-tf32 90 median_epoch_seconds --tf32
fi
if grep -q -- '--profile-cost' "$bench_help"; then
  bench_variant bench-profile-cost 120 profile_overhead --profile-cost --epochs 6
fi
# Subcommands that `bench --help` lists (picocli's "Commands:" section), e.g. a kernel benchmark.
subcommands="$(awk '/^Commands:/ { on = 1; next } on && /^  [A-Za-z]/ { print $1 } on && /^[^ ]/ { on = 0 }' "$bench_help" | sed 's/,$//')"
extra_results=0
for sub in $subcommands; do
  [[ "$sub" == help ]] && continue
  run_step "bench-$sub-help" 30 "${gradscope[@]}" bench "$sub" --help
  args=()
  grep -q -- '--device' "$STEP_LOG" && args+=(--device cuda)
  grep -q -- '--data-dir' "$STEP_LOG" && args+=(--data-dir "$here/mnist")
  # One result file at most, so that OUT_DIR stays within 8 files; the others stay in work/.
  if grep -q -- '--out' "$STEP_LOG"; then
    if ((extra_results < 1)); then args+=(--out "$out/bench-$sub.json"); else args+=(--out "$work/bench-$sub.json"); fi
    extra_results=$((extra_results + 1))
  fi
  run_step "bench-$sub" 90 "${gradscope[@]}" bench "$sub" "${args[@]}"
  record "bench-$sub" "$(row_status)" "$STEP_SECONDS" "$(tail -n 1 "$STEP_LOG" | cut -c1-70)"
done

# --- 4. the same benchmark in PyTorch and JAX (compare-peers.py) ------------------------------------
# A Python for each framework: the first that has it and NumPy, among GRADSCOPE_PEERS_PYTHON, python3 on
# the PATH and the usual virtual-environment places (PyTorch and JAX may live in different ones).
peer_candidates=()
[[ -n "${GRADSCOPE_PEERS_PYTHON:-}" ]] && peer_candidates+=("$GRADSCOPE_PEERS_PYTHON")
command -v python3 >/dev/null 2>&1 && peer_candidates+=("$(command -v python3)")
[[ -n "${VIRTUAL_ENV:-}" ]] && peer_candidates+=("$VIRTUAL_ENV/bin/python3")
home="${HOME:-/nonexistent}"
for py in /opt/*/bin/python3 /opt/*/*/bin/python3 "$home"/*/bin/python3 "$home"/.venv*/bin/python3 /usr/local/bin/python3; do
  [[ -x "$py" ]] && peer_candidates+=("$py")
done
python_with() { # python_with MODULE: the first candidate that can import MODULE and numpy, if any
  local py
  for py in "${peer_candidates[@]}"; do
    "$py" -c 'import importlib.util as u, sys; sys.exit(not (u.find_spec(sys.argv[1]) and u.find_spec("numpy")))' \
      "$1" 2>/dev/null && { echo "$py"; return; }
  done
}
torch_python="$(python_with torch)"
jax_python="$(python_with jax)"
peers_python="${torch_python:-$jax_python}"
if [[ -z "$peers_python" ]]; then
  say "===== peers: skipped, no Python with NumPy and PyTorch or JAX (tried: ${peer_candidates[*]:-none})"
  record peers skipped 0 "no Python with PyTorch or JAX (GRADSCOPE_PEERS_PYTHON names one)"
else
  say "peers: PyTorch from ${torch_python:-nowhere}, JAX from ${jax_python:-nowhere}"
  peer_pythons=()
  [[ -n "$torch_python" ]] && peer_pythons+=(--torch-python "$torch_python")
  [[ -n "$jax_python" ]] && peer_pythons+=(--jax-python "$jax_python")
  peers_initial=()
  [[ -f "$work/initial.safetensors" ]] && peers_initial=(--initial-weights "$work/initial.safetensors")
  run_step peers 150 "${peers_env[@]}" "$peers_python" "$here/compare-peers.py" --device cuda --epochs 3 \
    --data-dir "$here/mnist" --out "$work/peers.json" "${peer_pythons[@]}" "${peers_initial[@]}"
  [[ -f "$work/peers.json" ]] && cp "$work/peers.json" "$out/peers.json"
  # The fastest variant that ran, against GradScope's bench median when there is one.
  figure="$("$peers_python" - "$work/peers.json" "$out/bench.json" 2>/dev/null <<'PEERS'
import json, sys
peers = json.load(open(sys.argv[1]))
ran = [p for p in peers if "median_epoch_seconds" in p]
counts = "%d ran, %d skipped, %d failed" % (
    len(ran), sum("skipped" in p for p in peers), sum("failed" in p for p in peers))
if ran:
    best = min(ran, key=lambda p: p["median_epoch_seconds"])
    line = "fastest %s (%s) %.4g s" % (best["backend"], best["precision"], best["median_epoch_seconds"])
    try:
        line += " vs GradScope %.4g s" % json.load(open(sys.argv[2]))["median_epoch_seconds"]
    except (OSError, ValueError, KeyError):
        pass
    print(line + "; " + counts)
else:
    print(counts + ": " + next((p.get("skipped") or p.get("failed") for p in peers), "")[:60])
PEERS
)"
  status="$(row_status)"
  [[ "$STEP_RC" == 3 ]] && status=skipped # compare-peers.py's "every variant skipped" (no GPU for them, say)
  record peers "$status" "$STEP_SECONDS" "${figure:-$(grep -m1 -i 'error' "$STEP_LOG" | cut -c1-70)}"
fi

# --- 5. training: CUDA, then a short CPU run to compare -------------------------------------------
train_row() { # train_row NAME HISTORY
  local final
  final="$(grep -m1 '^final:' "$STEP_LOG" | sed 's/^final: //; s/; wrote.*//')"
  record "$1" "$(row_status)" "$STEP_SECONDS" \
    "${final:-$(grep -m1 -i 'error' "$STEP_LOG" | cut -c1-70)}$([[ -f "$2" ]] && echo ", $(json_number "$2" epoch_seconds -1) s/epoch (last)")"
}
run_step train-cuda 150 "${gradscope[@]}" train --device cuda --epochs 2 --data-dir "$here/mnist" \
  --out "$work/train-cuda"
[[ -f "$work/train-cuda/history.json" ]] && cp "$work/train-cuda/history.json" "$out/history-cuda.json" \
  && chmod a+r "$out/history-cuda.json"
train_row train-cuda "$out/history-cuda.json"
run_step train-cpu 90 "${gradscope[@]}" train --device cpu --train-limit 6000 --epochs 1 \
  --data-dir "$here/mnist" --out "$work/train-cpu"
[[ -f "$work/train-cpu/history.json" ]] && cp "$work/train-cpu/history.json" "$out/history-cpu.json" \
  && chmod a+r "$out/history-cpu.json"
train_row train-cpu "$out/history-cpu.json"

chmod a+r "$out"/* 2>/dev/null

# --- Summary, the last thing printed --------------------------------------------------------------
{
  echo
  echo "GradScope GPU bundle summary ($(elapsed "$started")s in all, budget ${budget}s; logs in $out/logs.txt)"
  printf '%-18s %-9s %8s  %s\n' step status seconds "key figure"
  printf '%s\n' "${rows[@]}"
} >"$out/summary.txt"
cat "$out/summary.txt" >>"$log"
cat "$out/summary.txt"
# A skipped peers step (nothing to compare with here) is no failure of GradScope's.
for row in "${rows[@]}"; do [[ "$row" =~ ^[^\ ]+\ +ok\  || "$row" =~ ^peers\ +skipped\  ]] || exit 1; done
exit 0
