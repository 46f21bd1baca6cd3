package dev.gradscope.train;

import java.util.Map;

/**
 * Hooks into the training loop, as Keras's callbacks. Every method has an empty default. Epochs and
 * steps count from 0.
 *
 * <p>Two hooks run inside the training step: {@link #onGradientsComputed} and {@link #onParametersUpdated}.
 * When the trainer captures the step as a graph (the default on a GPU), it calls them only while capturing:
 * once for each step a graph holds (a graph per batch size, and per steps in the graph when
 * {@link FitOptions#stepsPerGraph()} is above 1), with the epoch and step being captured. What they queue on
 * the device is then replayed for every later step, with the same arguments. Such a callback says so with
 * {@link #graphSafe}; the others make the trainer run every step eagerly. The remaining hooks run on the
 * host, every time.
 */
public interface Callback {
    /** Before the first epoch; {@code run} stays valid until {@link #onTrainEnd}. */
    default void onTrainBegin(TrainingRun run) {
    }

    default void onEpochBegin(int epoch) {
    }

    /**
     * After each optimizer step. {@code progress} reads the epoch's running loss and accuracy, which
     * on a GPU costs a device round trip: call it only when you will show the values.
     */
    default void onBatchEnd(int epoch, int step, RunningMetrics progress) {
    }

    /**
     * After each backward pass, before gradient clipping and the optimizer: the step's gradients are in
     * the model's gradient buffer and the layers still hold this batch's activations. Their squared norms are
     * in the step's row of {@link TrainingRun#squaredGradientNorms()} here when a callback
     * {@link #readsGradientNormsInStep}; otherwise the optimizer's op may measure them, and they are there by
     * {@link #onParametersUpdated}. Inside the step (see the class comment).
     */
    default void onGradientsComputed(int epoch, int step) {
    }

    /**
     * After each optimizer step, inside the step (see the class comment); the step's row of the per-step
     * tables is still {@link TrainingRun#stepIndex()}'s. A callback that overrides it makes the step advance
     * that index in an op of its own, after this hook, instead of in the optimizer's.
     */
    default void onParametersUpdated(int epoch, int step) {
    }

    /**
     * Whether this callback's {@link #onGradientsComputed} reads the step's gradient norms, which the trainer
     * then measures before that hook instead of in the optimizer's op. The default: whether it overrides
     * that hook.
     */
    default boolean readsGradientNormsInStep() {
        return overrides(getClass(), "onGradientsComputed");
    }

    /** Whether this callback overrides {@link #onParametersUpdated}: it runs between a step's update and its end. */
    default boolean hooksParameterUpdates() {
        return overrides(getClass(), "onParametersUpdated");
    }

    /**
     * Whether this callback's in-step hooks ({@link #onGradientsComputed}, {@link #onParametersUpdated})
     * may be captured into a graph and replayed: they only queue device ops on tensors that stay put, with
     * arguments that do not change from step to step (what does change, they read on the device, e.g. the
     * row of {@link TrainingRun#stepIndex()}), and they keep no count on the host (that belongs in
     * {@link #onBatchEnd}). The default: true when the callback overrides neither hook, since it then
     * does nothing inside the step; false when it overrides one, which makes the trainer run eagerly.
     */
    default boolean graphSafe() {
        return !overrides(getClass(), "onGradientsComputed") && !overrides(getClass(), "onParametersUpdated");
    }

    private static boolean overrides(Class<?> type, String hook) {
        try {
            return type.getMethod(hook, int.class, int.class).getDeclaringClass() != Callback.class;
        } catch (NoSuchMethodException e) {
            throw new AssertionError("Callback." + hook + "(int, int) is missing", e);
        }
    }

    /** After each epoch, with its logs: {@code loss}, {@code accuracy}, and {@code val_*} when validating. */
    default void onEpochEnd(int epoch, Map<String, Double> logs) {
    }

    default void onTrainEnd(History history) {
    }

    /** The running mean loss and accuracy of the epoch so far. */
    interface RunningMetrics {
        /** {loss, accuracy} over the examples seen so far this epoch. */
        double[] read();
    }
}
