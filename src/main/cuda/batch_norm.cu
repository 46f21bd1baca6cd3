// Batch normalization (Ioffe and Szegedy, 2015), per column (unit) of a [rows, cols] batch: the training
// forward pass, the inference forward pass and the backward pass, the kernels of
// Backend.batchNormTrainingForward, batchNormInferenceForward and batchNormBackward, whose reference is
// CpuBackend's methods of the same names.
//
// The training passes need every row of a column (its statistics, or its sums dy and dy * xhat) before any of
// its outputs, so one block per tile of 32 columns would leave most of a GPU idle (16 blocks for 512 units). The
// rows are cut into slices of rowsPerSlice rows instead, one block of 1024 threads per (tile, slice): grid
// tiles * slices, the tile fastest. The launcher chooses between two shapes by the batch's rows (Launch.java):
//
//   - a batch of up to 256 rows (a training batch), one kernel per pass: every block adds its tile's rows, all
//     of them, by the fixed tree (the tile is in L2: the previous op has just written it), then writes only its
//     own slice's outputs; the slice-0 block of each tile stores the statistics or the sums. Each block makes the
//     same additions in the same order, so all get the same bits; 32-row slices give a 256 x 512 batch 128
//     blocks, each adding 8 rows per thread and writing 1. Because blocks read rows that other blocks write, y
//     must not overlap x, nor dx overlap dy or x (OpChecks refuses it on every backend).
//   - a taller batch, two kernels per pass: the statistics (or sums) kernel, in which each block adds only its
//     own slice and writes the per-column sums to the backend's scratch, and the grid's last block adds them
//     over the slices (a thread per column, slices in order) and stores the statistics; then an element-wise
//     kernel that writes y (or dx) from them. Each kernel reads the batch once: 12N bytes forward, 20N backward.
//
// The inference pass has the same blocks (tile, slice) for another reason: the block's first warp takes each of
// its 32 columns' inverse standard deviation once, in double (a square root and a division, slow where FP64 is),
// for all the slice's rows, which the other warps then normalise element by element.
//
// Every sum is in double and in an order fixed by the shape and rowsPerSlice: no atomics on floats, the same bits
// on every run. The variance is not E[x^2] - E[x]^2, which cancels catastrophically for a large mean: each column
// is shifted by its first row's value, and var = E[(x - x0)^2] - E[x - x0]^2 in double. x - x0 is exact while x
// and x0 are within a factor of about 2^28 of each other (two floats' 24-bit significands then fit double's 53);
// further apart it is rounded once, to double's 1e-16, far below a float's rounding. The cancellation costs at
// most a factor (mean - x0)^2 / var <= rows of double's 1e-16, also far below a float's rounding. The mean is
// sum x / rows, the CPU's formula.
//
// Every double addition, subtraction and multiplication is a __d*_rn intrinsic (PTX add.rn, sub.rn, mul.rn),
// which neither nvcc nor the driver's JIT contracts into a fused multiply-add: a plain a * b + c in PTX may be
// fused or not at the JIT's choice, which would make the statistics depend on the driver. Division and square
// root are IEEE's, rounded once. So the sums, statistics and gradients are the same bits on every device. The
// element arithmetic uses __f*_rn, never contracted either, so that given the same statistics every output has
// the CPU's bits. The moving statistics are updated in place on the device (fixed addresses, no host round
// trip), so a captured step graph updates them on every replay.

#include "common.cuh"

namespace gs {

/** The three sums of a column in the training forward pass: the Partial of reduceColumnTileRows. */
struct ShiftedSums {
    double sum;            // sum x: the mean, as the CPU computes it
    double shifted;        // sum (x - x0), x0 the column's first row
    double shiftedSquares; // sum (x - x0)^2

    __device__ __forceinline__ void combine(const ShiftedSums& other) {
        sum = __dadd_rn(sum, other.sum);
        shifted = __dadd_rn(shifted, other.shifted);
        shiftedSquares = __dadd_rn(shiftedSquares, other.shiftedSquares);
    }

