package dev.gradscope.nn;

import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * One layer run on its own on the CPU backend, with its parameters in a flat buffer as a model would
 * lay them out, and the test loss {@code L = sum(weights * layer(x))} computed in double.
 */
final class LayerHarness implements AutoCloseable {
    final CpuBackend backend = new CpuBackend();
    final Layer layer;
    final int batch;
    final float[] parameterValues;
    final Tensor parameters;
    final Tensor gradients;
    final float[] input;
    final Tensor inputTensor;
    final float[] outputWeights;
    /** The layer's non-trainable state (a BatchNormalization's moving statistics), or null when it has none. */
    final Tensor state;
    /** The step a training forward pass is given: (epoch 0, step 0). */
    final Tensor step;
    /** Whether {@link #forward} is the training forward pass ({@link Layer#forwardTraining}). */
    boolean training;

    LayerHarness(Layer layer, int inputUnits, int batch, long seed, InputSampler sampler) {
        this.layer = layer;
        this.batch = batch;
        layer.setName("layer_under_test");
        int outputUnits = layer.build(inputUnits);
        SplittableRandom random = new SplittableRandom(seed);
        parameterValues = new float[layer.parameterCount()];
        parameters = backend.allocate(DType.FLOAT32, Math.max(1, parameterValues.length));
        gradients = backend.allocate(DType.FLOAT32, Math.max(1, parameterValues.length));
        List<Tensor> values = new ArrayList<>();
        List<Tensor> grads = new ArrayList<>();
        int offset = 0;
        for (ParameterSlot slot : layer.parameterSlots()) {
            slot.initializer().fill(parameterValues, offset, slot.shape(), slot.fanIn(), slot.fanOut(), random);
            values.add(parameters.view(offset, slot.shape()));
            grads.add(gradients.view(offset, slot.shape()));
            offset += slot.size();
        }
        layer.bind(values, grads);
        float[] initialState = new float[layer.stateCount()];
        state = initialState.length == 0 ? null : backend.allocate(DType.FLOAT32, initialState.length);
        List<Tensor> stateViews = new ArrayList<>();
        offset = 0;
        for (ParameterSlot slot : layer.stateSlots()) {
            slot.initializer().fill(initialState, offset, slot.shape(), slot.fanIn(), slot.fanOut(), random);
            stateViews.add(state.view(offset, slot.shape()));
            offset += slot.size();
        }
        if (state != null) {
            backend.copyFromHost(initialState, state);
            layer.bindState(stateViews);
        }
        step = backend.allocate(DType.INT32, 2);
        layer.allocate(backend, batch);
        uploadParameters();
        input = new float[batch * inputUnits];
        for (int i = 0; i < input.length; i++) {
            input[i] = sampler.sample(random);
        }
        inputTensor = backend.fromHost(input, batch, inputUnits);
        outputWeights = new float[batch * outputUnits];
        for (int i = 0; i < outputWeights.length; i++) {
            outputWeights[i] = (float) random.nextDouble(-1, 1);
        }
    }

    /** Draws one input value. */
    interface InputSampler {
        float sample(SplittableRandom random);
    }

    static InputSampler uniform(double limit) {
        return r -> (float) r.nextDouble(-limit, limit);
    }

    /**
     * {@code x · W + b} in double on the host, {@code [batch][width]} flattened, for a layer whose
     * parameters are a kernel {@code [in, width]} followed by a bias {@code [width]} (Dense, Maxout's pieces).
     */
    double[] hostPreActivations(int width) {
        int in = input.length / batch;
        double[] z = new double[batch * width];
        for (int b = 0; b < batch; b++) {
            for (int j = 0; j < width; j++) {
                double sum = parameterValues[in * width + j];
                for (int i = 0; i < in; i++) {
                    sum += (double) input[b * in + i] * parameterValues[i * width + j];
                }
                z[b * width + j] = sum;
            }
        }
        return z;
    }

    void uploadParameters() {
        if (parameterValues.length > 0) {
            backend.copyFromHost(parameterValues, parameters);
        }
    }

    void uploadInput() {
        backend.copyFromHost(input, inputTensor);
    }

    float[] forward() {
        return (training ? layer.forwardTraining(inputTensor, step) : layer.forward(inputTensor)).toFloatArray();
    }

    /** The test loss: sum of the outputs weighted by fixed random weights, in double. */
    double loss() {
        float[] y = forward();
        double sum = 0;
        for (int i = 0; i < y.length; i++) {
            sum += (double) outputWeights[i] * y[i];
        }
        return sum;
    }

    /** Runs forward then backward with dL/dy = the output weights; returns dL/dx. */
    float[] backward() {
        forward();
        try (Tensor dy = backend.fromHost(outputWeights, batch, outputWeights.length / batch)) {
            return layer.backward(dy, true).toFloatArray();
        }
    }

    float[] parameterGradients() {
        return gradients.toFloatArray();
    }

    GradientCheck.Nudgeable parameterNudger() {
        return GradientCheck.hostMirror(parameterValues, this::uploadParameters);
    }

    GradientCheck.Nudgeable inputNudger() {
        return GradientCheck.hostMirror(input, this::uploadInput);
    }

    @Override
    public void close() {
        layer.close();
        inputTensor.close();
        parameters.close();
        gradients.close();
        Tensor.closeAll(state, step);
        backend.close();
    }
}
