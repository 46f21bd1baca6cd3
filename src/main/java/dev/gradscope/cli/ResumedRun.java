package dev.gradscope.cli;

import dev.gradscope.data.InvalidDataException;
import dev.gradscope.data.SafeTensors;
import dev.gradscope.nn.Sequential;
import dev.gradscope.train.TrainingState;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * {@code train --resume DIR}: the run that {@code train --out DIR} saved in DIR's {@value #FILE}, opened once
 * (one reader sees one version of the file while nothing else replaces it), its settings read from the
 * config the file records, and its state loaded into the rebuilt model.
 */
final class ResumedRun implements AutoCloseable {
    /** The training state {@code train --out DIR} keeps in DIR, rewritten after every good epoch. */
    static final String FILE = "training-state.safetensors";

    /**
     * The options {@code --resume} may be given with: how many epochs in all, and where and how the steps run
     * (the device and TF32 change the rounding, not the model or how it learns), and where the data is.
     * Everything else comes from the saved run; {@code --dataset} may only repeat the run's own.
     */
    static final List<String> ALLOWED_OPTIONS = List.of("--resume", "--epochs", "--device", "--tf32", "--data-dir",
            "--dataset", "--no-graph", "--steps-per-graph", "--quiet", "--tensorboard", "--histogram-freq");

    private final SafeTensors.Reader reader;
    private final Map<String, Object> config;
    private final int epochsDone;

    private ResumedRun(SafeTensors.Reader reader, Map<String, Object> config, int epochsDone) {
        this.reader = reader;
        this.config = config;
        this.epochsDone = epochsDone;
    }

    /**
     * Opens {@code dir}'s training state and reads its config and epochs.
     *
     * @throws InvalidDataException when there is none, or it is not a training state a train run wrote
     */
    static ResumedRun open(Path dir) {
        Path file = dir.resolve(FILE);
        SafeTensors.Reader reader;
        try {
            reader = SafeTensors.open(file);
        } catch (InvalidDataException e) {
            throw new InvalidDataException(e.getMessage().endsWith("file not found")
                    ? file + ": file not found; train --out " + dir + " writes it after every epoch it finishes"
                    : e.getMessage(), e);
        }
        try {
            String format = reader.metadata().get(TrainingState.FORMAT_KEY);
            if (!TrainingState.FORMAT.equals(format)) {
                throw new InvalidDataException(file + ": not a training state (" + TrainingState.FORMAT_KEY + " is "
                        + (format == null ? "missing" : "'" + format + "'") + ")");
            }
            Map<String, Object> config = SavedWeights.config(reader);
            if (config == null || !"train".equals(config.get("command"))) {
                throw new InvalidDataException(file + ": no train run's config in its metadata, so the run's"
                        + " settings are unknown; resume it from Java with TrainingState.load");
            }
            String epochs = reader.metadata().get("epochs");
            int done;
            try {
                done = Integer.parseInt(epochs == null ? "" : epochs);
            } catch (NumberFormatException e) {
                throw new InvalidDataException(file + ": metadata 'epochs' is not a count: " + epochs, e);
            }
            return new ResumedRun(reader, config, done);
        } catch (RuntimeException e) {
            reader.close();
            throw e;
        }
    }

    Path file() {
        return reader.file();
    }

    /** The saved run's config, as its history.json holds it. */
    Map<String, Object> config() {
        return config;
    }

    /** The epochs the saved run finished. */
    int epochsDone() {
        return epochsDone;
    }

    /** An int of the config; {@code fallback} when absent or null. */
    int integer(String key, int fallback) {
        Object value = config.get(key);
        if (value == null) {
            return fallback;
        }
        if (!(value instanceof Integer i)) {
            throw new InvalidDataException(file() + ": config." + key + " is not a whole number: " + value);
        }
        return i;
    }

    long longInteger(String key) {
        Object value = config.get(key);
        if (!(value instanceof Integer || value instanceof Long)) {
            throw new InvalidDataException(file() + ": config." + key + " is not a whole number: " + value);
        }
        return ((Number) value).longValue();
    }

    double real(String key) {
        Object value = config.get(key);
        if (!(value instanceof Number n) || !Double.isFinite(n.doubleValue())) {
            throw new InvalidDataException(file() + ": config." + key + " is not a number: " + value);
        }
        return n.doubleValue();
    }

    boolean flag(String key) {
        Object value = config.get(key);
        if (!(value instanceof Boolean b)) {
            throw new InvalidDataException(file() + ": config." + key + " is not true or false: " + value);
        }
        return b;
    }

    /** A string of the config, or null when absent or null. */
    String text(String key) {
        Object value = config.get(key);
        if (value != null && !(value instanceof String)) {
            throw new InvalidDataException(file() + ": config." + key + " is not a string: " + value);
        }
        return (String) value;
    }

    /** The epochs at which the saved run was resumed before, then this one's: {@code resumed_at_epochs}. */
    List<Integer> resumedAtEpochs() {
        List<Integer> epochs = new ArrayList<>();
        if (config.get("resumed_at_epochs") instanceof List<?> earlier) {
            for (Object e : earlier) {
                if (e instanceof Integer i) {
                    epochs.add(i);
                }
            }
        }
        epochs.add(epochsDone);
        return epochs;
    }

    /** Sets {@code model}'s parameters and optimizer state from the file (see {@link TrainingState#load}). */
    TrainingState load(Sequential model) {
        return TrainingState.load(reader, model);
    }

    @Override
    public void close() {
        reader.close();
    }
}
