package dev.gradscope.nn;

import dev.gradscope.data.Dataset;
import dev.gradscope.tensor.ActivationKind;
import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.StepEnd;
import dev.gradscope.tensor.Tensor;
import dev.gradscope.tensor.UpdateNorms;
import dev.gradscope.train.Evaluation;
import dev.gradscope.train.FitOptions;
import dev.gradscope.train.History;
import dev.gradscope.train.Trainer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A stack of layers trained as one model, with Keras's API: {@link #add}, {@link #compile},
 * {@link #fit}, {@link #evaluate}, {@link #predict}, {@link #summary}, {@link #saveWeights}, {@link #loadWeights}.
 *
 * <p>All parameters live in one flat buffer on the model's backend and all gradients in another;
 * layers hold views. The output layer must be a {@link Dense} layer with a softmax (or linear)
 * activation: the loss takes its logits and fuses the softmax, see {@link Loss}.
 *
 * <p>One seed drives everything random: the initial weights (drawn in layer order) and the shuffle of
 * every epoch. The same seed on the same backend gives the same run.
 */
public class Sequential implements AutoCloseable {
    private final Backend backend;
    private final long seed;
    private final SplittableRandom random;
    private final List<Layer> layers = new ArrayList<>();
    private int inputUnits = -1;
    private boolean built;
    private Optimizer optimizer;
    private Loss loss;
    private double labelSmoothing;
    private List<String> metrics = List.of();

    private Tensor parameters;
    private Tensor gradients;
    private final List<ParameterGroup> parameterGroups = new ArrayList<>();
    /** The layers' non-trainable state, one flat buffer (null when no layer has any). */
    private Tensor state;
    private final List<StateGroup> stateGroups = new ArrayList<>();
    private int allocatedBatch;
    private Tensor outputGradient;
    /** The step (epoch 0, step 0) {@link #computeGradients(Tensor, Tensor, Tensor)} passes to layers that ignore it. */
    private Tensor firstStep;
    private long layoutVersion;

    /** Where one parameter tensor of one layer lies in the flat buffers. */
    public record ParameterGroup(Layer layer, int layerIndex, ParameterSlot slot, int offset, Tensor value,
                                 Tensor gradient) {
    }

    /**
     * Where one non-trainable state tensor of one layer (a moving mean) lies in the flat state buffer: no
     * gradient, no optimizer, but saved and loaded with the parameters.
     */
    public record StateGroup(Layer layer, int layerIndex, ParameterSlot slot, int offset, Tensor value) {
    }

    public Sequential(Backend backend, long seed) {
        this.backend = backend;
        this.seed = seed;
        this.random = new SplittableRandom(seed);
    }

    public Backend backend() {
        return backend;
    }

    public long seed() {
        return seed;
    }

    /** Appends a layer; returns this model for chaining. */
    public Sequential add(Layer layer) {
        if (built) {
            throw new IllegalStateException("cannot add " + layer.typeName() + " after the model was built");
        }
        layers.add(layer);
        return this;
    }

    /** Declares the input width (Keras's {@code input_shape=(784,)}); optional, fit() infers it. */
    public Sequential input(int units) {
        if (units < 1) {
            throw new IllegalArgumentException("input width must be >= 1, got " + units);
        }
        this.inputUnits = units;
        return this;
    }

    /**
     * Chooses the optimizer, the loss and the metrics ({@code "accuracy"} is the one metric, and is
     * always computed).
     */
    public Sequential compile(Optimizer optimizer, Loss loss, String... metrics) {
        return compile(optimizer, loss, 0, metrics);
    }

    /**
     * {@link #compile(Optimizer, Loss, String...)} with label smoothing, Keras's
     * {@code CategoricalCrossentropy(label_smoothing=ls)}: {@link #fit} and {@link #evaluate} train on and score
     * against the targets {@code onehot * (1 - ls) + ls / K} (K classes), so the loss they report, val_loss
     * included, is the smoothed one, as Keras reports it. The accuracy is unchanged: the label's class keeps the
     * largest target.
     *
     * @param labelSmoothing in [0, 1); above 0 for categorical cross-entropy only
     */
    public Sequential compile(Optimizer optimizer, Loss loss, double labelSmoothing, String... metrics) {
        loss.requireLabelSmoothing(labelSmoothing);
        for (String m : metrics) {
            if (!m.equalsIgnoreCase("accuracy") && !m.equalsIgnoreCase("acc")) {
                throw new IllegalArgumentException("unknown metric '" + m + "'; valid: accuracy");
            }
        }
        if (layers.isEmpty()) {
            throw new IllegalStateException("compile: the model has no layers");
        }
        Layer last = layers.get(layers.size() - 1);
        if (!(last instanceof Dense dense)
                || (dense.activation() != ActivationKind.SOFTMAX && dense.activation() != ActivationKind.LINEAR)) {
            throw new IllegalArgumentException("compile: the output layer must be Dense with a softmax (or linear)"
                    + " activation, because the loss fuses the softmax; got " + last.typeName() + " ("
                    + last.describe() + ")");
        }
        this.optimizer = optimizer;
        this.loss = loss;
        this.labelSmoothing = labelSmoothing;
        this.metrics = List.of("accuracy");
        layoutVersion++;
        if (built) {
            optimizer.build(backend, (int) parameters.size());
        }
        return this;
    }

    /** Builds the layers for inputs of {@code inputUnits} features and initialises the parameters. */
    public Sequential build(int inputUnits) {
        if (built) {
            if (inputUnits != this.inputUnits) {
                throw new IllegalArgumentException("the model was built for " + this.inputUnits
                        + " input features, got data with " + inputUnits);
            }
            return this;
        }
        if (layers.isEmpty()) {
            throw new IllegalStateException("build: the model has no layers");
        }
        this.inputUnits = inputUnits;
        Map<String, Integer> nameCounts = new HashMap<>();
        int width = inputUnits;
        for (Layer layer : layers) {
            String base = snakeCase(layer.typeName());
            int count = nameCounts.merge(base, 1, Integer::sum);
            layer.setName(count == 1 ? base : base + "_" + (count - 1));
            width = layer.build(width);
        }
        for (int i = 0; i < layers.size(); i++) {
            layers.get(i).place(seed, i);
        }
        layOutParameters();
        built = true;
        if (optimizer != null) {
            optimizer.build(backend, (int) parameters.size());
        }
        return this;
    }

    private void layOutParameters() {
        requireInitializersFit();
        int total = 0;
        for (Layer layer : layers) {
            total += layer.parameterCount();
        }
        float[] initial = new float[total];
        parameters = backend.allocate(DType.FLOAT32, total);
        gradients = backend.allocate(DType.FLOAT32, total);
        int offset = 0;
        for (int li = 0; li < layers.size(); li++) {
            Layer layer = layers.get(li);
            List<Tensor> values = new ArrayList<>();
            List<Tensor> grads = new ArrayList<>();
            for (ParameterSlot slot : layer.parameterSlots()) {
                initialize(slot, initial, offset);
                Tensor value = parameters.view(offset, slot.shape());
                Tensor grad = gradients.view(offset, slot.shape());
                values.add(value);
                grads.add(grad);
                parameterGroups.add(new ParameterGroup(layer, li, slot, offset, value, grad));
                offset += slot.size();
            }
            layer.bind(values, grads);
        }
        backend.copyFromHost(initial, parameters);
        firstStep = backend.allocate(DType.INT32, 2);
        layOutState();
    }

    /** Writes {@code slot}'s initial values (its shape was checked by {@link #requireInitializersFit}). */
    private void initialize(ParameterSlot slot, float[] initial, int offset) {
        slot.initializer().fill(initial, offset, slot.shape(), slot.fanIn(), slot.fanOut(), random);
    }

    /**
     * Refuses, before anything is allocated, an initializer that cannot fill its tensor (orthogonal or identity on
     * a bias), naming the layer, the tensor and its shape.
     */
    private void requireInitializersFit() {
        for (Layer layer : layers) {
            for (List<ParameterSlot> slots : List.of(layer.parameterSlots(), layer.stateSlots())) {
                for (ParameterSlot slot : slots) {
                    try {
                        slot.initializer().requireFits(slot.shape());
                    } catch (IllegalArgumentException e) {
                        throw new IllegalArgumentException("layer " + layer.name() + " (" + layer.typeName() + "), its "
                                + slot.name() + ": " + e.getMessage(), e);
                    }
                }
            }
        }
    }

    /** The non-trainable state's flat buffer and its views; its initializers draw no random numbers. */
    private void layOutState() {
        int total = layers.stream().mapToInt(Layer::stateCount).sum();
        if (total == 0) {
            return;
        }
        float[] initial = new float[total];
        state = backend.allocate(DType.FLOAT32, total);
        int offset = 0;
        for (int li = 0; li < layers.size(); li++) {
            Layer layer = layers.get(li);
            List<Tensor> values = new ArrayList<>();
            for (ParameterSlot slot : layer.stateSlots()) {
                initialize(slot, initial, offset);
                Tensor value = state.view(offset, slot.shape());
                values.add(value);
                stateGroups.add(new StateGroup(layer, li, slot, offset, value));
                offset += slot.size();
            }
            layer.bindState(values);
        }
        backend.copyFromHost(initial, state);
    }

    /** Makes sure every layer has buffers for batches of {@code batch} rows (allocates only when it grows). */
    public void reserveBatch(int batch) {
        requireBuilt("reserveBatch");
        if (batch <= allocatedBatch) {
            return;
        }
        for (Layer layer : layers) {
            layer.close();
            layer.allocate(backend, batch);
        }
        if (outputGradient != null) {
            outputGradient.close();
        }
        outputGradient = backend.allocate(DType.FLOAT32, batch, outputUnits());
        allocatedBatch = batch;
        layoutVersion++;
    }

    /**
     * Changes whenever the model's device buffers may have moved or its ops changed: the layers' batch
     * buffers grew ({@link #reserveBatch}), or {@link #compile} chose another optimizer or loss. A step
     * captured as a graph points at the old buffers and must be captured again then.
     */
    public long layoutVersion() {
        return layoutVersion;
    }

    /** Runs the layers on a batch already on the device; returns the last layer's output. */
    public Tensor forward(Tensor x) {
        return forward(x, false);
    }

    /**
     * Runs the layers on a batch; with {@code toLogits}, the output layer only up to its logits (the loss
     * fuses the softmax, so training and evaluation skip the output activation) and returns them.
     */
    private Tensor forward(Tensor x, boolean toLogits) {
        Tensor h = forwardHidden(x, null);
        Layer output = layers.get(layers.size() - 1);
        return toLogits ? ((Dense) output).forwardLogits(h) : output.forward(h);
    }

    /**
     * Checks the batch and runs every layer but the output layer, in inference ({@code step} null) or in the
     * training step {@code step} ({@link Layer#forwardTraining}); returns the output layer's input.
     */
    private Tensor forwardHidden(Tensor x, Tensor step) {
        requireBuilt("forward");
        if (x.columnCount() != inputUnits) {
            throw new IllegalArgumentException("the model takes " + inputUnits + " input features, got "
                    + java.util.Arrays.toString(x.shape()));
        }
        reserveBatch(x.rowCount());
        Tensor h = x;
        for (int i = 0; i < layers.size() - 1; i++) {
            h = step == null ? layers.get(i).forward(h) : layers.get(i).forwardTraining(h, step);
        }
        return h;
    }

    /**
     * One forward and backward pass on a device batch: writes every parameter gradient (=) and
     * accumulates the batch's summed loss and correct count into {@code totals} (2 floats). Gradients
     * are of the batch-mean loss. The targets are used as given: for a model compiled with a label smoothing, pass
     * the smoothed rows ({@code Dataset.oneHotLabels(model.labelSmoothing())}), as fit does. A training pass, for a
     * model whose layers draw no random numbers: a model
     * with a {@link Dropout} must say which step it is in ({@link #computeGradients(Tensor, Tensor, Tensor, Tensor)}),
     * since its masks come from the step, and a loop that called this form would train one mask throughout.
     *
     * @throws IllegalStateException when the model has a Dropout with a rate above 0
     */
    public void computeGradients(Tensor x, Tensor targets, Tensor totals) {
        requireBuilt("computeGradients");
        for (Layer layer : layers) {
            if (layer instanceof Dropout dropout && dropout.rate() > 0) {
                throw new IllegalStateException(layer.name() + " draws its mask from the training step: call"
                        + " computeGradients(x, targets, totals, step) with the step's (epoch, step of the epoch) as two"
                        + " INT32 elements on the device, as fit does, so that each step draws its own");
            }
        }
        computeGradients(x, targets, totals, firstStep);
    }

    /**
     * {@link #computeGradients(Tensor, Tensor, Tensor)} in the training step {@code step}: its {@code (epoch, step
     * of the epoch)} as two INT32 elements on the device, which dropout layers draw their masks from there (the
     * trainer's step counters, so a replayed graph draws a fresh mask each step and a resumed run the masks of the
     * run it resumes).
     */
    public void computeGradients(Tensor x, Tensor targets, Tensor totals, Tensor step) {
        requireCompiled("computeGradients");
        Tensor h = forwardHidden(x, step);
        int batch = x.rowCount();
        Dense output = (Dense) layers.get(layers.size() - 1);
        Tensor dLogits = outputGradient.rows(0, batch);
        // The output layer's bias, softmax, loss and bias gradient in one op: its forward pass stops at x · W.
        loss.apply(backend, output.forwardProduct(h), output.bias(), targets, 1f / batch, dLogits,
                output.biasGradient(), totals);
        Tensor g = output.backwardProductsFromLogits(dLogits, layers.size() > 1);
        for (int i = layers.size() - 2; i >= 0; i--) {
            g = layers.get(i).backward(g, i > 0);
        }
        backend.joinAside(); // the weight gradients, queued aside by the layers, are all written from here on
    }

    /**
     * Evaluates the loss on a device batch without touching the gradients: accumulates summed loss and
     * correct count into {@code totals}. The targets are used as given (smoothed ones for a model compiled with a
     * label smoothing, as evaluate passes).
     */
    public void accumulateLoss(Tensor x, Tensor targets, Tensor totals) {
        requireCompiled("evaluate");
        forward(x, true);
        Dense output = (Dense) layers.get(layers.size() - 1);
        Tensor scratch = outputGradient.rows(0, x.rowCount());
        loss.apply(backend, output.logits(), targets, 0f, scratch, totals);
    }

    /** Applies one optimizer step from the gradients of the last {@link #computeGradients}. */
    public void applyGradients() {
        applyGradients(StepEnd.NONE);
    }

    /**
     * {@link #applyGradients()}, also writing the step's {@link UpdateNorms} (per parameter tensor, in the
     * order of {@link #parameterGroups()}) when {@code norms} is not null.
     */
    public void applyGradients(UpdateNorms norms) {
        applyGradients(StepEnd.measuring(norms));
    }

    /**
     * {@link #applyGradients()}, also doing the work that ends a training step ({@link StepEnd}), in the
     * update's own launch on a GPU; its segments are those of {@link #parameterGroups()}.
     */
    public void applyGradients(StepEnd end) {
        requireCompiled("applyGradients");
        optimizer.step(parameters, gradients, end);
    }

    /** Trains on a labelled dataset, Keras's {@code fit(x, y, batch_size, epochs, validation_data)}. */
    public History fit(Dataset train, int batchSize, int epochs, Dataset validation) {
        return fit(train, FitOptions.builder().batchSize(batchSize).epochs(epochs).validation(validation).build());
    }

    /** Trains with full control over the loop: callbacks, verbosity, shuffling. */
    public History fit(Dataset train, FitOptions options) {
        return Trainer.fit(this, train, options);
    }

    /** Mean loss and accuracy over a dataset. */
    public Evaluation evaluate(Dataset data, int batchSize) {
        return Trainer.evaluate(this, data, batchSize);
    }

    /**
     * The model's outputs (class probabilities when the output is softmax) for the rows of
     * {@code x} ({@code [n, inputFeatures]}, any backend), as a new host array {@code [n][outputs]}.
     */
    public float[][] predict(float[][] x, int batchSize) {
        return predict(x, batchSize, false);
    }

    /**
     * {@link #predict} stopping at the output layer's logits, before its softmax: what the loss and the accuracy
     * the evaluation counts are taken from (the largest logit is the predicted class).
     */
    public float[][] predictLogits(float[][] x, int batchSize) {
        return predict(x, batchSize, true);
    }

    private float[][] predict(float[][] x, int batchSize, boolean logits) {
        int n = x.length;
        build(n == 0 ? inputUnits : x[0].length);
        int batch = Math.max(1, Math.min(batchSize, n));
        reserveBatch(batch);
        float[][] out = new float[n][];
        try (Tensor input = backend.allocate(DType.FLOAT32, batch, inputUnits)) {
            for (int first = 0; first < n; first += batch) {
                int rows = Math.min(batch, n - first);
                float[] flat = new float[rows * inputUnits];
                for (int r = 0; r < rows; r++) {
                    if (x[first + r].length != inputUnits) {
                        throw new IllegalArgumentException("predict: row " + (first + r) + " has "
                                + x[first + r].length + " features, the model takes " + inputUnits);
                    }
                    System.arraycopy(x[first + r], 0, flat, r * inputUnits, inputUnits);
                }
                Tensor xb = input.rows(0, rows);
                backend.copyFromHost(flat, xb);
                float[] y = (logits ? forward(xb, true) : forward(xb)).toFloatArray();
                int width = outputUnits();
                for (int r = 0; r < rows; r++) {
                    out[first + r] = java.util.Arrays.copyOfRange(y, r * width, (r + 1) * width);
                }
            }
        }
        return out;
    }

    /**
     * Keras's {@code save_weights}: writes every parameter to {@code file} as safetensors ({@link WeightsFile}).
     *
     * @throws IllegalStateException when a parameter is NaN or infinite; nothing is written then
     */
    public void saveWeights(Path file) {
        saveWeights(file, Map.of());
    }

    /** {@link #saveWeights(Path)} with {@code metadata} added to the file's own (strings, as safetensors holds). */
    public void saveWeights(Path file, Map<String, String> metadata) {
        requireBuilt("saveWeights");
        WeightsFile.save(this, file, metadata);
    }

    /**
     * Keras's {@code load_weights}: sets every parameter from a safetensors file whose tensors match this
     * model's by name and shape ({@link WeightsFile}). The optimizer's state is left as it is.
     *
     * @throws dev.gradscope.data.InvalidDataException when the file cannot be read or does not fit; the
     *                                                 model is unchanged then
     */
    public void loadWeights(Path file) {
        requireBuilt("loadWeights");
        WeightsFile.load(this, file);
    }

    /** The layer table Keras prints: name (type), output shape, parameter count, and the totals. */
    public String summary() {
        requireBuilt("summary");
        StringBuilder sb = new StringBuilder();
        String rule = "─".repeat(72) + "\n";
        String thick = "━".repeat(72) + "\n";
        sb.append("Model: \"sequential\"\n").append(thick);
        sb.append(String.format(Locale.ROOT, "%-32s%-24s%16s%n", "Layer (type)", "Output Shape", "Param #"));
        sb.append(thick);
        long trainable = 0;
        long nonTrainable = 0;
        for (int i = 0; i < layers.size(); i++) {
            Layer layer = layers.get(i);
            // Keras counts a layer's non-trainable weights (BatchNormalization's moving statistics) in its column.
            String label = layer.name() + " (" + layer.typeName() + ")";
            String shape = "(None, " + layer.outputUnits() + ")";
            long count = layer.parameterCount() + layer.stateCount();
            if (label.length() < 32) {
                sb.append(String.format(Locale.ROOT, "%-32s%-24s%,16d%n", label, shape, count));
            } else { // as Keras wraps a long cell: the type on a line of its own
                sb.append(String.format(Locale.ROOT, "%-32s%-24s%,16d%n", layer.name(), shape, count));
                sb.append("(").append(layer.typeName()).append(")\n");
            }
            trainable += layer.parameterCount();
            nonTrainable += layer.stateCount();
            sb.append(i + 1 < layers.size() ? rule : thick);
        }
        long total = trainable + nonTrainable;
        sb.append(String.format(Locale.ROOT, " Total params: %,d (%s)%n", total, humanBytes(total * 4)));
        sb.append(String.format(Locale.ROOT, " Trainable params: %,d (%s)%n", trainable, humanBytes(trainable * 4)));
        sb.append(String.format(Locale.ROOT, " Non-trainable params: %,d (%s)%n", nonTrainable,
                humanBytes(nonTrainable * 4)));
        return sb.toString();
    }

    private static String humanBytes(long bytes) {
        if (bytes < 1024) {
            return String.format(Locale.ROOT, "%.2f B", (double) bytes);
        }
        if (bytes < 1024 * 1024) {
            return String.format(Locale.ROOT, "%.2f KB", bytes / 1024.0);
        }
        return String.format(Locale.ROOT, "%.2f MB", bytes / (1024.0 * 1024.0));
    }

    /** Keras's layer naming: {@code Dense} to {@code dense}, {@code PReLU} to {@code p_re_lu}. */
    static String snakeCase(String typeName) {
        String s = typeName.replaceAll("(.)([A-Z][a-z]+)", "$1_$2");
        return s.replaceAll("([a-z])([A-Z])", "$1_$2").toLowerCase(Locale.ROOT);
    }

    public List<Layer> layers() {
        return Collections.unmodifiableList(layers);
    }

    /** Where each parameter tensor lies in the flat buffers, in layer order. */
    public List<ParameterGroup> parameterGroups() {
        return Collections.unmodifiableList(parameterGroups);
    }

    /** Where each non-trainable state tensor lies in the flat state buffer, in layer order. */
    public List<StateGroup> stateGroups() {
        return Collections.unmodifiableList(stateGroups);
    }

    /**
     * The flat buffer of the layers' non-trainable state (views of it are, e.g., the moving statistics), or null
     * when no layer has state.
     */
    public Tensor state() {
        requireBuilt("state");
        return state;
    }

    /** The flat parameter buffer (views of it are the layers' weights). */
    public Tensor parameters() {
        requireBuilt("parameters");
        return parameters;
    }

    /** The flat gradient buffer, written by {@link #computeGradients}. */
    public Tensor gradients() {
        requireBuilt("gradients");
        return gradients;
    }

    public boolean isBuilt() {
        return built;
    }

    public int inputUnits() {
        return inputUnits;
    }

    public int outputUnits() {
        return layers.get(layers.size() - 1).outputUnits();
    }

    public long parameterCount() {
        return layers.stream().mapToLong(Layer::parameterCount).sum();
    }

    public Optimizer optimizer() {
        return optimizer;
    }

    public Loss loss() {
        return loss;
    }

    /** The loss's label smoothing, 0 for none (see {@link #compile(Optimizer, Loss, double, String...)}). */
    public double labelSmoothing() {
        return labelSmoothing;
    }

    public List<String> metrics() {
        return metrics;
    }

    /** The model's random stream, after initialisation: the trainer draws each epoch's shuffle from it. */
    public SplittableRandom random() {
        return random;
    }

    private void requireBuilt(String what) {
        if (!built) {
            throw new IllegalStateException(what + ": the model is not built yet (call build(inputUnits) or fit)");
        }
    }

    private void requireCompiled(String what) {
        requireBuilt(what);
        if (loss == null || optimizer == null) {
            throw new IllegalStateException(what + ": call compile(optimizer, loss) first");
        }
    }

    @Override
    public void close() {
        for (Layer layer : layers) {
            layer.close();
        }
        if (optimizer != null) {
            optimizer.close();
        }
        Tensor.closeAll(parameters, gradients, outputGradient, firstStep, state);
    }
}
