// Optimizer steps over the flat parameter and gradient buffers: CpuBackend.adamUpdate (also its form that
// reads the iteration count from the device, and AMSGrad's), sgdUpdate, rmspropUpdate, nadamUpdate,
// adamaxUpdate and adagradUpdate, each with Keras 3's decoupled weight
// decay in the same pass, their measured forms that also end a training step (Backend's StepEnd: gradient and
// update norms, the step counter) in the same launch, and the gradient clipping that precedes them:
// clipByValue and clipByGlobalNorm.
//
// The CPU computes these in float, so the GPU computes the same float operations in the same order,
// each rounded on its own: the __f*_rn intrinsics are never fused into an FMA (nvcc fuses a * b + c
// by default), so a GPU step gives the CPU's bits, not merely close values. 16-byte groups when every
// buffer is 16-byte aligned; one thread per element, grid-stride.
#include "common.cuh"

namespace gs {

/**
 * Keras 3's decoupled weight decay, applied to a parameter before the optimizer's own step:
 * p - p * weightDecay * learningRate, each operation rounded on its own as on the CPU. With weightDecay 0
 * the parameter is returned untouched (not p - 0, which would turn -0 into +0 and an infinity into NaN),
 * so a run without weight decay has the bits it had before weight decay existed.
 */
__device__ __forceinline__ float decayed(float p, float weightDecay, float learningRate) {
    return weightDecay == 0.0f ? p : __fsub_rn(p, __fmul_rn(__fmul_rn(p, weightDecay), learningRate));
}

/** Java's Math.min: NaN when either operand is NaN, and -0 is below +0 (fminf does neither). */
__device__ __forceinline__ float javaMin(float a, float b) {
    if (isnan(a)) {
        return a;
    }
    if (a == 0.0f && b == 0.0f && signbit(b)) {
        return b;
    }
    return a <= b ? a : b; // a NaN b fails the test: b
}

/** Java's Math.max: NaN when either operand is NaN, and +0 is above -0 (fmaxf does neither). */
__device__ __forceinline__ float javaMax(float a, float b) {
    if (isnan(a)) {
        return a;
    }
    if (a == 0.0f && b == 0.0f && signbit(a)) {
        return b;
    }
    return a >= b ? a : b;
}

/**
 * Keras's Adam rule, the bias corrections folded into stepSize by the caller:
 * m += (1 - beta1)(g - m), v += (1 - beta2)(g^2 - v), p -= stepSize m / (sqrt(v) + epsilon); after the
 * weight decay (decayed) with weightDecay and learningRate, which the host-scalar kernels leave at 0.
 */
struct AdamStep {
    float oneMinusBeta1, oneMinusBeta2, epsilon, stepSize, weightDecay, learningRate;

    __device__ __forceinline__ void operator()(float& p, float g, float& m, float& v) const {
        m = __fadd_rn(m, __fmul_rn(oneMinusBeta1, __fsub_rn(g, m)));
        v = __fadd_rn(v, __fmul_rn(oneMinusBeta2, __fsub_rn(__fmul_rn(g, g), v)));
        p = __fsub_rn(decayed(p, weightDecay, learningRate),
                      __fdiv_rn(__fmul_rn(stepSize, m), __fadd_rn(__fsqrt_rn(v), epsilon)));
    }

    /**
     * Keras's AMSGrad: the moments as Adam's, then vHat = max(vHat, v) (Java's Math.max) and
     * p -= stepSize m / (sqrt(vHat) + epsilon).
     */
    __device__ __forceinline__ void operator()(float& p, float g, float& m, float& v, float& vHat) const {
        m = __fadd_rn(m, __fmul_rn(oneMinusBeta1, __fsub_rn(g, m)));
        v = __fadd_rn(v, __fmul_rn(oneMinusBeta2, __fsub_rn(__fmul_rn(g, g), v)));
        vHat = javaMax(vHat, v);
        p = __fsub_rn(decayed(p, weightDecay, learningRate),
                      __fdiv_rn(__fmul_rn(stepSize, m), __fadd_rn(__fsqrt_rn(vHat), epsilon)));
    }
};

/**
 * Keras's SGD rule with momentum, after the weight decay: velocity = momentum velocity - lr g, then
 * p += velocity or, with Nesterov, p += momentum velocity - lr g.
 */
struct MomentumStep {
    float learningRate, momentum, weightDecay;
    bool nesterov;

    __device__ __forceinline__ void operator()(float& p, float g, float& velocity) const {
        const float lrG = __fmul_rn(learningRate, g);
        velocity = __fsub_rn(__fmul_rn(momentum, velocity), lrG);
        p = __fadd_rn(decayed(p, weightDecay, learningRate),
                      nesterov ? __fsub_rn(__fmul_rn(momentum, velocity), lrG) : velocity);
    }
};

/**
 * Keras 3's RMSprop rule, after the weight decay: velocity = rho velocity + (1 - rho) g^2; centered:
 * average = rho average + (1 - rho) g and denominator = velocity - average^2 + epsilon, else
 * denominator = velocity + epsilon (epsilon inside the square root, as Keras 3); increment =
 * lr g / sqrt(denominator); with momentum, buffer = momentum buffer + increment and p -= buffer, else
 * p -= increment. average is only touched when centered, buffer only when momentum != 0.
 */
struct RmsPropStep {
    float learningRate, rho, oneMinusRho, momentum, epsilon, weightDecay;
    bool centered;

