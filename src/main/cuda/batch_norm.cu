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
//     blocks, each adding 8 rows per thread and writing 1.
//   - a taller batch, two kernels per pass: the statistics (or sums) kernel, in which each block adds only its
//     own slice and writes the per-column sums to the backend's scratch, and the grid's last block adds them
//     over the slices (a thread per column, slices in order) and stores the statistics; then an element-wise
//     kernel that writes y (or dx) from them. Each kernel reads the batch once: 12N bytes forward, 20N backward.
//
// Every sum is in double and in an order fixed by the shape and rowsPerSlice: no atomics on floats, the same bits
// on every run. The variance is not E[x^2] - E[x]^2, which cancels catastrophically for a large mean: each column
// is shifted by its first row's value, and var = E[(x - x0)^2] - E[x - x0]^2 in double; x - x0 is exact (two
// floats' difference fits a double), and the cancellation costs at most a factor (mean - x0)^2 / var <= rows of
// double's 1e-16, far below a float's rounding. The mean is sum x / rows, the CPU's formula.
//
// The element arithmetic uses __f*_rn intrinsics, never contracted to a fused multiply-add, so that given the
// same statistics every output has the CPU's bits. The moving statistics are updated in place on the device
// (fixed addresses, no host round trip), so a captured step graph updates them on every replay.

#include "common.cuh"

namespace gs {

/** The three sums of a column in the training forward pass: the Partial of reduceColumnTileRows. */
struct ShiftedSums {
    double sum;            // sum x: the mean, as the CPU computes it
    double shifted;        // sum (x - x0), x0 the column's first row
    double shiftedSquares; // sum (x - x0)^2

    __device__ __forceinline__ void combine(const ShiftedSums& other) {
        sum += other.sum;
        shifted += other.shifted;
        shiftedSquares += other.shiftedSquares;
    }

    __device__ __forceinline__ void add(float value, float shift) {
        const double v = value;
        const double d = v - static_cast<double>(shift);
        sum += v;
        shifted += d;
        shiftedSquares += d * d;
    }
};

/** Two sums in double: the Partial of reduceColumnTileRows for the backward pass (sum dy, sum dy * xhat). */
struct DoubleSumPair {
    double first;
    double second;

