// Inverted dropout, forward directly followed by backward: the kernels of Backend.dropoutForward and
// Backend.dropoutBackward, whose reference is CpuBackend.dropoutElements.
//
// The mask is a counter-based hash of (stream key, epoch, step of the epoch, element), the functions of
// dev.gradscope.tensor.DropoutMask with the same names: SplitMix64 (Steele, Lea and Flood, "Fast splittable
// pseudorandom number generators", OOPSLA 2014), whose output function mix64 is D. Stafford's "Mix13" variant
// of the MurmurHash3 64-bit finalizer, as java.util.SplittableRandom computes it. Integer operations only, so
// the GPU draws the CPU's mask bit for bit; no generator state, so the backward pass draws the mask again
// instead of reading a mask buffer (a dozen integer operations per element cost less than writing and reading
// a mask in a kernel bound by memory), and a replayed graph draws a fresh mask from the step it reads on the
// device.

#include "common.cuh"

namespace gs {

constexpr unsigned long long GOLDEN_GAMMA = 0x9E3779B97F4A7C15ull;
constexpr int DROPOUT_BITS = 24;

__device__ __forceinline__ unsigned long long mix64(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/** The key of the step `step` holds, (epoch, step of the epoch), as DropoutMask.stepKey. */
__device__ __forceinline__ unsigned long long stepKey(unsigned long long streamKey, const int* step) {
    const unsigned long long stepNumber = (static_cast<unsigned long long>(static_cast<unsigned>(step[0])) << 32)
                                          | static_cast<unsigned>(step[1]);
    return mix64(streamKey + (stepNumber + 1ull) * GOLDEN_GAMMA);
}

/** Element i's 24-bit draw, as DropoutMask.bits. */
__device__ __forceinline__ unsigned dropoutBits(unsigned long long key, unsigned i) {
    return static_cast<unsigned>(mix64(key + (static_cast<unsigned long long>(i) + 1ull) * GOLDEN_GAMMA)
                                 >> (64 - DROPOUT_BITS));
}

/**
 * out[i] = in[i] * scale where element i is kept (its draw >= threshold), else 0: the forward pass on x and
 * the backward pass on dy are the same map. In place is allowed. Element-wise launch; 16-byte groups when
 * both pointers are aligned.
 */
__device__ __forceinline__ void dropout(const float* in, float* out, int n, int threshold, float scale,
                                        unsigned long long streamKey, const int* step) {
    const unsigned long long key = stepKey(streamKey, step);
    const unsigned keepFrom = static_cast<unsigned>(threshold);
    auto apply = [&](float v, unsigned i) { return dropoutBits(key, i) >= keepFrom ? v * scale : 0.0f; };
    forEachElement(
        countOf(n), allAligned16(in, out),
        [&](unsigned k) {
            float4 v = load4(in, k);
#pragma unroll
            for (int l = 0; l < 4; l++) {
                lane(v, l) = apply(lane(v, l), 4 * k + l);
            }
            store4(out, k, v);
        },
        [&](unsigned i) { out[i] = apply(in[i], i); });
}

} // namespace gs

/** y = x * scale where kept, 0 where dropped; threshold and scale from DropoutMask. */
extern "C" __global__ void dropout_forward(const float* x, float* y, int n, int threshold, float scale,
                                           unsigned long long streamKey, const int* __restrict__ step) {
    gs::dropout(x, y, n, threshold, scale, streamKey, step);
}

/** dx = dy * scale where the forward pass kept the element, 0 where it dropped it: the same mask, drawn again. */
extern "C" __global__ void dropout_backward(const float* dy, float* dx, int n, int threshold, float scale,
                                            unsigned long long streamKey, const int* __restrict__ step) {
    gs::dropout(dy, dx, n, threshold, scale, streamKey, step);
}
