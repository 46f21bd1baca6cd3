// Self-test of libgsemu-kernels.a (scripts/test-cuda-emulator-kernels.sh): some of the project's kernels
// run by the emulator's runner, launched as the Java backend launches them (Launch.java, CudaBackend.java)
// and compared with naive C++ references; then the runner's own semantics through small test kernels:
// a divergent __syncthreads or shuffle is reported as a deadlock and a misused shuffle mask as an error,
// a missing __syncthreads shows its stale read, 3-D blocks and grids are numbered and ordered as in CUDA,
// and the launch checks and the registry answer as grid.h says. Prints one line per check, then a few
// timings; exits 1 if any check failed.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "device.h" // for the test kernels below
#include "grid.h"

namespace {

// ---- tolerances -------------------------------------------------------------------------------------
//
// The reductions add in double in another order than the references, then round to float: they agree to
// the float's last bit or so. The softmax losses compute in double from the same floats.
constexpr double SUM_RTOL = 1e-6;
constexpr double SUM_ATOL = 1e-6;
constexpr double PARTIAL_RTOL = 1e-12; // the per-chunk partials stay in double
constexpr double LOSS_RTOL = 1e-6;
constexpr double LOSS_ATOL = 1e-7;

// ---- the Java backend's launch shapes (Launch.java) ----------------------------------------------------

constexpr unsigned ELEMENT_WISE_BLOCK = 256;
constexpr unsigned BLOCKS_PER_MULTIPROCESSOR = 32;
constexpr unsigned WARP = 32;
constexpr unsigned ROW_BLOCK = 256; // a warp per row: 8 rows per block
constexpr unsigned TILE_COLUMNS = 32;
constexpr unsigned TILE_BLOCK = 256; // 32 columns x 8 row groups
constexpr unsigned REDUCTION_BLOCK = 1024;
constexpr int REDUCTION_CHUNK = 8192; // CudaBackend.REDUCTION_CHUNK
constexpr unsigned H100_MULTIPROCESSORS = 132;

struct Shape {
    gsemu::Dim3 grid;
    gsemu::Dim3 block;
};

unsigned ceilDiv(long n, unsigned d) { return n <= 0 ? 0 : static_cast<unsigned>((n + d - 1) / d); }

Shape elementWise(long n, unsigned multiprocessors) {
    return {{std::min(ceilDiv(n, ELEMENT_WISE_BLOCK), BLOCKS_PER_MULTIPROCESSOR * multiprocessors), 1, 1},
            {ELEMENT_WISE_BLOCK, 1, 1}};
}
Shape warpPerRow(int rows) { return {{ceilDiv(rows, ROW_BLOCK / WARP), 1, 1}, {ROW_BLOCK, 1, 1}}; }
Shape columnTiles(int cols) { return {{ceilDiv(cols, TILE_COLUMNS), 1, 1}, {TILE_BLOCK, 1, 1}}; }
Shape blockPerChunk(int chunks) { return {{static_cast<unsigned>(chunks), 1, 1}, {REDUCTION_BLOCK, 1, 1}}; }

// ---- reporting --------------------------------------------------------------------------------------

int passed = 0;
int failed = 0;

void check(bool ok, const std::string& what) {
    std::printf("%s  %s\n", ok ? "ok  " : "FAIL", what.c_str());
    (ok ? passed : failed)++;
}

/**
 * Whether |got[i] - want[i]| <= atol + rtol |want[i]| for every i (NaN only where both are NaN); on failure,
 * prints the first few differing pairs and the worst one.
 */
template <class T, class U>
bool allClose(const char* what, const T* got, const U* want, std::size_t n, double atol, double rtol) {
    std::size_t bad = 0;
    std::size_t worst = 0;
    double worstExcess = -1;
    for (std::size_t i = 0; i < n; i++) {
        const double g = got[i];
        const double w = want[i];
        const double excess = std::fabs(g - w) - (atol + rtol * std::fabs(w));
        const bool ok = (std::isnan(g) && std::isnan(w)) || excess <= 0;
        if (!ok) {
            if (bad < 3) {
                std::printf("      %s[%zu]: got %.9g, want %.9g\n", what, i, g, w);
            }
            if (bad == 0 || std::isnan(excess) || excess > worstExcess) {
                worst = i;
                worstExcess = std::isnan(excess) ? std::numeric_limits<double>::infinity() : excess;
            }
            bad++;
        }
    }
    if (bad > 0) {
        std::printf("      %s: %zu of %zu differ; worst [%zu]: got %.9g, want %.9g\n", what, bad, n, worst,
                    static_cast<double>(got[worst]), static_cast<double>(want[worst]));
    }
    return bad == 0;
}

/** Whether every float has exactly the reference's bits. */
bool sameBits(const char* what, const float* got, const float* want, std::size_t n) {
    for (std::size_t i = 0; i < n; i++) {
        if (std::memcmp(got + i, want + i, sizeof(float)) != 0) {
            std::printf("      %s[%zu]: got %.9g, want %.9g (bits differ)\n", what, i, got[i], want[i]);
            return false;
        }
    }
    return true;
}

std::string shapeText(long rows, long cols) { return std::to_string(rows) + " x " + std::to_string(cols); }

// ---- launching ----------------------------------------------------------------------------------------

/** Runs the registry's kernel `name` with these argument values; "" or the runner's (or this check's) error. */
template <class... Args>
std::string launch(const char* name, Shape shape, Args... args) {
    const gsemu::KernelEntry* kernel = gsemu::findKernel(name);
    if (kernel == nullptr) {
        return std::string("no kernel ") + name + " in the registry";
    }
    const std::size_t sizes[] = {sizeof(Args)..., 0};
    bool same = kernel->arity == static_cast<int>(sizeof...(Args));
    for (int i = 0; same && i < kernel->arity; i++) {
        same = kernel->argSizes[i] == sizes[i];
    }
    if (!same) {
        return std::string("the test passes ") + name + " arguments that do not match its parameters";
    }
    void* params[] = {&args..., nullptr};
    return gsemu::runKernel(*kernel, shape.grid, shape.block, 0, params);
}

/** A launch that must succeed: true, or false after printing the runner's error. */
template <class... Args>
bool launched(const char* name, Shape shape, Args... args) {
    const std::string failure = launch(name, shape, args...);
    if (!failure.empty()) {
        std::printf("      %s\n", failure.c_str());
    }
    return failure.empty();
}

/** Random floats from a fixed seed: every run tests the same values. */
class Inputs {
public:
    explicit Inputs(unsigned seed) : random_(seed) {}

