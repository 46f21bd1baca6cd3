package dev.gradscope.tensor;

/**
 * A learning-rate schedule per update, computed by the optimizer op itself from the device's step count, so that a
 * step captured as a graph replays with the right rate at every step: Keras's {@code CosineDecay} with its linear
 * warmup. With the optimizer's learning rate {@code lr} as the warmup's target (Keras's {@code warmup_target}; the
 * rate the cosine starts from), at step {@code t} (Keras's {@code iterations} before the update, from 0):
 * {@code s = min(t, warmupSteps + decaySteps)}; while {@code s < warmupSteps} the rate is
 * {@code (lr - warmupStart) (s / warmupSteps) + warmupStart}; after it {@code lr ((1 - alpha) 0.5 (1 + cos(pi (s -
 * warmupSteps) / decaySteps)) + alpha)}, or {@code lr} when {@code decaySteps} is 0 (a warmup alone, as PyTorch's
 * {@code LinearLR}). {@link #NONE}, no warmup and no decay, is {@code lr} at every step.
 *
 * <p>Computed in double, every operation rounded on its own in a fixed order, and the cosine by a fixed series
 * ({@link #cosine}), so that a GPU (optim.cu's {@code gs::scheduledRate}) gets the same bits as {@link #rate}.
 *
 * @param warmupStart the rate of step 0 when there is a warmup (Keras's {@code initial_learning_rate}), at least 0;
 *                    above the learning rate the warmup goes down to it, as Keras's does
 * @param warmupSteps the warmup's updates, at least 0
 * @param decaySteps  the cosine's updates after the warmup (Keras's {@code decay_steps}); 0: no decay
 * @param alpha       the fraction of the learning rate the cosine ends at, in [0, 1]
 */
public record StepSchedule(double warmupStart, int warmupSteps, int decaySteps, double alpha) {
    /** No schedule: the learning rate at every step. */
    public static final StepSchedule NONE = new StepSchedule(0, 0, 0, 0);

    public StepSchedule {
        if (!(warmupStart >= 0) || !Double.isFinite(warmupStart)) {
            throw new IllegalArgumentException("the warmup's start rate must be a finite number >= 0, got "
                    + warmupStart);
        }
        if (warmupSteps < 0 || decaySteps < 0) {
            throw new IllegalArgumentException("the warmup's and the decay's steps must be >= 0, got " + warmupSteps
                    + " and " + decaySteps);
        }
        if (!(alpha >= 0 && alpha <= 1)) {
            throw new IllegalArgumentException("the cosine's alpha must be in [0, 1], got " + alpha);
        }
    }

    /** Keras's {@code CosineDecay(lr, decaySteps, alpha)} after a warmup from {@code warmupStart} over {@code warmupSteps}. */
    public static StepSchedule cosineDecay(double warmupStart, int warmupSteps, int decaySteps, double alpha) {
        return new StepSchedule(warmupStart, warmupSteps, decaySteps, alpha);
    }

    /** A linear warmup from {@code warmupStart} to the learning rate over {@code warmupSteps}, then the rate. */
    public static StepSchedule warmup(double warmupStart, int warmupSteps) {
        return new StepSchedule(warmupStart, warmupSteps, 0, 0);
    }

    /** Whether the rate changes from step to step (not {@link #NONE}). */
    public boolean isScheduled() {
        return warmupSteps != 0 || decaySteps != 0;
    }

    /** The rate of the update at step {@code step} (from 0) for the learning rate {@code learningRate}. */
    public double rate(double learningRate, long step) {
        if (!isScheduled()) {
            return learningRate;
        }
        long last = (long) warmupSteps + decaySteps;
        double s = Math.min(step, last);
        if (s < warmupSteps) {
            return (learningRate - warmupStart) * (s / warmupSteps) + warmupStart;
        }
        if (decaySteps == 0) {
            return learningRate;
        }
        double fraction = (s - warmupSteps) / decaySteps;
        // Never below 0: the series is within 1e-15 of -1 near pi, which over a billion steps could round the rate
        // negative; optim.cu clamps the same way.
        double halfCosine = 0.5 * (1.0 + cosine(Math.PI * fraction));
        double cosineDecayed = halfCosine > 0.0 ? halfCosine : 0.0;
        return learningRate * ((1.0 - alpha) * cosineDecayed + alpha);
    }

    /**
     * cos(x) for x in [0, pi] by its Taylor series to x^36 in Horner's form, {@code r = 1 - x^2 r / ((2k-1) 2k)}
     * from k = 18 down to 1: plain IEEE operations, which the GPU repeats bit for bit (its {@code cos} and Java's
     * differ by an ulp). Truncation error below 1e-23 at pi; rounding error below 1e-15.
     */
    static double cosine(double x) {
        double x2 = x * x;
        double r = 1.0;
        for (int k = 18; k >= 1; k--) {
            r = 1.0 - x2 * r / ((2 * k - 1) * (2 * k));
        }
        return r;
    }
}
