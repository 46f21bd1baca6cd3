package dev.gradscope.nn;

import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.DropoutMask;
import dev.gradscope.tensor.Tensor;

/**
 * Keras's {@code Dropout(rate)} (Srivastava et al., 2014, "Dropout: A Simple Way to Prevent Neural Networks from
 * Overfitting"): in a training step each unit of each example is set to 0 with probability {@code rate} and the
 * kept ones are scaled by {@code 1 / (1 - rate)} (inverted dropout), so that the expected output is the input and
 * inference ({@code evaluate}, {@code predict}, validation) passes the input through unchanged. Rate 0 is the
 * identity in training too.
 *
 * <p>The mask is a hash of the model's seed, this layer's index, the step's {@code (epoch, step of the epoch)}
 * (device counters) and the element ({@link DropoutMask}): no generator state, a fresh mask in every step of a
 * replayed graph, the same masks in a resumed run, and the same bits on the CPU and a GPU. The backward pass
 * draws the mask again rather than keeping it in a buffer.
 *
 * <p>No parameters and no units of its own: the profiler watches the units of the layer before it (their
 * activity is that of the activation, before any unit is dropped).
 */
public class Dropout extends ElementwiseLayer {
    private final double rate;
    private long streamKey;
    private Tensor output;
    private Tensor inputGradient;
    /** The step of the last training forward pass, which backward draws the same mask for. */
    private Tensor lastStep;

    /** @param rate the fraction of units dropped in training, in [0, 1) */
    public Dropout(double rate) {
        this.rate = requireRate(rate);
    }

    /** {@code rate} when it is in [0, 1), also as a float (the ops take it so); else an error saying why. */
    public static double requireRate(double rate) {
        if (!(rate >= 0 && rate < 1) || (float) rate >= 1) {
            throw new IllegalArgumentException("Dropout: rate must be in [0, 1) (1 would drop every unit), got "
                    + rate);
        }
        return rate;
    }

    public double rate() {
        return rate;
    }

    @Override
    public String typeName() {
        return "Dropout";
    }


    @Override
    protected void place(long modelSeed, int layerIndex) {
        this.streamKey = DropoutMask.streamKey(modelSeed, layerIndex);
    }

    /** The key of this layer's masks ({@link DropoutMask#streamKey}). */
    public long streamKey() {
        return streamKey;
    }

    /** The units are those of the layer before, which the profiler watches there. */
    @Override
    public boolean hasOwnUnits() {
        return false;
    }

    @Override
    protected void allocate(Backend backend, int maxBatch) {
        this.backend = backend;
        if (rate > 0) {
            output = backend.allocate(DType.FLOAT32, maxBatch, units);
            inputGradient = backend.allocate(DType.FLOAT32, maxBatch, units);
        }
    }

    /** Inference: the input itself, no op. */
    @Override
    public Tensor forward(Tensor x) {
        lastStep = null;
        return x;
    }

    @Override
    public Tensor forwardTraining(Tensor x, Tensor step) {
        lastStep = step;
        if (rate == 0) {
            return x;
        }
        Tensor y = output.rows(0, x.rowCount());
        backend.dropoutForward(x, rate, streamKey, step, y);
        return y;
    }

    @Override
    public Tensor backward(Tensor dy, boolean needInputGradient) {
        if (lastStep == null) {
            throw new IllegalStateException(name() + ": backward needs a training forward pass first");
        }
        if (!needInputGradient) {
            return null;
        }
        if (rate == 0) {
            return dy;
        }
        Tensor dx = inputGradient.rows(0, dy.rowCount());
        backend.dropoutBackward(dy, rate, streamKey, lastStep, dx);
        return dx;
    }

    @Override
    public String describe() {
        return "rate=" + rate;
    }

    @Override
    public void close() {
        Tensor.closeAll(output, inputGradient);
        output = null;
        inputGradient = null;
    }
}