    std::vector<float> normal(std::size_t n, float scale = 1.0f) {
        std::normal_distribution<float> d(0.0f, scale);
        std::vector<float> v(n);
        for (float& x : v) {
            x = d(random_);
        }
        return v;
    }

    unsigned below(unsigned n) { return std::uniform_int_distribution<unsigned>(0, n - 1)(random_); }

private:
    std::mt19937 random_;
};

const float NaN = std::numeric_limits<float>::quiet_NaN();

// ---- the project's kernels ------------------------------------------------------------------------

/** On an H100's 132 multiprocessors, and on one: a grid capped at 32 blocks, whose threads stride. */
void fillF32() {
    for (auto [n, multiprocessors] : std::vector<std::pair<int, unsigned>>{
             {1, H100_MULTIPROCESSORS}, {3, H100_MULTIPROCESSORS}, {1000, H100_MULTIPROCESSORS},
             {4097, H100_MULTIPROCESSORS}, {100003, 1}}) {
        for (int offset : {0, 1}) { // 16-byte aligned (float4 path), then not (scalar path)
            std::vector<float> buffer(n + offset + 8, NaN);
            float* x = buffer.data() + offset;
            const float value = 2.5f;
            const Shape shape = elementWise(n, multiprocessors);
            bool ok = launched("fill_f32", shape, x, value, n);
            for (int i = 0; i < static_cast<int>(buffer.size()); i++) {
                const bool inside = i >= offset && i < offset + n;
                ok = ok && (inside ? buffer[i] == value : std::isnan(buffer[i]));
            }
            check(ok, "fill_f32: n " + std::to_string(n) + (offset ? ", unaligned" : ", aligned") + ", grid " +
                          std::to_string(shape.grid.x) + " x 256: every element, nothing outside");
        }
    }
}

/**
 * segmentSumOfSquares as CudaBackend runs it: segment_sum_of_squares, one block of 1024 per chunk of
 * REDUCTION_CHUNK elements, writes partials[c * segments + s]; the grid's last block adds them into out and
 * sets the ticket back to 0.
 */
void segmentSumOfSquares(Inputs& inputs) {
    const std::vector<std::vector<int>> cases = {
        {0, 1}, {0, 1, 1, 3}, {0, 999, 1000}, {0, 4097, 8200, 16384, 16385, 20001}, {0, 8192, 8192, 40000}};
    for (const std::vector<int>& starts : cases) {
        const int n = starts.back();
        const int segments = static_cast<int>(starts.size()) - 1;
        const int chunks = (n + REDUCTION_CHUNK - 1) / REDUCTION_CHUNK;
        const std::vector<float> x = inputs.normal(n, 3.0f);
        std::vector<double> partials(static_cast<std::size_t>(chunks) * segments,
                                     std::numeric_limits<double>::quiet_NaN());
        std::vector<float> out(segments, NaN);
        unsigned ticket = 0;
        std::vector<float> table(2 * static_cast<std::size_t>(segments), NaN); // the sums go into row 1 too
        const int row = 1;
        bool ok = launched("segment_sum_of_squares", blockPerChunk(chunks), x.data(), starts.data(), segments,
                           REDUCTION_CHUNK, n, partials.data(), out.data(), table.data(), &row, 2, &ticket);
        ok = ok && ticket == 0 && sameBits("table row 1", table.data() + segments, out.data(), segments) &&
             std::all_of(table.begin(), table.begin() + segments, [](float v) { return std::isnan(v); });
        std::vector<double> wantPartials(partials.size(), 0.0);
        std::vector<float> want(segments);
        for (int s = 0; s < segments; s++) {
            double total = 0;
            for (int k = starts[s]; k < starts[s + 1]; k++) {
                const double v = x[k];
                wantPartials[static_cast<std::size_t>(k / REDUCTION_CHUNK) * segments + s] += v * v;
                total += v * v;
            }
            want[s] = static_cast<float>(total);
        }
        ok = ok && allClose("partials", partials.data(), wantPartials.data(), partials.size(), 0.0, PARTIAL_RTOL);
        ok = ok && allClose("out", out.data(), want.data(), want.size(), 0.0, SUM_RTOL);
        std::string startsText;
        for (int start : starts) {
            startsText += (startsText.empty() ? "" : ", ") + std::to_string(start);
        }
        check(ok, "segment_sum_of_squares (chunks, then the last block): segment starts {" + startsText + "}, " +
                      std::to_string(chunks) + " chunk(s) of " + std::to_string(REDUCTION_CHUNK));
    }
}

void columnSums(Inputs& inputs) {
    for (auto [rows, cols] : std::vector<std::pair<int, int>>{{1, 1}, {3, 3}, {1000, 33}, {4097, 70}, {5, 1000}}) {
        const std::vector<float> x = inputs.normal(static_cast<std::size_t>(rows) * cols);
        std::vector<float> out(cols + 4, NaN);
        bool ok = launched("column_sums", columnTiles(cols), x.data(), out.data(), rows, cols);
        std::vector<float> want(cols);
        for (int j = 0; j < cols; j++) {
            double sum = 0;
            for (int i = 0; i < rows; i++) {
                sum += x[static_cast<std::size_t>(i) * cols + j];
            }
            want[j] = static_cast<float>(sum);
        }
        ok = ok && allClose("out", out.data(), want.data(), cols, SUM_ATOL, SUM_RTOL) &&
             std::all_of(out.begin() + cols, out.end(), [](float v) { return std::isnan(v); });
        check(ok, "column_sums: " + shapeText(rows, cols) + ", grid " + std::to_string(columnTiles(cols).grid.x) + " x 256");
    }
}

/**
 * relu_bias_backward as CudaBackend.biasActivationBackward launches it: dz = dy * relu'(z), the bias
 * gradient, and the unit statistics accumulated into [4, cols] (active rows, saturated rows, sum of y, sum
 * of y^2); and the profiler's form with only the statistics (dy, dz and the bias gradient NULL).
 */
void reluBiasBackward(Inputs& inputs) {
    const float saturationThreshold = 0.5f;
    for (auto [rows, cols] : std::vector<std::pair<int, int>>{{1, 1}, {3, 33}, {1000, 65}, {4097, 3}}) {
        for (bool withGradient : {true, false}) {
            const std::size_t n = static_cast<std::size_t>(rows) * cols;
            std::vector<float> z = inputs.normal(n);
            for (std::size_t e = 0; e < n; e += 7) {
                z[e] = 0.0f; // the kink: relu'(0) = 0
            }
            std::vector<float> y(n);
            std::transform(z.begin(), z.end(), y.begin(), [](float v) { return v > 0.0f ? v : 0.0f; });
            const std::vector<float> dy = inputs.normal(n);
            std::vector<float> dz(n, NaN);
            std::vector<float> bias(cols, NaN);
            const std::vector<float> statisticsBefore = inputs.normal(4 * static_cast<std::size_t>(cols));
            std::vector<float> statistics = statisticsBefore;
            bool ok = launched("relu_bias_backward", columnTiles(cols), static_cast<const float*>(z.data()),
                               static_cast<const float*>(y.data()),
                               withGradient ? dy.data() : static_cast<const float*>(nullptr),
                               withGradient ? dz.data() : static_cast<float*>(nullptr),
                               withGradient ? bias.data() : static_cast<float*>(nullptr),
                               static_cast<const float*>(nullptr), 0, rows, cols, saturationThreshold,
                               statistics.data());
            std::vector<float> wantDz(n);
            std::vector<float> wantBias(cols);
            std::vector<float> wantStatistics(statisticsBefore);
            for (int j = 0; j < cols; j++) {
                double gradient = 0, sum = 0, sumOfSquares = 0;
                unsigned active = 0, saturated = 0;
                for (int i = 0; i < rows; i++) {
                    const std::size_t e = static_cast<std::size_t>(i) * cols + j;
                    const float derivative = z[e] > 0.0f ? 1.0f : 0.0f;
                    wantDz[e] = dy[e] * derivative;
                    gradient += wantDz[e];
                    active += derivative != 0.0f;
                    saturated += std::fabs(derivative) < saturationThreshold;
                    sum += y[e];
                    sumOfSquares += static_cast<double>(y[e]) * y[e];
                }
                wantBias[j] = static_cast<float>(gradient);
                wantStatistics[j] += static_cast<float>(active);
                wantStatistics[cols + j] += static_cast<float>(saturated);
                wantStatistics[2 * cols + j] += static_cast<float>(sum);
                wantStatistics[3 * cols + j] += static_cast<float>(sumOfSquares);
            }
            if (withGradient) {
                ok = ok && sameBits("dz", dz.data(), wantDz.data(), n) &&
                     allClose("biasGradient", bias.data(), wantBias.data(), cols, SUM_ATOL, SUM_RTOL);
            }
            ok = ok && sameBits("active and saturated counts", statistics.data(), wantStatistics.data(), 2 * cols) &&
                 allClose("sums of y and y^2", statistics.data() + 2 * cols, wantStatistics.data() + 2 * cols,
                          2 * cols, SUM_ATOL, SUM_RTOL);
            check(ok, "relu_bias_backward: " + shapeText(rows, cols) +
                          (withGradient ? ", dz, bias gradient and statistics" : ", statistics only"));
        }
    }
}

/** The index of the first largest element, as the CPU's `if (row[c] > row[best]) best = c`. */
int firstArgMax(const float* row, int cols) {
    int best = 0;
    for (int c = 1; c < cols; c++) {
        if (row[c] > row[best]) {
            best = c;
        }
    }
    return best;
}

/**
 * One warp per row: every warp reduction (max, sum, arg-max) goes through the runner's shuffles. The
 * output layer's bias is added in place first (small integers, so a tie can be built exactly), and the
 * last block writes the bias gradient as well as the totals.
 */
void softmaxCrossEntropyRows(Inputs& inputs) {
    const float gradScale = 0.25f;
    for (auto [rows, cols] : std::vector<std::pair<int, int>>{{1, 1}, {3, 10}, {1000, 3}, {17, 4097}}) {
        const std::size_t n = static_cast<std::size_t>(rows) * cols;
        std::vector<float> logits = inputs.normal(n, 4.0f);
        std::vector<float> bias(cols);
        for (int c = 0; c < cols; c++) {
            bias[c] = static_cast<float>(c % 3) - 1.0f;
        }
        std::vector<float> targets(n, 0.0f);
        for (int r = 0; r < rows; r++) {
            float* t = targets.data() + static_cast<std::size_t>(r) * cols;
            if (r % 5 == 4 && cols > 1) { // a soft target
                t[0] = 0.75f;
                t[cols - 1] = 0.25f;
            } else {
                t[inputs.below(cols)] = 1.0f;
            }
            if (r % 3 == 1 && cols > 2) { // a tie for the largest biased logit: the first one counts
                float* z = logits.data() + static_cast<std::size_t>(r) * cols;
                const float top = std::ceil(*std::max_element(z, z + cols)) + 2.0f; // above every biased logit
                z[1] = top - bias[1];
                z[cols - 1] = top - bias[cols - 1];
            }
        }
        std::vector<float> biased(logits);
        for (std::size_t e = 0; e < n; e++) {
            biased[e] += bias[e % cols];
        }
        std::vector<float> biasGradient(cols, NaN);
        std::vector<float> dLogits(n, NaN);
        std::vector<float> rowLoss(rows, NaN);
        std::vector<float> rowCorrect(rows, NaN);
        float totals[2] = {0.5f, 2.0f}; // added to, not overwritten
        unsigned ticket = 0;
        bool ok = launched("softmax_cross_entropy_rows", warpPerRow(rows), logits.data(),
                           static_cast<const float*>(bias.data()), static_cast<const float*>(targets.data()), gradScale,
                           dLogits.data(), rowLoss.data(), rowCorrect.data(), biasGradient.data(), rows, cols, totals,
                           &ticket);
        ok = ok && ticket == 0 && sameBits("biased logits", logits.data(), biased.data(), n);
        std::vector<float> wantD(n);
        std::vector<float> wantLoss(rows);
        std::vector<float> wantCorrect(rows);
        for (int r = 0; r < rows; r++) {
            const float* z = biased.data() + static_cast<std::size_t>(r) * cols;
            const float* t = targets.data() + static_cast<std::size_t>(r) * cols;
            const double max = *std::max_element(z, z + cols);
            double sum = 0, mass = 0, loss = 0;
            for (int c = 0; c < cols; c++) {
                sum += std::exp(z[c] - max);
                mass += t[c];
            }
            const double logSumExp = std::log(sum) + max;
            for (int c = 0; c < cols; c++) {
                loss -= t[c] * (z[c] - logSumExp);
                wantD[static_cast<std::size_t>(r) * cols + c] =
                    static_cast<float>((std::exp(z[c] - max) / sum * mass - t[c]) * gradScale);
            }
            wantLoss[r] = static_cast<float>(loss);
            wantCorrect[r] = firstArgMax(z, cols) == firstArgMax(t, cols) ? 1.0f : 0.0f;
        }
        double lossSum = 0, correctSum = 0;
        for (int r = 0; r < rows; r++) {
            lossSum += rowLoss[r]; // the kernel adds its own rows' floats
            correctSum += wantCorrect[r];
        }
        const float wantTotals[2] = {0.5f + static_cast<float>(lossSum), 2.0f + static_cast<float>(correctSum)};
        std::vector<float> wantBiasGradient(cols);
        double largestColumn = 0;
        for (int c = 0; c < cols; c++) {
            double sum = 0, magnitude = 0;
            for (int r = 0; r < rows; r++) {
                sum += dLogits[static_cast<std::size_t>(r) * cols + c]; // the kernel's own dLogits, in double
                magnitude += std::abs(dLogits[static_cast<std::size_t>(r) * cols + c]);
            }
            wantBiasGradient[c] = static_cast<float>(sum);
            largestColumn = std::max(largestColumn, magnitude);
        }
        ok = ok && allClose("dLogits", dLogits.data(), wantD.data(), n, LOSS_ATOL, LOSS_RTOL) &&
             allClose("rowLoss", rowLoss.data(), wantLoss.data(), rows, LOSS_ATOL, LOSS_RTOL) &&
             sameBits("rowCorrect", rowCorrect.data(), wantCorrect.data(), rows) &&
             allClose("totals", totals, wantTotals, 2, 0.0, SUM_RTOL) &&
             allClose("bias gradient", biasGradient.data(), wantBiasGradient.data(), cols, SUM_RTOL * largestColumn,
                      0.0);
        check(ok, "softmax_cross_entropy_rows: " + shapeText(rows, cols) + ", grid " +
                      std::to_string(warpPerRow(rows).grid.x) + " x 256 (a warp per row)");
    }
}

/** The optimizer's float operations in the CPU's order: the same bits. */
void adamUpdate(Inputs& inputs) {
    const float beta1 = 0.9f, beta2 = 0.999f, epsilon = 1e-7f, stepSize = 0.001f;
    for (int n : {1, 3, 1000, 4097}) {
        for (int offset : {0, 1}) {
            const std::vector<float> p0 = inputs.normal(n + offset), g = inputs.normal(n + offset),
                                     m0 = inputs.normal(n + offset, 0.1f);
            std::vector<float> v0 = inputs.normal(n + offset, 0.01f);
            std::transform(v0.begin(), v0.end(), v0.begin(), [](float v) { return v * v; });
            std::vector<float> p = p0, m = m0, v = v0;
            bool ok = launched("adam_update", elementWise(n, H100_MULTIPROCESSORS), p.data() + offset,
                               static_cast<const float*>(g.data() + offset), m.data() + offset, v.data() + offset,
                               beta1, beta2, epsilon, stepSize, n);
            std::vector<float> wantP = p0, wantM = m0, wantV = v0;
            const float oneMinusBeta1 = 1.0f - beta1, oneMinusBeta2 = 1.0f - beta2;
            for (int i = offset; i < n + offset; i++) {
                wantM[i] = wantM[i] + oneMinusBeta1 * (g[i] - wantM[i]);
                wantV[i] = wantV[i] + oneMinusBeta2 * (g[i] * g[i] - wantV[i]);
                wantP[i] = wantP[i] - stepSize * wantM[i] / (std::sqrt(wantV[i]) + epsilon);
            }
            ok = ok && sameBits("params", p.data(), wantP.data(), p.size()) &&
                 sameBits("m", m.data(), wantM.data(), m.size()) && sameBits("v", v.data(), wantV.data(), v.size());
            check(ok, "adam_update: n " + std::to_string(n) + (offset ? ", unaligned" : ", aligned") +
                          ": the CPU's bits in params, m and v");
        }
    }
}

// ---- the runner's semantics, with kernels of this test ---------------------------------------------

__global__ void syncInSomeThreads(int* out) {
    if (threadIdx.x < 5) {
        __syncthreads();
    }
    out[threadIdx.x] = 1;
}

__global__ void shuffleInSomeLanes(int* out) {
    int v = static_cast<int>(threadIdx.x);
    if (threadIdx.x != 3) {
        v = __shfl_xor_sync(0xffffffffu, v, 1);
    }
    out[threadIdx.x] = v;
}

/** Every lane shuffles with the mask 0x1, which only lane 0 belongs to. */
__global__ void shuffleOutsideMask(int* out) { out[threadIdx.x] = __shfl_xor_sync(0x1u, 7, 1); }

/** A full-warp shuffle, which the last warp of a block of 48 threads (16 lanes) cannot make. */
__global__ void shuffleFullWarp(int* out) { out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 7, 1); }

