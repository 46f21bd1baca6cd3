package dev.gradscope.nn;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.gradscope.data.InvalidDataException;
import dev.gradscope.data.SafeTensors;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Predicate;

/**
 * A model's parameters as a <a href="https://huggingface.co/docs/safetensors">safetensors</a> file: Keras's
 * {@code save_weights} and {@code load_weights}, in a format PyTorch, JAX and NumPy read directly.
 *
 * <p>Each parameter tensor is one F32 tensor named {@code <layer>.<slot>}, the layer's name as
 * {@link Sequential#summary()} prints it: {@code dense.kernel}, {@code dense.bias}, {@code dense_1.kernel},
 * ..., {@code p_re_lu.alpha}; a layer's non-trainable state is saved the same way after the parameters
 * ({@code batch_normalization.moving_mean}, {@code batch_normalization.moving_variance}, Keras's names), so that
 * a loaded model predicts as the saved one did. Shapes are GradScope's (and Keras's): a kernel is
 * {@code [inputs, units]}, the transpose of PyTorch's {@code nn.Linear.weight}. The metadata says what wrote the file
 * ({@value #FORMAT_KEY} = {@value #FORMAT}), the model's input width and its layers, plus whatever the
 * caller adds (the command line adds the run's config and the epoch).
 *
 * <p>Loading matches tensors to the model by name and shape, so any file with the right names loads,
 * whoever wrote it. Every check runs before the first parameter changes: a file that does not fit, or holds
 * a NaN or an infinity, changes nothing and fails with a message naming the file and the tensor. Saving
 * refuses non-finite parameters for the same reason: GradScope never writes a file it would refuse to read.
 */
public final class WeightsFile {
    /** The metadata key saying which program wrote the file, and in which layout. */
    public static final String FORMAT_KEY = "format";

    /** {@value #FORMAT_KEY}'s value in files GradScope writes. */
    public static final String FORMAT = "gradscope.weights.v1";

    /** The metadata keys {@link #save} writes itself; a caller's metadata may not use them. */
    public static final List<String> OWN_KEYS = List.of(FORMAT_KEY, "input_units", "layers");

    private static final ObjectMapper JSON = new ObjectMapper();

    /** How many mismatches an error lists before it says how many more there are. */
    private static final int LISTED_PROBLEMS = 6;

    private WeightsFile() {
    }

    /** {@code dense_1.kernel}: the name a parameter tensor has in a weights file. */
    public static String tensorName(Sequential.ParameterGroup group) {
        return group.layer().name() + "." + group.slot().name();
    }

    /** {@code batch_normalization.moving_mean}: the name a non-trainable state tensor has in a weights file. */
    public static String tensorName(Sequential.StateGroup group) {
        return group.layer().name() + "." + group.slot().name();
    }

    /**
     * Every parameter tensor of {@code model}, named and in layer order, then every non-trainable state tensor,
     * read from its device in one copy each.
     */
    public static List<SafeTensors.Entry> entries(Sequential model) {
        return entries(model, "", values(model));
    }

    /**
     * {@code values}, laid out as {@code model}'s buffers are, split into the model's tensors as {@link
     * #entries(Sequential)} names them, each name after {@code prefix}: a training state keeps early stopping's best
     * weights beside the model's own as {@code best_weights/dense.kernel}, ....
     *
     * @throws IllegalArgumentException when {@code values} do not have the model's sizes
     */
    public static List<SafeTensors.Entry> entries(Sequential model, String prefix, Values values) {
        long stateSize = model.state() == null ? 0 : model.state().size();
        if (values.parameters().length != model.parameters().size() || values.state().length != stateSize) {
            throw new IllegalArgumentException("the weights hold " + values.parameters().length + " parameters and "
                    + values.state().length + " state values, the model " + model.parameters().size() + " and "
                    + stateSize);
        }
        List<SafeTensors.Entry> entries = new ArrayList<>();
        for (Sequential.ParameterGroup g : model.parameterGroups()) {
            entries.add(new SafeTensors.Entry(prefix + tensorName(g), g.slot().shape(),
                    Arrays.copyOfRange(values.parameters(), g.offset(), g.offset() + g.slot().size())));
        }
        for (Sequential.StateGroup g : model.stateGroups()) {
            entries.add(new SafeTensors.Entry(prefix + tensorName(g), g.slot().shape(),
                    Arrays.copyOfRange(values.state(), g.offset(), g.offset() + g.slot().size())));
        }
        return entries;
    }

