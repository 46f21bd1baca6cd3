#!/usr/bin/env bash
# Compiles every SRC_DIR/*.cu to OUT_DIR/<name>.ptx with nvcc, then checks the PTX against the kernel
# ABI (src/main/cuda/README.md): every kernel the CUDA backend loads must be an .entry of its module,
# no kernel may use a floating-point atomic (results must be reproducible), and every kernel must fit a
# block of 1024 threads (the launches of the reductions and column tiles): at most 64 registers per
# thread when ptxas compiles the PTX for sm_90, as the driver's JIT does on an H100 (a kernel over that
# would fail to launch there with "too many resources requested", a failure no CPU test can see), and
# without spilling registers to local memory (a kernel declared GS_BLOCKS_OF_1024 is capped at 64 by its
# launch bounds, so ptxas spills rather than exceed them: the spill, a slowdown no test sees, is the sign).
#
# Usage: scripts/build-ptx.sh SRC_DIR OUT_DIR
#
# The Maven build runs it at generate-resources with OUT_DIR = target/classes/ptx, so the PTX lands in
# the jar as /ptx/<name>.ptx. Without nvcc it prints one line saying the kernels were not built and
# exits 0 (the CPU backend still works and the CUDA backend reports the missing kernels); with nvcc,
# any compiler error or warning, or a missing kernel, fails the build. A .ptx newer than its .cu, every
# .cuh and this script is not rebuilt (the checks run every time).
#
# Environment: NVCC (the compiler; default: nvcc on PATH, else /usr/local/cuda/bin/nvcc),
# GRADSCOPE_CUDA_ARCH (default compute_75, see below), PTXAS (default: ptxas beside nvcc, else on PATH;
# without one the register and spill checks are skipped, with a line saying so).
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 SRC_DIR OUT_DIR" >&2
  exit 2
fi
src_dir="$1"
out_dir="$2"
script="${BASH_SOURCE[0]}"
repo_root="$(cd "$(dirname "$script")/.." && pwd)"
activation_kinds="$repo_root/src/main/java/dev/gradscope/tensor/ActivationKind.java"

fail() {
  echo "build-ptx: $*" >&2
  exit 1
}

nvcc="${NVCC:-}"
if [[ -z "$nvcc" ]]; then
  nvcc="$(command -v nvcc || true)"
  if [[ -z "$nvcc" && -x /usr/local/cuda/bin/nvcc ]]; then
    nvcc=/usr/local/cuda/bin/nvcc
  fi
fi
if [[ -z "$nvcc" ]]; then
  echo "build-ptx: nvcc not found, so the CUDA kernels were not built (the jar has no /ptx resources; the CPU backend is unaffected)"
  exit 0
fi

# Target: PTX for the virtual architecture compute_75 (Turing), the oldest that nvcc 13 accepts. The
# driver JIT-compiles PTX for the GPU it runs on, so this one file serves the H100/H200 (sm_90) and
# every GPU from Turing on; nothing here needs a newer feature (16-byte __ldg, warp shuffles and FP64
# all exist on sm_75). -arch=sm_90 (the form tried first on the H100) would make the PTX refuse to load
# on Turing, Ampere and Ada. The one-time JIT cost is cached by the driver (~/.nv/ComputeCache).
# The PTX's ISA version is the nvcc's (.version 9.0 for nvcc 13.0): the driver must be at least as new
# as that CUDA release.
arch="${GRADSCOPE_CUDA_ARCH:-compute_75}"

# Precise math, as the CPU reference: no --use_fast_math; stated explicitly so that a changed default
# cannot slip in: IEEE division and square root, subnormals kept (no flush to zero). FMA contraction
# stays on (it only makes a*b+c more accurate); the optimizer, which must match the CPU's float
# arithmetic bit for bit, uses __f*_rn intrinsics that are never contracted. -lineinfo maps PTX back
# to source lines for Nsight; every warning is an error.
flags=(-ptx "-arch=$arch" -std=c++17 -lineinfo -prec-div=true -prec-sqrt=true -ftz=false -fmad=true
  -Werror all-warnings)

