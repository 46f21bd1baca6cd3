package dev.gradscope.train;

import java.util.Map;

/**
 * Hooks into the training loop, as Keras's callbacks. Every method has an empty default. Epochs and
 * steps count from 0.
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
     * the model's gradient buffer, its squared norms in {@link TrainingRun#squaredGradientNorms()}, and
     * the layers still hold this batch's activations.
     */
    default void onGradientsComputed(int epoch, int step) {
    }

    /** After each optimizer step. */
    default void onParametersUpdated(int epoch, int step) {
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
