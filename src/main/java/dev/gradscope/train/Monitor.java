package dev.gradscope.train;

import java.util.List;

/**
 * The metrics a callback may watch for improvement (a best-of checkpoint, early stopping, a learning-rate
 * plateau) and what counts as one: Keras's {@code mode="auto"}, lower is better except for accuracies.
 */
public final class Monitor {
    /** The metrics a run logs that say how well it learns ({@code learning_rate} says how it trained). */
    public static final List<String> METRICS = List.of("val_loss", "val_accuracy", "loss", "accuracy");

    private Monitor() {
    }

    /** Whether higher values of {@code metric} are better: accuracies, as Keras's {@code mode="auto"} decides. */
    public static boolean higherIsBetter(String metric) {
        return metric.contains("acc");
    }

    /**
     * Whether {@code value} beats {@code best} by more than {@code minDelta}, in the direction {@code metric}
     * improves in. A NaN value never does; against a NaN best nothing does (callers that start without a best
     * say so themselves).
     */
    public static boolean improves(String metric, double value, double best, double minDelta) {
        return higherIsBetter(metric) ? value > best + minDelta : value < best - minDelta;
    }
}
