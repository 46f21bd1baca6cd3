// Reductions and simple dense-layer helpers: CpuBackend.columnSums, addRowVectorAccumulate,
// segmentSumOfSquares and fill.
//
// Every sum adds in an order fixed by the data's shape alone (never by thread timing, never with
// atomics), in double as on the CPU, so a run gives the same bits every time.
#include "common.cuh"

/**
 * out[j] = sum_i x[i][j] (the bias gradient): tiles of 32 columns x 8 row groups (reduceColumnTiles,
 * launch: block 256, grid ceil(cols / 32)), in double.
 */
extern "C" __global__ void column_sums(const float* __restrict__ x, float* __restrict__ out, int rows, int cols) {
    gs::reduceColumnTiles<gs::DoubleSum>(
        rows, cols, [&](gs::DoubleSum& partial, unsigned e, unsigned) { partial.sum += x[e]; },
        [&](const gs::DoubleSum& total, unsigned j) { out[j] = static_cast<float>(total.sum); });
}

/** y[i][j] += bias[j]. 16-byte groups when y and bias are 16-byte aligned and cols is a multiple of 4. */
extern "C" __global__ void add_row_vector(float* __restrict__ y, const float* __restrict__ bias, int rows, int cols) {
    if (cols <= 0) {
        return;
    }
    const unsigned columns = gs::countOf(cols);
    const unsigned columnGroups = columns / 4; // a group never straddles two rows when cols % 4 == 0
    gs::forEachElement(
        gs::countOf(rows) * columns, gs::allAligned16(y, bias) && columns % 4 == 0,
        [&](unsigned k) {
            float4 y4 = gs::load4(y, k);
            const float4 b4 = gs::load4ReadOnly(bias, k % columnGroups);
            y4.x += b4.x;
            y4.y += b4.y;
            y4.z += b4.z;
            y4.w += b4.w;
            gs::store4(y, k, y4);
        },
        [&](unsigned i) { y[i] += __ldg(bias + i % columns); });
}

namespace gs {

/**
 * out[s] = sum of term(k) for k in [segmentStarts[s], segmentStarts[s+1]), the one segmented reduction:
 * one block per segment (launch block 1024; grid = segments, or fewer: blocks stride over segments),
 * fixed 1024-slot tree in double. term(k) returns the k-th term in double. An empty or reversed
 * segment gives 0.
 */
template <class Term>
__device__ __forceinline__ void segmentSums(const int* __restrict__ segmentStarts, float* __restrict__ out,
                                            int segments, Term term) {
    for (unsigned s = blockIdx.x; s < countOf(segments); s += gridDim.x) {
        const unsigned begin = countOf(segmentStarts[s]);
        const unsigned end = countOf(segmentStarts[s + 1]);
        const double total = blockSumOfRange(begin, end, term);
        if (threadIdx.x == 0) {
            out[s] = static_cast<float>(total);
        }
    }
}

} // namespace gs

/** out[s] = sum of x[k]^2 for k in segment s (the squared norm of each layer's parameters or gradients). */
extern "C" __global__ void segment_sum_of_squares(const float* __restrict__ x, const int* __restrict__ segmentStarts,
                                                  float* __restrict__ out, int segments) {
    gs::segmentSums(segmentStarts, out, segments, [&](unsigned k) {
        const double v = x[k];
        return v * v;
    });
}

/** x[i] = value. */
extern "C" __global__ void fill_f32(float* __restrict__ x, float value, int n) {
    gs::forEachElement(
        gs::countOf(n), gs::allAligned16(x),
        [&](unsigned k) { gs::store4(x, k, make_float4(value, value, value, value)); },
        [&](unsigned i) { x[i] = value; });
}
