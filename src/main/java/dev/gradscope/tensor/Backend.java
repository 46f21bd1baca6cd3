package dev.gradscope.tensor;

import java.util.Objects;
import java.util.Optional;

/**
 * Every device operation the layers, losses and optimizers need. Layers never branch on the device:
 * they call these ops, and each backend implements each op once ({@code CpuBackend} is the reference
 * semantics; {@code CudaBackend} must match it).
 *
 * <p>Conventions. Matrices are row-major. Each op says what it writes: "{@code out =}" overwrites,
 * "{@code out +=}" accumulates; an op with {@code Accumulate} in its name adds into its output. Ops
 * may be asynchronous on a device: only the {@code toHost*} reads and {@link #synchronize()} wait.
 * Activation parameters ({@code param}) are a tensor of 1 element, shared by every unit, or of one
 * element per column; kinds without a parameter accept {@code null}.
 */
public interface Backend extends AutoCloseable {

    /** {@code "cpu"} or {@code "cuda"}. */
    String name();

    /** A line describing the device, for {@code gradscope info} and logs. */
    String description();

    // ---- settings -----------------------------------------------------------------------------

    /**
     * Why {@link #setTf32 TF32 GEMMs} cannot be switched on here, in one line; empty when they can. The CPU
     * reference has no TF32 math (its GEMMs are FP32 with float accumulation); a GPU needs tensor cores
     * with TF32 (compute capability 8.0 or newer).
     */
    default Optional<String> tf32Unavailable() {
        return Optional.of("the " + name() + " backend has no TF32 math; its GEMMs stay FP32");
    }

    /**
     * Lets {@link #gemm} use TF32 tensor cores (off by default): every input element of a product is
     * rounded to TF32, a 10-bit mantissa (float has 23), a relative error of up to 2^-11 instead of 2^-24,
     * while the products are summed in FP32. Several times the FP32 rate on Ampere and Hopper; whether
     * accuracy suffers depends on the model and must be measured. Affects only GEMMs.
     *
     * @throws UnsupportedOperationException when switching on where {@link #tf32Unavailable()} says why not
     */
    default void setTf32(boolean enabled) {
        if (enabled) {
            throw new UnsupportedOperationException("setTf32: " + tf32Unavailable().orElse("not supported"));
        }
    }

    /** Whether GEMMs may use TF32 ({@link #setTf32}). */
    default boolean tf32() {
        return false;
    }

    // ---- memory -------------------------------------------------------------------------------

    /** A new, zero-filled tensor that owns its memory. */
    Tensor allocate(DType dtype, int... shape);

    /** A new FLOAT32 tensor holding a copy of {@code data}. */
    Tensor fromHost(float[] data, int... shape);

    /** A new INT32 tensor holding a copy of {@code data}. */
    Tensor fromHost(int[] data, int... shape);

    /** A new UINT8 tensor holding a copy of {@code data} (bytes read as 0..255). */
    Tensor fromHost(byte[] data, int... shape);

    /** {@code dst = data}; {@code data.length} must equal {@code dst.size()}. */
    void copyFromHost(float[] data, Tensor dst);

    /** {@code dst = data} for an INT32 tensor. */
    void copyFromHost(int[] data, Tensor dst);

    /** A new array with the elements of a FLOAT32 tensor. Waits for pending work. */
    float[] toHostFloats(Tensor t);

    /** A new array with the elements of an INT32 tensor. Waits for pending work. */
    int[] toHostInts(Tensor t);

    /** {@code dst = src} (same dtype and size). */
    void copy(Tensor src, Tensor dst);

    /** {@code t = value} for every element of a FLOAT32 tensor. */
    void fill(Tensor t, float value);

    /** Waits until every queued op has finished. */
    void synchronize();

    /**
     * Whether tensors live in host memory, so reading a few values costs no device round trip. The
     * trainer then checks for non-finite gradients after every step instead of once per epoch.
     */
    default boolean sharesHostMemory() {
        return false;
    }

    // ---- dense layers -------------------------------------------------------------------------

    /**
     * {@code c = alpha * op(a) · op(b) + beta * c}, where {@code op(x)} is {@code x} or its transpose.
     * With {@code beta == 0} the old contents of {@code c} are ignored (even NaN).
     */
    void gemm(boolean transposeA, boolean transposeB, float alpha, Tensor a, Tensor b, float beta, Tensor c);

    /** {@code y[i][j] += bias[j]} for every row {@code i}. */
    void addRowVectorAccumulate(Tensor y, Tensor bias);

    /** {@code out[j] = sum_i x[i][j]}: the bias gradient from a batch of output gradients. */
    void columnSums(Tensor x, Tensor out);

    /**
     * What a dense layer does after its GEMM, in one pass: {@code z[i][j] += bias[j]} (overwrites z, which
     * keeps the biased pre-activation that the backward pass reads), then {@code y = f(z; param)}. The bits
     * of {@link #addRowVectorAccumulate} followed by {@link #activationForward}; {@code y} may be {@code z}
     * (then it ends as {@code f(z + bias)}).
     */
    void biasActivationForward(ActivationKind kind, Tensor z, Tensor bias, Tensor param, Tensor y);

    /**
     * What a dense layer's backward pass does before its GEMMs, in one pass over the batch:
     * <ul>
     *   <li>{@code dz = dy * f'(z; param)}, the bits of {@link #activationBackward};</li>
     *   <li>when {@code biasGradient} is not null, {@code biasGradient[j] = sum_i dz[i][j]}, the bits of
     *       {@link #columnSums} of that dz;</li>
     *   <li>when {@code statistics} is not null, the per-unit statistics of {@code y = f(z)} added to it,
     *       the bits of {@link #accumulateUnitStatistics}, from the same evaluation of {@code f'}.</li>
     * </ul>
     * {@code dy} and {@code dz} go together: both null means statistics only (then {@code biasGradient}
     * must be null too). {@code y} is read only for the statistics and may be null without them. Writes
     * {@code dz} and {@code biasGradient}, adds into {@code statistics}. The sums are deterministic (an
     * order fixed by the shape; the bias gradient in double, the statistics' sums within 1e-6).
     */
    void biasActivationBackward(ActivationKind kind, Tensor z, Tensor param, Tensor y, Tensor dy, Tensor dz,
                                Tensor biasGradient, float saturationThreshold, Tensor statistics);

