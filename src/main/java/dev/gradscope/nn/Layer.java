package dev.gradscope.nn;

import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.Tensor;
import java.util.List;

/**
 * A layer of a {@link Sequential} model that maps a batch of rows {@code [batch, inputUnits]} to
 * {@code [batch, outputUnits]}.
 *
 * <p>Life cycle, driven by the model: {@link #build} fixes the input width; the model lays out the
 * {@link #parameterSlots()} in its flat buffers and calls {@link #bind} with views of them;
 * {@link #allocate} creates the layer's activation buffers for the largest batch, once. After that,
 * {@link #forward} and {@link #backward} only run backend ops on fixed buffers: no allocation in a
 * training step. Both return views of buffers the layer owns, valid until its next call.
 */
public abstract class Layer implements AutoCloseable {
    private String name;
    protected int inputUnits = -1;
    protected Backend backend;

    /** The layer's kind as Keras names it in {@code summary()}: {@code "Dense"}, {@code "PReLU"}... */
    public abstract String typeName();

    /** Fixes the input width and returns the output width. */
    public abstract int build(int inputUnits);

    public abstract int outputUnits();

    public int inputUnits() {
        return inputUnits;
    }

    /** The parameter tensors this layer needs, in the order {@link #bind} receives them. */
    public List<ParameterSlot> parameterSlots() {
        return List.of();
    }

    /** Receives views of the model's parameter and gradient buffers, one per slot. */
    protected void bind(List<Tensor> parameters, List<Tensor> gradients) {
    }

    /**
     * The layer's non-trainable state tensors (Keras's {@code non_trainable_weights}: a
     * {@link BatchNormalization}'s moving statistics), in the order {@link #bindState} receives them. The model
     * lays them out in one flat state buffer apart from the parameters, so that the optimizer never touches them;
     * the layer's own ops update them on the device in a training step; weights files and training states save
     * them beside the parameters.
     */
    public List<ParameterSlot> stateSlots() {
        return List.of();
    }

    /** Receives views of the model's state buffer, one per {@link #stateSlots()} slot. */
    protected void bindState(List<Tensor> state) {
    }

    /** Creates this layer's buffers for batches of up to {@code maxBatch} rows. */
    protected abstract void allocate(Backend backend, int maxBatch);

    /**
     * Computes the layer's output for the batch {@code x} in inference ({@code evaluate}, {@code predict},
     * validation): no dropout.
     */
    public abstract Tensor forward(Tensor x);

    /**
     * The forward pass of a training step ({@link Sequential#computeGradients}), keeping what backward needs: what
     * {@link #forward} computes, plus what only training does (a {@link Dropout} drops units). {@code step} is the
     * step's {@code (epoch, step of the epoch)} as two INT32 elements on the device, read there by a layer that
     * draws random numbers, so that a step captured as a graph draws afresh each time it is replayed. The mode is
     * the method: a captured training step holds the training ops, and evaluation never calls this.
     */
    public Tensor forwardTraining(Tensor x, Tensor step) {
        return forward(x);
    }

    /**
     * Gives the layer its place in the model, once, when the model is built: a layer that draws random numbers in
     * training derives its own stream from the model's seed and its index (so the same seed gives the same run).
     */
    protected void place(long modelSeed, int layerIndex) {
    }

    /**
     * Given {@code dy}, the loss gradient with respect to this layer's last output, writes (=) the
     * gradients of this layer's parameters and returns the gradient with respect to its input, or null
     * when {@code needInputGradient} is false (the first layer skips that product).
     */
    public abstract Tensor backward(Tensor dy, boolean needInputGradient);

    public final String name() {
        return name;
    }

    final void setName(String name) {
        this.name = name;
    }

    /**
     * What the layer's units did in the last forward pass, for the profiler: the activation, its input
     * {@code z}, parameter and output {@code y}; null when the layer has no units of its own to watch
     * (the softmax output, a linear layer).
     */
    public Activity lastActivity() {
        return null;
    }

    /**
     * Whether the layer computes units of its own for the profiler to watch; false for one that passes the units
     * before it through ({@link Dropout}: their activity is the layer's before it).
     */
    public boolean hasOwnUnits() {
        return true;
    }

    /**
     * Asks the layer to add its units' statistics (see {@link dev.gradscope.tensor.Backend#accumulateUnitStatistics})
     * to {@code statistics}, {@code [4, units]}, in each backward pass from now on, inside the pass that
     * already evaluates its activation's derivative; {@code null} stops it. The profiler's way of watching
     * units at the cost of a few additions per element.
     *
     * @return false when the layer cannot (it has no element-wise activation of its own): the caller then
     *         computes the statistics from {@link #lastActivity()} when there is one
     */
    public boolean watchUnits(Tensor statistics, float saturationThreshold) {
        return false;
    }

    /**
     * The units of a layer in the last forward pass.
     *
     * @param kind  the element-wise activation applied
     * @param z     its input {@code [batch, units]}
     * @param param its parameter (1 or one per unit), or null
     * @param y     its output {@code [batch, units]}
     */
    public record Activity(dev.gradscope.tensor.ActivationKind kind, Tensor z, Tensor param, Tensor y) {
    }

    public int parameterCount() {
        return parameterSlots().stream().mapToInt(ParameterSlot::size).sum();
    }

    /** The elements of the layer's non-trainable state ({@link #stateSlots()}). */
    public int stateCount() {
        return stateSlots().stream().mapToInt(ParameterSlot::size).sum();
    }

    /** A short description of the layer's configuration, for summaries and saved configs. */
    public abstract String describe();

    /** Releases the buffers made by {@link #allocate}. */
    @Override
    public void close() {
    }
}
