// Batch normalization (Ioffe and Szegedy, 2015), per column (unit) of a [rows, cols] batch: the training
// forward pass, the inference forward pass and the backward pass, the kernels of
// Backend.batchNormTrainingForward, batchNormInferenceForward and batchNormBackward, whose reference is
// CpuBackend's methods of the same names.
//
// Launch: one block of 1024 threads per tile of 32 columns (grid ceil(cols / 32), as column_sums); the block
// strides over tiles when the grid is smaller. Each per-column sum is reduceColumnTiles' fixed tree, in
// double: no atomics, the same bits on every run. The training pass reads its tile three times (sum, sum of
// squares about the mean, normalise) inside one block, so the batch statistics never leave the block but
// through batchMean/batchInvStd and the moving statistics, which the block's column owner updates in place:
// fixed addresses, no host round trip, so a captured step graph updates them on every replay.
//
// The element arithmetic uses __f*_rn intrinsics, never contracted to a fused multiply-add, so that given the
// same statistics every output has the CPU's bits.

#include "common.cuh"

namespace gs {

/** Two sums in double: the Partial of reduceColumnTiles for the backward pass (sum dy, sum dy * xhat). */
struct DoubleSumPair {
    double first;
    double second;

    __device__ __forceinline__ void combine(const DoubleSumPair& other) {
        first += other.first;
        second += other.second;
    }
};

__device__ __forceinline__ unsigned tileCount(int cols) { return (countOf(cols) + TILE_COLUMNS - 1) / TILE_COLUMNS; }

/** (x - mean) * invStd, rounded as the CPU rounds it. */
__device__ __forceinline__ float normalized(float x, float mean, float invStd) {
    return __fmul_rn(__fsub_rn(x, mean), invStd);
}

/**
 * y[i][j] = gamma[j] * ((x[i][j] - mean[lane]) * invStd[lane]) + beta[j] for the 32 columns of tile: lane
 * j % 32 of each warp takes its column, the warps stride over the rows.
 */
__device__ __forceinline__ void normalizeTile(const float* __restrict__ x, const float* __restrict__ gamma,
                                              const float* __restrict__ beta, const float* mean,
                                              const float* invStd, float* __restrict__ y, int rows, int cols,
                                              unsigned tile) {
    const unsigned lane = threadIdx.x % TILE_COLUMNS;
    const unsigned j = tile * TILE_COLUMNS + lane;
    const unsigned columns = countOf(cols);
    if (j >= columns) {
        return;
    }
    const float g = __ldg(gamma + j);
    const float b = __ldg(beta + j);
    const float m = mean[lane];
    const float s = invStd[lane];
    for (unsigned i = threadIdx.x / TILE_COLUMNS; i < countOf(rows); i += blockDim.x / TILE_COLUMNS) {
        const unsigned e = i * columns + j;
        y[e] = __fadd_rn(__fmul_rn(g, normalized(x[e], m, s)), b);
    }
}

} // namespace gs

/**
 * The training forward pass: per column, mean and biased variance of the batch (two passes, double), the
 * moving statistics updated in place (float: moving * momentum + batch * oneMinusMomentum), batchMean and
 * batchInvStd written for the backward pass, and y = gamma * xhat + beta. y must not be x.
 */
extern "C" __global__ void GS_BLOCKS_OF_1024 batch_norm_training_forward(
    const float* __restrict__ x, const float* __restrict__ gamma, const float* __restrict__ beta, float momentum,
    float oneMinusMomentum, float epsilon, float* __restrict__ movingMean, float* __restrict__ movingVariance,
    float* __restrict__ batchMean, float* __restrict__ batchInvStd, float* __restrict__ y, int rows, int cols) {
    __shared__ double mean[gs::TILE_COLUMNS];
    __shared__ float meanF[gs::TILE_COLUMNS];
    __shared__ float invStd[gs::TILE_COLUMNS];
    const unsigned tiles = gs::tileCount(cols);
    const double count = static_cast<double>(rows);
    for (unsigned tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        gs::reduceColumnTiles<gs::DoubleSum>(
            rows, cols, [&](gs::DoubleSum& partial, unsigned e, unsigned) { partial.sum += x[e]; },
            [&](const gs::DoubleSum& total, unsigned j) { mean[j % gs::TILE_COLUMNS] = total.sum / count; },
            tile, tiles);
        gs::reduceColumnTiles<gs::DoubleSum>(
            rows, cols,
            [&](gs::DoubleSum& partial, unsigned e, unsigned j) {
                const double d = static_cast<double>(x[e]) - mean[j % gs::TILE_COLUMNS];
                partial.sum += d * d;
            },
            [&](const gs::DoubleSum& total, unsigned j) {
                const unsigned lane = j % gs::TILE_COLUMNS;
                const double variance = total.sum / count;
                const float m = static_cast<float>(mean[lane]);
                const float s = static_cast<float>(1.0 / sqrt(variance + static_cast<double>(epsilon)));
                meanF[lane] = m;
                invStd[lane] = s;
                batchMean[j] = m;
                batchInvStd[j] = s;
                movingMean[j] = __fadd_rn(__fmul_rn(movingMean[j], momentum), __fmul_rn(m, oneMinusMomentum));
                movingVariance[j] = __fadd_rn(__fmul_rn(movingVariance[j], momentum),
                                              __fmul_rn(static_cast<float>(variance), oneMinusMomentum));
            },
            tile, tiles);
        gs::normalizeTile(x, gamma, beta, meanF, invStd, y, rows, cols, tile);
        __syncthreads(); // the tile's statistics are read before the next tile overwrites them
    }
}