    // ---- activations --------------------------------------------------------------------------

    /** {@code y = f(z; param)} element-wise. */
    void activationForward(ActivationKind kind, Tensor z, Tensor param, Tensor y);

    /** {@code dz = dy * f'(z; param)} element-wise. */
    void activationBackward(ActivationKind kind, Tensor z, Tensor param, Tensor dy, Tensor dz);

    /**
     * {@code dParam = sum over the elements sharing each parameter of dy * df/dparam(z; param)}: one
     * value when {@code param} has one element, one per column otherwise.
     */
    void activationParameterGradient(ActivationKind kind, Tensor z, Tensor param, Tensor dy, Tensor dParam);

    /**
     * Maxout: {@code y[i][u] = max_p z[i][u*pieces + p]}, and {@code winner[i][u]} (INT32) = the winning
     * {@code p} (the first one on ties).
     */
    void maxoutForward(Tensor z, int pieces, Tensor y, Tensor winner);

    /** {@code dz[i][u*pieces + p] = p == winner[i][u] ? dy[i][u] : 0}. */
    void maxoutBackward(Tensor dy, Tensor winner, int pieces, Tensor dz);

    // ---- dropout --------------------------------------------------------------------------------

    /**
     * Inverted dropout in a training step, element-wise: {@code y[i] = x[i] * scale} where element {@code i} is
     * kept, {@code 0} where it is dropped (even when {@code x[i]} is NaN, as Keras's {@code where}), with the
     * keep decision and {@code scale = 1 / (1 - rate)} of {@link DropoutMask} for {@code streamKey} at the step
     * {@code step} holds: an INT32 tensor of two elements on the device, {@code (epoch, step of the epoch)}, read
     * there, so that a replayed step graph draws a fresh mask. {@code rate} is in [0, 1); {@code y} may be
     * {@code x}.
     */
    void dropoutForward(Tensor x, double rate, long streamKey, Tensor step, Tensor y);

    /**
     * The backward pass of {@link #dropoutForward} with the same {@code rate}, {@code streamKey} and {@code step}
     * value: {@code dx[i] = dy[i] * scale} where element {@code i} was kept, {@code 0} where it was dropped. The
     * mask is drawn again from the hash (no mask buffer). {@code dx} may be {@code dy}.
     */
    void dropoutBackward(Tensor dy, double rate, long streamKey, Tensor step, Tensor dx);

    // ---- batch normalization ----------------------------------------------------------------------
    //
    // Per column j of x [batch, units] (a unit), over the rows (the batch). The arithmetic both backends do,
    // bit for bit up to the order of the double sums: mean = sum_i x / batch and var = sum_i (x - mean)^2 / batch
    // (two passes, in double; the biased variance, as Keras's), invStd = (float) (1 / sqrt(var + epsilon)) in
    // double, xhat = (x - (float) mean) * invStd and y = gamma * xhat + beta in float, each operation rounded
    // (no fused multiply-add). A batch of one row has var 0: xhat = 0, y = beta, nothing divides by zero.
    //
    // What an op writes shares no memory with its other operands (no element of one storage in both), except that
    // the inference pass may write y over x exactly: on a GPU the training passes' blocks add every row of a column
    // while others overwrite their own rows, so y over x, or dx over dy or x, would read overwritten values. Every
    // backend refuses such a call (IllegalArgumentException naming both tensors), the CPU too.

    /**
     * Batch normalization in a training step (Keras's {@code BatchNormalization} called with {@code training=True}):
     * normalises each column of {@code x} with the batch's mean and biased variance, writes {@code y = gamma *
     * xhat + beta}, writes the batch's {@code (float) mean} and {@code invStd} per column into {@code batchMean}
     * and {@code batchInvStd} (for {@link #batchNormBackward}), and updates the moving statistics in place, in
     * float: {@code movingMean = movingMean * (float) momentum + (float) mean * (float) (1 - momentum)} (1 - momentum
     * taken in double, as Keras's Python float), the same for {@code movingVariance} with {@code (float) var}.
     * {@code gamma}, {@code beta} and the four statistics have one element per column; {@code y} has the shape of
     * {@code x}; the batch has at least one row. Nothing written overlaps another operand: {@code y} is not {@code x}.
     */
    void batchNormTrainingForward(Tensor x, Tensor gamma, Tensor beta, double momentum, float epsilon,
                                  Tensor movingMean, Tensor movingVariance, Tensor batchMean, Tensor batchInvStd,
                                  Tensor y);

    /**
     * Batch normalization in inference: {@code y = gamma * ((x - movingMean) * invStd) + beta} per column, with
     * {@code invStd = (float) (1 / sqrt(movingVariance + epsilon))} in double. Reads the moving statistics only.
     * {@code y} may be {@code x} (in place); else it overlaps no operand.
     */
    void batchNormInferenceForward(Tensor x, Tensor gamma, Tensor beta, Tensor movingMean, Tensor movingVariance,
                                   float epsilon, Tensor y);

    /**
     * The backward pass of {@link #batchNormTrainingForward}, given its input {@code x}, {@code batchMean} and
     * {@code batchInvStd}: writes (=) {@code dBeta[j] = sum_i dy} and {@code dGamma[j] = sum_i dy * xhat} (in
     * double), and, when {@code dx} is not null, {@code dx = scale * (dy - meanDy - xhat * meanDyXhat)} with
     * {@code scale = (float) (gamma * invStd)}, {@code meanDy = (float) (sum_i dy / batch)} and {@code meanDyXhat =
     * (float) (sum_i dy * xhat / batch)} from the double sums (the batch statistics' own gradient included, Ioffe
     * and Szegedy's formula). Nothing written overlaps another operand: {@code dx} is neither {@code dy} nor {@code x}.
     */
    void batchNormBackward(Tensor x, Tensor gamma, Tensor batchMean, Tensor batchInvStd, Tensor dy, Tensor dx,
                           Tensor dGamma, Tensor dBeta);