    __device__ __forceinline__ void operator()(float& p, float g, float& velocity, float& average,
                                               float& buffer) const {
        const float start = decayed(p, weightDecay, learningRate);
        velocity = __fadd_rn(__fmul_rn(rho, velocity), __fmul_rn(oneMinusRho, __fmul_rn(g, g)));
        float denominator;
        if (centered) {
            average = __fadd_rn(__fmul_rn(rho, average), __fmul_rn(oneMinusRho, g));
            denominator = __fadd_rn(__fsub_rn(velocity, __fmul_rn(average, average)), epsilon);
        } else {
            denominator = __fadd_rn(velocity, epsilon);
        }
        const float increment = __fdiv_rn(__fmul_rn(learningRate, g), __fsqrt_rn(denominator));
        if (momentum != 0.0f) {
            buffer = __fadd_rn(__fmul_rn(momentum, buffer), increment);
            p = __fsub_rn(start, buffer);
        } else {
            p = __fsub_rn(start, increment);
        }
    }
};

/**
 * base^exponent by repeated squaring, in double: the same IEEE multiplications, in the same order, as
 * Backend.adamStepSize on the host, so the device's bias correction has the host's bits (pow differs between
 * Java and CUDA by an ulp or two). 1 for an exponent <= 0. The __d*_rn intrinsics keep every operation
 * rounded on its own, as in Java: never fused into an FMA with the subtraction that follows.
 */
__device__ __forceinline__ double powerBySquaring(double base, long long exponent) {
    double result = 1.0;
    while (exponent > 0) {
        if (exponent & 1) {
            result = __dmul_rn(result, base);
        }
        base = __dmul_rn(base, base);
        exponent >>= 1;
    }
    return result;
}

/**
 * Adam's step size at update t = iterations[0] + 1, Backend.adamStepSize on the device:
 * (float) (learningRate * sqrt(1 - beta2^t) / (1 - beta1^t)), in double, each operation rounded as in Java.
 * A plain load, not __ldg: the kernel's last block writes the count.
 */
__device__ __forceinline__ float adamStepSize(double learningRate, double beta1, double beta2,
                                              const int* __restrict__ iterations) {
    const long long t = static_cast<long long>(*iterations) + 1;
    const double numerator = __dmul_rn(learningRate, __dsqrt_rn(__dsub_rn(1.0, powerBySquaring(beta2, t))));
    return __double2float_rn(__ddiv_rn(numerator, __dsub_rn(1.0, powerBySquaring(beta1, t))));
}

/**
 * cos(x) for x in [0, pi], by the Taylor series to x^36 in Horner's form, r = 1 - x^2 r / ((2k-1) 2k) from k = 18
 * down to 1: only IEEE additions, multiplications and divisions, each rounded on its own, so that
 * StepSchedule.cosine on the host gives the same bits (CUDA's cos and Java's differ by an ulp). The series'
 * truncation error at pi is below 1e-23; the rounding error below 1e-15.
 */
__device__ __forceinline__ double cosineBySeries(double x) {
    const double x2 = __dmul_rn(x, x);
    double r = 1.0;
    for (int k = 18; k >= 1; k--) {
        r = __dsub_rn(1.0, __ddiv_rn(__dmul_rn(x2, r), static_cast<double>((2 * k - 1) * (2 * k))));
    }
    return r;
}

/**
 * The learning rate of the update at step `step` (Keras's iterations before it, from 0) under a per-step schedule,
 * StepSchedule.rate on the host, in double with each operation rounded as in Java. Keras's CosineDecay with
 * initial_learning_rate warmupStart, warmup_target learningRate (learningRate itself without warmup), warmup_steps
 * warmupSteps, decay_steps decaySteps and alpha: s = min(step, warmupSteps + decaySteps); below warmupSteps
 * (learningRate - warmupStart) (s / warmupSteps) + warmupStart; then learningRate ((1 - alpha) 0.5 (1 + cos(pi
 * (s - warmupSteps) / decaySteps)) + alpha), or learningRate when decaySteps is 0 (a warmup alone). No warmup and
 * no decay: learningRate, untouched.
 */
__device__ __forceinline__ double scheduledRate(double learningRate, double warmupStart, int warmupSteps,
                                                int decaySteps, double alpha, const int* iterations) {
    if (warmupSteps == 0 && decaySteps == 0) {
        return learningRate;
    }
    const long long last = static_cast<long long>(warmupSteps) + decaySteps;
    const long long step = *iterations;
    const double s = static_cast<double>(step < last ? step : last);
    if (s < warmupSteps) {
        return __dadd_rn(__dmul_rn(__dsub_rn(learningRate, warmupStart), __ddiv_rn(s, warmupSteps)), warmupStart);
    }
    if (decaySteps == 0) {
        return learningRate;
    }
    const double fraction = __ddiv_rn(__dsub_rn(s, warmupSteps), decaySteps);
    // Never below 0: the series is within 1e-15 of -1 near pi, which over a billion steps could round the rate negative.
    const double halfCosine = __dmul_rn(0.5, __dadd_rn(1.0, cosineBySeries(__dmul_rn(3.141592653589793, fraction))));
    const double cosineDecayed = halfCosine > 0.0 ? halfCosine : 0.0;
    return __dmul_rn(learningRate, __dadd_rn(__dmul_rn(__dsub_rn(1.0, alpha), cosineDecayed), alpha));
}

/**
 * The rate of an update of SGD, RMSprop or Adagrad, whose count is optional: learningRate when iterations is NULL
 * (a caller that keeps no count, and then no schedule), else (float) scheduledRate(learningRate, ...) at step
 * iterations[0], as (float) StepSchedule.rate on the CPU (learningRate itself without a schedule).
 */
__device__ __forceinline__ float rateAtCount(float learningRate, double warmupStart, int warmupSteps, int decaySteps,
                                             double alpha, const int* iterations) {
    return iterations == nullptr ? learningRate
                                 : __double2float_rn(scheduledRate(learningRate, warmupStart, warmupSteps, decaySteps,
                                                                   alpha, iterations));
}

/**
 * Adds one update to the count, which stays at INT_MAX once there (2^31 - 1 updates): a count that wrapped to a
 * negative number would put a per-step schedule back before its warmup (a negative rate) and Adam's bias correction
 * out of its range. Every counting kernel calls it from one thread of the grid's last block; the CPU does the same.
 */
__device__ __forceinline__ void addOneUpdate(int* iterations) {
    if (*iterations < 2147483647) {
        *iterations += 1;
    }
}

/**
 * Counts an update (addOneUpdate) once every block of the grid has read the count: by the grid's last block
 * to finish, as Adam's counter kernels do. Nothing when iterations is NULL, which is the same for every block.
 */
__device__ __forceinline__ void countUpdate(int* iterations, unsigned* ticket) {
    if (iterations != nullptr && isLastBlockToFinish(ticket) && threadIdx.x == 0) {
        addOneUpdate(iterations);
    }
}

/** SGD without momentum, after the weight decay: p - lr g, each operation rounded on its own as on the CPU. */
__device__ __forceinline__ float plainStep(float p, float g, float learningRate, float weightDecay) {
    return __fsub_rn(decayed(p, weightDecay, learningRate), __fmul_rn(learningRate, g));
}

/** The CPU's Math.max(-limit, Math.min(limit, x)), with its NaN and signed-zero results. */
__device__ __forceinline__ float clipToLimit(float x, float limit) {
    return javaMax(-limit, javaMin(limit, x));
}

} // namespace gs