/** Thread 1 writes slot[1], which thread 0 then reads: without the barrier between, thread 0 reads it first. */
__global__ void readNeighbourSlot(int* seen, int withBarrier) {
    __shared__ int slot[2];
    if (threadIdx.x == 0) {
        slot[1] = -1;
    }
    __syncthreads();
    slot[threadIdx.x] = 100 + static_cast<int>(threadIdx.x);
    if (withBarrier) {
        __syncthreads();
    }
    seen[threadIdx.x] = slot[1 - threadIdx.x];
}

struct ThreadRecord {
    unsigned linear;        // from threadIdx and blockDim, x fastest
    unsigned partner;       // the linear index of lane ^ 1, by an unsigned shuffle
    int partnerAsInt;       // ... by an int shuffle
    double partnerAsDouble; // ... by a double shuffle
    float partnerAsFloat;   // ... by a float shuffle
    unsigned farLane;       // the value of lane ^ 16
};

/** Records each thread's numbering and its shuffles; thread 0 of each block records the block order. */
__global__ void recordNumbering(ThreadRecord* records, unsigned* blockOrder, unsigned* blocksSeen) {
    const unsigned linear = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    ThreadRecord& r = records[block * blockDim.x * blockDim.y * blockDim.z + linear];
    r.linear = linear;
    r.partner = __shfl_xor_sync(0xffffffffu, linear, 1);
    r.partnerAsInt = __shfl_xor_sync(0xffffffffu, static_cast<int>(linear), 1);
    r.partnerAsDouble = __shfl_xor_sync(0xffffffffu, linear + 0.5, 1);
    r.partnerAsFloat = __shfl_xor_sync(0xffffffffu, linear + 0.25f, 1);
    r.farLane = __shfl_xor_sync(0xffffffffu, linear, 16);
    if (linear == 0) {
        blockOrder[(*blocksSeen)++] = block;
    }
}

