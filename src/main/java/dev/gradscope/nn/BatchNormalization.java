package dev.gradscope.nn;

import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.Tensor;
import java.util.List;

/**
 * Keras's {@code BatchNormalization()} (S. Ioffe and C. Szegedy, 2015, "Batch Normalization: Accelerating Deep
 * Network Training by Reducing Internal Covariate Shift"), over the features of a batch of rows: each unit
 * (column) is normalised to mean 0 and variance 1, then scaled and shifted by two learned vectors,
 * {@code y = gamma * (x - mean) / sqrt(var + epsilon) + beta}.
 *
 * <p>Training ({@link #forwardTraining}) uses the batch's mean and biased variance and moves the layer's
 * {@code moving_mean} and {@code moving_variance} towards them ({@code moving = moving * momentum + batch * (1 -
 * momentum)}); inference ({@link #forward}: {@code evaluate}, {@code predict}, validation) uses the moving
 * statistics instead, so a prediction does not depend on the other rows of its batch. Keras's defaults:
 * momentum 0.99, epsilon 1e-3, gamma 1, beta 0, moving mean 0, moving variance 1. A batch of one row has
 * variance 0, so its output in training is beta.
 *
 * <p>gamma and beta are ordinary parameters (in the model's flat buffer, updated by the optimizer, profiled);
 * the moving statistics are non-trainable state ({@link #stateSlots()}), which only the training forward op
 * changes, on the device. The backward pass includes the gradient through the batch's mean and variance:
 * {@code dx = gamma / sqrt(var + epsilon) * (dy - mean(dy) - xhat * mean(dy * xhat))}.
 *
 * <p>Why it heals vanishing gradients: a deep sigmoid stack multiplies the gradient by sigmoid' <= 1/4 per
 * layer, and by less once units saturate; normalising each pre-activation keeps it in sigmoid's steep middle,
 * and the normalisation's backward pass rescales the gradient by 1/std of the pre-activation, undoing the
 * shrinking of small weights.
 *
 * <p>No units of its own for the profiler: the activation after it is watched.
 */
public class BatchNormalization extends ElementwiseLayer {
    /** Keras's default momentum of the moving statistics. */
    public static final double DEFAULT_MOMENTUM = 0.99;
    /** Keras's default epsilon, added to the variance. */
    public static final float DEFAULT_EPSILON = 1e-3f;

    private final double momentum;
    private final float epsilon;

    private Tensor gamma;
    private Tensor beta;
    private Tensor gammaGradient;
    private Tensor betaGradient;
    private Tensor movingMean;
    private Tensor movingVariance;
    private Tensor batchMean;
    private Tensor batchInvStd;
    private Tensor output;
    private Tensor inputGradient;
    /** The input of the last training forward pass, which backward reads; null after an inference pass. */
    private Tensor lastTrainingInput;

    /** Keras's defaults: momentum 0.99, epsilon 1e-3. */
    public BatchNormalization() {
        this(DEFAULT_MOMENTUM, DEFAULT_EPSILON);
    }

    /**
     * @param momentum of the moving statistics, in [0, 1]
     * @param epsilon  added to the variance, > 0
     */
    public BatchNormalization(double momentum, float epsilon) {
        if (!(momentum >= 0 && momentum <= 1)) {
            throw new IllegalArgumentException("BatchNormalization: momentum must be in [0, 1], got " + momentum);
        }
        if (!(epsilon > 0) || Float.isInfinite(epsilon)) {
            throw new IllegalArgumentException("BatchNormalization: epsilon must be a finite number > 0, got "
                    + epsilon);
        }
        this.momentum = momentum;
        this.epsilon = epsilon;
    }

    @Override
    public String typeName() {
        return "BatchNormalization";
    }


    @Override
    public List<ParameterSlot> parameterSlots() {
        return List.of(new ParameterSlot("gamma", new int[] {units}, Initializer.constant(1), units, units),
                new ParameterSlot("beta", new int[] {units}, Initializer.zeros(), units, units));
    }

    @Override
    protected void bind(List<Tensor> parameters, List<Tensor> gradients) {
        gamma = parameters.get(0);
        beta = parameters.get(1);
        gammaGradient = gradients.get(0);
        betaGradient = gradients.get(1);
    }

    @Override
    public List<ParameterSlot> stateSlots() {
        return List.of(new ParameterSlot("moving_mean", new int[] {units}, Initializer.zeros(), units, units),
                new ParameterSlot("moving_variance", new int[] {units}, Initializer.constant(1), units, units));
    }

    @Override
    protected void bindState(List<Tensor> state) {
        movingMean = state.get(0);
        movingVariance = state.get(1);
    }

    @Override
    protected void allocate(Backend backend, int maxBatch) {
        this.backend = backend;
        output = backend.allocate(DType.FLOAT32, maxBatch, units);
        inputGradient = backend.allocate(DType.FLOAT32, maxBatch, units);
        batchMean = backend.allocate(DType.FLOAT32, units);
        batchInvStd = backend.allocate(DType.FLOAT32, units);
    }

    /** Inference: normalises with the moving statistics; changes nothing. */
    @Override
    public Tensor forward(Tensor x) {
        lastTrainingInput = null;
        Tensor y = output.rows(0, x.rowCount());
        backend.batchNormInferenceForward(x, gamma, beta, movingMean, movingVariance, epsilon, y);
        return y;
    }

    /** Training: normalises with the batch's statistics and updates the moving ones, in one op. */
    @Override
    public Tensor forwardTraining(Tensor x, Tensor step) {
        lastTrainingInput = x;
        Tensor y = output.rows(0, x.rowCount());
        backend.batchNormTrainingForward(x, gamma, beta, momentum, epsilon, movingMean, movingVariance, batchMean,
                batchInvStd, y);
        return y;
    }

    @Override
    public Tensor backward(Tensor dy, boolean needInputGradient) {
        if (lastTrainingInput == null) {
            throw new IllegalStateException(name() + ": backward needs a training forward pass first");
        }
        Tensor dx = needInputGradient ? inputGradient.rows(0, dy.rowCount()) : null;
        backend.batchNormBackward(lastTrainingInput, gamma, batchMean, batchInvStd, dy, dx, gammaGradient,
                betaGradient);
        return dx;
    }

    /** The activation after it has the units the profiler watches. */
    @Override
    public boolean hasOwnUnits() {
        return false;
    }

    public double momentum() {
        return momentum;
    }

    public float epsilon() {
        return epsilon;
    }

    /** The moving mean (a view of the model's state buffer). */
    public Tensor movingMean() {
        return movingMean;
    }

    /** The moving variance (a view of the model's state buffer). */
    public Tensor movingVariance() {
        return movingVariance;
    }

    @Override
    public String describe() {
        return "momentum=" + momentum + ", epsilon=" + epsilon;
    }

    @Override
    public void close() {
        Tensor.closeAll(output, inputGradient, batchMean, batchInvStd);
        output = null;
        inputGradient = null;
        batchMean = null;
        batchInvStd = null;
    }
}