namespace gs {

/**
 * The Adam step over elements [0, n) of the flat buffers, AMSGrad's when vHat is not NULL: 16-byte groups when
 * all the buffers are aligned.
 */
__device__ __forceinline__ void adamElements(float* __restrict__ params, const float* __restrict__ grads,
                                             float* __restrict__ m, float* __restrict__ v,
                                             float* __restrict__ vHat, const AdamStep& step, int n) {
    if (vHat != nullptr) {
        forEachElement(
            countOf(n), allAligned16(params, grads, m, v, vHat),
            [&](unsigned k) {
                float4 p4 = load4(params, k);
                const float4 g4 = load4ReadOnly(grads, k);
                float4 m4 = load4(m, k);
                float4 v4 = load4(v, k);
                float4 h4 = load4(vHat, k);
#pragma unroll
                for (int l = 0; l < 4; l++) {
                    step(lane(p4, l), lane(g4, l), lane(m4, l), lane(v4, l), lane(h4, l));
                }
                store4(params, k, p4);
                store4(m, k, m4);
                store4(v, k, v4);
                store4(vHat, k, h4);
            },
            [&](unsigned i) { step(params[i], grads[i], m[i], v[i], vHat[i]); });
        return;
    }
    forEachElement(
        countOf(n), allAligned16(params, grads, m, v),
        [&](unsigned k) {
            float4 p4 = load4(params, k);
            const float4 g4 = load4ReadOnly(grads, k);
            float4 m4 = load4(m, k);
            float4 v4 = load4(v, k);
#pragma unroll
            for (int l = 0; l < 4; l++) {
                step(lane(p4, l), lane(g4, l), lane(m4, l), lane(v4, l));
            }
            store4(params, k, p4);
            store4(m, k, m4);
            store4(v, k, v4);
        },
        [&](unsigned i) { step(params[i], grads[i], m[i], v[i]); });
}

} // namespace gs

extern "C" __global__ void adam_update(float* __restrict__ params, const float* __restrict__ grads,
                                       float* __restrict__ m, float* __restrict__ v, float beta1, float beta2,
                                       float epsilon, float stepSize, int n) {
    const gs::AdamStep step{__fsub_rn(1.0f, beta1), __fsub_rn(1.0f, beta2), epsilon, stepSize, 0.0f, 0.0f};
    gs::adamElements(params, grads, m, v, nullptr, step, n);
}

namespace gs {

/**
 * What a measured optimizer step writes besides the update, each part optional (Backend's GradientNorms,
 * UpdateNorms and StepEnd): partial sums per chunk, then the totals, and (unless the table is NULL) the
 * totals again into row row[0] of the table; and last, a counter to advance.
 */
struct MeasuredStep {
    // The gradients' squared norms per segment, before the step (gradientPartials NULL: not measured).
    double* gradientPartials;
    float* gradientSquares;
    float* gradientTable; // [gradientTableRows, segments]
    const int* gradientRow;
    int gradientTableRows;
    // The weights' squared norms before the step and the step's squared size (weightPartials NULL: neither).
    double* weightPartials;
    double* updatePartials;
    float* weightSquares;
    float* updateSquares;
    float* table; // [tableRows, 2 * segments]: the weights' row, then the updates'
    const int* row;
    int tableRows;
    // NULL, or counter[0] += 1 once every table row is stored: the end of a training step.
    int* counter;
    unsigned* ticket;
};

/** Stores totals[0, columns) into row row[0] of table [tableRows, width] at column `at`; a row outside: nothing. */
__device__ __forceinline__ void storeToRow(const float* __restrict__ totals, unsigned columns,
                                           float* __restrict__ table, const int* row, int tableRows, unsigned width,
                                           unsigned at) {
    const int r = *row;
    if (r >= 0 && r < tableRows) {
        float* __restrict__ destination = table + static_cast<size_t>(r) * width + at;
        for (unsigned s = threadIdx.x; s < columns; s += blockDim.x) {
            destination[s] = totals[s];
        }
    }
}

/**
 * An optimizer step that also measures itself and ends the training step (MeasuredStep), in one launch: one
 * block of 1024 per chunk of the flat buffers (forEachSegmentOfChunk) updates the chunk and writes, per
 * segment s it overlaps, in one pass through one tree (blockSumsOfOverlap), gradientPartials[c][s] = sum of
 * g^2 (segment_sum_of_squares' partial, the same bits), weightPartials[c][s] = sum of p^2 before the step and
 * updatePartials[c][s] = sum of (p after - p before)^2, the difference in double; then the grid's last block
 * adds each segment's chunks in a fixed order (totalSegmentPartials) into the totals (and the tables' rows):
 * deterministic; and last advances the counter.
 * The segments must cover the buffers: elements outside every segment are not updated. stepAt(k) updates
 * element k. Returns whether this block was the last (every block has finished its update then), in every
 * thread of it.
 */
template <class StepAt>
__device__ __forceinline__ bool updateWithNorms(float* __restrict__ params, const float* __restrict__ grads,
                                                const int* __restrict__ segmentStarts, int segments, unsigned chunk,
                                                unsigned n, const MeasuredStep& out, StepAt stepAt) {
    const unsigned columns = countOf(segments);
    // Which parts are measured is the same in every thread: the branches below are uniform across the grid.
    const bool measured = out.gradientPartials != nullptr || out.weightPartials != nullptr;
    forEachSegmentOfChunk(segmentStarts, segments, chunk, n, [&](unsigned c, unsigned s, unsigned begin, unsigned end) {
        if (!measured) {
            for (unsigned k = begin + threadIdx.x; k < end; k += blockDim.x) {
                stepAt(k);
            }
            return;
        }
        // One pass, the three sums through one tree: the thread that reads a weight is the one that steps it.
        const Sums<3> sums = blockSumsOfOverlap<3>(begin, end, [&](unsigned k) {
            const double g = grads[k];
            const float before = params[k];
            stepAt(k);
            const double weight = before;
            const double change = static_cast<double>(params[k]) - weight;
            return Sums<3>{{g * g, weight * weight, change * change}};
        });
        if (threadIdx.x == 0) {
            const size_t at = static_cast<size_t>(c) * columns + s;
            if (out.gradientPartials != nullptr) {
                out.gradientPartials[at] = sums.value[0];
            }
            if (out.weightPartials != nullptr) {
                out.weightPartials[at] = sums.value[1];
                out.updatePartials[at] = sums.value[2];
            }
        }
    });
    if (!isLastBlockToFinish(out.ticket)) {
        return false;
    }
    const unsigned chunks = chunkCount(n, chunk);
    const bool weights = out.weightPartials != nullptr;
    const PartialTable tables[3] = {{out.gradientPartials, out.gradientSquares},
                                    {out.weightPartials, out.weightSquares},
                                    {weights ? out.updatePartials : nullptr, out.updateSquares}};
    totalSegmentPartials(tables, chunks, columns);
    __syncthreads(); // the block's warps have written every total
    if (out.gradientPartials != nullptr && out.gradientTable != nullptr) {
        storeToRow(out.gradientSquares, columns, out.gradientTable, out.gradientRow, out.gradientTableRows, columns, 0);
    }
    if (out.weightPartials != nullptr && out.table != nullptr) {
        storeToRow(out.weightSquares, columns, out.table, out.row, out.tableRows, 2 * columns, 0);
        storeToRow(out.updateSquares, columns, out.table, out.row, out.tableRows, 2 * columns, columns);
    }
    if (out.counter != nullptr) {
        __syncthreads(); // every thread has read the rows (the counter may be one of them) before it moves
        if (threadIdx.x == 0) {
            *out.counter += 1;
        }
    }
    return true;
}

} // namespace gs

