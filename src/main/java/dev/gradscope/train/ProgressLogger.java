package dev.gradscope.train;

import java.io.PrintStream;
import java.util.Locale;
import java.util.Map;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * Keras's {@code verbose=1}: on a terminal, a progress bar per epoch with the step count, elapsed time
 * and running loss and accuracy; always, one line per epoch with its metrics. When output is not a
 * terminal (a log file, CI) the bar stays quiet and only the epoch lines are written.
 */
final class ProgressLogger implements Callback {
    /** How often the bar reads the running metrics: each read is a device round trip on a GPU. */
    private static final long REFRESH_NANOS = 200_000_000L;

    private final int epochs;
    private final boolean terminal;
    private final PrintStream out;
    private int stepsPerEpoch;
    private ProgressBar bar;
    private long lastRefresh;
    private long epochStart;

    ProgressLogger(int epochs) {
        this(epochs, System.console() != null, System.out);
    }

    ProgressLogger(int epochs, boolean terminal, PrintStream out) {
        this.epochs = epochs;
        this.terminal = terminal;
        this.out = out;
    }

    @Override
    public void onTrainBegin(TrainingRun run) {
        this.stepsPerEpoch = run.stepsPerEpoch();
    }

    @Override
    public void onEpochBegin(int epoch) {
        epochStart = System.nanoTime();
        if (terminal) {
            bar = new ProgressBarBuilder()
                    .setTaskName(String.format(Locale.ROOT, "Epoch %d/%d", epoch + 1, epochs))
                    .setInitialMax(stepsPerEpoch)
                    .setStyle(ProgressBarStyle.ASCII)
                    .setUpdateIntervalMillis(100)
                    .continuousUpdate()
                    .build();
            lastRefresh = 0;
        }
    }

    @Override
    public void onBatchEnd(int epoch, int step, RunningMetrics progress) {
        if (bar == null) {
            return;
        }
        bar.stepTo(step + 1);
        long now = System.nanoTime();
        if (now - lastRefresh >= REFRESH_NANOS || step + 1 == stepsPerEpoch) {
            double[] m = progress.read();
            bar.setExtraMessage(String.format(Locale.ROOT, "loss: %.4f - accuracy: %.4f", m[0], m[1]));
            lastRefresh = now;
        }
    }

    @Override
    public void onEpochEnd(int epoch, Map<String, Double> logs) {
        if (bar != null) {
            bar.close();
            bar = null;
        }
        double seconds = (System.nanoTime() - epochStart) / 1e9;
        StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "Epoch %d/%d - %d/%d - %.1fs - %.0fms/step",
                epoch + 1, epochs, stepsPerEpoch, stepsPerEpoch, seconds, 1000 * seconds / stepsPerEpoch));
        // Keras's format: four decimals, or an exponent for values too small to show in them (a learning rate).
        logs.forEach((k, v) -> line.append(String.format(Locale.ROOT, v != 0 && Math.abs(v) < 1e-3 ? " - %s: %.4e"
                : " - %s: %.4f", k, v)));
        out.println(line);
        out.flush();
    }
}
