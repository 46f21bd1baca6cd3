package dev.gradscope.train;

import dev.gradscope.nn.WeightsFile;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * Keras's {@code EarlyStopping(monitor, patience, min_delta)}: stops training when the monitored metric has not
 * improved for {@code patience} epochs. Lower is better, except for accuracies (Keras's {@code mode="auto"});
 * an epoch improves on the best so far when it beats it by more than {@code minDelta}. As in Keras, every epoch
 * without an improvement adds one to a wait that an improvement resets, and training stops after an epoch
 * (not the first) that brings the wait to {@code patience}. A NaN is never an improvement, nor the best: a later
 * finite value is the first best, as in Keras 3 today, whose best starts at +inf (-inf for accuracies), which a
 * NaN does not beat ({@code keras/src/callbacks/early_stopping.py}); for a while after keras-team/keras#20533
 * (November 2024) Keras started it at None instead, and a NaN first epoch became a best no later epoch could beat.
 * A metric the epochs do not log fails before training starts.
 *
 * <p>With {@code restoreBestWeights} (Keras's {@code restore_best_weights=True}) it keeps a host copy of the
 * parameters after each epoch that improves on the best, and puts them back when training ends, whether it
 * stopped early or ran all its epochs, as Keras 3 does; the optimizer's state stays the last epoch's. Without
 * it the weights stay those of the last epoch; {@link ModelCheckpoint#bestOf} on the same metric keeps the best
 * epoch's in a file either way. When no epoch has a finite value, nothing is restored and the model keeps the last
 * epoch's weights: Keras 3 keeps the first epoch's weights before it compares anything and would put those back,
 * though their value is no better than the others'.
 *
 * <p>A resumed run ({@link FitOptions.Builder#resumeFrom}) goes through its earlier epochs' logs first, so it
 * stops where the run that never stopped would have; one that had already stopped trains no further. With
 * {@code restoreBestWeights}, a {@link TrainingStateCheckpoint} in the same fit saves the best copy with the state
 * ({@link TrainingState#bestWeights()}), and a run resumed from it takes the copy back when its earlier epochs'
 * best is the copy's epoch (the same monitor and rule), so it restores what the run never interrupted would, even
 * when the best epoch came before the resume; one that had already stopped trains nothing and puts the copy back
 * as it ends. A copy of another epoch or metric ({@link #isCopyOfBest}) is not this run's and is not restored (the
 * command line, whose runs always save the copy, refuses such a state). From a state without the copy (a run that
 * did not restore) it restores only a best epoch it trains itself: when the best came before the resume and no
 * later epoch beats it, nothing is restored ({@link #restoredEpoch()} is -1; {@link #bestEpoch()} still names the
 * best epoch).
 */
public final class EarlyStopping implements Callback {
    private final String monitor;
    private final int patience;
    private final double minDelta;
    private final boolean restoreBestWeights;
    private TrainingRun run;
    private WeightsFile.Values bestWeights;
    private int bestWeightsEpoch;
    private int restoredEpoch;
    private double best;
    private int bestEpoch;
    private int wait;
    private int stoppedEpoch;
    /** The last epoch whose logs were taken in (from 0; -1 before any): each epoch is taken in once. */
    private int lastEpoch;

    /**
     * @param monitor  the metric to watch: {@code val_loss}, {@code val_accuracy}, {@code loss}, {@code accuracy}
     * @param patience epochs without improvement after which training stops (>= 0)
     * @param minDelta how much an epoch must beat the best by to count as an improvement (>= 0)
     * @param restoreBestWeights whether to put the best epoch's parameters back when training ends
     */
    public EarlyStopping(String monitor, int patience, double minDelta, boolean restoreBestWeights) {
        if (patience < 0 || !(minDelta >= 0) || Double.isInfinite(minDelta)) {
            throw new IllegalArgumentException("early stopping needs patience >= 0 and a finite min_delta >= 0, got "
                    + patience + " and " + minDelta);
        }
        this.monitor = monitor;
        this.patience = patience;
        this.minDelta = minDelta;
        this.restoreBestWeights = restoreBestWeights;
        reset();
    }

    public EarlyStopping(String monitor, int patience, double minDelta) {
        this(monitor, patience, minDelta, false);
    }

    public EarlyStopping(String monitor, int patience) {
        this(monitor, patience, 0);
    }

    private void reset() {
        best = Double.NaN;
        bestEpoch = -1;
        wait = 0;
        stoppedEpoch = -1;
        bestWeights = null;
        bestWeightsEpoch = -1;
        restoredEpoch = -1;
        lastEpoch = -1;
    }

    public String monitor() {
        return monitor;
    }

    public int patience() {
        return patience;
    }

    public double minDelta() {
        return minDelta;
    }

    public boolean restoresBestWeights() {
        return restoreBestWeights;
    }

    @Override
    public void onTrainBegin(TrainingRun run) {
        this.run = run;
        run.requireMonitorable("early stopping", monitor);
        boolean stopped = replay(run.history());
        if (restoreBestWeights) {
            run.restoresBestWeights(this);
            run.resumedBestWeights().filter(this::isCopyOfBest).ifPresent(saved -> {
                bestWeights = saved.values();
                bestWeightsEpoch = saved.epoch();
            });
        }
        if (stopped) {
            run.stopTraining();
        }
    }

    /**
     * Whether {@code saved} is the copy of the best epoch that this stopper found (after {@link #replay}ing a resumed
     * run's history): the same monitor and epoch. Only then does a resumed run restore it; a state that keeps another
     * copy does not belong to this stopper's run.
     */
    public boolean isCopyOfBest(TrainingState.BestWeights saved) {
        return saved.monitor().equals(monitor) && saved.epoch() == bestEpoch && bestEpoch >= 0;
    }

    /**
     * Goes through {@code history}'s epochs from the start, as if they were being trained, and says whether
     * training would have stopped in them ({@link #stoppedEpoch()} and {@link #reason()} then say where and
     * why): what a resumed run does first.
     */
    public boolean replay(History history) {
        reset();
        if (history.epochs() > 0) {
            List<Double> values = history.get(monitor);
            for (int e = 0; e < values.size() && stoppedEpoch < 0; e++) {
                observe(e, values.get(e));
            }
        }
        lastEpoch = history.epochs() - 1;
        return stoppedEpoch >= 0;
    }

    @Override
    public void onEpochEnd(int epoch, Map<String, Double> logs) {
        takeIn(epoch, logs);
    }

    /**
     * The best weights so far, after taking in epoch {@code epoch}'s {@code logs} if this stopper has not yet (so
     * that the {@link TrainingStateCheckpoint} that asks saves this epoch's best whatever the callbacks' order);
     * empty without {@code restoreBestWeights} or before a best.
     */
    Optional<TrainingState.BestWeights> bestWeightsAfter(int epoch, Map<String, Double> logs) {
        takeIn(epoch, logs);
        return bestWeights == null ? Optional.empty()
                : Optional.of(new TrainingState.BestWeights(monitor, bestWeightsEpoch, bestWeights));
    }

    private void takeIn(int epoch, Map<String, Double> logs) {
        if (epoch <= lastEpoch) {
            return;
        }
        Double value = logs.get(monitor);
        if (value == null) {
            throw new IllegalStateException("early stopping watches " + monitor + ", which the epoch's logs do not"
                    + " have; they have " + logs.keySet());
        }
        lastEpoch = epoch;
        if (observe(epoch, value) && restoreBestWeights) {
            bestWeights = WeightsFile.values(run.model()); // with the moving statistics, as Keras's get_weights
            bestWeightsEpoch = epoch;
        }
        if (stoppedEpoch >= 0) {
            run.stopTraining();
        }
    }

    /**
     * Puts the best epoch's parameters back, with {@code restoreBestWeights}, when this fit trained that epoch or
     * the state it resumed from kept them.
     */
    @Override
    public void onTrainEnd(History history) {
        if (restoreBestWeights && bestWeights != null) {
            bestWeights.setInto(run.model());
            restoredEpoch = bestWeightsEpoch;
            bestWeights = null;
        }
    }

    /** Keras's rule for one epoch's value; true when it improves on the best. */
    private boolean observe(int epoch, double value) {
        wait++;
        if (improves(value)) {
            best = value;
            bestEpoch = epoch;
            wait = 0;
            return true;
        }
        if (wait >= patience && epoch > 0) {
            stoppedEpoch = epoch;
        }
        return false;
    }

    private boolean improves(double value) {
        if (Double.isNaN(value)) {
            return false;
        }
        if (Double.isNaN(best)) {
            return true;
        }
        return Monitor.improves(monitor, value, best, minDelta);
    }

    /** The epoch (from 0) after which training stopped, or -1 when it did not stop early. */
    public int stoppedEpoch() {
        return stoppedEpoch;
    }

    /** The epoch (from 0) with the best value so far, or -1 before any. */
    public int bestEpoch() {
        return bestEpoch;
    }

    /**
     * The epoch (from 0) whose parameters were put back when training ended, with {@code restoreBestWeights};
     * -1 before that, without it, when no epoch had a finite value of the monitor (Keras 3 would put back the first
     * epoch's; here the model keeps the last epoch's), or when the best epoch came before a resume from a state that
     * did not keep its weights.
     */
    public int restoredEpoch() {
        return restoredEpoch;
    }

    /** The best value so far (NaN before any). */
    public double best() {
        return best;
    }

    /** Why training stopped, e.g. {@code val_loss did not improve on epoch 3's 0.1234 for 2 epochs}; null if not. */
    public String reason() {
        if (stoppedEpoch < 0) {
            return null;
        }
        return bestEpoch < 0 ? monitor + " was NaN for " + wait + " epochs"
                : String.format(Locale.ROOT, "%s did not improve on epoch %d's %.4f%s for %d epoch%s", monitor,
                        bestEpoch + 1, best, minDelta > 0 ? " by more than " + minDelta : "", wait, wait == 1 ? "" : "s");
    }
}