// The measured kernels' common tail of parameters, after the optimizer's own (MeasuredStep, in its order).
// The rows and the counter are not __restrict__: the trainer passes one step index as all three, read (the
// rows) and written (the counter) in the same launch, so none may be read through the read-only cache.
#define GS_MEASURED_PARAMETERS                                                                                   \
    const int *__restrict__ segmentStarts, int segments, int chunk, int n, double *__restrict__ gradientPartials,  \
        float *__restrict__ gradientSquares, float *__restrict__ gradientTable,                                    \
        const int *gradientRow, int gradientTableRows, double *__restrict__ weightPartials,                        \
        double *__restrict__ updatePartials, float *__restrict__ weightSquares,                                    \
        float *__restrict__ updateSquares, float *__restrict__ table, const int *row, int tableRows, int *counter, \
        unsigned *__restrict__ ticket
#define GS_MEASURED_STEP                                                                                          \
    gs::MeasuredStep {                                                                                            \
        gradientPartials, gradientSquares, gradientTable, gradientRow, gradientTableRows, weightPartials,          \
            updatePartials, weightSquares, updateSquares, table, row, tableRows, counter, ticket                   \
    }

/** adam_update, measured (MeasuredStep; launch: one block of 1024 per chunk). */
extern "C" __global__ void GS_BLOCKS_OF_1024 adam_update_measured(
    float* __restrict__ params, const float* __restrict__ grads, float* __restrict__ m, float* __restrict__ v,
    float beta1, float beta2, float epsilon, float stepSize, GS_MEASURED_PARAMETERS) {
    const gs::AdamStep step{__fsub_rn(1.0f, beta1), __fsub_rn(1.0f, beta2), epsilon, stepSize, 0.0f, 0.0f};
    gs::updateWithNorms(params, grads, segmentStarts, segments, gs::countOf(chunk), gs::countOf(n), GS_MEASURED_STEP,
                        [&](unsigned k) { step(params[k], grads[k], m[k], v[k]); });
}

/**
 * adam_update with the step size from the device's iteration count (Backend.adamUpdate's counter form), AMSGrad's
 * step when vHat is not NULL: the step's rate = scheduledRate(learningRate, warmupStart, warmupSteps, decaySteps,
 * alpha, iterations) (learningRate itself without a schedule), stepSize = adamStepSize(rate, beta1, beta2,
 * iterations), the moments with (float) beta1 and (float) beta2, after the weight decay with weightDecay and
 * (float) rate. Every thread computes the step size (a few dozen double operations); the grid's last block,
 * when every block has read the count, adds this update to it (iterations[0] += 1).
 */
extern "C" __global__ void adam_update_counter(float* __restrict__ params, const float* __restrict__ grads,
                                               float* __restrict__ m, float* __restrict__ v,
                                               float* __restrict__ vHat, double learningRate,
                                               double warmupStart, int warmupSteps, int decaySteps, double alpha,
                                               double beta1, double beta2, float epsilon, float weightDecay,
                                               int* __restrict__ iterations, int n, unsigned* __restrict__ ticket) {
    const double rate = gs::scheduledRate(learningRate, warmupStart, warmupSteps, decaySteps, alpha, iterations);
    const gs::AdamStep step{__fsub_rn(1.0f, __double2float_rn(beta1)), __fsub_rn(1.0f, __double2float_rn(beta2)),
                            epsilon, gs::adamStepSize(rate, beta1, beta2, iterations), weightDecay,
                            __double2float_rn(rate)};
    gs::adamElements(params, grads, m, v, vHat, step, n);
    if (gs::isLastBlockToFinish(ticket) && threadIdx.x == 0) {
        gs::addOneUpdate(iterations);
    }
}

