package dev.gradscope.nn;

import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.Tensor;
import java.util.List;

/**
 * Maxout (Goodfellow et al., 2013, "Maxout Networks"): each of {@code units} outputs is the largest of
 * {@code pieces} affine functions of the input, {@code y_u = max_p (x · W + b)[u*pieces + p]}. It learns
 * its own piecewise-linear, convex activation; the gradient flows only through the winning piece, so no
 * unit saturates, at {@code pieces} times the parameters of a Dense layer.
 *
 * <p>The kernel is {@code [in, units * pieces]}, piece p of unit u in column {@code u * pieces + p}: the kernel of
 * a Dense layer of {@code units * pieces} units before a maxout, as Keras users build it. A whole-matrix
 * initializer sees that one matrix: {@code orthogonal} makes every piece's weight vector orthogonal to every other
 * piece's, of its own unit and of the others, when {@code in >= units * pieces} (its rows orthogonal when wider);
 * {@code identity} fits only {@code in == units * pieces}.
 */
public class Maxout extends Layer {
    private final int units;
    private final int pieces;
    private Initializer kernelInitializer = Initializer.glorotUniform();

    private Affine affine;
    private Tensor preActivation;
    private Tensor output;
    private Tensor winner;
    private Tensor preActivationGradient;
    private Tensor lastWinner;
    private Tensor lastPreActivation;
    private Tensor lastOutput;

    public Maxout(int units, int pieces) {
        if (units < 1 || pieces < 1) {
            throw new IllegalArgumentException("Maxout: units and pieces must be >= 1, got " + units + " and "
                    + pieces);
        }
        if ((long) units * pieces > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("Maxout: " + units + " units of " + pieces + " pieces are more than "
                    + Integer.MAX_VALUE + " pre-activations per row");
        }
        this.units = units;
        this.pieces = pieces;
    }

    public Maxout kernelInitializer(Initializer initializer) {
        this.kernelInitializer = initializer;
        return this;
    }

    @Override
    public String typeName() {
        return "Maxout";
    }

    @Override
    public int build(int inputUnits) {
        this.inputUnits = inputUnits;
        this.affine = new Affine(inputUnits, units * pieces);
        return units;
    }

    @Override
    public int outputUnits() {
        return units;
    }

    @Override
    public List<ParameterSlot> parameterSlots() {
        return affine.slots(kernelInitializer, Initializer.zeros());
    }

    @Override
    protected void bind(List<Tensor> parameters, List<Tensor> gradients) {
        affine.bind(parameters.get(0), parameters.get(1), gradients.get(0), gradients.get(1));
    }

    @Override
    protected void allocate(Backend backend, int maxBatch) {
        this.backend = backend;
        affine.allocate(backend, maxBatch);
        preActivation = backend.allocate(DType.FLOAT32, maxBatch, units * pieces);
        preActivationGradient = backend.allocate(DType.FLOAT32, maxBatch, units * pieces);
        output = backend.allocate(DType.FLOAT32, maxBatch, units);
        winner = backend.allocate(DType.INT32, maxBatch, units);
    }

    @Override
    public Tensor forward(Tensor x) {
        int batch = x.rowCount();
        Tensor z = preActivation.rows(0, batch);
        affine.forward(x, z);
        lastPreActivation = z;
        Tensor y = output.rows(0, batch);
        lastWinner = winner.rows(0, batch);
        backend.maxoutForward(z, pieces, y, lastWinner);
        lastOutput = y;
        return y;
    }

    @Override
    public Tensor backward(Tensor dy, boolean needInputGradient) {
        Tensor dz = preActivationGradient.rows(0, dy.rowCount());
        backend.maxoutBackward(dy, lastWinner, pieces, dz);
        return affine.backward(dz, needInputGradient);
    }

    /**
     * A maxout unit is piecewise linear with slope 1 in its winning piece: it never saturates nor dies,
     * so its activity is its output seen through the identity.
     */
    @Override
    public Activity lastActivity() {
        return lastOutput == null ? null : new Activity(dev.gradscope.tensor.ActivationKind.LINEAR, lastOutput, null,
                lastOutput);
    }

    /** The pieces {@code x · W + b} of the last forward, {@code [batch, units * pieces]}. */
    Tensor lastPreActivation() {
        return lastPreActivation;
    }

    public int pieces() {
        return pieces;
    }

    @Override
    public String describe() {
        return "units=" + units + ", pieces=" + pieces + ", kernel=" + kernelInitializer;
    }

    @Override
    public void close() {
        if (affine != null) {
            affine.close();
        }
        Tensor.closeAll(preActivation, preActivationGradient, output, winner);
    }
}
