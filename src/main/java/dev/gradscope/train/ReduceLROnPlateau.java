package dev.gradscope.train;

import dev.gradscope.nn.Optimizer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Keras's {@code ReduceLROnPlateau(monitor, factor, patience, min_delta, cooldown, min_lr)}: multiplies the
 * optimizer's learning rate by {@code factor} when the monitored metric has not improved for {@code patience}
 * epochs. Lower is better, except for accuracies (Keras's {@code mode="auto"}); an epoch improves when it beats
 * the best by more than {@code minDelta} (the best starts at infinity, minus infinity for accuracies). As in
 * Keras: after a reduction the wait starts again and, for {@code cooldown} epochs, the epochs do not count
 * towards it (the count goes down before an epoch is judged, so a cooldown of 1 changes nothing); a rate
 * already at {@code minLearningRate} is not reduced, and none is reduced below it; a NaN is never an
 * improvement. Unlike Keras, no rate is reduced to one a float holds as 0 (below about 1.4e-45): the kernels take
 * the rate as a float, and training would stop without a word. It judges an epoch at the optimizer's rate at the epoch's end and changes the rate only to
 * reduce it, so a scheduler's own changes stand.
 *
 * <p>The new rate applies from the next epoch on; every epoch's rate is in the history as {@code learning_rate}.
 * On a GPU the trainer captures its step graphs again after a change (they hold the rate).
 *
 * <p>A resumed run ({@link FitOptions.Builder#resumeFrom}) goes through the earlier epochs' logs and learning
 * rates first and sets the rate the run that never stopped would have had: the same numbers, bit for bit.
 */
public final class ReduceLROnPlateau implements Callback {
    private final String monitor;
    private final double factor;
    private final int patience;
    private final double minDelta;
    private final int cooldown;
    private final double minLearningRate;
    private Optimizer optimizer;
    private double best;
    private int wait;
    private int cooldownLeft;
    private final List<Integer> reducedAfter = new ArrayList<>();

    /**
     * @param monitor         {@code val_loss}, {@code val_accuracy}, {@code loss} or {@code accuracy}
     * @param factor          what the rate is multiplied by, in (0, 1)
     * @param patience        epochs without improvement before a reduction (>= 0)
     * @param minDelta        how much an epoch must beat the best by to count as an improvement (>= 0)
     * @param cooldown        epochs after a reduction that do not count towards the next one (>= 0)
     * @param minLearningRate the lowest rate (>= 0)
     */
    public ReduceLROnPlateau(String monitor, double factor, int patience, double minDelta, int cooldown,
                             double minLearningRate) {
        if (!(factor > 0 && factor < 1) || patience < 0 || !(minDelta >= 0) || Double.isInfinite(minDelta)
                || cooldown < 0 || !(minLearningRate >= 0) || Double.isInfinite(minLearningRate)) {
            throw new IllegalArgumentException("ReduceLROnPlateau needs 0 < factor < 1, patience >= 0, a finite"
                    + " min_delta >= 0, cooldown >= 0 and a finite min_lr >= 0; got factor " + factor + ", patience "
                    + patience + ", min_delta " + minDelta + ", cooldown " + cooldown + ", min_lr " + minLearningRate);
        }
        this.monitor = monitor;
        this.factor = factor;
        this.patience = patience;
        this.minDelta = minDelta;
        this.cooldown = cooldown;
        this.minLearningRate = minLearningRate;
    }

    /** Keras's defaults: factor 0.1, patience 10, min_delta 1e-4, cooldown 0, min_lr 0. */
    public ReduceLROnPlateau(String monitor) {
        this(monitor, 0.1, 10, 1e-4, 0, 0);
    }

    public String monitor() {
        return monitor;
    }

    public double factor() {
        return factor;
    }

    public int patience() {
        return patience;
    }

    public double minDelta() {
        return minDelta;
    }

    public int cooldown() {
        return cooldown;
    }

    public double minLearningRate() {
        return minLearningRate;
    }

    /** The epochs (from 0) after which the rate was reduced, this fit's and, when resumed, the earlier ones. */
    public List<Integer> reducedAfter() {
        return List.copyOf(reducedAfter);
    }

    @Override
    public void onTrainBegin(TrainingRun run) {
        run.requireMonitorable("ReduceLROnPlateau", monitor);
        optimizer = run.model().optimizer();
        best = Monitor.higherIsBetter(monitor) ? Double.NEGATIVE_INFINITY : Double.POSITIVE_INFINITY;
        wait = 0;
        cooldownLeft = 0;
        reducedAfter.clear();
        History earlier = run.history();
        if (earlier.epochs() > 0) {
            // The earlier epochs, each with the rate it trained with, as the history logged it.
            List<Double> values = earlier.get(monitor);
            List<Double> rates = earlier.get("learning_rate");
            double next = Double.NaN;
            for (int e = 0; e < values.size(); e++) {
                next = observe(e, values.get(e), rates.get(e));
            }
            if (next != optimizer.learningRate()) {
                optimizer.setLearningRate(next); // where the run that never stopped would be now
            }
        }
    }

    /** Judges the epoch at the optimizer's rate now, as Keras does, and sets a new one only on a reduction. */
    @Override
    public void onEpochEnd(int epoch, Map<String, Double> logs) {
        double rate = optimizer.learningRate();
        double next = observe(epoch, logs.get(monitor), rate);
        if (next != rate) {
            optimizer.setLearningRate(next);
        }
    }

    /** Keras's rule for one epoch that trained at {@code rate}; returns the rate for the next epoch. */
    private double observe(int epoch, double value, double rate) {
        if (cooldownLeft > 0) {
            cooldownLeft--;
            wait = 0;
        }
        if (improves(value)) {
            best = value;
            wait = 0;
            return rate;
        }
        if (cooldownLeft > 0) {
            return rate;
        }
        wait++;
        // A rate a float holds as 0 would stop training without a word (the kernels take floats): the rate
        // stops falling before it, as if min_lr were there.
        double next = Math.max(rate * factor, minLearningRate);
        if (wait >= patience && rate > minLearningRate && Optimizer.isPositiveFloat(next)) {
            reducedAfter.add(epoch);
            cooldownLeft = cooldown;
            wait = 0;
            return next;
        }
        return rate;
    }

    /** Keras's test, against a best that starts at infinity (minus infinity for accuracies); a NaN never improves. */
    private boolean improves(double value) {
        return Monitor.improves(monitor, value, best, minDelta);
    }
}