    __device__ __forceinline__ void add(float value, float shift) {
        const double v = value;
        const double d = __dsub_rn(v, static_cast<double>(shift));
        sum = __dadd_rn(sum, v);
        shifted = __dadd_rn(shifted, d);
        shiftedSquares = __dadd_rn(shiftedSquares, __dmul_rn(d, d));
    }
};

/** The two sums of a column in the backward pass, in double: the Partial of reduceColumnTileRows. */
struct GradientSums {
    double dy;     // sum dy: dBeta
    double dyXhat; // sum dy * xhat: dGamma

    __device__ __forceinline__ void combine(const GradientSums& other) {
        dy = __dadd_rn(dy, other.dy);
        dyXhat = __dadd_rn(dyXhat, other.dyXhat);
    }

    /** Adds one element: its dy, and xhat = (x - mean) * invStd as the CPU rounds it. */
    __device__ __forceinline__ void add(float g, float x, float mean, float invStd);
};

/** Slices of rowsPerSlice rows in the batch (a non-positive rowsPerSlice: one slice of every row). */
__device__ __forceinline__ unsigned sliceCount(int rows, int rowsPerSlice) {
    const unsigned n = countOf(rows);
    return rowsPerSlice > 0 ? (n + static_cast<unsigned>(rowsPerSlice) - 1) / static_cast<unsigned>(rowsPerSlice)
                            : (n > 0 ? 1u : 0u);
}

/** The rows [begin, end) of slice `slice`. */
struct RowSlice {
    unsigned begin;
    unsigned end;

    __device__ __forceinline__ RowSlice(unsigned slice, int rows, int rowsPerSlice) {
        const unsigned n = countOf(rows);
        const unsigned height = rowsPerSlice > 0 ? static_cast<unsigned>(rowsPerSlice) : n;
        begin = min(slice * height, n); // slice < slices: no wrap
        end = min(begin + height, n);
    }
};

/**
 * body(e) for the elements e = i * columns + j of column j in the rows i of `slice` that this thread's row group
 * takes: the block's 32 row groups (warps of a 1024-thread block) share the slice's rows, group g taking rows
 * begin + g, begin + g + 32, ...
 */
template <class Body>
__device__ __forceinline__ void forEachRowOfSlice(const RowSlice& slice, unsigned columns, unsigned j, Body body) {
    const unsigned groups = blockDim.x / TILE_COLUMNS;
    for (unsigned i = slice.begin + threadIdx.x / TILE_COLUMNS; i < slice.end; i += groups) {
        body(i * columns + j); // rows * cols < 2^31: no wrap
    }
}

/** (x - mean) * invStd, rounded as the CPU rounds it. */
__device__ __forceinline__ float normalized(float x, float mean, float invStd) {
    return __fmul_rn(__fsub_rn(x, mean), invStd);
}

__device__ __forceinline__ void GradientSums::add(float g, float x, float mean, float invStd) {
    dy = __dadd_rn(dy, static_cast<double>(g));
    dyXhat = __dadd_rn(dyXhat, __dmul_rn(static_cast<double>(g), static_cast<double>(normalized(x, mean, invStd))));
}

/** gamma * ((x - mean) * invStd) + beta, rounded as the CPU rounds it. */
__device__ __forceinline__ float normalizedOutput(float x, float gamma, float beta, float mean, float invStd) {
    return __fadd_rn(__fmul_rn(gamma, normalized(x, mean, invStd)), beta);
}

/** scale * ((dy - meanDy) - xhat * meanDyXhat), rounded as the CPU rounds it. */
__device__ __forceinline__ float inputGradient(float dy, float xhat, float scale, float meanDy, float meanDyXhat) {
    return __fmul_rn(scale, __fsub_rn(__fsub_rn(dy, meanDy), __fmul_rn(xhat, meanDyXhat)));
}

/** (float) (1 / sqrt(variance + epsilon)), in double as the CPU computes it. */
__device__ __forceinline__ float inverseStd(double variance, float epsilon) {
    return static_cast<float>(1.0 / sqrt(__dadd_rn(variance, static_cast<double>(epsilon))));
}

/** dx's scale, (float) (gamma * invStd) in double as the CPU computes it. */
__device__ __forceinline__ float inputGradientScale(float gamma, float invStd) {
    return static_cast<float>(__dmul_rn(static_cast<double>(gamma), static_cast<double>(invStd)));
}

/** A column's statistics as the normalisation uses them. */
struct ColumnStatistics {
    float mean;
    float invStd;
};

/** Where the training forward pass stores a column's statistics. */
struct StatisticsOutputs {
    float momentum;
    float oneMinusMomentum;
    float epsilon;
    float* movingMean;
    float* movingVariance;
    float* batchMean;
    float* batchInvStd;