# Every kernel fits a block of 1024 threads (the launches of the reductions, column tiles and losses, which
# GS_BLOCKS_OF_1024 also bounds): 65536 registers per block on every GPU from Turing on, so at most 64 per
# thread. ptxas -v compiles each PTX as the driver would for sm_90 and reports each kernel's registers
# (about 3 s, every build, as the other checks). A kernel with launch bounds never reports more than they
# allow: ptxas spills the rest to local memory instead, so any spill (stores or loads) fails the build too.
# Without ptxas the checks are skipped, and the summary says so.
max_registers=64
ptxas="${PTXAS:-$(dirname "$nvcc")/ptxas}"
[[ -x "$ptxas" ]] || ptxas="$(command -v ptxas || true)"
if [[ -n "$ptxas" ]]; then
  register_note=", each within $max_registers registers on sm_90 and without spills"
else
  register_note=", registers and spills not checked (no ptxas)"
fi
check_registers() { # check_registers PTX NAME: prints each kernel over the limit or spilling; fails if there is one
  [[ -n "$ptxas" ]] || return 0
  local report over
  report="$("$ptxas" -arch=sm_90 -v -o /dev/null "$1" 2>&1)" || { echo "$report" >&2; fail "ptxas failed on $2"; }
  # "Compiling entry function 'KERNEL' for 'sm_90'", then "... Used N registers, ..."; and for each function
  # (a kernel, or a device function not inlined) "Function properties for NAME", then
  # "N bytes stack frame, S bytes spill stores, L bytes spill loads".
  over="$(awk -v limit="$max_registers" -v module="$2" '
    /Compiling entry function/ { kernel = $0; sub(/^[^\047]*\047/, "", kernel); sub(/\047.*/, "", kernel) }
    /Used [0-9]+ registers/ { for (i = 1; i <= NF; i++) if ($i == "Used" && $(i + 1) > limit) print "build-ptx: " module ": " kernel " uses " $(i + 1) " registers" }
    /Function properties for / { function_name = $0; sub(/.*Function properties for /, "", function_name) }
    /bytes spill stores/ {
      stores = $0; sub(/ bytes spill stores.*/, "", stores); sub(/.* /, "", stores)
      loads = $0; sub(/ bytes spill loads.*/, "", loads); sub(/.* /, "", loads)
      if (stores + 0 > 0 || loads + 0 > 0) print "build-ptx: " module ": " function_name " spills registers (" stores " bytes spill stores, " loads " bytes spill loads)"
    }' <<<"$report")"
  [[ -z "$over" ]] || { echo "$over" >&2; return 1; }
}