    /**
     * A model's weights as read from a file, in the layout of its flat buffers: the parameters and the
     * non-trainable state (empty when the model has none).
     */
    public record Values(float[] parameters, float[] state) {
        /** Sets {@code model}'s parameters and state to these values. */
        public void setInto(Sequential model) {
            model.backend().copyFromHost(parameters, model.parameters());
            if (model.state() != null) {
                model.backend().copyFromHost(state, model.state());
            }
        }
    }

    /** The model's parameters and state, read from its device: what {@link Values#setInto} restores. */
    public static Values values(Sequential model) {
        return new Values(model.parameters().toFloatArray(),
                model.state() == null ? new float[0] : model.state().toFloatArray());
    }

    /** The first NaN or infinity among {@code entries}, as {@code dense_1.kernel[3, 7] = NaN}, if any. */
    public static Optional<String> firstNonFinite(List<SafeTensors.Entry> entries) {
        for (SafeTensors.Entry e : entries) {
            float[] values = e.values();
            for (int i = 0; i < values.length; i++) {
                if (!Float.isFinite(values[i])) {
                    return Optional.of(e.name() + index(e.shape(), i) + " = " + values[i]);
                }
            }
        }
        return Optional.empty();
    }

    /** {@code [3, 7]}: the position of flat element {@code flat} in a row-major tensor of {@code shape}. */
    private static String index(int[] shape, int flat) {
        if (shape.length == 0) {
            return "";
        }
        int[] position = new int[shape.length];
        for (int axis = shape.length - 1; axis >= 0; axis--) {
            position[axis] = flat % shape[axis];
            flat /= shape[axis];
        }
        return Arrays.toString(position);
    }

    /**
     * Writes {@code model}'s parameters to {@code file}, with {@code metadata} added to the file's own.
     *
     * @throws IllegalStateException when a parameter is NaN or infinite (nothing is written then)
     */
    public static void save(Sequential model, Path file, Map<String, String> metadata) {
        write(model, file, entries(model), metadata);
    }

    /**
     * Writes {@code entries}, which {@link #entries} read from {@code model}, to {@code file}: for a caller that
     * looked at them first.
     *
     * @throws IllegalStateException when a value is NaN or infinite (nothing is written then)
     */
    public static void write(Sequential model, Path file, List<SafeTensors.Entry> entries,
                             Map<String, String> metadata) {
        for (String key : OWN_KEYS) {
            if (metadata.containsKey(key)) {
                throw new IllegalArgumentException("metadata key '" + key + "' is written by WeightsFile itself");
            }
        }
        Optional<String> nonFinite = firstNonFinite(entries);
        if (nonFinite.isPresent()) {
            throw new IllegalStateException("cannot save the weights to " + file + ": " + nonFinite.get()
                    + " (a weights file holds finite numbers only)");
        }
        Map<String, String> all = new LinkedHashMap<>();
        all.put(FORMAT_KEY, FORMAT);
        all.put("input_units", Integer.toString(model.inputUnits()));
        all.put("layers", layersJson(model));
        all.putAll(metadata);
        SafeTensors.write(file, all, entries);
    }

    /** {@code [{"name": "dense", "type": "Dense", "config": "units=512, ..."}, ...]}: what the file came from. */
    public static String layersJson(Sequential model) {
        List<Map<String, String>> layers = new ArrayList<>();
        for (Layer layer : model.layers()) {
            Map<String, String> l = new LinkedHashMap<>();
            l.put("name", layer.name());
            l.put("type", layer.typeName());
            l.put("config", layer.describe());
            layers.add(l);
        }
        try {
            return JSON.writeValueAsString(layers);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot describe the layers as JSON", e);
        }
    }

    /**
     * Sets {@code model}'s parameters from {@code file}: every tensor of the model must be there, with its
     * shape, and finite; the file may hold no other tensor. Checks everything before changing anything.
     *
     * @throws InvalidDataException when the file cannot be read, is not safetensors, does not fit the model
     *                              or holds a NaN or infinity; the model is unchanged then
     */
    public static void load(Sequential model, Path file) {
        try (SafeTensors.Reader reader = SafeTensors.open(file)) {
            load(model, reader);
        }
    }

    /**
     * {@link #load(Sequential, Path)} from a file already open, for a caller that read its metadata first: one
     * reader sees one version of the file, even while a run replaces it.
     */
    public static void load(Sequential model, SafeTensors.Reader reader) {
        read(model, reader, name -> false).setInto(model);
    }