    /**
     * Column j's statistics from its sums over `count` rows; stored (batch statistics, and the moving ones updated
     * in place, in float as the CPU does) when `store`.
     */
    __device__ __forceinline__ ColumnStatistics finish(const ShiftedSums& total, double count, unsigned j,
                                                       bool store) const {
        const double mean = total.sum / count;
        const double shiftedMean = total.shifted / count;
        double variance = __dsub_rn(total.shiftedSquares / count, __dmul_rn(shiftedMean, shiftedMean));
        if (variance < 0.0) {
            variance = 0.0; // rounding below an exact 0 (a constant column); NaN stays NaN
        }
        const ColumnStatistics statistics{static_cast<float>(mean), inverseStd(variance, epsilon)};
        if (store) {
            batchMean[j] = statistics.mean;
            batchInvStd[j] = statistics.invStd;
            movingMean[j] = __fadd_rn(__fmul_rn(movingMean[j], momentum), __fmul_rn(statistics.mean, oneMinusMomentum));
            movingVariance[j] = __fadd_rn(__fmul_rn(movingVariance[j], momentum),
                                          __fmul_rn(static_cast<float>(variance), oneMinusMomentum));
        }
        return statistics;
    }
};

/** The column of this thread's lane in `tile` (past the last column in a partial tile). */
__device__ __forceinline__ unsigned laneColumn(unsigned tile) {
    return tile * TILE_COLUMNS + threadIdx.x % TILE_COLUMNS;
}

/**
 * y[e] = output(j, x[e]) for every element e (column j = e % cols): an element-wise grid-stride loop, float4 groups
 * when x and y are 16-byte aligned (forEachColumnOfGroup). x may be y.
 */
template <class Output>
__device__ __forceinline__ void mapColumns(const float* x, float* y, int cols, int n, Output output) {
    const unsigned columns = countOf(cols);
    forEachElement(
        countOf(n), allAligned16(x, y),
        [&](unsigned k) {
            float4 v = load4(x, k);
            forEachColumnOfGroup(k, columns, [&](int l, unsigned j) { lane(v, l) = output(j, lane(v, l)); });
            store4(y, k, v);
        },
        [&](unsigned i) { y[i] = output(i % columns, x[i]); });
}

} // namespace gs

/**
 * The training forward pass of a batch of up to 256 rows, in one kernel: block (tile, slice) adds every row of its
 * tile (sum, shifted sum, shifted squares; the fixed tree), takes the column statistics, and writes y = gamma *
 * xhat + beta for its slice's rows; the slice-0 block stores batchMean and batchInvStd and updates the moving
 * statistics (float: moving * momentum + batch * oneMinusMomentum). y must not overlap x: blocks read the rows
 * that others write.
 */