    /** {@code probabilities = softmax(logits)} row by row, numerically stable. */
    void softmax(Tensor logits, Tensor probabilities);

    // ---- losses (softmax fused in) ------------------------------------------------------------

    /**
     * Softmax followed by categorical cross-entropy against {@code targets} (one row of class
     * probabilities per example, usually one-hot). Writes {@code dLogits = (softmax(logits) - targets)
     * * gradientScale}, and accumulates {@code totals[0] += sum of per-example losses},
     * {@code totals[1] += number of rows whose arg-max matches the target's arg-max}.
     */
    void softmaxCrossEntropy(Tensor logits, Tensor targets, float gradientScale, Tensor dLogits, Tensor totals);

    /**
     * Softmax followed by mean squared error: per example {@code mean_c (p_c - t_c)^2} with
     * {@code p = softmax(logits)}. Writes {@code dLogits} = the gradient of the per-example loss with
     * respect to the logits, times {@code gradientScale}; accumulates {@code totals} as
     * {@link #softmaxCrossEntropy} does.
     */
    void softmaxMeanSquaredError(Tensor logits, Tensor targets, float gradientScale, Tensor dLogits,
                                 Tensor totals);

    /**
     * The output layer's end of a training step, in one op: {@code logits += bias} (in place, the
     * {@link #addRowVectorAccumulate} the layer left out), {@link #softmaxCrossEntropy}, then
     * {@code biasGradient = column sums of dLogits} ({@link #columnSums}). One launch on a GPU; the default
     * makes the three ops.
     */
    default void softmaxCrossEntropy(Tensor logits, Tensor bias, Tensor targets, float gradientScale, Tensor dLogits,
                                     Tensor biasGradient, Tensor totals) {
        addRowVectorAccumulate(logits, bias);
        softmaxCrossEntropy(logits, targets, gradientScale, dLogits, totals);
        columnSums(dLogits, biasGradient);
    }

    /** {@link #softmaxCrossEntropy(Tensor, Tensor, Tensor, float, Tensor, Tensor, Tensor)} for the MSE loss. */
    default void softmaxMeanSquaredError(Tensor logits, Tensor bias, Tensor targets, float gradientScale,
                                         Tensor dLogits, Tensor biasGradient, Tensor totals) {
        addRowVectorAccumulate(logits, bias);
        softmaxMeanSquaredError(logits, targets, gradientScale, dLogits, totals);
        columnSums(dLogits, biasGradient);
    }

    // ---- reductions ---------------------------------------------------------------------------

    /**
     * {@code out[s] = sum of x[k]^2 for k in [segmentStarts[s], segmentStarts[s+1])} over a flat
     * tensor; {@code segmentStarts} is INT32 with one more element than {@code out}. Deterministic.
     */
    void segmentSumOfSquares(Tensor x, Tensor segmentStarts, Tensor out);

    /**
     * Accumulates per-unit activity of an activation over a batch into {@code statistics}, a
     * {@code [4, units]} FLOAT32 tensor (units = columns of {@code z}), for each column {@code j}:
     * <ol start="0">
     *   <li>{@code += number of rows with f'(z[i][j]) != 0} (the unit passed gradient: it is not dead),</li>
     *   <li>{@code += number of rows with |f'(z[i][j])| < saturationThreshold} (saturated),</li>
     *   <li>{@code += sum_i y[i][j]},</li>
     *   <li>{@code += sum_i y[i][j]^2}.</li>
     * </ol>
     * The sums are deterministic (an order fixed by the shape) and within 1e-6 of the magnitudes summed
     * (the CPU adds float partial sums of 8 rows in double, the GPU adds in double). The same as
     * {@link #activationBackwardWithStatistics} without a gradient.
     */
    default void accumulateUnitStatistics(ActivationKind kind, Tensor z, Tensor param, Tensor y,
                                          float saturationThreshold, Tensor statistics) {
        activationBackwardWithStatistics(kind, z, param, y, null, null, saturationThreshold, statistics);
    }

    /**
     * {@link #activationBackward} ({@code dz = dy * f'(z; param)}) and {@link #accumulateUnitStatistics}
     * in one pass, so the profiler costs no second evaluation of the derivative: the backward pass of a
     * watched layer. {@code dy} and {@code dz} may both be null (statistics only, for a layer whose input
     * gradient is not needed). Gives the bits of the two separate ops. {@link #biasActivationBackward}
     * without a bias gradient.
     */
    default void activationBackwardWithStatistics(ActivationKind kind, Tensor z, Tensor param, Tensor y, Tensor dy,
                                                  Tensor dz, float saturationThreshold, Tensor statistics) {
        Objects.requireNonNull(statistics, "activationBackwardWithStatistics: statistics");
        biasActivationBackward(kind, z, param, y, dy, dz, null, saturationThreshold, statistics);
    }

    /** {@code t = clamp(t, -limit, limit)} element-wise: gradient clipping by value. */
    void clipByValue(Tensor t, float limit);

    /**
     * Gradient clipping by global norm: with {@code norm = sqrt(sum of squaredNorms)} (a small FLOAT32
     * tensor on the device, e.g. per-layer squared norms), {@code t *= maxNorm / max(norm, maxNorm)}. The
     * factor is computed on the device: no host round trip.
     */
    void clipByGlobalNorm(Tensor t, Tensor squaredNorms, float maxNorm);

    // ---- optimizers ---------------------------------------------------------------------------

    /**
     * One Adam step over flat buffers, Keras's rule: {@code m += (1-beta1)(g - m)},
     * {@code v += (1-beta2)(g^2 - v)}, {@code p -= stepSize * m / (sqrt(v) + epsilon)}, where the
     * caller folds the bias corrections into {@code stepSize = lr sqrt(1-beta2^t) / (1-beta1^t)}.
     */
    default void adamUpdate(Tensor params, Tensor grads, Tensor m, Tensor v, float beta1, float beta2, float epsilon,
                            float stepSize) {
        adamUpdate(params, grads, m, v, beta1, beta2, epsilon, stepSize, null);
    }