/** Divergent barriers and misused shuffles fail the launch with a message, and the runner recovers. */
void barrierMisuse() {
    std::vector<int> out(64, 0);
    constexpr gsemu::KernelEntry syncEntry = gsemu::kernelEntry<&syncInSomeThreads>("syncInSomeThreads");
    int* outPointer = out.data();
    void* params[] = {&outPointer};
    std::string failure = gsemu::runKernel(syncEntry, {2, 1, 1}, {64, 1, 1}, 0, params);
    // Of the grid's 2 blocks, block 1 runs first (blocks start from the middle one) and deadlocks.
    check(failure.find("syncInSomeThreads, block 1: deadlock: thread 0 waits at __syncthreads, but thread 5 has "
                       "returned") != std::string::npos,
          "a __syncthreads reached by threads 0..4 of 64 is a deadlock, reported: " + failure);

    constexpr gsemu::KernelEntry shuffleEntry = gsemu::kernelEntry<&shuffleInSomeLanes>("shuffleInSomeLanes");
    failure = gsemu::runKernel(shuffleEntry, {1, 1, 1}, {32, 1, 1}, 0, params);
    check(failure.find("deadlock: thread 0 waits at a warp shuffle with mask 0xffffffff, but thread 3 has returned") !=
              std::string::npos,
          "a shuffle that lane 3 skips is a deadlock, reported: " + failure);

    constexpr gsemu::KernelEntry outsideEntry = gsemu::kernelEntry<&shuffleOutsideMask>("shuffleOutsideMask");
    failure = gsemu::runKernel(outsideEntry, {1, 1, 1}, {32, 1, 1}, 0, params);
    check(failure.find("thread 1: a warp shuffle's mask 0x00000001 omits the calling lane 1") != std::string::npos,
          "a shuffle whose mask omits the calling lane is reported: " + failure);

    constexpr gsemu::KernelEntry fullEntry = gsemu::kernelEntry<&shuffleFullWarp>("shuffleFullWarp");
    failure = gsemu::runKernel(fullEntry, {1, 1, 1}, {48, 1, 1}, 0, params);
    check(failure.find("thread 32: a warp shuffle's mask 0xffffffff names lanes that this warp of 16 threads does "
                       "not have") != std::string::npos,
          "a full-warp shuffle in a warp of 16 threads is reported: " + failure);

    std::vector<float> x(4097, NaN);
    const bool ok = launched("fill_f32", elementWise(4097, 1), x.data(), 1.0f, 4097) &&
                    std::all_of(x.begin(), x.end(), [](float v) { return v == 1.0f; });
    check(ok, "after these failed launches the runner runs the next one normally");
}