extern "C" __global__ void GS_BLOCKS_OF_1024 batch_norm_training_forward(
    const float* __restrict__ x, const float* __restrict__ gamma, const float* __restrict__ beta, float momentum,
    float oneMinusMomentum, float epsilon, float* __restrict__ movingMean, float* __restrict__ movingVariance,
    float* __restrict__ batchMean, float* __restrict__ batchInvStd, float* __restrict__ y, int rows, int cols,
    int rowsPerSlice) {
    __shared__ float mean[gs::TILE_COLUMNS];
    __shared__ float invStd[gs::TILE_COLUMNS];
    const gs::StatisticsOutputs outputs{momentum, oneMinusMomentum, epsilon, movingMean, movingVariance, batchMean,
                                        batchInvStd};
    const unsigned columns = gs::countOf(cols);
    const unsigned tiles = gs::tileCount(cols);
    const unsigned blocks = tiles * gs::sliceCount(rows, rowsPerSlice);
    const double count = static_cast<double>(rows);
    for (unsigned b = blockIdx.x; b < blocks; b += gridDim.x) {
        const unsigned tile = b % tiles;
        const unsigned slice = b / tiles;
        const unsigned j = gs::laneColumn(tile);
        const float shift = j < columns ? x[j] : 0.0f;
        gs::reduceColumnTileRows<gs::ShiftedSums>(
            0u, gs::countOf(rows), cols, tile,
            [&](gs::ShiftedSums& partial, unsigned e, unsigned) { partial.add(x[e], shift); },
            [&](const gs::ShiftedSums& total, unsigned column) {
                const gs::ColumnStatistics statistics = outputs.finish(total, count, column, slice == 0);
                mean[column % gs::TILE_COLUMNS] = statistics.mean;
                invStd[column % gs::TILE_COLUMNS] = statistics.invStd;
            });
        if (j < columns) {
            const float g = __ldg(gamma + j);
            const float bj = __ldg(beta + j);
            const float m = mean[j % gs::TILE_COLUMNS];
            const float s = invStd[j % gs::TILE_COLUMNS];
            gs::forEachRowOfSlice(gs::RowSlice(slice, rows, rowsPerSlice), columns, j,
                                  [&](unsigned e) { y[e] = gs::normalizedOutput(x[e], g, bj, m, s); });
        }
        __syncthreads(); // the tile's statistics are read before the next tile overwrites them
    }
}

/**
 * The statistics of a taller batch (the first of its two kernels): block (tile, slice) adds its slice's rows of its
 * tile and writes the three sums to partials [3][slices][cols]; the grid's last block adds them over the slices, a
 * thread per column and the slices in order, and stores batchMean, batchInvStd and the moving statistics as
 * batch_norm_training_forward does. ticket: 0 at the launch, 0 again after it.
 */
extern "C" __global__ void GS_BLOCKS_OF_1024 batch_norm_training_statistics(
    const float* __restrict__ x, float momentum, float oneMinusMomentum, float epsilon,
    float* __restrict__ movingMean, float* __restrict__ movingVariance, float* __restrict__ batchMean,
    float* __restrict__ batchInvStd, int rows, int cols, int rowsPerSlice, double* __restrict__ partials,
    unsigned* ticket) {
    const gs::StatisticsOutputs outputs{momentum, oneMinusMomentum, epsilon, movingMean, movingVariance, batchMean,
                                        batchInvStd};
    const unsigned columns = gs::countOf(cols);
    const unsigned tiles = gs::tileCount(cols);
    const unsigned slices = gs::sliceCount(rows, rowsPerSlice);
    const size_t plane = static_cast<size_t>(slices) * columns;
    for (unsigned b = blockIdx.x; b < tiles * slices; b += gridDim.x) {
        const unsigned tile = b % tiles;
        const unsigned slice = b / tiles;
        const unsigned j = gs::laneColumn(tile);
        const float shift = j < columns ? x[j] : 0.0f;
        const gs::RowSlice mine(slice, rows, rowsPerSlice);
        gs::reduceColumnTileRows<gs::ShiftedSums>(
            mine.begin, mine.end, cols, tile,
            [&](gs::ShiftedSums& partial, unsigned e, unsigned) { partial.add(x[e], shift); },
            [&](const gs::ShiftedSums& total, unsigned column) {
                const size_t at = static_cast<size_t>(slice) * columns + column;
                partials[at] = total.sum;
                partials[plane + at] = total.shifted;
                partials[2 * plane + at] = total.shiftedSquares;
            });
    }
    if (!gs::isLastBlockToFinish(ticket)) {
        return;
    }
    const double count = static_cast<double>(rows);
    for (unsigned j = threadIdx.x; j < columns; j += blockDim.x) {
        gs::ShiftedSums total{};
        for (unsigned s = 0; s < slices; s++) {
            const size_t at = static_cast<size_t>(s) * columns + j;
            total.combine({gs::loadCoherent(partials + at), gs::loadCoherent(partials + plane + at),
                           gs::loadCoherent(partials + 2 * plane + at)});
        }
        outputs.finish(total, count, j, true);
    }
}

