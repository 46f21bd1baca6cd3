package dev.gradscope.train;

import dev.gradscope.data.SafeTensors;
import dev.gradscope.nn.Sequential;
import dev.gradscope.nn.WeightsFile;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * Keras's {@code ModelCheckpoint(filepath, save_weights_only=True)}: after every epoch, writes the model's
 * weights to one safetensors file ({@link WeightsFile}), replacing the last epoch's in one move, so an
 * interrupted run keeps the weights of its last finished epoch.
 *
 * <p>An epoch that ends with a NaN or an infinity among the weights (a run that diverged; a GPU run stops
 * only at the end of the epoch in which a step went non-finite) is not written: the file keeps the last
 * finite weights, and {@link #skipped()} says which epoch was left out and why.
 *
 * <p>Besides {@link WeightsFile}'s own metadata, the file records {@code epoch} (epochs finished, from 1)
 * and that epoch's logs ({@code loss}, {@code accuracy}, ...), plus whatever the caller gives.
 */
public final class ModelCheckpoint implements Callback {
    private final Path file;
    private final Map<String, String> metadata;
    private Sequential model;
    private int savedEpochs;
    private String skipped;

    /**
     * @param file     the weights file, rewritten after every epoch
     * @param metadata strings to store with the weights (the command line stores the run's config)
     */
    public ModelCheckpoint(Path file, Map<String, String> metadata) {
        this.file = file;
        this.metadata = new LinkedHashMap<>(metadata);
    }

    public Path file() {
        return file;
    }

    @Override
    public void onTrainBegin(TrainingRun run) {
        model = run.model();
    }

    @Override
    public void onEpochEnd(int epoch, Map<String, Double> logs) {
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
        savedEpochs = epoch + 1;
        skipped = null;
    }

    /** The epoch, from 1, whose weights the file holds; 0 when none was written. */
    public int savedEpochs() {
        return savedEpochs;
    }

    /** Why the last epoch's weights were not written, when they were not. */
    public Optional<String> skipped() {
        return Optional.ofNullable(skipped);
    }
}
