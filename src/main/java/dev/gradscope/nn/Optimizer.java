package dev.gradscope.nn;

import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.StepEnd;
import dev.gradscope.tensor.StepSchedule;
import dev.gradscope.tensor.Tensor;
import dev.gradscope.tensor.UpdateNorms;
import java.util.Map;

/**
 * Updates a model's flat parameter buffer from its flat gradient buffer, one op per step. Any state
 * (moments, velocity) lives on the model's device, allocated once by {@link #build}.
 */
public interface Optimizer extends AutoCloseable {
    /** Allocates the optimizer's state for {@code parameterCount} parameters. */
    void build(Backend backend, int parameterCount);

    /** One update of {@code parameters} from {@code gradients}. */
    default void step(Tensor parameters, Tensor gradients) {
        step(parameters, gradients, StepEnd.NONE);
    }

    /**
     * One update, which also writes the {@link UpdateNorms} of the step when {@code norms} is not null (the
     * profiler's weight and update norms, measured in the update's own pass).
     */
    default void step(Tensor parameters, Tensor gradients, UpdateNorms norms) {
        step(parameters, gradients, StepEnd.measuring(norms));
    }

    /**
     * One update that also does the work ending a training step ({@link StepEnd}: gradient and update norms,
     * advancing the step's counter), in the update's own launch on a GPU. The trainer passes gradient norms
     * and a counter only to an optimizer that {@link #endsSteps}.
     */
    void step(Tensor parameters, Tensor gradients, StepEnd end);

    /**
     * Whether {@link #step(Tensor, Tensor, StepEnd)} does all of a step end's work, the gradient norms and the
     * counter's advance included (every optimizer of {@link BaseOptimizer} does, through Backend's ops that take a {@link StepEnd}). The
     * trainer hands those only to an optimizer that says so; for any other it queues them as ops of their own.
     */
    default boolean endsSteps() {
        return false;
    }

    /**
     * The optimizer's state besides the update count: named FLOAT32 buffers of {@code [parameterCount]}, laid
     * out as the model's flat parameter buffer (Adam's {@code m} and {@code v}, with AMSGrad {@code v_hat}; SGD's
     * {@code velocity}; RMSprop's {@code velocity}, {@code momentum} and {@code average_gradient}; Nadam's
     * {@code momentum} and {@code velocity}; Adamax's {@code momentum} and {@code norm}; Adagrad's
     * {@code accumulator}), in a
     * fixed order. They are the live buffers on the model's device, for saving and restoring a run
     * ({@link dev.gradscope.train.TrainingState}); empty before {@link #build} and for an optimizer without
     * state (SGD without momentum).
     */
    default Map<String, Tensor> stateBuffers() {
        return Map.of();
    }

    /**
     * The optimizer's scalar state besides the update count, by Keras's names (Nadam's {@code u_product}): what a
     * resumed run must restore to go on exactly. Empty for most optimizers and before {@link #build}. Reads the
     * device: waits for the queued work.
     */
    default Map<String, Float> stateScalars() {
        return Map.of();
    }

    /** Sets the {@link #stateScalars}, to resume a run; an optimizer without any accepts only none. */
    default void setStateScalars(Map<String, Float> values) {
        if (!values.isEmpty()) {
            throw new IllegalArgumentException(id() + " has no scalar state; got " + values.keySet());
        }
    }

    /**
     * Updates taken so far (Keras's {@code iterations}, which every optimizer here counts on the device: Adam's,
     * Nadam's and Adamax's bias corrections and any per-step schedule depend on it); 0 for one that does not count.
     * Reads the device: waits for the queued work.
     */
    default long iterations() {
        return 0;
    }

    /**
     * Sets the count of updates taken, to resume a run where it stopped. An optimizer that does not count
     * accepts only 0.
     */
    default void setIterations(long iterations) {
        if (iterations != 0) {
            throw new IllegalArgumentException(id() + " does not count its updates; cannot resume it at update "
                    + iterations);
        }
    }