/**
 * The second kernel of a taller batch's training forward pass: y = gamma * ((x - batchMean) * batchInvStd) + beta,
 * element-wise. y must not overlap x (the contract of the one-kernel pass, which this one shares).
 */
extern "C" __global__ void batch_norm_training_normalize(const float* x, const float* __restrict__ gamma,
                                                         const float* __restrict__ beta,
                                                         const float* __restrict__ batchMean,
                                                         const float* __restrict__ batchInvStd, float* y, int cols,
                                                         int n) {
    gs::mapColumns(x, y, cols, n, [&](unsigned j, float v) {
        return gs::normalizedOutput(v, __ldg(gamma + j), __ldg(beta + j), __ldg(batchMean + j), __ldg(batchInvStd + j));
    });
}

/**
 * The inference forward pass: y = gamma * ((x - movingMean) * invStd) + beta with invStd = (float) (1 / sqrt(
 * movingVariance + epsilon)) in double. Block (tile, slice), as the training passes: warp 0 takes the inverse
 * standard deviations of the tile's 32 columns once, into shared memory, and every thread normalises its column in
 * its row group's rows of the slice (no sum: any rowsPerSlice gives the same bits). y may be x: every element is
 * read, then written, by one thread.
 */
extern "C" __global__ void GS_BLOCKS_OF_1024 batch_norm_inference_forward(
    const float* x, const float* __restrict__ gamma, const float* __restrict__ beta,
    const float* __restrict__ movingMean, const float* __restrict__ movingVariance, float epsilon, float* y, int rows,
    int cols, int rowsPerSlice) {
    __shared__ float invStd[gs::TILE_COLUMNS];
    const unsigned columns = gs::countOf(cols);
    const unsigned tiles = gs::tileCount(cols);
    const unsigned blocks = tiles * gs::sliceCount(rows, rowsPerSlice);
    for (unsigned b = blockIdx.x; b < blocks; b += gridDim.x) {
        const unsigned tile = b % tiles;
        const unsigned slice = b / tiles;
        const unsigned j = gs::laneColumn(tile);
        if (threadIdx.x < gs::TILE_COLUMNS && j < columns) {
            invStd[threadIdx.x] = gs::inverseStd(static_cast<double>(__ldg(movingVariance + j)), epsilon);
        }
        __syncthreads(); // the tile's inverse standard deviations are written before they are read
        if (j < columns) {
            const float g = __ldg(gamma + j);
            const float bj = __ldg(beta + j);
            const float m = __ldg(movingMean + j);
            const float s = invStd[j % gs::TILE_COLUMNS];
            gs::forEachRowOfSlice(gs::RowSlice(slice, rows, rowsPerSlice), columns, j,
                                  [&](unsigned e) { y[e] = gs::normalizedOutput(x[e], g, bj, m, s); });
        }
        __syncthreads(); // and read before the next tile overwrites them
    }
}

