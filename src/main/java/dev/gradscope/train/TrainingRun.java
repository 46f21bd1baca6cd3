package dev.gradscope.train;

import dev.gradscope.nn.Sequential;
import dev.gradscope.tensor.Tensor;
import dev.gradscope.tensor.UpdateNorms;
import java.util.List;
import java.util.Optional;

/**
 * What a callback may look at during {@code fit}: the model, the loop's shape, and the buffers the
 * trainer fills every step. The squared gradient norms are measured on the device after each backward
 * pass, one row per step of the current epoch, one column per parameter tensor ({@link #segments()}); the
 * device selects the row from {@link #stepIndex()}, so that a step captured as a graph fills the right row
 * every time it is replayed.
 */
public final class TrainingRun {
    private final Sequential model;
    private final int epochs;
    private final int initialEpoch;
    private final History history;
    private final List<String> metrics;
    private final int stepsPerEpoch;
    private final List<Profile.Segment> segments;
    private final Tensor segmentStarts;
    private final Tensor squaredGradientNorms;
    private final Tensor stepIndex;
    private int batchRows;
    private UpdateNorms updateNorms;
    private int stepsThisEpoch;
    private NonFiniteEvent nonFinite;
    private long examplesThisEpoch;
    private boolean stopRequested;
    private TrainingState.BestWeights resumedBestWeights;
    private EarlyStopping restoring;

    TrainingRun(Sequential model, int epochs, int initialEpoch, History history, List<String> metrics,
                int stepsPerEpoch, List<Profile.Segment> segments, Tensor segmentStarts, Tensor squaredGradientNorms,
                Tensor stepIndex) {
        this.model = model;
        this.epochs = epochs;
        this.initialEpoch = initialEpoch;
        this.history = history;
        this.metrics = List.copyOf(metrics);
        this.stepsPerEpoch = stepsPerEpoch;
        this.segments = segments;
        this.segmentStarts = segmentStarts;
        this.squaredGradientNorms = squaredGradientNorms;
        this.stepIndex = stepIndex;
    }

    public Sequential model() {
        return model;
    }

    public int epochs() {
        return epochs;
    }

    /** The epoch (from 0) this {@code fit} starts at: 0, or the epochs a resumed run had finished. */
    public int initialEpoch() {
        return initialEpoch;
    }

    /**
     * The history as {@code fit} will return it, so far: every finished epoch's logs and seconds (a resumed
     * run's earlier epochs first), and the profile when the profiler is on. Recorded before
     * {@link Callback#onEpochEnd} is called.
     */
    public History history() {
        return history;
    }

    /**
     * The metrics every epoch logs: {@code loss}, {@code accuracy}, {@code val_*} with validation data, and
     * {@code learning_rate}.
     */
    public List<String> metrics() {
        return metrics;
    }

    /**
     * Fails unless {@code metric} is one a callback ({@code who}) may watch for improvement: one this fit logs
     * and not {@code learning_rate}, which says how the run trained, not how well.
     */
    public void requireMonitorable(String who, String metric) {
        List<String> watchable = metrics.stream().filter(m -> !m.equals("learning_rate")).toList();
        if (!watchable.contains(metric)) {
            throw new IllegalArgumentException(who + " watches " + metric + ", which is not a metric of this fit; it"
                    + " can watch " + watchable + (metric.startsWith("val_") ? " (no validation data)" : ""));
        }
    }

    public int stepsPerEpoch() {
        return stepsPerEpoch;
    }

    /** The model's parameter tensors in the order of its flat buffers. */
    public List<Profile.Segment> segments() {
        return segments;
    }

    /** INT32 {@code [segments + 1]}: where each parameter tensor starts in the flat buffers. */
    public Tensor segmentStarts() {
        return segmentStarts;
    }

    /** Rows in the current step's batch (the last batch of an epoch may be smaller). */
    public int batchRows() {
        return batchRows;
    }

    void setBatchRows(int rows) {
        this.batchRows = rows;
    }

    /**
     * INT32 {@code [1]} on the device: the step of the epoch the device is running, 0 at each epoch's start
     * and advanced at the end of every step. An in-step hook stores a per-step value into its row with
     * {@link dev.gradscope.tensor.Backend#copyToRow}: a step number passed from the host would, in a
     * captured graph, be the captured step's for ever.
     */
    public Tensor stepIndex() {
        return stepIndex;
    }

    /** Steps of the current epoch whose gradients were computed so far (a stopped step counts). */
    public int stepsThisEpoch() {
        return stepsThisEpoch;
    }

    /** The examples of those steps. */
    public long examplesThisEpoch() {
        return examplesThisEpoch;
    }

    /**
     * The first step whose gradients were not finite, once the trainer has found it: right away when the
     * CPU steps eagerly, at the end of its epoch elsewhere.
     */
    public Optional<NonFiniteEvent> nonFinite() {
        return Optional.ofNullable(nonFinite);
    }

    /**
     * Asks the trainer to stop after the current epoch (or, from {@link Callback#onTrainBegin}, before the
     * first): Keras's {@code model.stop_training = True}.
     */
    public void stopTraining() {
        stopRequested = true;
    }

    /**
     * The best epoch's weights the state this run resumes from kept for early stopping to restore
     * ({@link TrainingState#bestWeights()}); empty for a run that is not resumed, or a state without them.
     */
    public Optional<TrainingState.BestWeights> resumedBestWeights() {
        return Optional.ofNullable(resumedBestWeights);
    }

    void setResumedBestWeights(TrainingState.BestWeights weights) {
        this.resumedBestWeights = weights;
    }

    /**
     * Says that {@code stopper} keeps the best epoch's weights to restore, for a {@link TrainingStateCheckpoint} to
     * save with the state; one per fit, as two would keep two bests and a state has room for one.
     */
    void restoresBestWeights(EarlyStopping stopper) {
        if (restoring != null && restoring != stopper) {
            throw new IllegalArgumentException("two early stoppings restore the best weights in one fit ("
                    + restoring.monitor() + " and " + stopper.monitor() + "); a training state keeps one best");
        }
        restoring = stopper;
    }

    /** The early stopping that restores the best weights in this fit, if any. */
    Optional<EarlyStopping> restoringStopper() {
        return Optional.ofNullable(restoring);
    }

    /** Whether a callback asked to stop ({@link #stopTraining}). */
    public boolean stopRequested() {
        return stopRequested;
    }

    void setNonFinite(NonFiniteEvent event) {
        this.nonFinite = event;
    }

    void startEpoch() {
        stepsThisEpoch = 0;
        examplesThisEpoch = 0;
    }

    void countStep(int rows) {
        stepsThisEpoch++;
        examplesThisEpoch += rows;
    }

    /**
     * Asks for this step's optimizer update to be measured into {@code norms} (from
     * {@link Callback#onGradientsComputed}): the update writes them in its own pass over the parameters.
     * Graph-safe callers pass the same fixed tensors every step and store them per step afterwards.
     */
    public void measureUpdate(UpdateNorms norms) {
        this.updateNorms = norms;
    }

    /** What {@link #measureUpdate} asked for this step, or null; the request ends with the step. */
    UpdateNorms takeUpdateNorms() {
        UpdateNorms norms = updateNorms;
        updateNorms = null;
        return norms;
    }

    /** FLOAT32 {@code [stepsPerEpoch, segments]}: squared gradient norms of this epoch's steps. */
    public Tensor squaredGradientNorms() {
        return squaredGradientNorms;
    }
}
