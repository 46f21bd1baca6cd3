package dev.gradscope.train;

import dev.gradscope.data.InvalidDataException;
import dev.gradscope.data.SafeTensors;
import dev.gradscope.nn.Sequential;
import dev.gradscope.nn.WeightsFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.function.UnaryOperator;

/**
 * Keras's {@code ModelCheckpoint(filepath, save_weights_only=True)}: after every epoch, writes the model's
 * weights to one safetensors file ({@link WeightsFile}), replacing the last epoch's in one move, so an
 * interrupted run keeps the weights of its last finished epoch.
 *
 * <p>An epoch that is not a good one to keep is not written, and the file keeps the last good epoch's
 * weights: an epoch in which a gradient was not finite, and any later one (the run stopped there, or went
 * on from weights that took that step; a GPU run finds the step only at the end of its epoch); one whose
 * logs hold a NaN or an infinity (a run that diverged: huge finite weights can give NaN losses); and one
 * that ends with a non-finite weight.
 * {@link #skipped()} says which epoch was left out and why.
 *
 * <p>{@link #bestOf} is Keras's {@code save_best_only=True}: the file is written only after an epoch that
 * improves the monitored metric (lower is better, or higher for accuracies, as Keras's {@code mode="auto"}),
 * so it holds the best epoch's weights. A resumed run that keeps an earlier epoch's weights leaves them as they
 * are, metadata and all, unless it is given a {@code refreshKept} (see {@link #bestOf(Path, Map, String,
 * UnaryOperator)}): that rewrites the metadata at the run's first good epoch, when the training state is rewritten
 * too.
 *
 * <p>Besides {@link WeightsFile}'s own metadata, the file records {@code epoch} (epochs finished, from 1)
 * and that epoch's logs ({@code loss}, {@code accuracy}, ...), plus whatever the caller gives.
 *
 * <p>To keep everything a run needs to go on (optimizer state, history, profile), see
 * {@link TrainingStateCheckpoint}.
 */
public final class ModelCheckpoint implements Callback {
    private final Path file;
    private final Map<String, String> metadata;
    private final String monitor;
    /** What a resumed best-of run makes of the metadata of the earlier epoch it keeps; null: leaves it. */
    private final UnaryOperator<Map<String, String>> refreshKept;
    private double best = Double.NaN;
    private TrainingRun run;
    private int savedEpoch;
    /** False while the file holds an earlier run's epoch whose metadata {@link #refreshKept} is still to refresh. */
    private boolean metadataCurrent = true;
    private String skipped;

    /**
     * @param file     the weights file, rewritten after every epoch
     * @param metadata strings to store with the weights (the command line stores the run's config)
     */
    public ModelCheckpoint(Path file, Map<String, String> metadata) {
        this(file, metadata, null, null);
    }

    private ModelCheckpoint(Path file, Map<String, String> metadata, String monitor,
                            UnaryOperator<Map<String, String>> refreshKept) {
        this.file = file;
        this.metadata = new LinkedHashMap<>(metadata);
        this.monitor = monitor;
        this.refreshKept = refreshKept;
    }

    /**
     * A checkpoint that keeps the epoch with the best {@code monitor} ({@code val_loss}, {@code val_accuracy},
     * {@code loss}, {@code accuracy}): lower is better, except for accuracies.
     */
    public static ModelCheckpoint bestOf(Path file, Map<String, String> metadata, String monitor) {
        return new ModelCheckpoint(file, metadata, monitor, null);
    }

    /**
     * {@link #bestOf(Path, Map, String)} for a run that may be resumed: when the resumed run keeps an earlier epoch's
     * weights, {@code refreshKept} takes that file's metadata and returns what the file records from the end of the
     * resumed run's first good epoch (when the training state is rewritten too), with the same tensors. The metadata
     * describes both the weights (how they were trained) and the run they belong to (how far it goes), and only the
     * caller knows which of its entries are which: the command line refreshes its config's run-wide settings and
     * keeps those that trained the kept epoch.
     */
    public static ModelCheckpoint bestOf(Path file, Map<String, String> metadata, String monitor,
                                         UnaryOperator<Map<String, String>> refreshKept) {
        return new ModelCheckpoint(file, metadata, monitor, refreshKept);
    }

    /** The metric this checkpoint keeps the best epoch of, or empty when it keeps the last epoch. */
    public Optional<String> monitor() {
        return Optional.ofNullable(monitor);
    }

    public Path file() {
        return file;
    }

    /**
     * For a resumed run ({@link TrainingRun#initialEpoch()} above 0) that keeps the best epoch: the best so far
     * is the earlier epochs' best, when the file holds that epoch; otherwise the next epoch is written whatever
     * it scores.
     */
    @Override
    public void onTrainBegin(TrainingRun run) {
        this.run = run;
        if (monitor != null) {
            run.requireMonitorable("the best-of checkpoint", monitor);
        }
        if (run.initialEpoch() == 0) {
            return;
        }
        if (monitor == null) {
            // A resumed run's file holds the epoch the run goes on from, when it is that run's.
            if (Integer.toString(run.initialEpoch()).equals(savedEpochOf(file, "epoch"))) {
                savedEpoch = run.initialEpoch();
            }
            return;
        }
        if (!run.history().metrics().containsKey(monitor)) {
            return;
        }
        List<Double> earlier = run.history().get(monitor);
        int bestEpoch = -1;
        for (int e = 0; e < earlier.size(); e++) {
            double value = earlier.get(e);
            if (!Double.isNaN(value) && (bestEpoch < 0 || Monitor.improves(monitor, value, earlier.get(bestEpoch), 0))) {
                bestEpoch = e;
            }
        }
        if (bestEpoch >= 0 && Integer.toString(bestEpoch + 1).equals(savedEpochOf(file, "epoch"))) {
            best = earlier.get(bestEpoch);
            savedEpoch = bestEpoch + 1;
            metadataCurrent = refreshKept == null;
        }
    }