/**
 * The backward pass of a batch of up to 256 rows, in one kernel: block (tile, slice) adds every row of its tile,
 * sum dy and sum dy * xhat (double, one fixed tree), and, when dx is not null, writes dx = scale * (dy - meanDy -
 * xhat * meanDyXhat) with scale = gamma * invStd for its slice's rows; the slice-0 block stores dBeta and dGamma.
 * dx must not overlap dy or x: blocks read the rows that others write.
 */
extern "C" __global__ void GS_BLOCKS_OF_1024 batch_norm_backward(
    const float* __restrict__ x, const float* __restrict__ gamma, const float* __restrict__ batchMean,
    const float* __restrict__ batchInvStd, const float* __restrict__ dy, float* __restrict__ dx,
    float* __restrict__ dGamma, float* __restrict__ dBeta, int rows, int cols, int rowsPerSlice) {
    __shared__ float meanDy[gs::TILE_COLUMNS];
    __shared__ float meanDyXhat[gs::TILE_COLUMNS];
    const unsigned columns = gs::countOf(cols);
    const unsigned tiles = gs::tileCount(cols);
    const unsigned blocks = tiles * gs::sliceCount(rows, rowsPerSlice);
    const double count = static_cast<double>(rows);
    for (unsigned b = blockIdx.x; b < blocks; b += gridDim.x) {
        const unsigned tile = b % tiles;
        const unsigned slice = b / tiles;
        const unsigned j = gs::laneColumn(tile);
        const float m = j < columns ? __ldg(batchMean + j) : 0.0f;
        const float s = j < columns ? __ldg(batchInvStd + j) : 0.0f;
        gs::reduceColumnTileRows<gs::GradientSums>(
            0u, gs::countOf(rows), cols, tile,
            [&](gs::GradientSums& partial, unsigned e, unsigned) { partial.add(dy[e], x[e], m, s); },
            [&](const gs::GradientSums& total, unsigned column) {
                if (slice == 0) {
                    dBeta[column] = static_cast<float>(total.dy);
                    dGamma[column] = static_cast<float>(total.dyXhat);
                }
                meanDy[column % gs::TILE_COLUMNS] = static_cast<float>(total.dy / count);
                meanDyXhat[column % gs::TILE_COLUMNS] = static_cast<float>(total.dyXhat / count);
            });
        if (dx != nullptr && j < columns) {
            const float scale = gs::inputGradientScale(__ldg(gamma + j), s);
            const float md = meanDy[j % gs::TILE_COLUMNS];
            const float mdx = meanDyXhat[j % gs::TILE_COLUMNS];
            gs::forEachRowOfSlice(gs::RowSlice(slice, rows, rowsPerSlice), columns, j, [&](unsigned e) {
                dx[e] = gs::inputGradient(dy[e], gs::normalized(x[e], m, s), scale, md, mdx);
            });
        }
        __syncthreads(); // the tile's means are read before the next tile overwrites them
    }
}

/**
 * The sums of a taller batch's backward pass (the first of its two kernels): block (tile, slice) adds its slice's
 * rows, sum dy and sum dy * xhat, into partials [2][slices][cols]; the grid's last block adds them over the slices
 * (a thread per column, the slices in order), stores dBeta and dGamma, and, unless coefficients is null, the
 * float coefficients of dx into coefficients [3][cols]: scale = gamma * invStd, meanDy, meanDyXhat.
 */