    /**
     * {@link #adamUpdate}, and when {@code norms} is not null also each parameter tensor's squared weight
     * norm before the step and squared update size, in the same pass (deterministic).
     */
    void adamUpdate(Tensor params, Tensor grads, Tensor m, Tensor v, float beta1, float beta2, float epsilon,
                    float stepSize, UpdateNorms norms);

    /**
     * One SGD step, Keras's rule: without momentum {@code p -= lr g}; with momentum
     * {@code velocity = momentum * velocity - lr g}, then {@code p += velocity} or, with Nesterov,
     * {@code p += momentum * velocity - lr g}. {@code velocity} may be null when momentum is 0.
     */
    default void sgdUpdate(Tensor params, Tensor grads, Tensor velocity, float learningRate, float momentum,
                           boolean nesterov) {
        sgdUpdate(params, grads, velocity, learningRate, momentum, nesterov, (UpdateNorms) null);
    }

    /** {@link #sgdUpdate}, and the {@link UpdateNorms} as {@link #adamUpdate} writes them when not null. */
    default void sgdUpdate(Tensor params, Tensor grads, Tensor velocity, float learningRate, float momentum,
                           boolean nesterov, UpdateNorms norms) {
        sgdUpdate(params, grads, velocity, learningRate, momentum, nesterov, 0f, norms);
    }

    /**
     * {@link #sgdUpdate} after Keras 3's decoupled weight decay, in the same pass: first
     * {@code p -= p * weightDecay * learningRate} (each product rounded in float, in that order), then the
     * update. A {@code weightDecay} of 0 leaves {@code p} to the update alone: the bits of the op without it.
     */
    default void sgdUpdate(Tensor params, Tensor grads, Tensor velocity, float learningRate, float momentum,
                           boolean nesterov, float weightDecay, UpdateNorms norms) {
        sgdUpdate(params, grads, velocity, learningRate, StepSchedule.NONE, momentum, nesterov, weightDecay, null,
                norms);
    }

    /**
     * {@link #sgdUpdate} that counts its updates in {@code iterations} (a one-element INT32 counter, Keras's
     * {@code iterations}; null: not counted, and then no schedule) at the rate {@code (float)
     * schedule.rate(learningRate, iterations[0])} of a per-step schedule, computed in the update's own op (on a GPU
     * on the device, the host's bits), in place of {@code learningRate}, the weight decay's too; then
     * {@code iterations[0] += 1}. {@link StepSchedule#NONE}: the update at {@code learningRate}, bit for bit.
     */
    void sgdUpdate(Tensor params, Tensor grads, Tensor velocity, float learningRate, StepSchedule schedule,
                   float momentum, boolean nesterov, float weightDecay, Tensor iterations, UpdateNorms norms);

    /**
     * One RMSprop step, Keras 3's rule, after its decoupled weight decay ({@code p -= p * weightDecay *
     * learningRate}, nothing when 0): {@code velocity = rho velocity + (1 - rho) g^2}; centered:
     * {@code averageGradient = rho averageGradient + (1 - rho) g} and {@code denominator = velocity -
     * averageGradient^2 + epsilon}, else {@code denominator = velocity + epsilon} (epsilon inside the square
     * root, as Keras 3 and unlike PyTorch); {@code increment = learningRate g / sqrt(denominator)}; with momentum
     * {@code momentumBuffer = momentum momentumBuffer + increment} and {@code p -= momentumBuffer}, else
     * {@code p -= increment}. All in float, {@code 1 - rho} too. {@code averageGradient} is read and written only
     * when centered and {@code momentumBuffer} only when momentum is not 0; each may be null otherwise. When
     * {@code norms} is not null, also the {@link UpdateNorms} as {@link #adamUpdate} writes them.
     */
    default void rmspropUpdate(Tensor params, Tensor grads, Tensor velocity, Tensor averageGradient,
                               Tensor momentumBuffer, float learningRate, float rho, float momentum, float epsilon,
                               boolean centered, float weightDecay, UpdateNorms norms) {
        rmspropUpdate(params, grads, velocity, averageGradient, momentumBuffer, learningRate, StepSchedule.NONE, rho,
                momentum, epsilon, centered, weightDecay, null, norms);
    }

    /**
     * {@link #rmspropUpdate} that counts its updates in {@code iterations} (null: not counted, and then no schedule)
     * at the rate of a per-step schedule, as the counting {@link #sgdUpdate}.
     */
    void rmspropUpdate(Tensor params, Tensor grads, Tensor velocity, Tensor averageGradient, Tensor momentumBuffer,
                       float learningRate, StepSchedule schedule, float rho, float momentum, float epsilon,
                       boolean centered, float weightDecay, Tensor iterations, UpdateNorms norms);

    // ---- data ---------------------------------------------------------------------------------

    /**
     * {@code out[r] = source[indices[first + r]] * scale} for each row {@code r} of {@code out}:
     * gathers a batch of rows from a UINT8 or FLOAT32 dataset into FLOAT32.
     */
    void gatherRows(Tensor source, Tensor indices, int first, float scale, Tensor out);

    // ---- the step's changing values on the device, and step graphs --------------------------------
    //
    // A step captured as a graph (StepGraph) replays its ops with the arguments they were captured with,
    // so what changes from step to step lives in device memory: a counter (INT32) that these ops read.
    // The host-scalar ops above stay for everything outside a captured step.

    /**
     * {@link #gatherRows(Tensor, Tensor, int, float, Tensor)} with {@code first = counter[0] * rowsPerCount}
     * read on the device: {@code out[r] = source[indices[counter[0] * rowsPerCount + r]] * scale}. A GPU
     * cannot check {@code first} against the indices (it stays on the device); the CPU does.
     */
    void gatherRows(Tensor source, Tensor indices, Tensor counter, int rowsPerCount, float scale, Tensor out);

