// Reductions and simple dense-layer helpers: CpuBackend.columnSums, addRowVectorAccumulate,
// segmentSumOfSquares and fill.
//
// Every sum adds in an order fixed by the data's shape alone (never by thread timing, never with
// atomics), in double as on the CPU, so a run gives the same bits every time.
#include "common.cuh"

/**
 * out[j] = sum_i x[i][j] (the bias gradient): tiles of 32 columns x 32 row groups (reduceColumnTiles,
 * launch: block 1024, grid ceil(cols / 32)), in double.
 */
extern "C" __global__ void GS_BLOCKS_OF_1024 column_sums(
    const float* __restrict__ x, float* __restrict__ out, int rows, int cols) {
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

/**
 * The squared norm of each segment (each layer's parameters or gradients): out[s] = sum of x[k]^2 over
 * segment s. Pass 1 (forEachSegmentOfChunk; launch: one block of 1024 per chunk) writes partials[c][s], the
 * sum over chunk c's part of segment s in double; the grid's last block (isLastBlockToFinish, ticket 0 at
 * the launch) adds each segment's partials in a fixed order (totalSegmentPartials). One launch. Unless
 * table is NULL, the last block also stores out into row row[0] of table [tableRows, segments], as
 * copy_to_row_f32 would (a row outside the table: nothing).
 */
extern "C" __global__ void GS_BLOCKS_OF_1024 segment_sum_of_squares(
    const float* __restrict__ x, const int* __restrict__ segmentStarts, int segments, int chunk, int n,
    double* __restrict__ partials, float* __restrict__ out, float* __restrict__ table, const int* __restrict__ row,
    int tableRows, unsigned* __restrict__ ticket) {
    gs::forEachSegmentOfChunk(segmentStarts, segments, gs::countOf(chunk), gs::countOf(n),
                              [&](unsigned c, unsigned s, unsigned begin, unsigned end) {
        const double total = gs::blockSumOfOverlap(begin, end, [&](unsigned k) {
            const double v = x[k];
            return v * v;
        });
        if (threadIdx.x == 0) {
            partials[c * gs::countOf(segments) + s] = total;
        }
    });
    if (!gs::isLastBlockToFinish(ticket)) {
        return;
    }
    const unsigned columns = gs::countOf(segments);
    gs::totalSegmentPartials(partials, gs::chunkCount(gs::countOf(n), gs::countOf(chunk)), columns, out);
    if (table == nullptr) {
        return;
    }
    const int r = *row;
    __syncthreads(); // the block's warps have written out
    if (r >= 0 && r < tableRows) {
        for (unsigned s = threadIdx.x; s < columns; s += blockDim.x) {
            table[static_cast<size_t>(r) * columns + s] = out[s];
        }
    }
}

/** x[i] = value. */
extern "C" __global__ void fill_f32(float* __restrict__ x, float value, int n) {
    gs::forEachElement(
        gs::countOf(n), gs::allAligned16(x),
        [&](unsigned k) { gs::store4(x, k, make_float4(value, value, value, value)); },
        [&](unsigned i) { x[i] = value; });
}
