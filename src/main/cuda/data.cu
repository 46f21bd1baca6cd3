// Data movement: CpuBackend.gatherRows, which builds a batch from the dataset held on the device, and the
// step's changing values kept on the device (CpuBackend's counter forms): a batch gathered from the
// position a counter gives (the next batch fetched ahead, advancing its counter), a step's small vector
// stored into the row a counter selects, and the counters advanced at the end of a step. With those, a
// training step has no per-step argument, and a CUDA graph can replay it.
//
// out[r][c] = source[indices[first + r]][c] * scale, from a UINT8 dataset (MNIST's pixels, read as
// 0..255) or a FLOAT32 one. One thread per element of out, grid-stride. The kernel cannot check an
// index against the source's row count (the ABI does not pass it): the host validates indices when
// it uploads them; nor, in the counter forms, the counter against the indices (the trainer keeps it
// within the epoch), except gather_next_batch, which is given their count and gathers only rows that exist.
#include "common.cuh"

namespace gs {

__device__ __forceinline__ float asFloat(unsigned char v) { return static_cast<float>(v); }

__device__ __forceinline__ float asFloat(float v) { return v; }

/** out[r][c] = source[batchIndices[r]][c] * scale, where batchIndices = indices + first. */
template <class T>
__device__ __forceinline__ void gatherRows(const T* __restrict__ source, const int* __restrict__ batchIndices,
                                           float scale, float* __restrict__ out, int rows, int cols) {
    if (cols <= 0) {
        return;
    }
    const unsigned columns = countOf(cols);
    const unsigned n = countOf(rows) * columns;
    for (unsigned e = threadIndex(); e < n; e += threadCount()) {
        const unsigned r = e / columns;
        const unsigned c = e - r * columns;
        const size_t sourceRow = static_cast<size_t>(__ldg(batchIndices + r));
        out[e] = asFloat(source[sourceRow * columns + c]) * scale;
    }
}

/** Where a counted batch starts in the indices: counter[0] * rowsPerCount (the trainer's step times the batch). */
__device__ __forceinline__ size_t countedFirst(const int* __restrict__ counter, int rowsPerCount) {
    return static_cast<size_t>(countOf(__ldg(counter))) * countOf(rowsPerCount);
}

} // namespace gs

extern "C" __global__ void gather_rows_u8(const unsigned char* __restrict__ source, const int* __restrict__ indices,
                                          int first, float scale, float* __restrict__ out, int rows, int cols) {
    gs::gatherRows(source, indices + first, scale, out, rows, cols);
}

extern "C" __global__ void gather_rows_f32(const float* __restrict__ source, const int* __restrict__ indices,
                                           int first, float scale, float* __restrict__ out, int rows, int cols) {
    gs::gatherRows(source, indices + first, scale, out, rows, cols);
}

// ---- the step's changing values on the device ----------------------------------------------------

/**
 * A training batch in one launch: gather_rows_u8_counter of the features (scaled) into featuresOut, then
 * gather_rows_f32_counter of the targets into targetsOut, the same rows of both. Element-wise launch over
 * the larger of the two.
 */
extern "C" __global__ void gather_batch_counter(const unsigned char* __restrict__ features, float featureScale,
                                                float* __restrict__ featuresOut, int featureCols,
                                                const float* __restrict__ targets, float* __restrict__ targetsOut,
                                                int targetCols, const int* __restrict__ indices,
                                                const int* __restrict__ counter, int rowsPerCount, int rows) {
    const int* __restrict__ batchIndices = indices + gs::countedFirst(counter, rowsPerCount);
    gs::gatherRows(features, batchIndices, featureScale, featuresOut, rows, featureCols);
    gs::gatherRows(targets, batchIndices, 1.0f, targetsOut, rows, targetCols);
}

/**
 * The next batch of an epoch, fetched ahead (Backend.gatherNextBatch): gather_batch_counter of the rows
 * that exist (first + r < indexCount: the epoch's last batch may be smaller, and the fetch after it finds
 * none; a negative count, none), then counter[0] += 1 by the grid's last block, once every block has read
 * the count (a plain load: this launch writes it). Element-wise launch over the larger of the two, at least
 * one block.
 */
extern "C" __global__ void gather_next_batch(const unsigned char* __restrict__ features, float featureScale,
                                             float* __restrict__ featuresOut, int featureCols,
                                             const float* __restrict__ targets, float* __restrict__ targetsOut,
                                             int targetCols, const int* __restrict__ indices, int indexCount,
                                             int* __restrict__ counter, int rowsPerCount, int rows,
                                             unsigned* __restrict__ ticket) {
    const int count = *counter;
    const size_t first = static_cast<size_t>(gs::countOf(count)) * gs::countOf(rowsPerCount);
    // A negative count gathers nothing (the CPU refuses it; a kernel cannot throw).
    const size_t indicesLeft = count >= 0 && first < gs::countOf(indexCount) ? gs::countOf(indexCount) - first : 0;
    const int batchRows = static_cast<int>(indicesLeft < gs::countOf(rows) ? indicesLeft : gs::countOf(rows));
    const int* __restrict__ batchIndices = indices + (batchRows > 0 ? first : 0);
    gs::gatherRows(features, batchIndices, featureScale, featuresOut, batchRows, featureCols);
    gs::gatherRows(targets, batchIndices, 1.0f, targetsOut, batchRows, targetCols);
    if (gs::isLastBlockToFinish(ticket) && threadIdx.x == 0) {
        *counter += 1;
    }
}

/** gather_rows_u8 from first = counter[0] * rowsPerCount, read on the device. */
extern "C" __global__ void gather_rows_u8_counter(const unsigned char* __restrict__ source,
                                                  const int* __restrict__ indices, const int* __restrict__ counter,
                                                  int rowsPerCount, float scale, float* __restrict__ out, int rows,
                                                  int cols) {
    gs::gatherRows(source, indices + gs::countedFirst(counter, rowsPerCount), scale, out, rows, cols);
}

/** gather_rows_f32 from first = counter[0] * rowsPerCount, read on the device. */
extern "C" __global__ void gather_rows_f32_counter(const float* __restrict__ source, const int* __restrict__ indices,
                                                   const int* __restrict__ counter, int rowsPerCount, float scale,
                                                   float* __restrict__ out, int rows, int cols) {
    gs::gatherRows(source, indices + gs::countedFirst(counter, rowsPerCount), scale, out, rows, cols);
}

/**
 * table[row[0]][i] = src[i] for i < n, table being [tableRows, n]: a step's per-layer values stored into
 * the step's row. A row outside [0, tableRows) writes nothing (a kernel cannot throw; the row keeps what
 * it held). Element-wise launch.
 */
extern "C" __global__ void copy_to_row_f32(const float* __restrict__ src, float* __restrict__ table,
                                           const int* __restrict__ row, int tableRows, int n) {
    const int r = __ldg(row);
    if (r < 0 || r >= tableRows) {
        return;
    }
    const unsigned count = gs::countOf(n);
    float* __restrict__ destination = table + static_cast<size_t>(r) * count;
    for (unsigned i = gs::threadIndex(); i < count; i += gs::threadCount()) {
        destination[i] = src[i];
    }
}

/** counters[i] += 1: the step's counters advanced at its end. Element-wise launch. */
extern "C" __global__ void advance_counters(int* __restrict__ counters, int n) {
    for (unsigned i = gs::threadIndex(); i < gs::countOf(n); i += gs::threadCount()) {
        counters[i] += 1;
    }
}