    /** The learning rate the next update uses. */
    double learningRate();

    /**
     * Sets the learning rate of the updates from now on (a schedule, {@code ReduceLROnPlateau}). A step captured
     * as a graph holds the rate it was captured with: the trainer captures its graphs again before its next
     * launch when the rate differs. A change between epochs (in {@code onEpochBegin} or
     * {@code onEpochEnd}) is therefore exact in graph mode; one within an epoch ({@code onBatchEnd}) reaches
     * the steps at the next launch, which with several steps per graph is up to that many steps later than
     * when the steps run eagerly. The default: an optimizer whose rate cannot change.
     */
    default void setLearningRate(double learningRate) {
        throw new UnsupportedOperationException(id() + " does not let its learning rate change");
    }

    /**
     * The per-step learning-rate schedule the updates follow ({@link StepSchedule}: a warmup, a cosine decay),
     * computed by the update op from the device's step count; {@link StepSchedule#NONE} by default.
     */
    default StepSchedule stepSchedule() {
        return StepSchedule.NONE;
    }

    /**
     * Makes every update from now on take its rate from {@code schedule} at its step (Keras's {@code iterations}
     * before it), the {@link #learningRate} being the rate the warmup reaches and the decay starts from. The
     * default: an optimizer that takes no per-step schedule, which accepts only {@link StepSchedule#NONE}.
     */
    default void setStepSchedule(StepSchedule schedule) {
        if (schedule.isScheduled()) {
            throw new IllegalArgumentException(id() + " does not take a per-step learning-rate schedule (warmup,"
                    + " cosine decay): it keeps no update count on the device");
        }
    }

    /** The rate of the update at step {@code step} (from 0): the {@link #stepSchedule}'s, or the learning rate. */
    default double rateAt(long step) {
        return stepSchedule().rate(learningRate(), step);
    }

    /**
     * Whether {@code value} is in [0, 1) as the float the kernels compute with: a rho or beta of 0.99999999 is a
     * double below 1 but the float 1, which would stop a moving average from moving.
     */
    static boolean isFloatFraction(double value) {
        return value >= 0 && (float) value < 1;
    }

    /** Whether {@code value} is above 0 and finite as a float: 1e39 is a finite double but an infinite float. */
    static boolean isPositiveFloat(double value) {
        return value > 0 && (float) value > 0 && Float.isFinite((float) value);
    }

    /** Whether {@code value} is at least 0 and finite as a float. */
    static boolean isNonNegativeFloat(double value) {
        return value >= 0 && Float.isFinite((float) value);
    }

    /** {@code learningRate}, when it is a finite number above 0; otherwise an error naming {@code optimizer}. */
    static double requirePositiveRate(String optimizer, double learningRate) {
        if (!isPositiveFloat(learningRate)) {
            throw new IllegalArgumentException(optimizer + ": the learning rate must be a positive number, got "
                    + learningRate);
        }
        return learningRate;
    }

    /**
     * {@code weightDecay}, when it is a finite number of at least 0 (Keras 3's decoupled weight decay: before
     * each update {@code p -= p * weightDecay * learningRate}); otherwise an error naming {@code optimizer}.
     */
    static double requireWeightDecay(String optimizer, double weightDecay) {
        if (!isNonNegativeFloat(weightDecay)) {
            throw new IllegalArgumentException(optimizer + ": the weight decay must be a finite number >= 0, got "
                    + weightDecay);
        }
        return weightDecay;
    }

    /**
     * The id used on the command line ({@code "adam"}, {@code "adamw"}, {@code "sgd"}, {@code "rmsprop"},
     * {@code "nadam"}, {@code "adamax"}, {@code "adagrad"}).
     */
    String id();

    /** The hyper-parameters, for saved configs. */
    Map<String, Object> config();

    /** Frees the optimizer's state. */
    @Override
    void close();
}