void missingBarrier() {
    constexpr gsemu::KernelEntry entry = gsemu::kernelEntry<&readNeighbourSlot>("readNeighbourSlot");
    for (int withBarrier : {0, 1}) {
        int seen[2] = {0, 0};
        int* seenPointer = seen;
        void* params[] = {&seenPointer, &withBarrier};
        const std::string failure = gsemu::runKernel(entry, {1, 1, 1}, {2, 1, 1}, 0, params);
        const int want0 = withBarrier ? 101 : -1;
        check(failure.empty() && seen[0] == want0 && seen[1] == 100,
              std::string(withBarrier ? "with" : "without") + " a __syncthreads, thread 0 reads " +
                  std::to_string(seen[0]) + " (want " + std::to_string(want0) + ") from the slot thread 1 writes" +
                  (failure.empty() ? "" : ": " + failure));
    }
}

void numbering() {
    const gsemu::Dim3 grid{3, 2, 2};
    const gsemu::Dim3 block{8, 4, 3}; // 96 threads: 3 warps, numbered x fastest
    const unsigned blocks = grid.x * grid.y * grid.z;
    const unsigned threads = block.x * block.y * block.z;
    std::vector<ThreadRecord> records(blocks * threads);
    std::vector<unsigned> order(blocks, ~0u);
    unsigned seen = 0;
    ThreadRecord* recordsPointer = records.data();
    unsigned* orderPointer = order.data();
    unsigned* seenPointer = &seen;
    void* params[] = {&recordsPointer, &orderPointer, &seenPointer};
    constexpr gsemu::KernelEntry entry = gsemu::kernelEntry<&recordNumbering>("recordNumbering");
    const std::string failure = gsemu::runKernel(entry, grid, block, 0, params);
    bool ok = failure.empty();
    for (unsigned b = 0; ok && b < blocks; b++) {
        ok = order[b] == (b + blocks / 2) % blocks; // from the middle block, wrapping around
        for (unsigned t = 0; ok && t < threads; t++) {
            const ThreadRecord& r = records[b * threads + t];
            ok = r.linear == t && r.partner == (t ^ 1) && r.partnerAsInt == static_cast<int>(t ^ 1) &&
                 r.partnerAsDouble == (t ^ 1) + 0.5 && r.partnerAsFloat == (t ^ 1) + 0.25f && r.farLane == (t ^ 16);
        }
    }
    check(ok, "grid (3, 2, 2) x block (8, 4, 3): blocks in x-fastest order from the middle one, threads and warp lanes"
              " numbered x fastest, "
              "shuffles of unsigned, int, float and double" + (failure.empty() ? "" : ": " + failure));
}