    /**
     * A training batch: {@link #gatherRows(Tensor, Tensor, Tensor, int, float, Tensor)} of {@code features}
     * (scaled by {@code featureScale}) into {@code featuresOut}, then of {@code targets} (unscaled) into
     * {@code targetsOut}, the same rows of both. One launch on a GPU; the default makes the two gathers.
     */
    default void gatherBatch(Tensor features, float featureScale, Tensor targets, Tensor indices, Tensor counter,
                             int rowsPerCount, Tensor featuresOut, Tensor targetsOut) {
        gatherRows(features, indices, counter, rowsPerCount, featureScale, featuresOut);
        gatherRows(targets, indices, counter, rowsPerCount, 1f, targetsOut);
    }

    /**
     * The next batch of an epoch, fetched ahead (a step fetches the next step's batch beside its update):
     * {@link #gatherBatch} at {@code counter[0]}, then {@code counter[0] += 1}, in one op. A batch that runs
     * past the end of {@code indices} gathers the rows there are and leaves the outputs' other rows as they
     * were (the epoch's last, smaller batch); one that starts past the end gathers nothing (the fetch after the
     * epoch's last batch). One launch on a GPU, which takes UINT8 features and FLOAT32 targets (a training
     * run's dataset); the CPU takes either type for both.
     */
    void gatherNextBatch(Tensor features, float featureScale, Tensor targets, Tensor indices, Tensor counter,
                         int rowsPerCount, Tensor featuresOut, Tensor targetsOut);

    /**
     * {@code table[row[0]][:] = src}: stores a step's small vector (e.g. per-layer squared norms) into the
     * row of a {@code [steps, src.size()]} FLOAT32 table that the INT32 device value {@code row[0]}
     * selects. A row outside the table is an error on the CPU; a GPU writes nothing then.
     */
    void copyToRow(Tensor src, Tensor table, Tensor row);

    /**
     * {@link #segmentSumOfSquares(Tensor, Tensor, Tensor)}, then {@link #copyToRow}{@code (out, table, row)}:
     * a step's per-layer squared norms, also stored into the step's row. One launch on a GPU.
     */
    default void segmentSumOfSquares(Tensor x, Tensor segmentStarts, Tensor out, Tensor table, Tensor row) {
        segmentSumOfSquares(x, segmentStarts, out);
        copyToRow(out, table, row);
    }

    /** {@code counters[i] += 1} for every element of an INT32 tensor: the end of a step on the device. */
    void advanceCounters(Tensor counters);

    /**
     * {@link #adamUpdate(Tensor, Tensor, Tensor, Tensor, float, float, float, float, UpdateNorms)} with its
     * step size computed on the device from {@code iterations[0]} (INT32, the updates taken before this one,
     * Keras's {@code iterations}): {@code stepSize = }{@link #adamStepSize}{@code (learningRate, beta1,
     * beta2, iterations[0] + 1)}, in double as the host computes it, then the update with
     * {@code (float) beta1} and {@code (float) beta2}; then {@code iterations[0] += 1}, the count of updates
     * taken (on a GPU in the update's own launch, so a step needs no op of its own to advance it).
     */
    default void adamUpdate(Tensor params, Tensor grads, Tensor m, Tensor v, double learningRate, double beta1,
                            double beta2, float epsilon, Tensor iterations, UpdateNorms norms) {
        adamUpdate(params, grads, m, v, learningRate, beta1, beta2, epsilon, 0f, iterations, norms);
    }

    /**
     * The counter form of {@code adamUpdate} after Keras 3's decoupled weight decay, in the same pass: first
     * {@code p -= p * weightDecay * (float) learningRate} (each product rounded in float, in that order), then
     * the update (AdamW). A {@code weightDecay} of 0 leaves {@code p} to the update alone: the bits of the op
     * without it.
     */
    default void adamUpdate(Tensor params, Tensor grads, Tensor m, Tensor v, double learningRate, double beta1,
                            double beta2, float epsilon, float weightDecay, Tensor iterations, UpdateNorms norms) {
        adamUpdate(params, grads, m, v, null, learningRate, beta1, beta2, epsilon, weightDecay, iterations, norms);
    }

    /**
     * The counter form of {@code adamUpdate} with weight decay, and when {@code vHat} is not null Keras's AMSGrad
     * variant: after the moments, {@code vHat = max(vHat, v)} and {@code p -= stepSize m / (sqrt(vHat) +
     * epsilon)}, so that the denominator never shrinks (Reddi et al., 2018). A null {@code vHat} is Adam.
     */
    default void adamUpdate(Tensor params, Tensor grads, Tensor m, Tensor v, Tensor vHat, double learningRate,
                            double beta1, double beta2, float epsilon, float weightDecay, Tensor iterations,
                            UpdateNorms norms) {
        adamUpdate(params, grads, m, v, vHat, learningRate, StepSchedule.NONE, beta1, beta2, epsilon, weightDecay,
                iterations, norms);
    }

    /**
     * The counter form of {@code adamUpdate} at the rate a per-step {@code schedule} gives the update at step
     * {@code iterations[0]}: {@code rate = schedule.rate(learningRate, iterations[0])}, computed in the update's own
     * op (on a GPU on the device, the host's bits), then the update with {@code rate} in place of
     * {@code learningRate}: the step size {@code adamStepSize(rate, beta1, beta2, iterations[0] + 1)} and the weight
     * decay {@code p -= p * weightDecay * (float) rate}, as Keras applies a schedule. {@link StepSchedule#NONE}: the
     * update at {@code learningRate}.
     */
    void adamUpdate(Tensor params, Tensor grads, Tensor m, Tensor v, Tensor vHat, double learningRate,
                    StepSchedule schedule, double beta1, double beta2, float epsilon, float weightDecay,
                    Tensor iterations, UpdateNorms norms);

    /**
     * The counter form of {@code adamUpdate}, ending a training step ({@link StepEnd}): the gradients' norms,
     * then the update with its norms, then the counter. This default runs those ops one by one, which defines
     * the result; a GPU does it all in one launch when the two kinds of norms share their segment starts.
     */
    default void adamUpdate(Tensor params, Tensor grads, Tensor m, Tensor v, double learningRate, double beta1,
                            double beta2, float epsilon, Tensor iterations, StepEnd end) {
        adamUpdate(params, grads, m, v, learningRate, beta1, beta2, epsilon, 0f, iterations, end);
    }

