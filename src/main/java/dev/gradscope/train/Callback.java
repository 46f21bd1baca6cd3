package dev.gradscope.train;

import java.util.Map;

/**
 * Hooks into the training loop, as Keras's callbacks. Every method has an empty default. Epochs and
 * steps count from 0.
 */
public interface Callback {
    default void onTrainBegin(int epochs, int stepsPerEpoch) {
    }

    default void onEpochBegin(int epoch) {
    }

    /**
     * After each optimizer step. {@code progress} reads the epoch's running loss and accuracy, which
     * on a GPU costs a device round trip: call it only when you will show the values.
     */
    default void onBatchEnd(int epoch, int step, RunningMetrics progress) {
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
