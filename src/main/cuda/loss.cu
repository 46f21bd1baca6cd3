// Losses with the softmax fused in: CpuBackend.softmaxCrossEntropy and softmaxMeanSquaredError.
//
// One launch per loss: one warp per row (block 1024 = 32 rows) first adds the output layer's bias to the
// row's logits, in place (when bias is given: add_row_vector's float additions), then writes the row's
// dLogits, its loss (rowLoss[r]) and whether its arg-max is right (rowCorrect[r], 1 or 0); then the
// grid's last block (isLastBlockToFinish) adds those per-row values into the totals with one block's
// fixed-order tree and, when biasGradient is given, the column sums of dLogits into it by column_sums'
// tiles (the same bits). No float atomics: every run gives the same bits. The softmax, loss and gradient are computed in double,
// as on the CPU (a row has few classes, so it is cheap).
#include "common.cuh"

namespace gs {

/**
 * Where a softmax loss writes its results: each row's, then the totals and (unless NULL) the bias gradient,
 * with the last block's ticket.
 */
struct RowOutputs {
    float* dLogits;
    float* rowLoss;
    float* rowCorrect;
    float* biasGradient;
    float* totals;
    unsigned* ticket;
};

/**
 * totals[0] += sum of rowLoss[0, n), totals[1] += sum of rowCorrect[0, n), by the last block: sums in
 * double by the fixed 1024-slot tree (both through one), each added to its total once.
 */
__device__ __forceinline__ void addRowTotals(const float* rowLoss, const float* rowCorrect, unsigned n,
                                             float* totals) {
    const Sums<2> sums = blockSumsOfSlots<2>([&](unsigned slot) {
        Sums<2> sum{};
        for (unsigned i = slot; i < n; i += REDUCTION_SLOTS) {
            sum.value[0] += loadCoherent(rowLoss + i);
            sum.value[1] += loadCoherent(rowCorrect + i);
        }
        return sum;
    });
    if (threadIdx.x == 0) {
        totals[0] += static_cast<float>(sums.value[0]);
        totals[1] += static_cast<float>(sums.value[1]);
    }
}

/**
 * The part both losses share: for every row (one warp each), the bias added (unless NULL), its softmax
 * statistics, then rowBody(z, t, d, s, lane) writes the lane's elements of the row's dLogits d and
 * returns the row's loss (the same value in every lane); the row's loss and correctness are written by
 * lane 0. The lanes add the bias to their own columns (c = lane, lane + 32, ...); a warp barrier then
 * lets every lane read row[0].
 */
template <class RowBody>
__device__ __forceinline__ void softmaxLossRows(float* logits, const float* bias, const float* targets, int rows,
                                                int cols, RowOutputs out, RowBody rowBody) {
    const unsigned lane = laneIndex();
    for (unsigned r = warpIndex(); r < countOf(rows); r += warpCount()) {
        const size_t offset = static_cast<size_t>(r) * cols;
        float* row = logits + offset;
        if (bias != nullptr) {
            for (int c = static_cast<int>(lane); c < cols; c += WARP_SIZE) {
                row[c] += __ldg(bias + c);
            }
            __syncwarp(); // every lane reads row[0] (warpFirstArgMax), which lane 0 has just written
        }
        const float* z = row;
        const float* t = targets + offset;
        const bool correct = warpFirstArgMax(z, cols, lane) == warpFirstArgMax(t, cols, lane);
        const RowSoftmax s = warpRowSoftmax(z, cols, lane);
        const double loss = rowBody(z, t, out.dLogits + offset, s, lane);
        if (lane == 0) {
            out.rowLoss[r] = static_cast<float>(loss);
            out.rowCorrect[r] = correct ? 1.0f : 0.0f;
        }
    }
    if (!isLastBlockToFinish(out.ticket)) {
        return;
    }
    addRowTotals(out.rowLoss, out.rowCorrect, countOf(rows), out.totals);
    if (out.biasGradient != nullptr) {
        const float* dLogits = out.dLogits;
        float* biasGradient = out.biasGradient;
        reduceColumnTiles<DoubleSum>(
            rows, cols, [&](DoubleSum& partial, unsigned e, unsigned) { partial.sum += loadCoherent(dLogits + e); },
            [&](const DoubleSum& total, unsigned j) { biasGradient[j] = static_cast<float>(total.sum); }, 0u, 1u);
    }
}

} // namespace gs

