// The CUDA emulator's kernel runner: the project's real kernels (src/main/cuda/*.cu, compiled as C++ by
// scripts/build-cuda-emulator-kernels.sh with device.h force-included) run on the CPU with CUDA's
// thread, block and warp semantics.
//
// Execution model
//   - runKernel runs a whole grid synchronously on the calling OS thread: blocks one after another, in
//     blockIdx order (x fastest, then y, then z) but starting from the middle block and wrapping around,
//     so that the block to run last is not the highest one (a GPU gives no order).
//   - The threads of a block are cooperative fibers (user-mode stacks of 64 KiB with a guard page, 1024
//     of them mapped once per OS thread that runs kernels and reused; only touched pages take memory).
//     A fiber runs without interruption until it reaches a barrier or returns:
//     __syncthreads waits for every thread of the block; a warp shuffle (__shfl_xor_sync) waits for the
//     lanes of its mask within the warp (32 lanes, numbered by CUDA's x-fastest linearisation of
//     threadIdx). Between two barriers, threads run in order of their linear index, lower first, and a
//     warp goes on through its shuffles before the next warp starts; so the schedule, and every result,
//     is deterministic.
//   - __shared__ variables are thread_local: one instance per OS thread, that is per running block.
//
// What it reveals
//   - A missing __syncthreads (or warp synchronisation) where a lower thread reads what a higher one
//     writes: the lower one runs first and reads the stale value; or where a lower thread overwrites
//     what a higher one has still to read: it runs on, up to its next barrier, before the higher one
//     reads.
//   - Divergent barriers: a __syncthreads that some threads of the block never reach (they returned,
//     or wait at a shuffle) or a shuffle that a lane of its mask never reaches is reported as a
//     deadlock, naming the kernel, block and threads. CUDA calls these undefined; a GPU may hang or,
//     for threads that returned, go on, so the emulator is stricter than some GPUs.
//   - A shuffle whose mask omits the calling lane or names a lane the block does not have, or whose
//     lanes pass different masks, or that reads a lane outside its mask.
//   - Reads and writes out of bounds are plain CPU memory accesses: nothing is clamped or hidden. A
//     wild access crashes the process (a GPU would fail the launch); one just past an allocation is
//     for the driver layer's guard bytes to catch. A misaligned float4 access may fault, as on a GPU.
//
// What it cannot reveal
//   - Races between blocks: blocks never run concurrently, so results can never depend on their timing
//     here, and there is no memory model (no stale caches, no reordering, no volatile or fence bugs):
//     every write is seen at once by every later read. (Atomic functions are not provided at all; the
//     kernels use none.)
//   - Races within a block in the other direction: a higher thread that reads what a lower one writes
//     without a barrier sees the new value here, as it often would on a GPU.
//   - Timing, occupancy, register or shared-memory limits, bank conflicts, and performance in general.
//   - CUDA's own math library: expf, erfcf, exp, ... are the host's glibc, which may differ from CUDA's
//     by an ulp or two; the basic operations and the __f*_rn / __d*_rn intrinsics are IEEE in both.
//   - FMA contraction: nvcc fuses a * b + c into one rounding (scripts/build-ptx.sh keeps -fmad=true),
//     the emulator's build never does; outside the __f*_rn intrinsics, last bits may differ.
//   - Uninitialised shared memory: a block sees what the previous block on the same OS thread left.
//   - Dynamic shared memory (extern __shared__): not supported; a launch that asks for it fails.
#pragma once

#include <cstddef>
#include <string>
#include <utility>

namespace gsemu {

struct Dim3 {
    unsigned x, y, z;
};

/** One kernel of the build: its extern "C" name and how to call it from cuLaunchKernel's kernelParams. */
struct KernelEntry {
    const char* name;             // the extern "C" kernel name, e.g. "relu_forward"
    int arity;                    // number of parameters
    const std::size_t* argSizes;  // sizeof each parameter type (as in cuLaunchKernel's kernelParams)
    void (*invoke)(void** params); // calls the kernel once, as the current emulated thread
};

/** The kernel named `name` among every family's kernels; nullptr when there is none. */
const KernelEntry* findKernel(const char* name);

/** How many kernels the build has, for kernelAt. */
std::size_t kernelCount();

/** Kernel i of the build, 0 <= i < kernelCount(). */
const KernelEntry& kernelAt(std::size_t i);

/**
 * Runs the whole grid now, on the calling thread. params is cuLaunchKernel's kernelParams: params[i]
 * points at the value of parameter i. Returns "" on success, else a one-line message that names the
 * kernel: an invalid launch shape, or a deadlock or misuse of a barrier (with the block and threads).
 * May be called from several OS threads at once (each has its own fibers), but not from inside a kernel.
 */
std::string runKernel(const KernelEntry& kernel, Dim3 grid, Dim3 block, unsigned dynamicSharedBytes, void** params);

// ---- building KernelEntry tables (the generated registry, and tests with kernels of their own) ----

namespace detail {

template <auto Kernel>
struct KernelAdapter;

template <class... Params, void (*Kernel)(Params...)>
struct KernelAdapter<Kernel> {
    static constexpr int arity = sizeof...(Params);
    // One element more than the parameters: a C++ array cannot be empty.
    static constexpr std::size_t argSizes[sizeof...(Params) + 1] = {sizeof(Params)..., 0};

    static void invoke(void** params) { invokeWith(params, std::index_sequence_for<Params...>{}); }

    template <std::size_t... I>
    static void invokeWith([[maybe_unused]] void** params, std::index_sequence<I...>) {
        Kernel(*static_cast<Params*>(params[I])...);
    }
};

} // namespace detail

/** The KernelEntry of `Kernel` under `name`: usable in a constant-initialised table. */
template <auto Kernel>
constexpr KernelEntry kernelEntry(const char* name) {
    using Adapter = detail::KernelAdapter<Kernel>;
    return KernelEntry{name, Adapter::arity, Adapter::argSizes, &Adapter::invoke};
}

/** One .cu file's kernels: each family's generated table defines one, and the generated registry lists them all. */
struct KernelFamily {
    const char* name; // the file's name without .cu, e.g. "reduce"
    const KernelEntry* kernels;
    std::size_t count;
};

namespace detail {

/** Every family of the build, in the registry that scripts/build-cuda-emulator-kernels.sh generates. */
extern const KernelFamily* const kernelFamilies[];
extern const std::size_t kernelFamilyCount;

} // namespace detail

} // namespace gsemu
