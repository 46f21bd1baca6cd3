package dev.gradscope.nn;

import dev.gradscope.tensor.Backend;
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

    /**
     * @param name         the optimizer's name in error messages
     * @param learningRate above 0 and finite as a float
     * @param weightDecay  at least 0 and finite as a float; 0 leaves the update exactly as without it
     */
    BaseOptimizer(String name, double learningRate, double weightDecay) {
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

    /** The count in a one-element INT32 {@code counter} (0 when there is none yet): reads the device. */
    static long countOf(Tensor counter) {
        return counter == null ? 0 : counter.toIntArray()[0];
    }

    /** Sets {@code counter}, the updates taken so far, to {@code count}, for resuming. */
    static void setCount(Backend backend, Tensor counter, long count, String optimizer) {
        if (counter == null) {
            throw new IllegalStateException(optimizer + " is not built yet: no step count to set");
        }
        if (count < 0 || count > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(optimizer + "'s step count is a count below 2^31, got " + count);
        }
        backend.copyFromHost(new int[] {(int) count}, counter);
    }

    /** The backend's update op takes the whole step end. */
    @Override
    public final boolean endsSteps() {
        return true;
    }
}