/**
 * Softmax then categorical cross-entropy: rowLoss = -sum_c t_c log softmax(z)_c, and
 * dLogits = (p * sum(t) - t) * gradScale (sum(t) is 1 for one-hot targets).
 */
extern "C" __global__ void GS_BLOCKS_OF_1024 softmax_cross_entropy_rows(
    float* __restrict__ logits, const float* __restrict__ bias, const float* __restrict__ targets, float gradScale,
    float* __restrict__ dLogits, float* __restrict__ rowLoss, float* __restrict__ rowCorrect,
    float* __restrict__ biasGradient, int rows, int cols, float* __restrict__ totals, unsigned* __restrict__ ticket) {
    gs::softmaxLossRows(logits, bias, targets, rows, cols,
                        gs::RowOutputs{dLogits, rowLoss, rowCorrect, biasGradient, totals, ticket},
                        [&](const float* z, const float* t, float* d, const gs::RowSoftmax& s, unsigned lane) {
                            const double logSumExp = log(s.sum) + s.max;
                            double targetMass = 0.0;
                            for (int c = static_cast<int>(lane); c < cols; c += gs::WARP_SIZE) {
                                targetMass += t[c];
                            }
                            targetMass = gs::warpSum(targetMass);
                            double loss = 0.0;
                            for (int c = static_cast<int>(lane); c < cols; c += gs::WARP_SIZE) {
                                const double tc = t[c];
                                if (tc != 0.0) {
                                    loss -= tc * (static_cast<double>(z[c]) - logSumExp);
                                }
                                const double g = s.probability(z[c]) * targetMass - tc;
                                d[c] = static_cast<float>(g * gradScale);
                            }
                            return gs::warpSum(loss);
                        });
}

/**
 * Softmax then mean squared error: rowLoss = mean_c (p_c - t_c)^2, and dLogits = its gradient with
 * respect to the logits, p_c (g_c - sum_j g_j p_j) with g_c = 2 (p_c - t_c) / cols, times gradScale.
 */
extern "C" __global__ void GS_BLOCKS_OF_1024 softmax_mse_rows(
    float* __restrict__ logits, const float* __restrict__ bias, const float* __restrict__ targets, float gradScale,
    float* __restrict__ dLogits, float* __restrict__ rowLoss, float* __restrict__ rowCorrect,
    float* __restrict__ biasGradient, int rows, int cols, float* __restrict__ totals, unsigned* __restrict__ ticket) {
    gs::softmaxLossRows(logits, bias, targets, rows, cols,
                        gs::RowOutputs{dLogits, rowLoss, rowCorrect, biasGradient, totals, ticket},
                        [&](const float* z, const float* t, float* d, const gs::RowSoftmax& s, unsigned lane) {
                            double loss = 0.0;
                            double dot = 0.0; // sum_j dL/dp_j p_j
                            for (int c = static_cast<int>(lane); c < cols; c += gs::WARP_SIZE) {
                                const double p = s.probability(z[c]);
                                const double diff = p - t[c];
                                loss += diff * diff;
                                dot += 2.0 * diff / cols * p;
                            }
                            dot = gs::warpSum(dot);
                            for (int c = static_cast<int>(lane); c < cols; c += gs::WARP_SIZE) {
                                const double p = s.probability(z[c]);
                                const double g = 2.0 * (p - t[c]) / cols;
                                d[c] = static_cast<float>(p * (g - dot) * gradScale);
                            }
                            return gs::warpSum(loss) / cols;
                        });
}