/** adam_update_counter, measured (MeasuredStep; launch: one block of 1024 per chunk). */
extern "C" __global__ void GS_BLOCKS_OF_1024 adam_update_measured_counter(
    float* __restrict__ params, const float* __restrict__ grads, float* __restrict__ m, float* __restrict__ v,
    float* __restrict__ vHat, double learningRate, double warmupStart, int warmupSteps, int decaySteps,
    double alpha, double beta1, double beta2, float epsilon, float weightDecay, int* __restrict__ iterations,
    GS_MEASURED_PARAMETERS) {
    const double rate = gs::scheduledRate(learningRate, warmupStart, warmupSteps, decaySteps, alpha, iterations);
    const gs::AdamStep step{__fsub_rn(1.0f, __double2float_rn(beta1)), __fsub_rn(1.0f, __double2float_rn(beta2)),
                            epsilon, gs::adamStepSize(rate, beta1, beta2, iterations), weightDecay,
                            __double2float_rn(rate)};
    const bool last = gs::updateWithNorms(params, grads, segmentStarts, segments, gs::countOf(chunk), gs::countOf(n),
                                          GS_MEASURED_STEP, [&](unsigned k) {
        if (vHat != nullptr) {
            step(params[k], grads[k], m[k], v[k], vHat[k]);
        } else {
            step(params[k], grads[k], m[k], v[k]);
        }
    });
    if (last && threadIdx.x == 0) {
        gs::addOneUpdate(iterations);
    }
}

/** sgd_update, measured (MeasuredStep; launch: one block of 1024 per chunk); its last block counts the update. */
extern "C" __global__ void GS_BLOCKS_OF_1024 sgd_update_measured(
    float* __restrict__ params, const float* __restrict__ grads, float* __restrict__ velocity, float peakRate,
    double warmupStart, int warmupSteps, int decaySteps, double alpha, float momentum, int nesterov,
    float weightDecay, int* iterations, GS_MEASURED_PARAMETERS) {
    const float learningRate = gs::rateAtCount(peakRate, warmupStart, warmupSteps, decaySteps, alpha, iterations);
    const gs::MomentumStep step{learningRate, momentum, weightDecay, nesterov != 0};
    const bool last = gs::updateWithNorms(params, grads, segmentStarts, segments, gs::countOf(chunk), gs::countOf(n),
                                          GS_MEASURED_STEP, [&](unsigned k) {
        if (momentum == 0.0f) {
            params[k] = gs::plainStep(params[k], grads[k], learningRate, weightDecay);
        } else {
            step(params[k], grads[k], velocity[k]);
        }
    });
    if (last && threadIdx.x == 0 && iterations != nullptr) {
        gs::addOneUpdate(iterations);
    }
}

/**
 * One SGD step (MomentumStep, or plainStep without momentum) at the rate rateAtCount(peakRate, ...): the per-step
 * schedule's at the device's count, or peakRate itself when iterations is NULL or without a schedule. velocity is
 * not read (and may be NULL) when momentum is 0: then p -= lr g (after the weight decay). With a count, the grid's
 * last block, when every block has read it, counts the update (iterations[0] += 1).
 */
extern "C" __global__ void sgd_update(float* __restrict__ params, const float* __restrict__ grads,
                                      float* __restrict__ velocity, float peakRate, double warmupStart,
                                      int warmupSteps, int decaySteps, double alpha, float momentum, int nesterov,
                                      float weightDecay, int* iterations, int n, unsigned* __restrict__ ticket) {
    const float learningRate = gs::rateAtCount(peakRate, warmupStart, warmupSteps, decaySteps, alpha, iterations);
    if (momentum == 0.0f) {
        gs::forEachElement(
            gs::countOf(n), gs::allAligned16(params, grads),
            [&](unsigned k) {
                float4 p4 = gs::load4(params, k);
                const float4 g4 = gs::load4ReadOnly(grads, k);
#pragma unroll
                for (int l = 0; l < 4; l++) {
                    gs::lane(p4, l) = gs::plainStep(gs::lane(p4, l), gs::lane(g4, l), learningRate, weightDecay);
                }
                gs::store4(params, k, p4);
            },
            [&](unsigned i) { params[i] = gs::plainStep(params[i], grads[i], learningRate, weightDecay); });
    } else {
        const gs::MomentumStep step{learningRate, momentum, weightDecay, nesterov != 0};
        gs::forEachElement(
            gs::countOf(n), gs::allAligned16(params, grads, velocity),
            [&](unsigned k) {
                float4 p4 = gs::load4(params, k);
                const float4 g4 = gs::load4ReadOnly(grads, k);
                float4 v4 = gs::load4(velocity, k);
#pragma unroll
                for (int l = 0; l < 4; l++) {
                    step(gs::lane(p4, l), gs::lane(g4, l), gs::lane(v4, l));
                }
                gs::store4(params, k, p4);
                gs::store4(velocity, k, v4);
            },
            [&](unsigned i) { step(params[i], grads[i], velocity[i]); });
    }
    gs::countUpdate(iterations, ticket);
}

namespace gs {

/** The RMSprop step of rmsprop_update's arguments; 1 - rho in float, as the CPU computes it. */
__device__ __forceinline__ RmsPropStep rmspropStep(float learningRate, float rho, float momentum, float epsilon,
                                                   int centered, float weightDecay) {
    return RmsPropStep{learningRate, rho, __fsub_rn(1.0f, rho), momentum, epsilon, weightDecay, centered != 0};
}

/**
 * The RMSprop step of element k: average (the centered form's average gradient) is read and written only when
 * centered, buffer (the momentum) only with momentum; either may be NULL when it is not used.
 */
__device__ __forceinline__ void rmspropAt(unsigned k, float* __restrict__ params, const float* __restrict__ grads,
                                          float* __restrict__ velocity, float* __restrict__ average,
                                          float* __restrict__ buffer, const RmsPropStep& step) {
    float a = step.centered ? average[k] : 0.0f;
    float b = step.momentum != 0.0f ? buffer[k] : 0.0f;
    step(params[k], grads[k], velocity[k], a, b);
    if (step.centered) {
        average[k] = a;
    }
    if (step.momentum != 0.0f) {
        buffer[k] = b;
    }
}

} // namespace gs

/**
 * One RMSprop step (RmsPropStep) over the flat buffers at the rate rateAtCount(peakRate, ...), as sgd_update's:
 * averageGradient is used only when centered != 0 and momentumBuffer only when momentum != 0; either may be NULL
 * when it is not used. 16-byte groups when every buffer used is aligned. With a count, the grid's last block
 * counts the update.
 */