extern "C" __global__ void GS_BLOCKS_OF_1024 batch_norm_backward_sums(
    const float* __restrict__ x, const float* __restrict__ gamma, const float* __restrict__ batchMean,
    const float* __restrict__ batchInvStd, const float* __restrict__ dy, float* __restrict__ dGamma,
    float* __restrict__ dBeta, int rows, int cols, int rowsPerSlice, double* __restrict__ partials,
    float* __restrict__ coefficients, unsigned* ticket) {
    const unsigned columns = gs::countOf(cols);
    const unsigned tiles = gs::tileCount(cols);
    const unsigned slices = gs::sliceCount(rows, rowsPerSlice);
    const size_t plane = static_cast<size_t>(slices) * columns;
    for (unsigned b = blockIdx.x; b < tiles * slices; b += gridDim.x) {
        const unsigned tile = b % tiles;
        const unsigned slice = b / tiles;
        const unsigned j = gs::laneColumn(tile);
        const float m = j < columns ? __ldg(batchMean + j) : 0.0f;
        const float s = j < columns ? __ldg(batchInvStd + j) : 0.0f;
        const gs::RowSlice mine(slice, rows, rowsPerSlice);
        gs::reduceColumnTileRows<gs::GradientSums>(
            mine.begin, mine.end, cols, tile,
            [&](gs::GradientSums& partial, unsigned e, unsigned) { partial.add(dy[e], x[e], m, s); },
            [&](const gs::GradientSums& total, unsigned column) {
                const size_t at = static_cast<size_t>(slice) * columns + column;
                partials[at] = total.dy;
                partials[plane + at] = total.dyXhat;
            });
    }
    if (!gs::isLastBlockToFinish(ticket)) {
        return;
    }
    const double count = static_cast<double>(rows);
    for (unsigned j = threadIdx.x; j < columns; j += blockDim.x) {
        gs::GradientSums total{};
        for (unsigned s = 0; s < slices; s++) {
            const size_t at = static_cast<size_t>(s) * columns + j;
            total.combine({gs::loadCoherent(partials + at), gs::loadCoherent(partials + plane + at)});
        }
        dBeta[j] = static_cast<float>(total.dy);
        dGamma[j] = static_cast<float>(total.dyXhat);
        if (coefficients != nullptr) {
            coefficients[j] = gs::inputGradientScale(__ldg(gamma + j), __ldg(batchInvStd + j));
            coefficients[columns + j] = static_cast<float>(total.dy / count);
            coefficients[2 * columns + j] = static_cast<float>(total.dyXhat / count);
        }
    }
}

/**
 * The second kernel of a taller batch's backward pass, element-wise: dx = scale * (dy - meanDy - xhat * meanDyXhat)
 * with xhat = (x - batchMean) * batchInvStd and the coefficients [3][cols] batch_norm_backward_sums wrote. dx must
 * not overlap dy or x (the contract of the one-kernel pass, which this one shares).
 */
extern "C" __global__ void batch_norm_backward_dx(const float* __restrict__ x, const float* __restrict__ batchMean,
                                                  const float* __restrict__ batchInvStd, const float* __restrict__ dy,
                                                  const float* __restrict__ coefficients, float* __restrict__ dx,
                                                  int cols, int n) {
    const unsigned columns = gs::countOf(cols);
    const auto gradient = [&](unsigned j, float xv, float g) {
        const float xhat = gs::normalized(xv, __ldg(batchMean + j), __ldg(batchInvStd + j));
        return gs::inputGradient(g, xhat, __ldg(coefficients + j), __ldg(coefficients + columns + j),
                                 __ldg(coefficients + 2 * columns + j));
    };
    gs::forEachElement(
        gs::countOf(n), gs::allAligned16(x, dy, dx),
        [&](unsigned k) {
            const float4 xv = gs::load4ReadOnly(x, k);
            const float4 dyv = gs::load4ReadOnly(dy, k);
            float4 v;
            gs::forEachColumnOfGroup(k, columns, [&](int l, unsigned j) {
                gs::lane(v, l) = gradient(j, gs::lane(xv, l), gs::lane(dyv, l));
            });
            gs::store4(dx, k, v);
        },
        [&](unsigned i) { dx[i] = gradient(i % columns, x[i], dy[i]); });
}