void launchChecks() {
    std::vector<float> x(16, NaN);
    check(!launch("fill_f32", {{1, 1, 1}, {1025, 1, 1}}, x.data(), 1.0f, 16).empty(), "a block of 1025 threads is refused");
    check(!launch("fill_f32", {{0, 1, 1}, {256, 1, 1}}, x.data(), 1.0f, 16).empty(), "a grid of 0 blocks is refused");
    const gsemu::KernelEntry* fill = gsemu::findKernel("fill_f32");
    float* xPointer = x.data();
    float value = 1.0f;
    int n = 16;
    void* params[] = {&xPointer, &value, &n};
    check(fill != nullptr && !gsemu::runKernel(*fill, {1, 1, 1}, {32, 1, 1}, 16, params).empty(),
          "dynamic shared memory is refused");
    check(std::all_of(x.begin(), x.end(), [](float v) { return std::isnan(v); }), "... and nothing ran");

    check(gsemu::findKernel("no_such_kernel") == nullptr, "findKernel of an unknown name is nullptr");
    bool consistent = gsemu::kernelCount() > 0;
    for (std::size_t i = 0; consistent && i < gsemu::kernelCount(); i++) {
        consistent = gsemu::findKernel(gsemu::kernelAt(i).name) == &gsemu::kernelAt(i);
    }
    check(consistent, "findKernel finds each of the " + std::to_string(gsemu::kernelCount()) + " kernels of kernelAt");
    check(fill != nullptr && fill->arity == 3 && fill->argSizes[0] == 8 && fill->argSizes[1] == 4 &&
              fill->argSizes[2] == 4,
          "fill_f32's parameters: 3, of 8, 4 and 4 bytes");
}