    __device__ __forceinline__ void combine(const DoubleSumPair& other) {
        first += other.first;
        second += other.second;
    }
};

__device__ __forceinline__ unsigned tileCount(int cols) { return (countOf(cols) + TILE_COLUMNS - 1) / TILE_COLUMNS; }

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

/** (x - mean) * invStd, rounded as the CPU rounds it. */
__device__ __forceinline__ float normalized(float x, float mean, float invStd) {
    return __fmul_rn(__fsub_rn(x, mean), invStd);
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
    return static_cast<float>(1.0 / sqrt(variance + static_cast<double>(epsilon)));
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
        double variance = total.shiftedSquares / count - shiftedMean * shiftedMean;
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
 * when x and y are 16-byte aligned (a group's lanes follow its first column, wrapping at cols). x may be y.
 */
template <class Output>
__device__ __forceinline__ void mapColumns(const float* x, float* y, int cols, int n, Output output) {
    const unsigned columns = countOf(cols);
    forEachElement(
        countOf(n), allAligned16(x, y),
        [&](unsigned k) {
            float4 v = load4(x, k);
            unsigned j = (4 * k) % columns; // 4k < n < 2^31: no wrap
#pragma unroll
            for (int l = 0; l < 4; l++) {
                lane(v, l) = output(j, lane(v, l));
                j = j + 1 == columns ? 0 : j + 1;
            }
            store4(y, k, v);
        },
        [&](unsigned i) { y[i] = output(i % columns, x[i]); });
}

} // namespace gs

/**
 * The training forward pass of a batch of up to 256 rows, in one kernel: block (tile, slice) adds every row of its
 * tile (sum, shifted sum, shifted squares; the fixed tree), takes the column statistics, and writes y = gamma *
 * xhat + beta for its slice's rows; the slice-0 block stores batchMean and batchInvStd and updates the moving
 * statistics (float: moving * momentum + batch * oneMinusMomentum). y must not be x.
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
            const gs::RowSlice mine(slice, rows, rowsPerSlice);
            const float g = __ldg(gamma + j);
            const float bj = __ldg(beta + j);
            const float m = mean[j % gs::TILE_COLUMNS];
            const float s = invStd[j % gs::TILE_COLUMNS];
            for (unsigned i = mine.begin + threadIdx.x / gs::TILE_COLUMNS; i < mine.end;
                 i += blockDim.x / gs::TILE_COLUMNS) {
                const unsigned e = i * columns + j;
                y[e] = gs::normalizedOutput(x[e], g, bj, m, s);
            }
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
            total.sum += gs::loadCoherent(partials + at);
            total.shifted += gs::loadCoherent(partials + plane + at);
            total.shiftedSquares += gs::loadCoherent(partials + 2 * plane + at);
        }
        outputs.finish(total, count, j, true);
    }
}

/**
 * The second kernel of a taller batch's training forward pass: y = gamma * ((x - batchMean) * batchInvStd) + beta,
 * element-wise. y must not be x.
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
 * The inference forward pass, element-wise: y = gamma * ((x - movingMean) * invStd) + beta, invStd = (float) (1 /
 * sqrt(movingVariance + epsilon)) in double, computed for each element (the same bits as once per column; no
 * barrier, so any grid). y may be x.
 */
extern "C" __global__ void batch_norm_inference_forward(const float* x, const float* __restrict__ gamma,
                                                        const float* __restrict__ beta,
                                                        const float* __restrict__ movingMean,
                                                        const float* __restrict__ movingVariance, float epsilon,
                                                        float* y, int cols, int n) {
    gs::mapColumns(x, y, cols, n, [&](unsigned j, float v) {
        const float invStd = gs::inverseStd(static_cast<double>(__ldg(movingVariance + j)), epsilon);
        return gs::normalizedOutput(v, __ldg(gamma + j), __ldg(beta + j), __ldg(movingMean + j), invStd);
    });
}

/**
 * The backward pass of a batch of up to 256 rows, in one kernel: block (tile, slice) adds every row of its tile,
 * sum dy and sum dy * xhat (double, one fixed tree), and, when dx is not null, writes dx = scale * (dy - meanDy -
 * xhat * meanDyXhat) with scale = gamma * invStd for its slice's rows; the slice-0 block stores dBeta and dGamma.
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
        gs::reduceColumnTileRows<gs::DoubleSumPair>(
            0u, gs::countOf(rows), cols, tile,
            [&](gs::DoubleSumPair& partial, unsigned e, unsigned) {
                const float g = dy[e];
                partial.first += g;
                partial.second += static_cast<double>(g) * gs::normalized(x[e], m, s);
            },
            [&](const gs::DoubleSumPair& total, unsigned column) {
                if (slice == 0) {
                    dBeta[column] = static_cast<float>(total.first);
                    dGamma[column] = static_cast<float>(total.second);
                }
                meanDy[column % gs::TILE_COLUMNS] = static_cast<float>(total.first / count);
                meanDyXhat[column % gs::TILE_COLUMNS] = static_cast<float>(total.second / count);
            });
        if (dx != nullptr && j < columns) {
            const gs::RowSlice mine(slice, rows, rowsPerSlice);
            const float scale = static_cast<float>(static_cast<double>(__ldg(gamma + j)) * s);
            const float md = meanDy[j % gs::TILE_COLUMNS];
            const float mdx = meanDyXhat[j % gs::TILE_COLUMNS];
            for (unsigned i = mine.begin + threadIdx.x / gs::TILE_COLUMNS; i < mine.end;
                 i += blockDim.x / gs::TILE_COLUMNS) {
                const unsigned e = i * columns + j;
                dx[e] = gs::inputGradient(dy[e], gs::normalized(x[e], m, s), scale, md, mdx);
            }
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
        gs::reduceColumnTileRows<gs::DoubleSumPair>(
            mine.begin, mine.end, cols, tile,
            [&](gs::DoubleSumPair& partial, unsigned e, unsigned) {
                const float g = dy[e];
                partial.first += g;
                partial.second += static_cast<double>(g) * gs::normalized(x[e], m, s);
            },
            [&](const gs::DoubleSumPair& total, unsigned column) {
                const size_t at = static_cast<size_t>(slice) * columns + column;
                partials[at] = total.first;
                partials[plane + at] = total.second;
            });
    }
    if (!gs::isLastBlockToFinish(ticket)) {
        return;
    }
    const double count = static_cast<double>(rows);
    for (unsigned j = threadIdx.x; j < columns; j += blockDim.x) {
        gs::DoubleSumPair total{};
        for (unsigned s = 0; s < slices; s++) {
            const size_t at = static_cast<size_t>(s) * columns + j;
            total.first += gs::loadCoherent(partials + at);
            total.second += gs::loadCoherent(partials + plane + at);
        }
        dBeta[j] = static_cast<float>(total.first);
        dGamma[j] = static_cast<float>(total.second);
        if (coefficients != nullptr) {
            coefficients[j] = static_cast<float>(static_cast<double>(__ldg(gamma + j)) * __ldg(batchInvStd + j));
            coefficients[columns + j] = static_cast<float>(total.first / count);
            coefficients[2 * columns + j] = static_cast<float>(total.second / count);
        }
    }
}

/**
 * The second kernel of a taller batch's backward pass, element-wise: dx = scale * (dy - meanDy - xhat * meanDyXhat)
 * with xhat = (x - batchMean) * batchInvStd and the coefficients [3][cols] batch_norm_backward_sums wrote.
 */
extern "C" __global__ void batch_norm_backward_dx(const float* __restrict__ x, const float* __restrict__ batchMean,
                                                  const float* __restrict__ batchInvStd, const float* dy,
                                                  const float* __restrict__ coefficients, float* dx, int cols,
                                                  int n) {
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
            float4 v = gs::load4(dy, k);
            unsigned j = (4 * k) % columns; // 4k < n < 2^31: no wrap
#pragma unroll
            for (int l = 0; l < 4; l++) {
                gs::lane(v, l) = gradient(j, gs::lane(xv, l), gs::lane(v, l));
                j = j + 1 == columns ? 0 : j + 1;
            }
            gs::store4(dx, k, v);
        },
        [&](unsigned i) { dx[i] = gradient(i % columns, x[i], dy[i]); });
}
