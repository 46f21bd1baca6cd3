package dev.gradscope.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.gradscope.data.InvalidDataException;
import dev.gradscope.data.SafeTensors;
import dev.gradscope.nn.Sequential;
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

    /** The config fields that decide which function the network computes; a file must match them all. */
    private static final List<String> MODEL_FIELDS =
            List.of("activation", "activation_parameter", "learn_parameter", "maxout_pieces", "hidden");

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
     * The config of the run that wrote {@code file}, or null when the file has none (it was written by
     * {@link Sequential#saveWeights} or by another program).
     *
     * @throws InvalidDataException when the file is not readable safetensors, or its config is not JSON
     */
    @SuppressWarnings("unchecked")
    static Map<String, Object> config(Path file) {
        String json = SafeTensors.readMetadata(file).get(CONFIG_KEY);
        if (json == null) {
            return null;
        }
        try {
            Object config = JSON.readValue(json, Object.class);
            if (config instanceof Map<?, ?> map) {
                return (Map<String, Object>) map;
            }
        } catch (JsonProcessingException e) {
            throw new InvalidDataException(file + ": metadata '" + CONFIG_KEY + "' is not valid JSON: "
                    + e.getOriginalMessage(), e);
        }
        throw new InvalidDataException(file + ": metadata '" + CONFIG_KEY + "' is not a JSON object");
    }

    /**
     * Starts {@code model}, built from {@code resolved}, from the weights in {@code file}. A file that records
     * its run's config must have been trained with the same activation, activation parameter and hidden
     * widths: otherwise its weights would load into a network computing another function.
     *
     * @throws InvalidDataException when the file does not fit; the model is unchanged then
     */
    static void load(Sequential model, Path file, ModelOptions.Resolved resolved) {
        Map<String, Object> saved = config(file);
        if (saved != null) {
            requireSameModel(file, saved, resolved.config());
        }
        model.loadWeights(file);
    }

    private static void requireSameModel(Path file, Map<String, Object> saved, Map<String, Object> wanted) {
        List<String> differences = new ArrayList<>();
        for (String field : MODEL_FIELDS) {
            Object a = normalised(saved.get(field));
            Object b = normalised(wanted.get(field));
            boolean irrelevant = field.equals("maxout_pieces") && !"maxout".equals(wanted.get("activation"));
            if (!irrelevant && !Objects.equals(a, b)) {
                differences.add(field + " " + shown(a) + " (this run: " + shown(b) + ")");
            }
        }
        if (!differences.isEmpty()) {
            throw new InvalidDataException(file + ": these weights come from another model: "
                    + String.join(", ", differences) + "; pass the options they were trained with");
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
