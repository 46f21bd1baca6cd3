package dev.gradscope.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.gradscope.data.InvalidDataException;
import dev.gradscope.data.SafeTensors;
import dev.gradscope.nn.Sequential;
import dev.gradscope.nn.WeightsFile;
import dev.gradscope.tensor.ActivationKind;
import dev.gradscope.train.TrainingState;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The weights files the commands write ({@code train --out}) and read ({@code train --load-weights},
 * {@code evaluate}): safetensors through {@link dev.gradscope.nn.WeightsFile}, with the run's config, as
 * history.json holds it, in the metadata under {@value #CONFIG_KEY}, so that a file says which model it
 * belongs to.
 */
final class SavedWeights {
    /** The weights file {@code train --out DIR} keeps in DIR. */
    static final String FILE = "model.safetensors";

    /** The metadata key holding the run's config as JSON. */
    static final String CONFIG_KEY = "config";

    private static final ObjectMapper JSON = new ObjectMapper();

    private SavedWeights() {
    }

    /** The metadata a run's weights file carries: its config as JSON. */
    static Map<String, String> metadata(Map<String, Object> config) {
        try {
            return Map.of(CONFIG_KEY, JSON.writeValueAsString(config));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write the run's config as JSON", e);
        }
    }

    /**
     * The config keys that describe a run as a whole rather than how an epoch's weights were trained: the epochs it
     * goes to, where it was resumed, where it reads its images (the same images: a resume checks their checksums)
     * and where its TensorBoard events go. A resume may change them, and a weights file it keeps from an earlier
     * epoch takes the resumed run's. The other keys a resume may change, {@code device}, {@code backend},
     * {@code backend_description}, {@code tf32}, {@code graph} and {@code steps_per_graph}, say where and how the
     * epoch's steps ran, which decides the weights' rounding (and evaluate's note on TF32): the file keeps the ones
     * that trained it. All the others (model, optimizer, batch size, seed, data set, clipping, callbacks) a resume
     * cannot change.
     */
    static final List<String> RUN_WIDE_KEYS = List.of("epochs", "resumed_at_epochs", "data_dir", "tensorboard");

    /**
     * What a resumed {@code --save-best} run makes of the metadata of the earlier epoch's weights file it keeps
     * ({@link dev.gradscope.train.ModelCheckpoint#bestOf(Path, Map, String, java.util.function.UnaryOperator)}): the
     * file's own config with {@code config}'s {@link #RUN_WIDE_KEYS}, and everything else it records (its epoch, that
     * epoch's logs) as it was. A file without a config of its own (not one a train run wrote) is left as it is.
     */
    static java.util.function.UnaryOperator<Map<String, String>> refreshKept(Map<String, Object> config) {
        return kept -> {
            Map<String, Object> keptConfig;
            try {
                keptConfig = kept.get(CONFIG_KEY) == null ? null
                        : JSON.readValue(kept.get(CONFIG_KEY), new com.fasterxml.jackson.core.type.TypeReference<
                                java.util.LinkedHashMap<String, Object>>() { });
            } catch (JsonProcessingException e) {
                keptConfig = null;
            }
            if (keptConfig == null) {
                return kept;
            }
            for (String key : RUN_WIDE_KEYS) {
                keptConfig.put(key, config.get(key));
            }
            Map<String, String> refreshed = new java.util.LinkedHashMap<>(kept);
            refreshed.putAll(metadata(keptConfig));
            return refreshed;
        };
    }

    /**
     * The config of the run that wrote the file {@code reader} has open, or null when the file has none (it
     * was written by {@link Sequential#saveWeights} or by another program).
     *
     * @throws InvalidDataException when its config is not a JSON object
     */
    @SuppressWarnings("unchecked")
    static Map<String, Object> config(SafeTensors.Reader reader) {
        String json = reader.metadata().get(CONFIG_KEY);
        if (json == null) {
            return null;
        }
        try {
            Object config = JSON.readValue(json, Object.class);
            if (config instanceof Map<?, ?> map) {
                return (Map<String, Object>) map;
            }
        } catch (JsonProcessingException e) {
            throw new InvalidDataException(reader.file() + ": metadata '" + CONFIG_KEY + "' is not valid JSON: "
                    + e.getOriginalMessage(), e);
        }
        throw new InvalidDataException(reader.file() + ": metadata '" + CONFIG_KEY + "' is not a JSON object");
    }

    /**
     * Refuses a training state given where a weights file is wanted, saying which file to give: its tensors (the
     * optimizer's too) would otherwise be refused one by one, as a network they do not fit.
     */
    private static void requireNotATrainingState(SafeTensors.Reader reader) {
        if (TrainingState.FORMAT.equals(reader.metadata().get("format"))) {
            Path file = reader.file();
            Path folder = file.toAbsolutePath().getParent();
            throw new InvalidDataException(file + ": a training state (what train --resume DIR goes on from), not a"
                    + " weights file; give " + (folder == null ? FILE : folder.resolve(FILE)));
        }
    }

    /** A weights file's config and the network it describes. */
    record Recorded(Map<String, Object> config, ModelOptions.Resolved model) {
    }

    /**
     * The config of the run that wrote {@code reader}'s file and the network it describes, for a command that rebuilds
     * that network from the file alone (evaluate, predict, export).
     *
     * @param command the command, for the message when the file has no config
     * @throws InvalidDataException naming the file when it has no config or its config is not a valid model
     */
    static Recorded recorded(SafeTensors.Reader reader, String command) {
        Path weights = reader.file();
        requireNotATrainingState(reader);
        Map<String, Object> config = config(reader);
        if (config == null) {
            throw new InvalidDataException(weights + ": no '" + CONFIG_KEY + "' in its metadata, so it does not say"
                    + " which network it belongs to; " + command + " reads the files that train --out writes");
        }
        ModelOptions.Resolved model = ModelOptions.fromConfig(config, weights.toString())
                .resolve(message -> new InvalidDataException(weights + ": its config is not a valid model: "
                        + message));
        return new Recorded(config, model);
    }

    /**
     * Starts {@code model}, built from {@code resolved}, from the weights in {@code file}. A file that records
     * its run's config must come from a network that computes the same function: the same activation, hidden
     * widths, maxout pieces, and the same fixed activation parameter (a learned one is a tensor of the file).
     * The dropout rate may differ: Dropout has no parameters (the tensors keep their names) and inference passes
     * through it, so a network with other dropout computes the same function from these weights. Batch
     * normalization may not differ: its layers have tensors of their own (gamma, beta and the moving statistics),
     * nor may its epsilon, which inference adds to the variance; its momentum may (it only acts in training).
     *
     * @throws InvalidDataException when the file does not fit; the model is unchanged then
     */
    static void load(Sequential model, Path file, ModelOptions.Resolved resolved) {
        try (SafeTensors.Reader reader = SafeTensors.open(file)) {
            requireNotATrainingState(reader);
            Map<String, Object> saved = config(reader);
            if (saved != null) {
                requireSameModel(file, saved, resolved.config());
            }
            WeightsFile.load(model, reader);
        }
    }

    private static void requireSameModel(Path file, Map<String, Object> saved, Map<String, Object> wanted) {
        List<String> differences = new ArrayList<>();
        compare(differences, "activation", saved.get("activation"), wanted.get("activation"));
        compare(differences, "hidden", saved.get("hidden"), wanted.get("hidden"));
        compare(differences, "batch_norm", Boolean.TRUE.equals(saved.get("batch_norm")),
                Boolean.TRUE.equals(wanted.get("batch_norm")));
        if (differences.isEmpty() && Boolean.TRUE.equals(wanted.get("batch_norm"))) {
            // Epsilon is in what inference computes; the momentum only moves the statistics in training.
            double savedEpsilon = batchNormEpsilon(saved);
            double wantedEpsilon = batchNormEpsilon(wanted);
            if ((float) savedEpsilon != (float) wantedEpsilon) { // the layers compute with floats
                differences.add(ModelOptions.BATCH_NORM_EPSILON + " " + savedEpsilon + " (this run: " + wantedEpsilon
                        + ")");
            }
        }
        Object activation = wanted.get("activation");
        if (differences.isEmpty() && activation.equals("maxout")) {
            compare(differences, "maxout_pieces", saved.get("maxout_pieces"), wanted.get("maxout_pieces"));
        } else if (differences.isEmpty()) {
            ActivationKind kind = ActivationKind.fromId((String) activation);
            if (kind.hasParameter()) {
                // PReLU always learns its alphas; a learned parameter's starting value is overwritten by the file.
                boolean savedLearns = kind == ActivationKind.PRELU
                        || Boolean.TRUE.equals(saved.get("learn_parameter"));
                boolean wantedLearns = kind == ActivationKind.PRELU
                        || Boolean.TRUE.equals(wanted.get("learn_parameter"));
                compare(differences, "learn_parameter", savedLearns, wantedLearns);
                if (!savedLearns && !wantedLearns) {
                    compare(differences, "activation_parameter", parameter(saved, kind), parameter(wanted, kind));
                }
            }
        }
        if (!differences.isEmpty()) {
            throw new InvalidDataException(file + ": these weights come from another model: "
                    + String.join(", ", differences) + "; pass the options they were trained with");
        }
    }

    /** The epsilon a config's normalisations use: Keras's when it records none (a run from before the option). */
    private static double batchNormEpsilon(Map<String, Object> config) {
        Object value = config.get(ModelOptions.BATCH_NORM_EPSILON);
        return value instanceof Number n ? n.doubleValue() : ModelOptions.DEFAULT_BATCH_NORM_EPSILON;
    }

    /** The activation parameter a config's network uses: its own, or the kind's default when it gives none. */
    private static Object parameter(Map<String, Object> config, ActivationKind kind) {
        Object value = config.get("activation_parameter");
        return value == null ? kind.defaultParameter() : value;
    }

    private static void compare(List<String> differences, String field, Object saved, Object wanted) {
        Object a = normalised(saved);
        Object b = normalised(wanted);
        if (!Objects.equals(a, b)) {
            differences.add(field + " " + shown(a) + " (this run: " + shown(b) + ")");
        }
    }

    /** A {@link #normalised} value as the options spell it: whole numbers without a fraction. */
    private static String shown(Object value) {
        if (value instanceof Double d && d == Math.rint(d) && Math.abs(d) < 1e15) {
            return Long.toString(d.longValue());
        }
        if (value instanceof List<?> list) {
            return list.stream().map(SavedWeights::shown).toList().toString();
        }
        return String.valueOf(value);
    }

    /** One form for values that JSON turned into other types: numbers as doubles, arrays as lists. */
    private static Object normalised(Object value) {
        if (value instanceof Number n) {
            return n.doubleValue();
        }
        if (value instanceof int[] widths) {
            return java.util.Arrays.stream(widths).mapToObj(w -> (double) w).toList();
        }
        if (value instanceof List<?> list) {
            return list.stream().map(SavedWeights::normalised).toList();
        }
        return value;
    }
}
