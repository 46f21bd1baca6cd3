// CUDA's device-side vocabulary for g++: force-included (`g++ -include device.h`) before each
// src/main/cuda/*.cu so that the real kernel sources compile as plain C++17/20 and run on the CPU under
// the fiber runner of grid.h / grid.cc (the execution model and its limits are described there).
//
// Only what the kernels use is here. Everything numeric is the host's: float and double arithmetic on
// SSE is IEEE with one rounding per operation, as on the GPU, provided the build passes
// -ffp-contract=off (so that nothing is fused into an FMA behind the __f*_rn intrinsics' back); the math
// functions (expf, erfcf, exp, ...) are glibc's, which may differ from CUDA's by an ulp or two.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <math.h> // libstdc++'s: puts std::isnan, std::isinf, std::signbit and the float overloads in ::
#include <type_traits>

using std::size_t;

// ---- declaration specifiers ---------------------------------------------------------------------
//
// __restrict__ is g++'s own keyword. __forceinline__ is only a performance hint on the GPU, and
// always_inline keeps the emulated kernels close to the code nvcc would run.

#define __global__
#define __launch_bounds__(...)
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))

// One instance per block: every block of a launch runs on one OS thread, its threads being fibers of
// that thread, and blocks run one after another, so a thread_local is exactly "shared by the threads of
// the running block". Like CUDA's shared memory it is not cleared between blocks (a block sees what the
// previous one left, where CUDA gives undefined contents). Dynamic shared memory (extern __shared__)
// does not compile with this definition; runKernel refuses a launch that asks for it.
#define __shared__ static thread_local

// ---- vector types ------------------------------------------------------------------------------
//
// may_alias: the kernels read and write float arrays through float4 lvalues (16-byte accesses), which
// nvcc allows and C++'s strict aliasing rule would not.

struct uint3 {
    unsigned x, y, z;
};

struct dim3 {
    unsigned x, y, z;
};

struct __attribute__((may_alias, aligned(16))) float4 {
    float x, y, z, w;
};

inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }

// ---- the current emulated thread (set by the runner before it resumes a fiber) ----------------------

namespace gsemu::device {

/** What threadIdx, blockIdx, blockDim and gridDim read, under names that those macros leave alone. */
struct ThreadCoordinates {
    uint3 threadIndex;
    uint3 blockIndex;
    dim3 blockSize;
    dim3 gridSize;
    unsigned lane; // threadIdx linearised x-fastest, modulo 32: the lane within the warp
};

// __thread rather than thread_local: a plain TLS variable without the C++ initialisation wrapper, which
// every read of threadIdx would otherwise call.
extern __thread ThreadCoordinates current;

/** __syncthreads: waits until every thread of the block has arrived. */
void syncThreads();

/**
 * One round of a warp exchange among the lanes of `mask`: publishes `value`, waits for every lane of the
 * mask, and returns the value that lane `sourceLane` published.
 */
std::uint64_t exchangeInWarp(unsigned mask, std::uint64_t value, unsigned sourceLane);

} // namespace gsemu::device

#define threadIdx (static_cast<const uint3&>(::gsemu::device::current.threadIndex))
#define blockIdx (static_cast<const uint3&>(::gsemu::device::current.blockIndex))
#define blockDim (static_cast<const dim3&>(::gsemu::device::current.blockSize))
#define gridDim (static_cast<const dim3&>(::gsemu::device::current.gridSize))

// ---- synchronisation and warp shuffles -------------------------------------------------------------

inline void __syncthreads() { gsemu::device::syncThreads(); }

/**
 * The value of `value` in lane (this lane XOR laneMask), for every lane of `mask`. A source lane past the
 * warp (laneMask >= 32) gives the lane its own value, as CUDA does for a source outside the lane's group.
 */
template <class T>
inline T __shfl_xor_sync(unsigned mask, T value, int laneMask) {
    static_assert(std::is_arithmetic_v<T> && sizeof(T) <= sizeof(std::uint64_t), "a shuffle moves one number");
    const unsigned lane = gsemu::device::current.lane;
    unsigned source = lane ^ static_cast<unsigned>(laneMask);
    if (source >= 32) {
        source = lane;
    }
    std::uint64_t bits = 0;
    std::memcpy(&bits, &value, sizeof(T));
    bits = gsemu::device::exchangeInWarp(mask, bits, source);
    T received;
    std::memcpy(&received, &bits, sizeof(T));
    return received;
}

/** A warp barrier: an exchange of nothing among the lanes of the mask (every one of them must reach it). */
inline void __syncwarp(unsigned mask = 0xffffffffu) {
    (void) __shfl_xor_sync(mask, 0, 0);
}

/** A load through the read-only data cache: on the CPU, a plain load. */
template <class T>
inline T __ldg(const T* p) {
    return *p;
}

// ---- memory order and atomics ----------------------------------------------------------------------
//
// Blocks run one after another and fibers switch only at barriers, so every write is seen by every later
// read: a fence orders nothing that is not ordered already, a load that bypasses L1 (__ldcg) is a load,
// and an atomic read-modify-write cannot be interrupted. A "last block to finish" ticket therefore goes to
// the grid's last block in launch order.

inline void __threadfence() {}

template <class T>
inline T __ldcg(const T* p) {
    return *p;
}

inline unsigned atomicAdd(unsigned* address, unsigned value) {
    const unsigned old = *address;
    *address = old + value;
    return old;
}

inline int atomicAdd(int* address, int value) {
    const int old = *address;
    *address = old + value;
    return old;
}

// ---- rounding intrinsics: one IEEE operation each, round to nearest even --------------------------

inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __dsqrt_rn(double a) { return std::sqrt(a); }
inline float __double2float_rn(double a) { return static_cast<float>(a); }

// ---- CUDA's min and max overloads ------------------------------------------------------------------
//
// Global functions, as in CUDA's math headers; a signed and an unsigned operand compare as unsigned
// (CUDA's mixed overloads), and the floating-point ones are fminf / fmaxf (a NaN operand loses).

inline int min(int a, int b) { return a < b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned min(int a, unsigned b) { return min(static_cast<unsigned>(a), b); }
inline unsigned min(unsigned a, int b) { return min(a, static_cast<unsigned>(b)); }
inline long min(long a, long b) { return a < b ? a : b; }
inline unsigned long min(unsigned long a, unsigned long b) { return a < b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }

inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline unsigned max(int a, unsigned b) { return max(static_cast<unsigned>(a), b); }
inline unsigned max(unsigned a, int b) { return max(a, static_cast<unsigned>(b)); }
inline long max(long a, long b) { return a > b ? a : b; }
inline unsigned long max(unsigned long a, unsigned long b) { return a > b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