/** The inference forward pass: y = gamma * ((x - movingMean) * invStd) + beta, invStd from movingVariance. */
extern "C" __global__ void GS_BLOCKS_OF_1024 batch_norm_inference_forward(
    const float* __restrict__ x, const float* __restrict__ gamma, const float* __restrict__ beta,
    const float* __restrict__ movingMean, const float* __restrict__ movingVariance, float epsilon,
    float* __restrict__ y, int rows, int cols) {
    __shared__ float mean[gs::TILE_COLUMNS];
    __shared__ float invStd[gs::TILE_COLUMNS];
    const unsigned tiles = gs::tileCount(cols);
    for (unsigned tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        const unsigned lane = threadIdx.x % gs::TILE_COLUMNS;
        const unsigned j = tile * gs::TILE_COLUMNS + lane;
        if (threadIdx.x < gs::TILE_COLUMNS && j < gs::countOf(cols)) {
            mean[lane] = movingMean[j];
            invStd[lane] = static_cast<float>(
                1.0 / sqrt(static_cast<double>(movingVariance[j]) + static_cast<double>(epsilon)));
        }
        __syncthreads();
        gs::normalizeTile(x, gamma, beta, mean, invStd, y, rows, cols, tile);
        __syncthreads();
    }
}

/**
 * The backward pass: per column dBeta = sum dy and dGamma = sum dy * xhat (double, one fixed tree), then, when
 * dx is not null, dx = scale * (dy - meanDy - xhat * meanDyXhat) with scale = gamma * invStd.
 */
extern "C" __global__ void GS_BLOCKS_OF_1024 batch_norm_backward(
    const float* __restrict__ x, const float* __restrict__ gamma, const float* __restrict__ batchMean,
    const float* __restrict__ batchInvStd, const float* __restrict__ dy, float* __restrict__ dx,
    float* __restrict__ dGamma, float* __restrict__ dBeta, int rows, int cols) {
    __shared__ float meanDy[gs::TILE_COLUMNS];
    __shared__ float meanDyXhat[gs::TILE_COLUMNS];
    const unsigned tiles = gs::tileCount(cols);
    const unsigned columns = gs::countOf(cols);
    const double count = static_cast<double>(rows);
    for (unsigned tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        gs::reduceColumnTiles<gs::DoubleSumPair>(
            rows, cols,
            [&](gs::DoubleSumPair& partial, unsigned e, unsigned j) {
                const float xhat = gs::normalized(x[e], __ldg(batchMean + j), __ldg(batchInvStd + j));
                const float g = dy[e];
                partial.first += g;
                partial.second += static_cast<double>(g) * xhat;
            },
            [&](const gs::DoubleSumPair& total, unsigned j) {
                dBeta[j] = static_cast<float>(total.first);
                dGamma[j] = static_cast<float>(total.second);
                meanDy[j % gs::TILE_COLUMNS] = static_cast<float>(total.first / count);
                meanDyXhat[j % gs::TILE_COLUMNS] = static_cast<float>(total.second / count);
            },
            tile, tiles);
        const unsigned lane = threadIdx.x % gs::TILE_COLUMNS;
        const unsigned j = tile * gs::TILE_COLUMNS + lane;
        if (dx != nullptr && j < columns) {
            const float m = __ldg(batchMean + j);
            const float s = __ldg(batchInvStd + j);
            const float scale = static_cast<float>(static_cast<double>(__ldg(gamma + j)) * s);
            const float md = meanDy[lane];
            const float mdx = meanDyXhat[lane];
            for (unsigned i = threadIdx.x / gs::TILE_COLUMNS; i < gs::countOf(rows);
                 i += blockDim.x / gs::TILE_COLUMNS) {
                const unsigned e = i * columns + j;
                const float xhat = gs::normalized(x[e], m, s);
                dx[e] = __fmul_rn(scale, __fsub_rn(__fsub_rn(dy[e], md), __fmul_rn(xhat, mdx)));
            }
        }
        __syncthreads();
    }
}