    /** The step-ending counter form of {@code adamUpdate}, after the weight decay as the counter form has it. */
    default void adamUpdate(Tensor params, Tensor grads, Tensor m, Tensor v, double learningRate, double beta1,
                            double beta2, float epsilon, float weightDecay, Tensor iterations, StepEnd end) {
        adamUpdate(params, grads, m, v, null, learningRate, beta1, beta2, epsilon, weightDecay, iterations, end);
    }

    /** The step-ending counter form of {@code adamUpdate}, AMSGrad when {@code vHat} is not null. */
    default void adamUpdate(Tensor params, Tensor grads, Tensor m, Tensor v, Tensor vHat, double learningRate,
                            double beta1, double beta2, float epsilon, float weightDecay, Tensor iterations,
                            StepEnd end) {
        adamUpdate(params, grads, m, v, vHat, learningRate, StepSchedule.NONE, beta1, beta2, epsilon, weightDecay,
                iterations, end);
    }

    /** The step-ending counter form of {@code adamUpdate} under a per-step schedule. */
    default void adamUpdate(Tensor params, Tensor grads, Tensor m, Tensor v, Tensor vHat, double learningRate,
                            StepSchedule schedule, double beta1, double beta2, float epsilon, float weightDecay,
                            Tensor iterations, StepEnd end) {
        measureGradientNorms(grads, end.gradientNorms());
        adamUpdate(params, grads, m, v, vHat, learningRate, schedule, beta1, beta2, epsilon, weightDecay, iterations,
                end.updateNorms());
        if (end.counter() != null) {
            advanceCounters(end.counter());
        }
    }

    /**
     * One Nadam step, Keras 3's rule (Dozat, 2016), after the decoupled weight decay ({@code p -= p * weightDecay
     * * learningRate}, nothing when 0), at update {@code t = iterations[0] + 1}. The momentum schedule's scalars
     * come from {@link #nadamScalars}{@code (beta1, beta2, t, uProduct[0])}: {@code u_t}, {@code u_t+1},
     * {@code uProduct_t}, {@code uProduct_t+1} and {@code 1 - beta2^t}. Per element, in float:
     * {@code m += (g - m)(1 - beta1)}, {@code v += (g^2 - v)(1 - beta2)}, {@code mHat = u_t+1 m / (1 -
     * uProduct_t+1) + (1 - u_t) g / (1 - uProduct_t)}, {@code vHat = v / (1 - beta2^t)},
     * {@code p -= mHat lr / (sqrt(vHat) + epsilon)}. Then {@code uProduct[0] = uProduct_t} and
     * {@code iterations[0] += 1} (on a GPU in the update's own launch). {@code uProduct} (FLOAT32 [1], Keras's
     * {@code _u_product}) starts at 1.
     */
    default void nadamUpdate(Tensor params, Tensor grads, Tensor m, Tensor v, float learningRate, double beta1,
                             double beta2, float epsilon, float weightDecay, Tensor iterations, Tensor uProduct,
                             UpdateNorms norms) {
        nadamUpdate(params, grads, m, v, learningRate, StepSchedule.NONE, beta1, beta2, epsilon, weightDecay,
                iterations, uProduct, norms);
    }

    /**
     * {@link #nadamUpdate} at the rate {@code (float) schedule.rate(learningRate, iterations[0])} of a per-step
     * schedule, computed in the update's own op (as the scheduled {@code adamUpdate}), in place of
     * {@code learningRate}, the weight decay's too.
     */
    void nadamUpdate(Tensor params, Tensor grads, Tensor m, Tensor v, float learningRate, StepSchedule schedule,
                     double beta1, double beta2, float epsilon, float weightDecay, Tensor iterations, Tensor uProduct,
                     UpdateNorms norms);

    /** {@link #nadamUpdate} ending a training step ({@link StepEnd}), as the step-ending {@code adamUpdate}. */
    default void nadamUpdate(Tensor params, Tensor grads, Tensor m, Tensor v, float learningRate, double beta1,
                             double beta2, float epsilon, float weightDecay, Tensor iterations, Tensor uProduct,
                             StepEnd end) {
        nadamUpdate(params, grads, m, v, learningRate, StepSchedule.NONE, beta1, beta2, epsilon, weightDecay,
                iterations, uProduct, end);
    }

    /** The scheduled {@link #nadamUpdate} ending a training step ({@link StepEnd}). */
    default void nadamUpdate(Tensor params, Tensor grads, Tensor m, Tensor v, float learningRate,
                             StepSchedule schedule, double beta1, double beta2, float epsilon, float weightDecay,
                             Tensor iterations, Tensor uProduct, StepEnd end) {
        measureGradientNorms(grads, end.gradientNorms());
        nadamUpdate(params, grads, m, v, learningRate, schedule, beta1, beta2, epsilon, weightDecay, iterations,
                uProduct, end.updateNorms());
        if (end.counter() != null) {
            advanceCounters(end.counter());
        }
    }

    /**
     * One Adamax step, Keras 3's rule (Kingma and Ba, 2015, section 7), after the decoupled weight decay, at update
     * {@code t = iterations[0] + 1}: {@code m += (g - m)(float) (1 - beta1)}, {@code u = max((float) beta2 u,
     * |g|)}, {@code p -= lr m / ((1 - beta1^t) (u + epsilon))}, with {@code 1 - beta1^t} computed in double (by
     * repeated squaring, as {@link #adamStepSize}) and rounded to float; then {@code iterations[0] += 1}.
     */
    default void adamaxUpdate(Tensor params, Tensor grads, Tensor m, Tensor u, float learningRate, double beta1,
                              double beta2, float epsilon, float weightDecay, Tensor iterations, UpdateNorms norms) {
        adamaxUpdate(params, grads, m, u, learningRate, StepSchedule.NONE, beta1, beta2, epsilon, weightDecay,
                iterations, norms);
    }