    /**
     * Reads and checks, as {@link #load(Sequential, SafeTensors.Reader)} does, the parameters of {@code model}
     * from {@code reader}'s file without setting them: the model's flat parameter buffer, for a caller that
     * checks more before changing anything, with its non-trainable state. Tensors for which {@code readElsewhere}
     * holds are the caller's
     * (a training state's optimizer buffers) and are not taken for unknown parameters.
     *
     * @throws InvalidDataException when the file does not fit the model or holds a NaN or infinity
     */
    public static Values read(Sequential model, SafeTensors.Reader reader, Predicate<String> readElsewhere) {
        return read(model, reader, "", readElsewhere);
    }

    /**
     * {@link #read(Sequential, SafeTensors.Reader, Predicate)} of the tensors named as the model's after {@code
     * prefix} ({@code best_weights/dense.kernel}, ...): every one of the model's must be there, with its shape, and
     * finite, and the file may hold no other tensor whose name starts with {@code prefix}, except those for which
     * {@code readElsewhere} holds.
     *
     * @throws InvalidDataException when those tensors do not fit the model or hold a NaN or infinity
     */
    public static Values read(Sequential model, SafeTensors.Reader reader, String prefix,
                              Predicate<String> readElsewhere) {
        Path file = reader.file();
        Map<String, int[]> shapes = reader.shapes();
        List<String> problems = new ArrayList<>();
        Map<String, int[]> expected = new LinkedHashMap<>();
        for (Sequential.ParameterGroup g : model.parameterGroups()) {
            expected.put(prefix + tensorName(g), g.slot().shape());
        }
        for (Sequential.StateGroup g : model.stateGroups()) {
            expected.put(prefix + tensorName(g), g.slot().shape());
        }
        expected.forEach((name, shape) -> {
            int[] found = shapes.get(name);
            if (found == null) {
                problems.add("no tensor " + name + " " + Arrays.toString(shape));
            } else if (!Arrays.equals(found, shape)) {
                problems.add(name + " is " + Arrays.toString(found) + " in the file, " + Arrays.toString(shape)
                        + " in the model");
            }
        });
        for (String name : shapes.keySet()) {
            if (name.startsWith(prefix) && !expected.containsKey(name) && !readElsewhere.test(name)) {
                problems.add("the model has no tensor " + name.substring(prefix.length()));
            }
        }
        String which = prefix.isEmpty() ? "these weights" : "the weights under " + prefix;
        if (!problems.isEmpty()) {
            String listed = String.join("; ", problems.subList(0, Math.min(LISTED_PROBLEMS, problems.size())));
            if (problems.size() > LISTED_PROBLEMS) {
                listed += "; and " + (problems.size() - LISTED_PROBLEMS) + " more";
            }
            throw new InvalidDataException(file + ": " + which + " do not fit the model (" + architecture(model)
                    + "): " + listed);
        }
        // Names and shapes match, so the values are as many as the model's parameters: read them only now.
        float[] all = new float[(int) model.parameters().size()];
        List<SafeTensors.Entry> entries = new ArrayList<>();
        for (Sequential.ParameterGroup g : model.parameterGroups()) {
            float[] values = reader.values(prefix + tensorName(g));
            entries.add(new SafeTensors.Entry(prefix + tensorName(g), g.slot().shape(), values));
            System.arraycopy(values, 0, all, g.offset(), values.length);
        }
        float[] state = new float[model.state() == null ? 0 : (int) model.state().size()];
        for (Sequential.StateGroup g : model.stateGroups()) {
            float[] values = reader.values(prefix + tensorName(g));
            entries.add(new SafeTensors.Entry(prefix + tensorName(g), g.slot().shape(), values));
            System.arraycopy(values, 0, state, g.offset(), values.length);
        }
        Optional<String> nonFinite = firstNonFinite(entries);
        if (nonFinite.isPresent()) {
            throw new InvalidDataException(file + ": " + nonFinite.get() + "; a model cannot start from it");
        }
        return new Values(all, state);
    }

    /** {@code dense [784, 512] + [512], dense_1 ...}: the tensors a model expects, for error messages. */
    static String architecture(Sequential model) {
        StringBuilder sb = new StringBuilder();
        for (Sequential.ParameterGroup g : model.parameterGroups()) {
            sb.append(sb.length() == 0 ? "" : ", ").append(tensorName(g)).append(' ')
                    .append(Arrays.toString(g.slot().shape()));
        }
        for (Sequential.StateGroup g : model.stateGroups()) {
            sb.append(", ").append(tensorName(g)).append(' ').append(Arrays.toString(g.slot().shape()));
        }
        return sb.length() == 0 ? "no parameters" : sb.toString();
    }
}