void concurrentThreads() {
    std::vector<float> a(4097, NaN), b(4097, NaN);
    std::string failureA, failureB;
    std::thread first([&] { failureA = launch("fill_f32", elementWise(4097, 1), a.data(), 1.0f, 4097); });
    std::thread second([&] { failureB = launch("fill_f32", elementWise(4097, 1), b.data(), 2.0f, 4097); });
    first.join();
    second.join();
    check(failureA.empty() && failureB.empty() && std::all_of(a.begin(), a.end(), [](float v) { return v == 1.0f; }) &&
              std::all_of(b.begin(), b.end(), [](float v) { return v == 2.0f; }),
          "two OS threads run kernels at the same time, each with its own fibers");
}

// ---- timings (informative: printed, not checked) ---------------------------------------------------

template <class Body>
double millisecondsPerRun(int runs, Body body) {
    body(); // the first launch on a thread maps the stacks
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < runs; i++) {
        body();
    }
    const std::chrono::duration<double, std::milli> elapsed = std::chrono::steady_clock::now() - start;
    return elapsed.count() / runs;
}

void timings(Inputs& inputs) {
    const int n = 1 << 20;
    const std::vector<float> z = inputs.normal(n);
    std::vector<float> y(n);
    const double elementWiseMs = millisecondsPerRun(20, [&] {
        launch("relu_forward", {{64, 1, 1}, {256, 1, 1}}, z.data(), y.data(), static_cast<const float*>(nullptr), 0,
               1, n);
    });
    std::printf("time  relu_forward over 2^20 floats, grid 64 x 256: %.2f ms\n", elementWiseMs);

    const int starts[2] = {0, REDUCTION_CHUNK};
    const std::vector<float> chunk = inputs.normal(REDUCTION_CHUNK);
    double partial = 0;
    float total = 0;
    unsigned ticket = 0;
    const double reductionMs = millisecondsPerRun(200, [&] {
        launch("segment_sum_of_squares", blockPerChunk(1), chunk.data(), starts, 1, REDUCTION_CHUNK, REDUCTION_CHUNK,
               &partial, &total, static_cast<float*>(nullptr), static_cast<const int*>(nullptr), 0, &ticket);
    });
    std::printf("time  segment_sum_of_squares, one chunk of %d, one block of 1024 threads, 14 __syncthreads: %.3f ms\n",
                REDUCTION_CHUNK, reductionMs);

    const int rows = 256, cols = 10;
    std::vector<float> logits = inputs.normal(rows * cols);
    std::vector<float> targets(rows * cols, 0.0f), d(rows * cols), loss(rows), correct(rows);
    for (int r = 0; r < rows; r++) {
        targets[r * cols + r % cols] = 1.0f;
    }
    const double lossMs = millisecondsPerRun(50, [&] {
        float totals[2] = {0, 0};
        unsigned ticket = 0;
        launch("softmax_cross_entropy_rows", warpPerRow(rows), logits.data(), static_cast<const float*>(nullptr),
               static_cast<const float*>(targets.data()), 1.0f, d.data(), loss.data(), correct.data(),
               static_cast<float*>(nullptr), rows, cols, totals, &ticket);
    });
    std::printf("time  softmax_cross_entropy_rows, 256 x 10 (32 blocks of 256, 40 shuffles per warp): %.3f ms\n", lossMs);
}

} // namespace

int main() {
    Inputs inputs(20240611);
    fillF32();
    segmentSumOfSquares(inputs);
    columnSums(inputs);
    reluBiasBackward(inputs);
    softmaxCrossEntropyRows(inputs);
    adamUpdate(inputs);
    barrierMisuse();
    missingBarrier();
    numbering();
    launchChecks();
    concurrentThreads();
    timings(inputs);
    std::printf("selftest: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