    /**
     * {@link #adamaxUpdate} at the rate {@code (float) schedule.rate(learningRate, iterations[0])} of a per-step
     * schedule, computed in the update's own op, in place of {@code learningRate}, the weight decay's too.
     */
    void adamaxUpdate(Tensor params, Tensor grads, Tensor m, Tensor u, float learningRate, StepSchedule schedule,
                      double beta1, double beta2, float epsilon, float weightDecay, Tensor iterations,
                      UpdateNorms norms);

    /** {@link #adamaxUpdate} ending a training step ({@link StepEnd}), as the step-ending {@code adamUpdate}. */
    default void adamaxUpdate(Tensor params, Tensor grads, Tensor m, Tensor u, float learningRate, double beta1,
                              double beta2, float epsilon, float weightDecay, Tensor iterations, StepEnd end) {
        adamaxUpdate(params, grads, m, u, learningRate, StepSchedule.NONE, beta1, beta2, epsilon, weightDecay,
                iterations, end);
    }

    /** The scheduled {@link #adamaxUpdate} ending a training step ({@link StepEnd}). */
    default void adamaxUpdate(Tensor params, Tensor grads, Tensor m, Tensor u, float learningRate,
                              StepSchedule schedule, double beta1, double beta2, float epsilon, float weightDecay,
                              Tensor iterations, StepEnd end) {
        measureGradientNorms(grads, end.gradientNorms());
        adamaxUpdate(params, grads, m, u, learningRate, schedule, beta1, beta2, epsilon, weightDecay, iterations,
                end.updateNorms());
        if (end.counter() != null) {
            advanceCounters(end.counter());
        }
    }

    /**
     * One Adagrad step, Keras 3's rule (Duchi et al., 2011), after the decoupled weight decay:
     * {@code accumulator += g^2}, {@code p -= lr g / sqrt(accumulator + epsilon)} (epsilon inside the square
     * root, as Keras 3; PyTorch adds it outside).
     */
    default void adagradUpdate(Tensor params, Tensor grads, Tensor accumulator, float learningRate, float epsilon,
                               float weightDecay, UpdateNorms norms) {
        adagradUpdate(params, grads, accumulator, learningRate, StepSchedule.NONE, epsilon, weightDecay, null, norms);
    }

    /**
     * {@link #adagradUpdate} that counts its updates in {@code iterations} (null: not counted, and then no
     * schedule) at the rate of a per-step schedule, as the counting {@link #sgdUpdate}.
     */
    void adagradUpdate(Tensor params, Tensor grads, Tensor accumulator, float learningRate, StepSchedule schedule,
                       float epsilon, float weightDecay, Tensor iterations, UpdateNorms norms);

    /** {@link #adagradUpdate} ending a training step ({@link StepEnd}), as the step-ending {@code adamUpdate}. */
    default void adagradUpdate(Tensor params, Tensor grads, Tensor accumulator, float learningRate, float epsilon,
                               float weightDecay, StepEnd end) {
        adagradUpdate(params, grads, accumulator, learningRate, StepSchedule.NONE, epsilon, weightDecay, null, end);
    }

    /** The counting {@link #adagradUpdate} ending a training step ({@link StepEnd}). */
    default void adagradUpdate(Tensor params, Tensor grads, Tensor accumulator, float learningRate,
                               StepSchedule schedule, float epsilon, float weightDecay, Tensor iterations,
                               StepEnd end) {
        measureGradientNorms(grads, end.gradientNorms());
        adagradUpdate(params, grads, accumulator, learningRate, schedule, epsilon, weightDecay, iterations,
                end.updateNorms());
        if (end.counter() != null) {
            advanceCounters(end.counter());
        }
    }

    /**
     * {@code sgdUpdate} ending a training step ({@link StepEnd}), as
     * {@link #adamUpdate(Tensor, Tensor, Tensor, Tensor, double, double, double, float, Tensor, StepEnd)}.
     */
    default void sgdUpdate(Tensor params, Tensor grads, Tensor velocity, float learningRate, float momentum,
                           boolean nesterov, StepEnd end) {
        sgdUpdate(params, grads, velocity, learningRate, momentum, nesterov, 0f, end);
    }

    /** {@code sgdUpdate} with weight decay, ending a training step ({@link StepEnd}). */
    default void sgdUpdate(Tensor params, Tensor grads, Tensor velocity, float learningRate, float momentum,
                           boolean nesterov, float weightDecay, StepEnd end) {
        sgdUpdate(params, grads, velocity, learningRate, StepSchedule.NONE, momentum, nesterov, weightDecay, null,
                end);
    }

    /** The counting {@code sgdUpdate} ending a training step ({@link StepEnd}). */
    default void sgdUpdate(Tensor params, Tensor grads, Tensor velocity, float learningRate, StepSchedule schedule,
                           float momentum, boolean nesterov, float weightDecay, Tensor iterations, StepEnd end) {
        measureGradientNorms(grads, end.gradientNorms());
        sgdUpdate(params, grads, velocity, learningRate, schedule, momentum, nesterov, weightDecay, iterations,
                end.updateNorms());
        if (end.counter() != null) {
            advanceCounters(end.counter());
        }
    }

    /** {@link #rmspropUpdate} without norms. */
    default void rmspropUpdate(Tensor params, Tensor grads, Tensor velocity, Tensor averageGradient,
                               Tensor momentumBuffer, float learningRate, float rho, float momentum, float epsilon,
                               boolean centered, float weightDecay) {
        rmspropUpdate(params, grads, velocity, averageGradient, momentumBuffer, learningRate, rho, momentum, epsilon,
                centered, weightDecay, (UpdateNorms) null);
    }

    /** {@link #rmspropUpdate} ending a training step ({@link StepEnd}), as the step-ending {@code adamUpdate}. */
    default void rmspropUpdate(Tensor params, Tensor grads, Tensor velocity, Tensor averageGradient,
                               Tensor momentumBuffer, float learningRate, float rho, float momentum, float epsilon,
                               boolean centered, float weightDecay, StepEnd end) {
        rmspropUpdate(params, grads, velocity, averageGradient, momentumBuffer, learningRate, StepSchedule.NONE, rho,
                momentum, epsilon, centered, weightDecay, null, end);
    }

