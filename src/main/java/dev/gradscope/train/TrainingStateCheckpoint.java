package dev.gradscope.train;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * Keras's {@code BackupAndRestore}: after every epoch worth keeping, writes a {@link TrainingState} (the
 * parameters, the optimizer's state, the history and the profile) to one file, replacing the last one in one
 * move, so a run that is interrupted or should train further goes on from its last good epoch
 * ({@link TrainingState#load}, {@link FitOptions.Builder#resumeFrom}). An epoch is not worth keeping on the
 * same grounds as for {@link ModelCheckpoint}: a non-finite gradient in it or before it, a NaN or infinite
 * log, or a NaN or infinite parameter or optimizer moment; the file then keeps the last good epoch.
 *
 * <p>When the fit has an {@link EarlyStopping} that restores the best weights, the state holds its best copy too
 * ({@link TrainingState#bestWeights()}), so that a resumed run restores the same epoch as the run never interrupted.
 * The state's parameters stay the last epoch's: the run goes on from there.
 */
public final class TrainingStateCheckpoint implements Callback {
    private final Path file;
    private final Map<String, String> metadata;
    private TrainingRun run;
    private int savedEpoch;
    private String skipped;

    /**
     * @param file     the state file, rewritten after every good epoch
     * @param metadata strings to store with the state (the command line stores the run's config)
     */
    public TrainingStateCheckpoint(Path file, Map<String, String> metadata) {
        this.file = file;
        this.metadata = new LinkedHashMap<>(metadata);
    }

    public Path file() {
        return file;
    }

    /** A resumed run's file holds the epoch the run goes on from, when it is that run's. */
    @Override
    public void onTrainBegin(TrainingRun run) {
        this.run = run;
        savedEpoch = 0;
        skipped = null;
        if (run.initialEpoch() > 0
                && Integer.toString(run.initialEpoch()).equals(ModelCheckpoint.savedEpochOf(file, "epochs"))) {
            savedEpoch = run.initialEpoch();
        }
    }

    @Override
    public void onEpochEnd(int epoch, Map<String, Double> logs) {
        Optional<String> notWorthKeeping = ModelCheckpoint.notWorthKeeping(run, epoch, logs);
        if (notWorthKeeping.isPresent()) {
            skipped = notWorthKeeping.get();
            return;
        }
        TrainingState.BestWeights best = run.restoringStopper()
                .flatMap(stopper -> stopper.bestWeightsAfter(epoch, logs)).orElse(null);
        try {
            TrainingState.save(file, run.model(), run.history(), best, metadata);
        } catch (IllegalStateException e) { // a non-finite parameter or optimizer moment
            skipped = "epoch " + (epoch + 1) + ": " + e.getMessage();
            return;
        }
        savedEpoch = epoch + 1;
        skipped = null;
    }

    /** The epoch, from 1, after which the file's state was saved; 0 when none was. */
    public int savedEpoch() {
        return savedEpoch;
    }

    /** Why the last epoch was not saved, when it was not. */
    public Optional<String> skipped() {
        return Optional.ofNullable(skipped);
    }
}
