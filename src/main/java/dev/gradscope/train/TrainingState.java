package dev.gradscope.train;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.gradscope.data.InvalidDataException;
import dev.gradscope.data.SafeTensors;
import dev.gradscope.nn.Optimizer;
import dev.gradscope.nn.Sequential;
import dev.gradscope.nn.WeightsFile;
import dev.gradscope.tensor.Tensor;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * Everything a run needs to go on where it stopped, in one safetensors file: the parameters, the optimizer's
 * state (Adam's moments and step count, SGD's velocity), the epochs finished with their logs and seconds, and
 * the gradient profile so far. Keras's {@code BackupAndRestore}, or a PyTorch checkpoint of the model's and
 * the optimizer's {@code state_dict}s.
 *
 * <p>A run resumed from it ({@link FitOptions.Builder#resumeFrom}) gives the same parameters, logs and
 * profile, bit for bit on one device, as the run that was never interrupted: the shuffles of the epochs
 * already trained are drawn again from the model's seed and thrown away, so the next epoch sees the order it
 * would have seen.
 *
 * <p>The file. The parameters and the layers' non-trainable state are named as in a weights file
 * ({@link WeightsFile}: {@code dense.kernel}, ..., {@code batch_normalization.moving_mean}).
 * The optimizer's buffers are split the same way and named {@code optimizer/<buffer>/<parameter>}, e.g.
 * {@code optimizer/m/dense.kernel}. The profile's per-step norms are three F32 tables of {@code [steps,
 * tensors]}, {@code profile/squared_gradient_norms}, {@code profile/squared_weight_norms} and
 * {@code profile/squared_update_norms}: the squares the device summed, from which the norms come back exactly.
 * The metadata holds {@value #FORMAT_KEY} = {@value #FORMAT}, {@code epochs} (finished), {@code iterations}
 * (the optimizer's updates), {@code optimizer} (its id and settings), {@code optimizer_scalars} (its scalar
 * state besides the count, Nadam's {@code u_product}, when it has any), {@code label_smoothing} (the loss's),
 * {@code history} and {@code profile} (JSON), the model's input width and layers, and whatever the caller adds.
 *
 * <p>With {@link EarlyStopping}'s {@code restoreBestWeights}, the file holds the best epoch's weights too, so that a
 * resumed run puts back what the run never interrupted would ({@link #bestWeights()}): named as the parameters
 * with the prefix {@value #BEST_WEIGHTS_PREFIX} ({@code best_weights/dense.kernel}, ...,
 * {@code best_weights/batch_normalization.moving_mean}), and metadata {@value #BEST_WEIGHTS_KEY}, JSON
 * {@code {"monitor": "val_loss", "epoch": 2}} (the epoch from 0). A state without them (from a run without the
 * restore, or from before it was saved) resumes as ever, and its run restores only a best epoch it trains itself.
 *
 * <p>Loading checks, before it changes the model: that the parameters and the optimizer's buffers are the
 * model's and its optimizer's by name and shape, and finite; that the input width, the optimizer's id, the
 * loss's label smoothing, the counts, the history (one value of each metric per epoch) and the profile (the
 * model's parameter tensors, epochs in order, norms' squares >= 0, unit statistics within their ranges) are well
 * formed. A file that does not fit changes nothing and fails naming the file and what is wrong. Saving refuses a
 * state with a NaN or an infinity in its parameters, optimizer buffers or logs, or a history whose metrics do not have
 * one value per epoch.
 */
public final class TrainingState {
    /** The metadata key saying what the file is. */
    public static final String FORMAT_KEY = WeightsFile.FORMAT_KEY;

    /** {@value #FORMAT_KEY}'s value in a training state. */
    public static final String FORMAT = "gradscope.training-state.v1";

    /** The metadata key of the best weights' monitor and epoch, when the state holds them. */
    public static final String BEST_WEIGHTS_KEY = "best_weights";

    /** What the best weights' tensor names start with. */
    public static final String BEST_WEIGHTS_PREFIX = "best_weights/";

    /** The metadata keys {@link #save} writes itself; a caller's metadata may not use them. */
    public static final List<String> OWN_KEYS = List.of(FORMAT_KEY, "input_units", "layers", "epochs",
            "iterations", "optimizer", "optimizer_scalars", "label_smoothing", "history", "profile",
            BEST_WEIGHTS_KEY);

    /** The metadata key of the optimizer's {@link Optimizer#stateScalars} (Nadam's {@code u_product}), as JSON. */
    static final String OPTIMIZER_SCALARS = "optimizer_scalars";

    static final String OPTIMIZER_PREFIX = "optimizer/";
    static final String PROFILE_PREFIX = "profile/";
    private static final List<String> PROFILE_TABLES = List.of("squared_gradient_norms", "squared_weight_norms",
            "squared_update_norms");

    private static final ObjectMapper JSON = new ObjectMapper();

    private final int epochs;
    private final long iterations;
    private final History history;
    private final Map<String, String> metadata;
    private final BestWeights bestWeights;

    private TrainingState(int epochs, long iterations, History history, Map<String, String> metadata,
                          BestWeights bestWeights) {
        this.epochs = epochs;
        this.iterations = iterations;
        this.history = history;
        this.metadata = Map.copyOf(metadata);
        this.bestWeights = bestWeights;
    }

    /**
     * The weights {@link EarlyStopping} with {@code restoreBestWeights} keeps to put back when training ends: those
     * after epoch {@code epoch} (from 0), the best by {@code monitor} so far, as a host copy.
     */
    public record BestWeights(String monitor, int epoch, WeightsFile.Values values) {
        public BestWeights {
            if (monitor == null || epoch < 0 || values == null) {
                throw new IllegalArgumentException("best weights need a monitor, an epoch >= 0 and values, got "
                        + monitor + ", " + epoch + ", " + values);
            }
        }
    }

    /** The best epoch's weights the saving run's early stopping kept, when it restores them; empty otherwise. */
    public Optional<BestWeights> bestWeights() {
        return Optional.ofNullable(bestWeights);
    }

    /** Epochs finished when the state was saved: a resumed run starts at this epoch (from 0). */
    public int epochs() {
        return epochs;
    }

    /** The optimizer's updates when the state was saved (0 for one that does not count them). */
    public long iterations() {
        return iterations;
    }

    /** The finished epochs' logs and seconds, and the profile of their steps (null when none was kept). */
    public History history() {
        return history.continued();
    }

    /** Every metadata string of the file, the caller's included. */
    public Map<String, String> metadata() {
        return metadata;
    }

    /**
     * Writes {@code model}'s parameters and optimizer state, and {@code history} (its epochs and its profile),
     * to {@code file}, replacing it in one move; {@code metadata} is added to the file's own.
     *
     * @throws IllegalStateException when a parameter, an optimizer buffer or a log is NaN or infinite, or the
     *                               history records a non-finite gradient (nothing is written then)
     */
    public static void save(Path file, Sequential model, History history, Map<String, String> metadata) {
        save(file, model, history, null, metadata);
    }

    /**
     * {@link #save(Path, Sequential, History, Map)} with the best epoch's weights that early stopping keeps to
     * restore ({@link #bestWeights()}); none when {@code best} is null.
     *
     * @throws IllegalStateException as that method, and when a best weight is NaN or infinite
     */
    public static void save(Path file, Sequential model, History history, BestWeights best,
                            Map<String, String> metadata) {
        for (String key : OWN_KEYS) {
            if (metadata.containsKey(key)) {
                throw new IllegalArgumentException("metadata key '" + key + "' is written by TrainingState itself");
            }
        }
        String cannot = "cannot save the training state to " + file + ": ";
        if (history.nonFinite() != null) {
            throw new IllegalStateException(cannot + "the run had a non-finite gradient (" + history.nonFinite()
                    + "); a state to resume from comes from the epochs before it");
        }
        history.metrics().forEach((metric, values) -> {
            if (values.size() != history.epochs()) {
                throw new IllegalStateException(cannot + "the history has " + values.size() + " values of " + metric
                        + " for " + history.epochs() + " epochs");
            }
            for (int e = 0; e < values.size(); e++) {
                if (!Double.isFinite(values.get(e))) {
                    throw new IllegalStateException(cannot + metric + " of epoch " + (e + 1) + " is " + values.get(e));
                }
            }
        });
        List<SafeTensors.Entry> entries = new ArrayList<>(WeightsFile.entries(model));
        Optimizer optimizer = model.optimizer();
        for (Map.Entry<String, Tensor> buffer : optimizer.stateBuffers().entrySet()) {
            float[] all = buffer.getValue().toFloatArray();
            for (Sequential.ParameterGroup g : model.parameterGroups()) {
                entries.add(new SafeTensors.Entry(optimizerTensorName(buffer.getKey(), g), g.slot().shape(),
                        Arrays.copyOfRange(all, g.offset(), g.offset() + g.slot().size())));
            }
        }
        if (best != null) {
            if (best.epoch() >= history.epochs()) {
                throw new IllegalArgumentException(cannot + "the best weights are of epoch " + (best.epoch() + 1)
                        + ", the history has " + history.epochs());
            }
            entries.addAll(WeightsFile.entries(model, BEST_WEIGHTS_PREFIX, best.values()));
        }
        Optional<String> nonFinite = WeightsFile.firstNonFinite(entries);
        if (nonFinite.isPresent()) {
            throw new IllegalStateException(cannot + nonFinite.get() + " (a training state holds finite numbers only)");
        }
        Map<String, String> all = new LinkedHashMap<>();
        all.put(FORMAT_KEY, FORMAT);
        all.put("input_units", Integer.toString(model.inputUnits()));
        all.put("layers", WeightsFile.layersJson(model));
        all.put("epochs", Integer.toString(history.epochs()));
        all.put("iterations", Long.toString(optimizer.iterations()));
        all.put("optimizer", json(optimizer.config()));
        Map<String, Float> scalars = optimizer.stateScalars();
        if (!scalars.isEmpty()) {
            if (scalars.values().stream().anyMatch(v -> !Float.isFinite(v))) {
                throw new IllegalStateException(cannot + "the optimizer's " + scalars
                        + " (a training state holds finite numbers only)");
            }
            all.put(OPTIMIZER_SCALARS, json(new TreeMap<>(scalars)));
        }
        all.put("label_smoothing", Double.toString(model.labelSmoothing()));
        all.put("history", json(historyDocument(history)));
        if (best != null) {
            Map<String, Object> doc = new LinkedHashMap<>();
            doc.put("monitor", best.monitor());
            doc.put("epoch", best.epoch());
            all.put(BEST_WEIGHTS_KEY, json(doc));
        }
        Profile profile = history.profile();
        if (profile != null) {
            all.put("profile", json(profileDocument(profile)));
            entries.addAll(profileTables(profile));
        }
        all.putAll(metadata);
        SafeTensors.write(file, all, entries);
    }

    /** {@code optimizer/m/dense.kernel}: the part of optimizer buffer {@code buffer} that belongs to {@code g}. */
    static String optimizerTensorName(String buffer, Sequential.ParameterGroup g) {
        return OPTIMIZER_PREFIX + buffer + "/" + WeightsFile.tensorName(g);
    }

    private static Map<String, Object> historyDocument(History history) {
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("metrics", history.metrics());
        doc.put("epoch_seconds", history.epochSeconds());
        return doc;
    }

    /**
     * The profile besides its per-step norms: the saturation threshold, the parameter tensors, the steps of
     * each epoch ({@code [epoch, steps, first global step]}) and every epoch's unit statistics.
     */
    private static Map<String, Object> profileDocument(Profile profile) {
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("saturation_threshold", profile.saturationThreshold());
        List<Map<String, Object>> segments = new ArrayList<>();
        for (Profile.Segment g : profile.segments()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("layer_index", g.layerIndex());
            m.put("layer_name", g.layerName());
            m.put("layer_type", g.layerType());
            m.put("parameter", g.parameter());
            segments.add(m);
        }
        doc.put("segments", segments);
        List<int[]> epochs = new ArrayList<>();
        for (Profile.StepStatistics s : profile.steps()) {
            int[] last = epochs.isEmpty() ? null : epochs.get(epochs.size() - 1);
            if (last != null && last[0] == s.epoch() && s.step() == last[1] && s.globalStep() == last[2] + last[1]) {
                last[1]++;
            } else if (s.step() == 0) {
                epochs.add(new int[] {s.epoch(), 1, s.globalStep()});
            } else {
                throw new IllegalStateException("the profile's steps are not consecutive: epoch " + s.epoch()
                        + ", step " + s.step() + ", global step " + s.globalStep() + " after " + Arrays.toString(last));
            }
        }
        doc.put("epochs", epochs);
        List<Map<String, Object>> units = new ArrayList<>();
        for (Profile.UnitStatistics u : profile.units()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("epoch", u.epoch());
            m.put("layer_index", u.layerIndex());
            m.put("layer_name", u.layerName());
            m.put("activation", u.activation());
            m.put("units", u.units());
            for (int i = 0; i < UNIT_FRACTIONS.size(); i++) {
                m.put(UNIT_FRACTIONS.get(i), unitValue(u, i));
            }
            units.add(m);
        }
        doc.put("units", units);
        return doc;
    }

    /**
     * The per-step norms as the squares they were taken from: each norm is the root of a float the device
     * summed ({@link GradientProfiler}), so rounding its square to a float gives that float back, and its root
     * the same norm, exactly.
     */
    private static List<SafeTensors.Entry> profileTables(Profile profile) {
        int steps = profile.steps().size();
        int segments = profile.segments().size();
        List<SafeTensors.Entry> tables = new ArrayList<>();
        for (int t = 0; t < PROFILE_TABLES.size(); t++) {
            float[] squares = new float[steps * segments];
            for (int s = 0; s < steps; s++) {
                double[] norms = column(profile.steps().get(s), t);
                for (int i = 0; i < segments; i++) {
                    squares[s * segments + i] = (float) (norms[i] * norms[i]);
                }
            }
            tables.add(new SafeTensors.Entry(PROFILE_PREFIX + PROFILE_TABLES.get(t), new int[] {steps, segments},
                    squares));
        }
        return tables;
    }

    /** The real-valued fields of a {@link Profile.UnitStatistics}, as the profile's JSON names them. */
    private static final List<String> UNIT_FRACTIONS = List.of("dead_fraction", "inactive_fraction",
            "saturated_fraction", "mean", "std");

    private static double unitValue(Profile.UnitStatistics u, int field) {
        return switch (field) {
            case 0 -> u.deadFraction();
            case 1 -> u.inactiveFraction();
            case 2 -> u.saturatedFraction();
            case 3 -> u.mean();
            default -> u.std();
        };
    }

    private static double[] column(Profile.StepStatistics s, int table) {
        return switch (table) {
            case 0 -> s.gradientNorms();
            case 1 -> s.weightNorms();
            default -> s.updateNorms();
        };
    }

    private static String json(Object value) {
        try {
            return JSON.writeValueAsString(value);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write the training state's metadata as JSON", e);
        }
    }

    /**
     * Sets {@code model}'s parameters and optimizer state from {@code file} and returns the rest (epochs,
     * history, profile) for {@link FitOptions.Builder#resumeFrom}. The model must be built and compiled with
     * the optimizer the state was saved with (its learning rate and other settings may differ).
     *
     * @throws InvalidDataException when the file cannot be read, is not a training state or does not fit the
     *                              model; the model is unchanged then
     */
    public static TrainingState load(Path file, Sequential model) {
        try (SafeTensors.Reader reader = SafeTensors.open(file)) {
            return load(reader, model);
        }
    }

    /** {@link #load(Path, Sequential)} from a file already open, for a caller that read its metadata first. */
    public static TrainingState load(SafeTensors.Reader reader, Sequential model) {
        Path file = reader.file();
        Map<String, String> meta = reader.metadata();
        String format = meta.get(FORMAT_KEY);
        if (!FORMAT.equals(format)) {
            throw new InvalidDataException(file + ": not a training state (" + FORMAT_KEY + " is "
                    + (format == null ? "missing" : "'" + format + "'") + ", expected '" + FORMAT + "')"
                    + (WeightsFile.FORMAT.equals(format) ? "; it holds weights only, without the optimizer's state"
                            : ""));
        }
        Optimizer optimizer = model.optimizer();
        if (optimizer == null || !model.isBuilt()) {
            throw new IllegalStateException("load a training state into a model built and compiled first");
        }
        if (!Integer.toString(model.inputUnits()).equals(meta.get("input_units"))) {
            throw new InvalidDataException(file + ": the state's model takes " + meta.get("input_units")
                    + " input features, this one " + model.inputUnits());
        }
        int epochs = (int) count(meta, "epochs", file, Integer.MAX_VALUE);
        long iterations = count(meta, "iterations", file, Integer.MAX_VALUE);
        JsonNode savedOptimizer = parse(meta, "optimizer", file);
        String savedId = savedOptimizer.path("name").asText("");
        if (!savedId.equals(optimizer.id())) {
            throw new InvalidDataException(file + ": the state was saved by optimizer '" + savedId
                    + "', the model's is '" + optimizer.id() + "'");
        }
        requireSameLayers(parse(meta, "layers", file), model, file);
        requireSameLabelSmoothing(meta, model, file);
        requireSameOptimizerSettings(savedOptimizer, optimizer, file);
        if (epochs > 0 && iterations == 0 && optimizer.stepSchedule().isScheduled()) {
            // SGD, RMSprop and Adagrad states saved before they counted their updates record 0: the count is not
            // known, and a per-step schedule would start again from its first step
            throw new InvalidDataException(file + ": the state records no updates after " + epochs + " epoch(s) (saved"
                    + " before " + optimizer.id() + " counted them), so a per-step schedule cannot go on from it");
        }
        Map<String, int[]> shapes = reader.shapes();
        WeightsFile.Values weights = WeightsFile.read(model, reader,
                name -> name.startsWith(OPTIMIZER_PREFIX) || name.startsWith(PROFILE_PREFIX)
                        || name.startsWith(BEST_WEIGHTS_PREFIX));
        Map<String, float[]> buffers = readOptimizerBuffers(reader, model, shapes);
        History history = readHistory(parse(meta, "history", file), epochs, file);
        BestWeights best = readBestWeights(reader, meta, model, epochs, shapes);
        if (meta.containsKey("profile")) {
            history.setProfile(readProfile(reader, parse(meta, "profile", file), Trainer.segments(model), epochs,
                    shapes));
        } else if (shapes.keySet().stream().anyMatch(n -> n.startsWith(PROFILE_PREFIX))) {
            throw new InvalidDataException(file + ": it has profile tables but no 'profile' metadata");
        }
        Map<String, Float> scalars = readOptimizerScalars(meta, optimizer, file);
        // Everything read and checked: only now does the model change, the scalars and the step count first (an
        // optimizer that does not count refuses a count other than 0, and then nothing has changed).
        try {
            optimizer.setStateScalars(scalars);
        } catch (IllegalArgumentException e) {
            throw new InvalidDataException(file + ": metadata '" + OPTIMIZER_SCALARS + "': " + e.getMessage(), e);
        }
        try {
            optimizer.setIterations(iterations);
        } catch (IllegalArgumentException e) {
            throw new InvalidDataException(file + ": metadata 'iterations' is " + iterations + ": " + e.getMessage(),
                    e);
        }
        weights.setInto(model);
        buffers.forEach((name, values) -> model.backend().copyFromHost(values, optimizer.stateBuffers().get(name)));
        return new TrainingState(epochs, iterations, history, meta, best);
    }

    /**
     * The best weights, when metadata {@value #BEST_WEIGHTS_KEY} says the state has them: a monitor, an epoch the
     * state finished, and every tensor of the model under {@value #BEST_WEIGHTS_PREFIX}, with its shape, finite.
     */
    private static BestWeights readBestWeights(SafeTensors.Reader reader, Map<String, String> meta, Sequential model,
                                               int epochs, Map<String, int[]> shapes) {
        Path file = reader.file();
        if (!meta.containsKey(BEST_WEIGHTS_KEY)) {
            shapes.keySet().stream().filter(n -> n.startsWith(BEST_WEIGHTS_PREFIX)).findFirst().ifPresent(n -> {
                throw new InvalidDataException(file + ": it has best weights (" + n + ") but no '" + BEST_WEIGHTS_KEY
                        + "' metadata");
            });
            return null;
        }
        JsonNode doc = parse(meta, BEST_WEIGHTS_KEY, file);
        JsonNode monitor = doc.get("monitor");
        JsonNode epoch = doc.get("epoch");
        if (monitor == null || !monitor.isTextual() || epoch == null || !epoch.isIntegralNumber()
                || !epoch.canConvertToInt() || epoch.intValue() < 0 || epoch.intValue() >= epochs) {
            throw new InvalidDataException(file + ": metadata '" + BEST_WEIGHTS_KEY + "' must be a monitor and an"
                    + " epoch from 0 below the state's " + epochs + ", got " + doc);
        }
        WeightsFile.Values values = WeightsFile.read(model, reader, BEST_WEIGHTS_PREFIX, name -> false);
        return new BestWeights(monitor.textValue(), epoch.intValue(), values);
    }

    /**
     * Refuses a state whose layers compute differently from the model's in a way the tensors do not show: another
     * activation, dropout rate, batch normalization's momentum or epsilon, or fixed activation parameter. What the
     * state's tensors replace may differ: a kernel's initializer, a learned parameter's starting value. When the
     * layers line up, the error names each that differs.
     */
    private static void requireSameLayers(JsonNode saved, Sequential model, Path file) {
        List<String> theirs = new ArrayList<>();
        for (JsonNode layer : saved) {
            theirs.add(layer.path("name").asText() + " " + layer.path("type").asText() + " "
                    + computed(layer.path("config").asText()));
        }
        List<String> ours = new ArrayList<>();
        for (dev.gradscope.nn.Layer layer : model.layers()) {
            ours.add(layer.name() + " " + layer.typeName() + " " + computed(layer.describe()));
        }
        if (!theirs.equals(ours)) {
            List<String> differing = new ArrayList<>();
            for (int i = 0; theirs.size() == ours.size() && i < theirs.size(); i++) {
                if (!theirs.get(i).equals(ours.get(i))) {
                    differing.add(theirs.get(i) + " in the state, " + ours.get(i) + " in the model");
                }
            }
            throw new InvalidDataException(file + ": the state's layers are " + theirs + ", the model's " + ours
                    + (differing.isEmpty() ? "" : "; they differ in " + String.join("; ", differing)));
        }
    }

    /**
     * Refuses a state saved by a run whose loss smoothed its labels otherwise: its history's losses are of other
     * targets, and going on with others would not be the run that stopped. A state without the key is from a
     * version before label smoothing, which had none.
     */
    private static void requireSameLabelSmoothing(Map<String, String> meta, Sequential model, Path file) {
        String text = meta.getOrDefault("label_smoothing", "0");
        double saved;
        try {
            saved = Double.parseDouble(text);
        } catch (NumberFormatException e) {
            throw new InvalidDataException(file + ": metadata 'label_smoothing' is not a number: " + text, e);
        }
        if (saved != model.labelSmoothing()) {
            throw new InvalidDataException(file + ": the state's run trained with label smoothing " + saved
                    + ", the model's loss has " + model.labelSmoothing());
        }
    }

    /** A layer's description less what loading a state replaces (see {@link #requireSameLayers}). */
    private static String computed(String description) {
        return description.replaceAll(",? ?kernel=[^,]*", "")
                .replaceAll("\\((\\w+)=[^,]*, (learned[^)]*)\\)", "($1 $2)");
    }

    /**
     * Refuses a state saved by the same optimizer with other settings (RMSprop's rho, a weight decay): they are not
     * in its buffers, and going on with others would not be the run that stopped. The learning rate may differ: a
     * schedule or a plateau sets it. A setting the state does not record is one its version did not have; of
     * those, a missing weight decay was 0.
     */
    private static void requireSameOptimizerSettings(JsonNode saved, Optimizer optimizer, Path file) {
        List<String> differences = new ArrayList<>();
        optimizer.config().forEach((key, value) -> {
            if (key.equals("name") || key.equals("learning_rate")) {
                return;
            }
            JsonNode theirs = saved.get(key);
            if (theirs == null && key.equals("weight_decay")) {
                theirs = JSON.getNodeFactory().numberNode(0.0);
            }
            if (theirs == null) {
                return;
            }
            boolean same = value instanceof Number number ? theirs.isNumber()
                    && theirs.doubleValue() == number.doubleValue() : theirs.asText().equals(String.valueOf(value));
            if (!same) {
                differences.add(key + " " + theirs + " in the state, " + value + " in the model");
            }
        });
        if (!differences.isEmpty()) {
            throw new InvalidDataException(file + ": the state's " + optimizer.id() + " has other settings: "
                    + String.join("; ", differences));
        }
    }

    /**
     * The optimizer's scalar state from metadata {@value #OPTIMIZER_SCALARS}: exactly the names the optimizer has
     * (none: no key), each a finite float.
     */
    private static Map<String, Float> readOptimizerScalars(Map<String, String> meta, Optimizer optimizer, Path file) {
        Set<String> own = optimizer.stateScalars().keySet();
        if (!meta.containsKey(OPTIMIZER_SCALARS)) {
            if (!own.isEmpty()) {
                throw new InvalidDataException(file + ": metadata '" + OPTIMIZER_SCALARS + "' is missing; "
                        + optimizer.id() + " needs " + own);
            }
            return Map.of();
        }
        JsonNode node = parse(meta, OPTIMIZER_SCALARS, file);
        Map<String, Float> values = new LinkedHashMap<>();
        node.fields().forEachRemaining(field -> {
            float value = (float) field.getValue().asDouble(Double.NaN);
            if (!field.getValue().isNumber() || !Float.isFinite(value)) {
                throw new InvalidDataException(file + ": metadata '" + OPTIMIZER_SCALARS + "': " + field.getKey()
                        + " is not a finite number: " + field.getValue());
            }
            values.put(field.getKey(), value);
        });
        if (!values.keySet().equals(own)) {
            throw new InvalidDataException(file + ": metadata '" + OPTIMIZER_SCALARS + "' holds " + values.keySet()
                    + "; " + optimizer.id() + "'s scalar state is " + own);
        }
        return values;
    }

    /** Every optimizer buffer, assembled into the model's flat layout and checked; refuses a tensor left over. */
    private static Map<String, float[]> readOptimizerBuffers(SafeTensors.Reader reader, Sequential model,
                                                             Map<String, int[]> shapes) {
        Path file = reader.file();
        List<String> problems = new ArrayList<>();
        List<String> expected = new ArrayList<>();
        Map<String, Tensor> own = model.optimizer().stateBuffers();
        for (String buffer : own.keySet()) {
            for (Sequential.ParameterGroup g : model.parameterGroups()) {
                String name = optimizerTensorName(buffer, g);
                expected.add(name);
                int[] found = shapes.get(name);
                if (found == null) {
                    problems.add("no tensor " + name);
                } else if (!Arrays.equals(found, g.slot().shape())) {
                    problems.add(name + " is " + Arrays.toString(found) + ", the parameter "
                            + Arrays.toString(g.slot().shape()));
                }
            }
        }
        for (String name : shapes.keySet()) {
            if (name.startsWith(OPTIMIZER_PREFIX) && !expected.contains(name)) {
                problems.add("the optimizer (" + model.optimizer().id() + ", state " + own.keySet()
                        + ") has no tensor " + name);
            }
        }
        if (!problems.isEmpty()) {
            throw new InvalidDataException(file + ": the optimizer's state does not fit: "
                    + String.join("; ", problems.subList(0, Math.min(6, problems.size())))
                    + (problems.size() > 6 ? "; and " + (problems.size() - 6) + " more" : ""));
        }
        Map<String, float[]> buffers = new LinkedHashMap<>();
        List<SafeTensors.Entry> entries = new ArrayList<>();
        for (String buffer : own.keySet()) {
            float[] all = new float[(int) model.parameters().size()];
            for (Sequential.ParameterGroup g : model.parameterGroups()) {
                String name = optimizerTensorName(buffer, g);
                float[] values = reader.values(name);
                entries.add(new SafeTensors.Entry(name, g.slot().shape(), values));
                System.arraycopy(values, 0, all, g.offset(), values.length);
            }
            buffers.put(buffer, all);
        }
        Optional<String> nonFinite = WeightsFile.firstNonFinite(entries);
        if (nonFinite.isPresent()) {
            throw new InvalidDataException(file + ": " + nonFinite.get() + "; a run cannot go on from it");
        }
        return buffers;
    }

    private static History readHistory(JsonNode doc, int epochs, Path file) {
        String where = file + ": metadata 'history'";
        JsonNode metrics = doc.path("metrics");
        JsonNode seconds = doc.path("epoch_seconds");
        if (!metrics.isObject() || !seconds.isArray()) {
            throw new InvalidDataException(where + " needs an object 'metrics' and an array 'epoch_seconds'");
        }
        if (seconds.size() != epochs) {
            throw new InvalidDataException(where + " has " + seconds.size() + " epoch_seconds for " + epochs
                    + " epochs");
        }
        Map<String, double[]> values = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = metrics.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> metric = it.next();
            values.put(metric.getKey(), numbers(metric.getValue(), epochs, where + ", metric " + metric.getKey()));
        }
        double[] secondsPerEpoch = numbers(seconds, epochs, where + ", epoch_seconds");
        History history = new History();
        for (int e = 0; e < epochs; e++) {
            Map<String, Double> logs = new LinkedHashMap<>();
            for (Map.Entry<String, double[]> metric : values.entrySet()) {
                logs.put(metric.getKey(), metric.getValue()[e]);
            }
            history.record(logs, secondsPerEpoch[e]);
        }
        return history;
    }

    private static Profile readProfile(SafeTensors.Reader reader, JsonNode doc, List<Profile.Segment> segments,
                                       int epochs, Map<String, int[]> shapes) {
        Path file = reader.file();
        String where = file + ": metadata 'profile'";
        List<Profile.Segment> saved = new ArrayList<>();
        List<Profile.UnitStatistics> units = new ArrayList<>();
        List<int[]> epochSteps = new ArrayList<>();
        for (JsonNode g : array(doc, "segments", where)) {
            saved.add(new Profile.Segment(integer(g, "layer_index", where), text(g, "layer_name", where),
                    text(g, "layer_type", where), text(g, "parameter", where)));
        }
        for (JsonNode u : array(doc, "units", where)) {
            double[] values = new double[UNIT_FRACTIONS.size()];
            for (int i = 0; i < values.length; i++) {
                values[i] = real(u, UNIT_FRACTIONS.get(i), where);
            }
            units.add(new Profile.UnitStatistics(integer(u, "epoch", where), integer(u, "layer_index", where),
                    text(u, "layer_name", where), text(u, "activation", where), integer(u, "units", where),
                    values[0], values[1], values[2], values[3], values[4]));
        }
        for (JsonNode e : array(doc, "epochs", where)) {
            if (!e.isArray() || e.size() != 3 || !e.get(0).canConvertToInt() || !e.get(1).canConvertToInt()
                    || !e.get(2).canConvertToInt() || !e.get(0).isIntegralNumber() || !e.get(1).isIntegralNumber()
                    || !e.get(2).isIntegralNumber()) {
                throw new InvalidDataException(where + ": an entry of 'epochs' is not [epoch, steps, first global"
                        + " step]: " + e);
            }
            epochSteps.add(new int[] {e.get(0).intValue(), e.get(1).intValue(), e.get(2).intValue()});
        }
        if (!saved.equals(segments)) {
            throw new InvalidDataException(where + " describes the parameter tensors " + names(saved)
                    + ", the model has " + names(segments));
        }
        JsonNode thresholdNode = doc.path("saturation_threshold");
        double threshold = thresholdNode.isNumber() ? thresholdNode.doubleValue() : Double.NaN;
        if (!(threshold > 0) || Double.isInfinite(threshold)) {
            throw new InvalidDataException(where + " has no saturation_threshold > 0");
        }
        // Epochs in order, each within the state's, with at least one step; global steps in order. (A profile
        // may start after epoch 0: a run resumed with the profiler on that had it off before.)
        int steps = 0;
        int nextEpoch = 0;
        long nextGlobalStep = 0;
        for (int i = 0; i < epochSteps.size(); i++) {
            int[] e = epochSteps.get(i);
            if (e == null || e.length != 3 || e[0] < nextEpoch || e[0] >= epochs || e[1] < 1
                    || e[2] < nextGlobalStep || (long) steps + e[1] > Integer.MAX_VALUE) {
                throw new InvalidDataException(where + ": its epochs must be [epoch, steps, first global step], in"
                        + " order, for epochs below " + epochs + "; entry " + i + " is " + Arrays.toString(e));
            }
            steps += e[1];
            nextEpoch = e[0] + 1;
            nextGlobalStep = (long) e[2] + e[1];
        }
        int layers = segments.stream().mapToInt(Profile.Segment::layerIndex).max().orElse(-1) + 1;
        for (Profile.UnitStatistics u : units) {
            // NaN is allowed: a statistic of NaN activations (the state itself is saved from finite epochs only).
            boolean fractions = Stream.of(u.deadFraction(), u.inactiveFraction(), u.saturatedFraction())
                    .allMatch(f -> Double.isNaN(f) || (f >= 0 && f <= 1));
            if (u.epoch() < 0 || u.epoch() >= epochs || u.layerIndex() < 0 || u.layerIndex() >= layers
                    || u.units() < 1 || !fractions || Double.isInfinite(u.mean()) || u.std() < 0
                    || Double.isInfinite(u.std())) {
                throw new InvalidDataException(where + " has unit statistics that no run of this model measures"
                        + " (an epoch it did not run, a layer it lacks, fractions outside [0, 1] or a negative"
                        + " std): " + u);
            }
        }
        float[][] tables = new float[PROFILE_TABLES.size()][];
        for (int t = 0; t < PROFILE_TABLES.size(); t++) {
            String name = PROFILE_PREFIX + PROFILE_TABLES.get(t);
            int[] shape = shapes.get(name);
            int[] wanted = {steps, segments.size()};
            if (!Arrays.equals(shape, wanted)) {
                throw new InvalidDataException(file + ": tensor " + name + " is "
                        + (shape == null ? "missing" : Arrays.toString(shape)) + ", the profile needs "
                        + Arrays.toString(wanted));
            }
            tables[t] = reader.values(name);
            for (int i = 0; i < tables[t].length; i++) {
                // A square is >= 0; NaN is an update that was not measured.
                if (tables[t][i] < 0 || tables[t][i] == Float.POSITIVE_INFINITY) {
                    throw new InvalidDataException(file + ": tensor " + name + " holds " + tables[t][i] + " at step "
                            + i / segments.size() + ", tensor " + i % segments.size() + "; a squared norm of a"
                            + " state is finite and >= 0");
                }
            }
        }
        for (String name : shapes.keySet()) {
            if (name.startsWith(PROFILE_PREFIX) && !PROFILE_TABLES.contains(name.substring(PROFILE_PREFIX.length()))) {
                throw new InvalidDataException(file + ": unknown profile table " + name + "; a profile has "
                        + PROFILE_TABLES);
            }
        }
        Profile profile = new Profile(segments, threshold);
        int row = 0;
        for (int[] e : epochSteps) {
            for (int s = 0; s < e[1]; s++, row++) {
                profile.addStep(new Profile.StepStatistics(e[0], s, e[2] + s, roots(tables[0], row, segments.size()),
                        roots(tables[1], row, segments.size()), roots(tables[2], row, segments.size())));
            }
        }
        units.forEach(profile::addUnits);
        return profile;
    }

    private static double[] roots(float[] squares, int row, int width) {
        double[] out = new double[width];
        for (int i = 0; i < width; i++) {
            out[i] = Math.sqrt(squares[row * width + i]);
        }
        return out;
    }

    /** {@code [dense.kernel (layer 0, Dense), ...]}. */
    private static List<String> names(List<Profile.Segment> segments) {
        return segments.stream().map(g -> g.layerName() + "." + g.parameter() + " (layer " + g.layerIndex() + ", "
                + g.layerType() + ")").toList();
    }

    private static JsonNode array(JsonNode doc, String key, String where) {
        JsonNode node = doc.get(key);
        if (node == null || !node.isArray()) {
            throw new InvalidDataException(where + " is not a profile: '" + key + "' is not an array");
        }
        return node;
    }

    private static int integer(JsonNode object, String key, String where) {
        JsonNode node = object.get(key);
        if (node == null || !node.isIntegralNumber() || !node.canConvertToInt()) {
            throw new InvalidDataException(where + " is not a profile: '" + key + "' of " + object
                    + " is not a whole number");
        }
        return node.intValue();
    }

    private static String text(JsonNode object, String key, String where) {
        JsonNode node = object.get(key);
        if (node == null || !node.isTextual()) {
            throw new InvalidDataException(where + " is not a profile: '" + key + "' of " + object
                    + " is not a string");
        }
        return node.textValue();
    }

    /** A number; JSON has no NaN, so Jackson writes a NaN or an infinity as a string, read back here. */
    private static double real(JsonNode object, String key, String where) {
        JsonNode node = object.get(key);
        if (node != null && node.isNumber()) {
            return node.doubleValue();
        }
        if (node != null && node.isTextual() && List.of("NaN", "Infinity", "-Infinity").contains(node.textValue())) {
            return Double.parseDouble(node.textValue());
        }
        throw new InvalidDataException(where + " is not a profile: '" + key + "' of " + object + " is not a number");
    }

    private static double[] numbers(JsonNode array, int count, String where) {
        if (!array.isArray() || array.size() != count) {
            throw new InvalidDataException(where + " needs " + count + " numbers, one per epoch, got " + array);
        }
        double[] out = new double[count];
        for (int i = 0; i < count; i++) {
            if (!array.get(i).isNumber()) {
                throw new InvalidDataException(where + "[" + i + "] is not a number: " + array.get(i));
            }
            out[i] = array.get(i).doubleValue();
        }
        return out;
    }

    private static long count(Map<String, String> meta, String key, Path file, long max) {
        String text = meta.get(key);
        try {
            long value = Long.parseLong(text == null ? "" : text);
            if (value >= 0 && value <= max) {
                return value;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new InvalidDataException(file + ": metadata '" + key + "' must be a count from 0 to " + max + ", got "
                + (text == null ? "nothing" : "'" + text + "'"));
    }

    private static JsonNode parse(Map<String, String> meta, String key, Path file) {
        String text = meta.get(key);
        if (text == null) {
            throw new InvalidDataException(file + ": metadata '" + key + "' is missing");
        }
        try {
            JsonNode node = JSON.readTree(text);
            if (node != null && (key.equals("layers") ? node.isArray() : node.isObject())) {
                return node;
            }
        } catch (JsonProcessingException e) {
            throw new InvalidDataException(file + ": metadata '" + key + "' is not valid JSON: "
                    + e.getOriginalMessage(), e);
        }
        throw new InvalidDataException(file + ": metadata '" + key + "' is not a JSON "
                + (key.equals("layers") ? "array" : "object"));
    }
}
