package dev.gradscope.nn;

import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.StepSchedule;
import dev.gradscope.tensor.Tensor;
import java.util.Objects;

/**
 * What every optimizer here shares, as Keras 3's {@code BaseOptimizer}: a learning rate that a schedule or a
 * plateau may change between steps, a per-step schedule from the update count each keeps on the device (Keras's
 * {@code iterations}), and
 * decoupled weight decay (before each update
 * {@code p -= p * weightDecay * learningRate}, in the update's own op). Each update op also ends the step.
 */
abstract class BaseOptimizer implements Optimizer {
    private double learningRate;
    private final double weightDecay;
    private StepSchedule stepSchedule = StepSchedule.NONE;
    private final String name;
    private Backend countBackend;
    private Tensor iterations; // INT32 [1]: Keras's iterations

    /**
     * @param name         the optimizer's name in error messages
     * @param learningRate above 0 and finite as a float
     * @param weightDecay  at least 0 and finite as a float; 0 leaves the update exactly as without it
     */
    BaseOptimizer(String name, double learningRate, double weightDecay) {
        this.name = name;
        this.learningRate = Optimizer.requirePositiveRate(name, learningRate);
        this.weightDecay = Optimizer.requireWeightDecay(name, weightDecay);
    }

    @Override
    public final double learningRate() {
        return learningRate;
    }

    @Override
    public final void setLearningRate(double learningRate) {
        if (stepSchedule.isScheduled()) {
            // As Keras's optimizer with a LearningRateSchedule, whose learning_rate is not settable: a callback that
            // sets it would silently move the schedule's peak, not the rate the updates use.
            throw new IllegalStateException(id() + "'s learning rate follows its per-step schedule; it cannot also be"
                    + " set (by LearningRateScheduler or ReduceLROnPlateau)");
        }
        this.learningRate = Optimizer.requirePositiveRate(id(), learningRate);
    }

    @Override
    public final StepSchedule stepSchedule() {
        return stepSchedule;
    }

    /** Every optimizer here counts its updates on the device, and its update op computes its rate from the count. */
    @Override
    public final void setStepSchedule(StepSchedule schedule) {
        this.stepSchedule = Objects.requireNonNull(schedule, "schedule");
    }

    /** Keras 3's {@code weight_decay}. */
    public final double weightDecay() {
        return weightDecay;
    }

    /**
     * Allocates the update count, 0, on {@code backend} (Keras's {@code iterations}): every optimizer here counts its
     * updates, which its update op advances and a per-step schedule reads. Called by {@code build}; the count is
     * closed by {@link #closeCount}.
     */
    final void allocateCount(Backend backend) {
        closeCount();
        countBackend = backend;
        iterations = backend.allocate(DType.INT32, 1);
    }

    /** The INT32 [1] update count the update ops take; null before {@link #allocateCount}. */
    final Tensor count() {
        return iterations;
    }

    /** Frees the update count; the optimizer's close calls it. */
    final void closeCount() {
        Tensor.closeAll(iterations);
        iterations = null;
    }

    /** Updates taken so far (Keras's {@code iterations}); 0 before {@code build}. Reads the device. */
    @Override
    public final long iterations() {
        return iterations == null ? 0 : iterations.toIntArray()[0];
    }

    /** Sets the updates taken so far, for resuming: the next update's schedule and bias corrections use it. */
    @Override
    public final void setIterations(long count) {
        if (iterations == null) {
            throw new IllegalStateException(name + " is not built yet: no step count to set");
        }
        if (count < 0 || count > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(name + "'s step count is a count below 2^31, got " + count);
        }
        countBackend.copyFromHost(new int[] {(int) count}, iterations);
    }

    /** The backend's update op takes the whole step end. */
    @Override
    public final boolean endsSteps() {
        return true;
    }
}