    /** The counting {@link #rmspropUpdate} ending a training step ({@link StepEnd}). */
    default void rmspropUpdate(Tensor params, Tensor grads, Tensor velocity, Tensor averageGradient,
                               Tensor momentumBuffer, float learningRate, StepSchedule schedule, float rho,
                               float momentum, float epsilon, boolean centered, float weightDecay, Tensor iterations,
                               StepEnd end) {
        measureGradientNorms(grads, end.gradientNorms());
        rmspropUpdate(params, grads, velocity, averageGradient, momentumBuffer, learningRate, schedule, rho, momentum,
                epsilon, centered, weightDecay, iterations, end.updateNorms());
        if (end.counter() != null) {
            advanceCounters(end.counter());
        }
    }

    /** {@link #segmentSumOfSquares} of the gradients as {@code norms} asks (nothing when it is null). */
    private void measureGradientNorms(Tensor grads, GradientNorms norms) {
        if (norms == null) {
            return;
        }
        if (norms.table() == null) {
            segmentSumOfSquares(grads, norms.segmentStarts(), norms.squares());
        } else {
            segmentSumOfSquares(grads, norms.segmentStarts(), norms.squares(), norms.table(), norms.row());
        }
    }

    /**
     * Adam's step size at update {@code t} (from 1) with the bias corrections folded in, Keras's form:
     * {@code (float) (learningRate * sqrt(1 - beta2^t) / (1 - beta1^t))}, computed in double. The powers
     * are taken by repeated squaring, which a GPU does with the same IEEE operations (its {@code pow} and
     * Java's differ by an ulp or two): host and device get the same bits.
     */
    static float adamStepSize(double learningRate, double beta1, double beta2, long t) {
        return (float) (learningRate * Math.sqrt(1 - powerBySquaring(beta2, t)) / (1 - powerBySquaring(beta1, t)));
    }

    /** The base of Nadam's momentum schedule, {@code u_t = beta1 (1 - 0.5 * 0.96^t)} in Keras 3. */
    double NADAM_SCHEDULE_BASE = 0.96;

    /**
     * Nadam's scalars at update {@code t} (from 1), given Keras's {@code _u_product} before it: {@code {u_t,
     * u_t+1, uProduct_t, uProduct_t+1, 1 - beta2^t}}. Keras 3's schedule, with the power in double by repeated
     * squaring (as on the device: the same bits) and the rest in float as Keras computes it:
     * {@code s(t) = (float) (1 - 0.5 * 0.96^t)}, {@code u_t = (float) beta1 * s(t)}, {@code u_t+1 = (float) beta1 *
     * s(t + 1)}, {@code uProduct_t = uProduct * (float) beta1 * s(t)} (Keras's order: the product first),
     * {@code uProduct_t+1 = uProduct_t * u_t+1}, {@code 1 - beta2^t = (float) (1 - beta2^t)}. Keras 3 dropped
     * the paper's (and Keras 2's) {@code 0.004} from the exponent; this follows Keras 3.
     */
    static float[] nadamScalars(double beta1, double beta2, long t, float uProduct) {
        float b1 = (float) beta1;
        float scheduleNow = (float) (1 - 0.5 * powerBySquaring(NADAM_SCHEDULE_BASE, t));
        float scheduleNext = (float) (1 - 0.5 * powerBySquaring(NADAM_SCHEDULE_BASE, t + 1));
        float uNow = b1 * scheduleNow;
        float uNext = b1 * scheduleNext;
        float productNow = uProduct * b1 * scheduleNow;
        float productNext = productNow * uNext;
        return new float[] {uNow, uNext, productNow, productNext, (float) (1 - powerBySquaring(beta2, t))};
    }

    /** {@code (float) (1 - beta1^t)}, Adamax's bias correction at update {@code t}, the power as in Adam's. */
    static float adamaxCorrection(double beta1, long t) {
        return (float) (1 - powerBySquaring(beta1, t));
    }

    /** {@code base^exponent} by repeated squaring in double; 1 for an exponent <= 0. */
    private static double powerBySquaring(double base, long exponent) {
        double result = 1;
        for (long e = exponent; e > 0; e >>= 1) {
            if ((e & 1) != 0) {
                result *= base;
            }
            base *= base;
        }
        return result;
    }

    /**
     * Whether {@link #capture} records the step into a device graph (CUDA) that replays it without the
     * host; false when it returns a graph that runs the step's code again ({@link StepGraph#rerunning}).
     */
    default boolean supportsGraphs() {
        return false;
    }

    /**
     * Records the ops that {@code step} queues, without running them, as a graph that {@link StepGraph#launch}
     * queues again. The step must only queue ops on fixed tensors: no allocation, no host read or
     * copy, no wait; a GPU backend fails such an op (naming it), ends the capture and throws. Everything
     * the step uses must exist already: run it once before capturing it. The default reruns {@code step}.
     */
    default StepGraph capture(Runnable step) {
        return StepGraph.rerunning(step);
    }

    /**
     * Queues the ops of {@code work} beside the ops queued after it: they start after everything queued
     * so far, and may run at the same time as what comes next, until {@link #joinAside}. For work off the
     * step's critical path, such as a layer's weight gradient (the rest of the backward pass does not wait
     * for it). {@code work} must only read tensors that the ops queued before {@link #joinAside} do not write,
     * and write tensors that they neither read nor write. On a GPU the work goes on a second stream (inside a
     * captured graph, a branch of the graph); the default, and every backend whose ops run in order, runs
     * it now, in line. Does not nest.
     */
    default void aside(Runnable work) {
        work.run();
    }

    /** The ops queued from now on start after all the work queued by {@link #aside} so far. */
    default void joinAside() {
    }

    /**
     * How many device operations (kernel launches, library calls, device copies) this backend has queued
     * since it opened: the difference around an eager step is what the step launches. Operations recorded
     * into a graph count once, at capture; a graph's launches count nothing. -1 when it does not count.
     */
    default long queuedOperations() {
        return -1;
    }

    /** Releases the backend's own resources (threads, streams, handles). */
    @Override
    void close();
}