    /** The epoch a checkpoint file records under {@code key}, or null when there is no readable file. */
    static String savedEpochOf(Path file, String key) {
        if (!Files.exists(file)) {
            return null;
        }
        try {
            return SafeTensors.readMetadata(file).get(key);
        } catch (InvalidDataException e) {
            return null;
        }
    }

    @Override
    public void onEpochEnd(int epoch, Map<String, Double> logs) {
        Optional<String> notWorthKeeping = notWorthKeeping(run, epoch, logs);
        if (notWorthKeeping.isPresent()) {
            skipped = notWorthKeeping.get();
            return;
        }
        if (monitor != null) {
            Double value = logs.get(monitor);
            if (value == null) {
                throw new IllegalStateException("the checkpoint keeps the best " + monitor + ", which the epoch's"
                        + " logs do not have; they have " + logs.keySet());
            }
            boolean improved = !Double.isNaN(value) && (Double.isNaN(best) || Monitor.improves(monitor, value, best, 0));
            if (!improved) {
                if (!metadataCurrent) {
                    refreshMetadata();
                }
                return;
            }
        }
        write(run.model(), epoch, logs);
    }

    /** Writes {@code model}'s weights as those after {@code epoch} (from 0) with its {@code logs}, when finite. */
    private void write(Sequential model, int epoch, Map<String, Double> logs) {
        List<SafeTensors.Entry> weights = WeightsFile.entries(model);
        Optional<String> nonFinite = WeightsFile.firstNonFinite(weights);
        if (nonFinite.isPresent()) {
            skipped = "epoch " + (epoch + 1) + " ended with " + nonFinite.get();
            return;
        }
        Map<String, String> all = new LinkedHashMap<>(metadata);
        all.put("epoch", Integer.toString(epoch + 1));
        logs.forEach((key, value) -> all.put(key, String.format(Locale.ROOT, "%s", value)));
        WeightsFile.write(model, file, weights, all);
        savedEpoch = epoch + 1;
        metadataCurrent = true;
        skipped = null;
        if (monitor != null) {
            best = logs.get(monitor);
        }
    }

    /**
     * For a checkpoint that keeps the last epoch: writes {@code model}'s weights, which training ended by putting
     * back from epoch {@code epoch} (from 0; {@link EarlyStopping}'s {@code restoreBestWeights}), as that epoch's,
     * with its {@code logs}, so that the file holds the model the run ends with, as Keras's model object does. A
     * {@link #bestOf} checkpoint keeps the epoch it chose, by its own rule.
     */
    public void saveRestored(Sequential model, int epoch, Map<String, Double> logs) {
        if (monitor != null) {
            throw new IllegalStateException("the checkpoint keeps the best " + monitor + " by its own rule; only one"
                    + " that keeps the last epoch takes restored weights");
        }
        write(model, epoch, logs);
    }

    /**
     * Rewrites the file that a resumed run keeps from its earlier epochs with the metadata {@link #refreshKept} makes
     * of its own, keeping the file's tensors. Done at the end of the first good epoch, when the training state is
     * rewritten too, so that the two files describe the same run.
     */
    private void refreshMetadata() {
        SafeTensors.Contents kept = SafeTensors.read(file);
        Map<String, String> refreshed = refreshKept.apply(Map.copyOf(kept.metadata()));
        SafeTensors.write(file, refreshed, List.copyOf(kept.tensors().values()));
        metadataCurrent = true;
    }

    /**
     * Why epoch {@code epoch}, which ended with {@code logs}, is not one to keep, if it is not: it had a
     * non-finite gradient or follows one, or a log is NaN or infinite. Shared with {@link TrainingStateCheckpoint}.
     */
    static Optional<String> notWorthKeeping(TrainingRun run, int epoch, Map<String, Double> logs) {
        Optional<NonFiniteEvent> event = run.nonFinite();
        if (event.isPresent() && event.get().epoch() <= epoch) {
            NonFiniteEvent e = event.get();
            return Optional.of("epoch " + (epoch + 1) + (e.epoch() == epoch ? " had" : " follows")
                    + " a non-finite gradient (epoch " + (e.epoch() + 1) + ", step " + (e.step() + 1) + ", first in "
                    + e.layerName() + ")");
        }
        for (Map.Entry<String, Double> log : logs.entrySet()) {
            if (!Double.isFinite(log.getValue())) {
                return Optional.of("epoch " + (epoch + 1) + " ended with " + log.getKey() + " " + log.getValue());
            }
        }
        return Optional.empty();
    }

    /** The epoch, from 1, whose weights the file holds; 0 when none was written. */
    public int savedEpoch() {
        return savedEpoch;
    }

    /** The best value of {@link #monitor()} so far: that of the epoch the file holds (NaN before). */
    public double best() {
        return best;
    }

    /**
     * Why the weights of the last epoch that should have been written (the last one, or the last that improved
     * the monitored metric) were not, when they were not.
     */
    public Optional<String> skipped() {
        return Optional.ofNullable(skipped);
    }
}