extern "C" __global__ void rmsprop_update(float* __restrict__ params, const float* __restrict__ grads,
                                          float* __restrict__ velocity, float* __restrict__ averageGradient,
                                          float* __restrict__ momentumBuffer, float peakRate, double warmupStart,
                                          int warmupSteps, int decaySteps, double alpha, float rho, float momentum,
                                          float epsilon, int centered, float weightDecay, int* iterations, int n,
                                          unsigned* __restrict__ ticket) {
    const float learningRate = gs::rateAtCount(peakRate, warmupStart, warmupSteps, decaySteps, alpha, iterations);
    const gs::RmsPropStep step = gs::rmspropStep(learningRate, rho, momentum, epsilon, centered, weightDecay);
    float* __restrict__ average = step.centered ? averageGradient : nullptr;
    float* __restrict__ buffer = step.momentum != 0.0f ? momentumBuffer : nullptr;
    gs::forEachElement(
        gs::countOf(n), gs::allAligned16(params, grads, velocity, average, buffer),
        [&](unsigned k) {
            float4 p4 = gs::load4(params, k);
            const float4 g4 = gs::load4ReadOnly(grads, k);
            float4 v4 = gs::load4(velocity, k);
            float4 a4 = average != nullptr ? gs::load4(average, k) : float4{0.0f, 0.0f, 0.0f, 0.0f};
            float4 b4 = buffer != nullptr ? gs::load4(buffer, k) : float4{0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
            for (int l = 0; l < 4; l++) {
                step(gs::lane(p4, l), gs::lane(g4, l), gs::lane(v4, l), gs::lane(a4, l), gs::lane(b4, l));
            }
            gs::store4(params, k, p4);
            gs::store4(velocity, k, v4);
            if (average != nullptr) {
                gs::store4(average, k, a4);
            }
            if (buffer != nullptr) {
                gs::store4(buffer, k, b4);
            }
        },
        [&](unsigned i) { gs::rmspropAt(i, params, grads, velocity, average, buffer, step); });
    gs::countUpdate(iterations, ticket);
}

/** rmsprop_update, measured (MeasuredStep; launch: one block of 1024 per chunk); its last block counts the update. */
extern "C" __global__ void GS_BLOCKS_OF_1024 rmsprop_update_measured(
    float* __restrict__ params, const float* __restrict__ grads, float* __restrict__ velocity,
    float* __restrict__ averageGradient, float* __restrict__ momentumBuffer, float peakRate, double warmupStart,
    int warmupSteps, int decaySteps, double alpha, float rho, float momentum, float epsilon, int centered,
    float weightDecay, int* iterations, GS_MEASURED_PARAMETERS) {
    const float learningRate = gs::rateAtCount(peakRate, warmupStart, warmupSteps, decaySteps, alpha, iterations);
    const gs::RmsPropStep step = gs::rmspropStep(learningRate, rho, momentum, epsilon, centered, weightDecay);
    const bool last = gs::updateWithNorms(params, grads, segmentStarts, segments, gs::countOf(chunk), gs::countOf(n),
                                          GS_MEASURED_STEP, [&](unsigned k) {
        gs::rmspropAt(k, params, grads, velocity, averageGradient, momentumBuffer, step);
    });
    if (last && threadIdx.x == 0 && iterations != nullptr) {
        gs::addOneUpdate(iterations);
    }
}

namespace gs {

/**
 * Keras 3's Nadam rule, after the weight decay, with the step's scalars (nadamStep): m += (g - m)(1 - beta1),
 * v += (g^2 - v)(1 - beta2), mHat = uNext m / (1 - productNext) + (1 - uNow) g / (1 - productNow),
 * vHat = v / (1 - beta2^t), p -= mHat lr / (sqrt(vHat) + epsilon).
 */
struct NadamStep {
    float oneMinusBeta1, oneMinusBeta2, uNext, oneMinusUNow, oneMinusProductNext, oneMinusProductNow,
        beta2Correction, learningRate, epsilon, weightDecay, productNow;

    __device__ __forceinline__ void operator()(float& p, float g, float& m, float& v) const {
        m = __fadd_rn(m, __fmul_rn(__fsub_rn(g, m), oneMinusBeta1));
        v = __fadd_rn(v, __fmul_rn(__fsub_rn(__fmul_rn(g, g), v), oneMinusBeta2));
        const float mHat = __fadd_rn(__fdiv_rn(__fmul_rn(uNext, m), oneMinusProductNext),
                                     __fdiv_rn(__fmul_rn(oneMinusUNow, g), oneMinusProductNow));
        const float vHat = __fdiv_rn(v, beta2Correction);
        p = __fsub_rn(decayed(p, weightDecay, learningRate),
                      __fdiv_rn(__fmul_rn(mHat, learningRate), __fadd_rn(__fsqrt_rn(vHat), epsilon)));
    }
};

/**
 * Nadam's scalars at update t = iterations[0] + 1 from Keras's _u_product before it (uProduct[0]):
 * Backend.nadamScalars on the device, the same double and float operations in the same order. Plain loads, not
 * __ldg: the kernel's last block writes both.
 */
__device__ __forceinline__ NadamStep nadamStep(float learningRate, double beta1, double beta2, float epsilon,
                                               float weightDecay, const int* iterations, const float* uProduct) {
    const long long t = static_cast<long long>(*iterations) + 1;
    const float b1 = __double2float_rn(beta1);
    const float scheduleNow = __double2float_rn(__dsub_rn(1.0, __dmul_rn(0.5, powerBySquaring(0.96, t))));
    const float scheduleNext = __double2float_rn(__dsub_rn(1.0, __dmul_rn(0.5, powerBySquaring(0.96, t + 1))));
    const float uNow = __fmul_rn(b1, scheduleNow);
    const float uNext = __fmul_rn(b1, scheduleNext);
    const float productNow = __fmul_rn(__fmul_rn(*uProduct, b1), scheduleNow);
    const float productNext = __fmul_rn(productNow, uNext);
    return NadamStep{__fsub_rn(1.0f, b1),
                     __fsub_rn(1.0f, __double2float_rn(beta2)),
                     uNext,
                     __fsub_rn(1.0f, uNow),
                     __fsub_rn(1.0f, productNext),
                     __fsub_rn(1.0f, productNow),
                     __double2float_rn(__dsub_rn(1.0, powerBySquaring(beta2, t))),
                     learningRate,
                     epsilon,
                     weightDecay,
                     productNow};
}

/**
 * Keras 3's Adamax rule, after the weight decay: m += (g - m)(1 - beta1), u = max(beta2 u, |g|) (Java's
 * Math.max), p -= lr m / (correction (u + epsilon)) with correction = 1 - beta1^t.
 */
struct AdamaxStep {
    float oneMinusBeta1, beta2, correction, learningRate, epsilon, weightDecay;

    __device__ __forceinline__ void operator()(float& p, float g, float& m, float& u) const {
        m = __fadd_rn(m, __fmul_rn(__fsub_rn(g, m), oneMinusBeta1));
        u = javaMax(__fmul_rn(beta2, u), fabsf(g));
        p = __fsub_rn(decayed(p, weightDecay, learningRate),
                      __fdiv_rn(__fmul_rn(learningRate, m), __fmul_rn(correction, __fadd_rn(u, epsilon))));
    }
};

/** Adamax's step at update t = iterations[0] + 1: Backend.adamaxCorrection and (float) (1 - beta1) in double. */
__device__ __forceinline__ AdamaxStep adamaxStep(float learningRate, double beta1, double beta2, float epsilon,
                                                 float weightDecay, const int* iterations) {
    const long long t = static_cast<long long>(*iterations) + 1;
    return AdamaxStep{__double2float_rn(__dsub_rn(1.0, beta1)), __double2float_rn(beta2),
                      __double2float_rn(__dsub_rn(1.0, powerBySquaring(beta1, t))), learningRate, epsilon,
                      weightDecay};
}

/** Keras 3's Adagrad rule, after the weight decay: a += g^2, p -= lr g / sqrt(a + epsilon). */
struct AdagradStep {
    float learningRate, epsilon, weightDecay;

    __device__ __forceinline__ void operator()(float& p, float g, float& a) const {
        a = __fadd_rn(a, __fmul_rn(g, g));
        p = __fsub_rn(decayed(p, weightDecay, learningRate),
                      __fdiv_rn(__fmul_rn(learningRate, g), __fsqrt_rn(__fadd_rn(a, epsilon))));
    }
};

/** A step of two state buffers (Nadam's m and v, Adamax's m and u) over [0, n): 16-byte groups when aligned. */
template <class Step>
__device__ __forceinline__ void twoBufferElements(float* __restrict__ params, const float* __restrict__ grads,
                                                  float* __restrict__ a, float* __restrict__ b, const Step& step,
                                                  int n) {
    forEachElement(
        countOf(n), allAligned16(params, grads, a, b),
        [&](unsigned k) {
            float4 p4 = load4(params, k);
            const float4 g4 = load4ReadOnly(grads, k);
            float4 a4 = load4(a, k);
            float4 b4 = load4(b, k);
#pragma unroll
            for (int l = 0; l < 4; l++) {
                step(lane(p4, l), lane(g4, l), lane(a4, l), lane(b4, l));
            }
            store4(params, k, p4);
            store4(a, k, a4);
            store4(b, k, b4);
        },
        [&](unsigned i) { step(params[i], grads[i], a[i], b[i]); });
}

} // namespace gs

/**
 * One Nadam step (NadamStep) at the device's count, at the rate (float) scheduledRate(learningRate, ...) (learningRate
 * itself without a schedule); the grid's last block, when every block has read the count
 * and the product, stores the new product (uProduct[0] = productNow) and counts the update (iterations[0] += 1).
 */
extern "C" __global__ void nadam_update_counter(float* __restrict__ params, const float* __restrict__ grads,
                                                float* __restrict__ m, float* __restrict__ v, float learningRate,
                                                double warmupStart, int warmupSteps, int decaySteps, double alpha,
                                                double beta1, double beta2, float epsilon, float weightDecay,
                                                int* iterations, float* uProduct, int n,
                                                unsigned* __restrict__ ticket) {
    const float rate = __double2float_rn(gs::scheduledRate(learningRate, warmupStart, warmupSteps, decaySteps, alpha,
                                                           iterations));
    const gs::NadamStep step = gs::nadamStep(rate, beta1, beta2, epsilon, weightDecay, iterations, uProduct);
    gs::twoBufferElements(params, grads, m, v, step, n);
    if (gs::isLastBlockToFinish(ticket) && threadIdx.x == 0) {
        *uProduct = step.productNow;
        gs::addOneUpdate(iterations);
    }
}

/** nadam_update_counter, measured (MeasuredStep; launch: one block of 1024 per chunk). */
extern "C" __global__ void GS_BLOCKS_OF_1024 nadam_update_measured_counter(
    float* __restrict__ params, const float* __restrict__ grads, float* __restrict__ m, float* __restrict__ v,
    float learningRate, double warmupStart, int warmupSteps, int decaySteps, double alpha, double beta1, double beta2,
    float epsilon, float weightDecay, int* iterations, float* uProduct, GS_MEASURED_PARAMETERS) {
    const float rate = __double2float_rn(gs::scheduledRate(learningRate, warmupStart, warmupSteps, decaySteps, alpha,
                                                           iterations));
    const gs::NadamStep step = gs::nadamStep(rate, beta1, beta2, epsilon, weightDecay, iterations, uProduct);
    const bool last = gs::updateWithNorms(params, grads, segmentStarts, segments, gs::countOf(chunk), gs::countOf(n),
                                          GS_MEASURED_STEP, [&](unsigned k) { step(params[k], grads[k], m[k], v[k]); });
    if (last && threadIdx.x == 0) {
        *uProduct = step.productNow;
        gs::addOneUpdate(iterations);
    }
}

/**
 * One Adamax step (AdamaxStep) at the device's count, at the rate (float) scheduledRate(learningRate, ...)
 * (learningRate itself without a schedule); the grid's last block counts it (iterations[0] += 1).
 */
extern "C" __global__ void adamax_update_counter(float* __restrict__ params, const float* __restrict__ grads,
                                                 float* __restrict__ m, float* __restrict__ u, float learningRate,
                                                 double warmupStart, int warmupSteps, int decaySteps, double alpha,
                                                 double beta1, double beta2, float epsilon, float weightDecay,
                                                 int* iterations, int n, unsigned* __restrict__ ticket) {
    const float rate = __double2float_rn(gs::scheduledRate(learningRate, warmupStart, warmupSteps, decaySteps, alpha,
                                                           iterations));
    const gs::AdamaxStep step = gs::adamaxStep(rate, beta1, beta2, epsilon, weightDecay, iterations);
    gs::twoBufferElements(params, grads, m, u, step, n);
    if (gs::isLastBlockToFinish(ticket) && threadIdx.x == 0) {
        gs::addOneUpdate(iterations);
    }
}

/** adamax_update_counter, measured (MeasuredStep; launch: one block of 1024 per chunk). */
extern "C" __global__ void GS_BLOCKS_OF_1024 adamax_update_measured_counter(
    float* __restrict__ params, const float* __restrict__ grads, float* __restrict__ m, float* __restrict__ u,
    float learningRate, double warmupStart, int warmupSteps, int decaySteps, double alpha, double beta1, double beta2,
    float epsilon, float weightDecay, int* iterations, GS_MEASURED_PARAMETERS) {
    const float rate = __double2float_rn(gs::scheduledRate(learningRate, warmupStart, warmupSteps, decaySteps, alpha,
                                                           iterations));
    const gs::AdamaxStep step = gs::adamaxStep(rate, beta1, beta2, epsilon, weightDecay, iterations);
    const bool last = gs::updateWithNorms(params, grads, segmentStarts, segments, gs::countOf(chunk), gs::countOf(n),
                                          GS_MEASURED_STEP, [&](unsigned k) { step(params[k], grads[k], m[k], u[k]); });
    if (last && threadIdx.x == 0) {
        gs::addOneUpdate(iterations);
    }
}

/**
 * One Adagrad step (AdagradStep) over the flat buffers at the rate rateAtCount(peakRate, ...), as sgd_update's:
 * 16-byte groups when all three are aligned. With a count, the grid's last block counts the update.
 */
extern "C" __global__ void adagrad_update(float* __restrict__ params, const float* __restrict__ grads,
                                          float* __restrict__ accumulator, float peakRate, double warmupStart,
                                          int warmupSteps, int decaySteps, double alpha, float epsilon,
                                          float weightDecay, int* iterations, int n, unsigned* __restrict__ ticket) {
    const float learningRate = gs::rateAtCount(peakRate, warmupStart, warmupSteps, decaySteps, alpha, iterations);
    const gs::AdagradStep step{learningRate, epsilon, weightDecay};
    gs::forEachElement(
        gs::countOf(n), gs::allAligned16(params, grads, accumulator),
        [&](unsigned k) {
            float4 p4 = gs::load4(params, k);
            const float4 g4 = gs::load4ReadOnly(grads, k);
            float4 a4 = gs::load4(accumulator, k);
#pragma unroll
            for (int l = 0; l < 4; l++) {
                step(gs::lane(p4, l), gs::lane(g4, l), gs::lane(a4, l));
            }
            gs::store4(params, k, p4);
            gs::store4(accumulator, k, a4);
        },
        [&](unsigned i) { step(params[i], grads[i], accumulator[i]); });
    gs::countUpdate(iterations, ticket);
}

/** adagrad_update, measured (MeasuredStep; launch: one block of 1024 per chunk); its last block counts the update. */
extern "C" __global__ void GS_BLOCKS_OF_1024 adagrad_update_measured(
    float* __restrict__ params, const float* __restrict__ grads, float* __restrict__ accumulator, float peakRate,
    double warmupStart, int warmupSteps, int decaySteps, double alpha, float epsilon, float weightDecay,
    int* iterations, GS_MEASURED_PARAMETERS) {
    const float learningRate = gs::rateAtCount(peakRate, warmupStart, warmupSteps, decaySteps, alpha, iterations);
    const gs::AdagradStep step{learningRate, epsilon, weightDecay};
    const bool last = gs::updateWithNorms(params, grads, segmentStarts, segments, gs::countOf(chunk), gs::countOf(n),
                                          GS_MEASURED_STEP, [&](unsigned k) { step(params[k], grads[k], accumulator[k]); });
    if (last && threadIdx.x == 0 && iterations != nullptr) {
        gs::addOneUpdate(iterations);
    }
}

/** t = clamp(t, -limit, limit) element-wise (gradient clipping by value); NaN stays NaN. */
extern "C" __global__ void clip_by_value(float* __restrict__ t, float limit, int n) {
    gs::transformInPlace(t, gs::countOf(n), [&](float x) { return gs::clipToLimit(x, limit); });
}

/**
 * Gradient clipping by global norm, with no host round trip: norm = sqrt(sum of squaredNorms[0, normCount)),
 * then t *= (float) (maxNorm / norm) when norm > maxNorm; t is left alone when the norm is within the
 * limit or NaN, as on the CPU. Every block of the element-wise grid adds the (few) squared norms by the
 * same fixed 1024-slot tree in double, so all blocks get the same bits and take the same decision; each
 * then scales its share of t. Any grid and block size is correct.
 */
extern "C" __global__ void clip_by_global_norm(float* __restrict__ t, const float* __restrict__ squaredNorms,
                                               int normCount, float maxNorm, int n) {
    const unsigned norms = gs::countOf(normCount);
    const double total = gs::blockSumOfSlots([&](unsigned slot) {
        double sum = 0.0;
        for (unsigned k = slot; k < norms; k += gs::REDUCTION_SLOTS) {
            sum += __ldg(squaredNorms + k);
        }
        return sum;
    });
    const double norm = sqrt(total);
    if (!(norm > static_cast<double>(maxNorm))) {
        return; // within the limit, or NaN (which clipping cannot repair): the same in every block
    }
    const float factor = static_cast<float>(static_cast<double>(maxNorm) / norm);
    gs::transformInPlace(t, gs::countOf(n), [&](float x) { return __fmul_rn(x, factor); });
}