shopt -s nullglob
sources=("$src_dir"/*.cu)
headers=("$src_dir"/*.cuh)
[[ ${#sources[@]} -gt 0 ]] || fail "no .cu files in $src_dir"
mkdir -p "$out_dir"

for source in "${sources[@]}"; do
  name="$(basename "$source" .cu)"
  ptx="$out_dir/$name.ptx"
  stale=0
  for input in "$source" "${headers[@]}" "$script"; do
    [[ -f "$ptx" && ! "$input" -nt "$ptx" ]] || stale=1
  done
  if [[ $stale -eq 1 ]]; then
    # nvcc prints its own errors; write to a temporary file so a failed build leaves no partial PTX.
    "$nvcc" "${flags[@]}" -o "$ptx.tmp" "$source" || { rm -f "$ptx.tmp"; fail "nvcc failed on $source (flags: ${flags[*]})"; }
    mv "$ptx.tmp" "$ptx"
  fi
done

# ---- the ABI check ------------------------------------------------------------------------------

# Every element-wise activation kind has ID_forward, ID_backward, ID_bias_forward and ID_bias_backward; a
# kind with a parameter also has ID_parameter_gradient. The kinds are read from ActivationKind.java, the one
# list of kinds, so a kind added there without its kernels fails the build. Its constants look like
#     LEAKY_RELU("leaky_relu", "alpha", 0.01),     STEP("step", null, 0),
# softmax is the one kind that is not element-wise (ActivationKind.isElementWise): it is softmax_rows.
[[ -f "$activation_kinds" ]] || fail "cannot read the activation kinds: $activation_kinds is missing"
expected_activations=()
kind_count=0
while read -r id parameter; do
  [[ "$id" == softmax ]] && continue
  kind_count=$((kind_count + 1))
  expected_activations+=("${id}_forward" "${id}_backward" "${id}_bias_forward" "${id}_bias_backward")
  [[ "$parameter" == null ]] || expected_activations+=("${id}_parameter_gradient")
done < <(sed -nE 's/^[[:space:]]*[A-Z][A-Z0-9_]*\("([a-z0-9_]+)",[[:space:]]*(null|"[a-z]+"),.*/\1 \2/p' \
  "$activation_kinds")
[[ $kind_count -gt 0 ]] || fail "found no activation kinds in $activation_kinds (has its format changed?)"

declare -A expected_by_module=(
  [activations]="${expected_activations[*]} maxout_forward maxout_backward softmax_rows"
  [batch_norm]="batch_norm_training_forward batch_norm_training_statistics batch_norm_training_normalize
    batch_norm_inference_forward batch_norm_backward batch_norm_backward_sums batch_norm_backward_dx"
  [dropout]="dropout_forward dropout_backward"
  [loss]="softmax_cross_entropy_rows softmax_mse_rows"
  [optim]="adam_update sgd_update adam_update_measured sgd_update_measured clip_by_value clip_by_global_norm
    adam_update_counter adam_update_measured_counter rmsprop_update rmsprop_update_measured
    nadam_update_counter nadam_update_measured_counter adamax_update_counter adamax_update_measured_counter
    adagrad_update adagrad_update_measured"
  [reduce]="column_sums add_row_vector segment_sum_of_squares fill_f32"
  [data]="gather_rows_u8 gather_rows_f32 gather_rows_u8_counter gather_rows_f32_counter gather_batch_counter
    gather_next_batch copy_to_row_f32 advance_counters"
)

missing=()
kernel_count=0
for module in "${!expected_by_module[@]}"; do
  ptx="$out_dir/$module.ptx"
  [[ -f "$ptx" ]] || fail "$ptx was not built: is $src_dir/$module.cu missing?"
  entries=" $(sed -nE 's/^[[:space:]]*(\.visible[[:space:]]+)?\.entry[[:space:]]+([A-Za-z0-9_]+)[[:space:]]*\(.*/\2/p' "$ptx" | tr '\n' ' ') "
  for kernel in ${expected_by_module[$module]}; do
    if [[ "$entries" == *" $kernel "* ]]; then
      kernel_count=$((kernel_count + 1))
    else
      missing+=("$module.ptx: $kernel")
    fi
  done
done
if [[ ${#missing[@]} -gt 0 ]]; then
  printf 'build-ptx: missing kernel: %s\n' "${missing[@]}" >&2
  fail "${#missing[@]} kernel(s) of the ABI are not in the PTX (see src/main/cuda/README.md)"
fi

if [[ -n "$ptxas" ]]; then
  for ptx in "$out_dir"/*.ptx; do
    check_registers "$ptx" "$(basename "$ptx")" ||
      fail "kernel(s) over $max_registers registers could not launch with 1024 threads on sm_90, and spills (a kernel whose launch bounds cap its registers) are slow local-memory traffic"
  done
fi

# Deterministic reductions only: a floating-point atomic (atom/red on f16/f32/f64) fails the build.
if atomics="$(grep -HnE '^[[:space:]]*(@!?%p[0-9]+[[:space:]]+)?(atom|red)(\.[a-z0-9_]+)*\.(f16|bf16|f16x2|bf16x2|f32|f64)\b' \
  "$out_dir"/*.ptx)"; then
  echo "$atomics" >&2
  fail "floating-point atomics found: sums must use the fixed-order reductions of common.cuh"
fi

echo "build-ptx: ${#sources[@]} modules, $kernel_count kernels ($kind_count activation kinds), $arch$register_note, -> $out_dir"
