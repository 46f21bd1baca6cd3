package dev.gradscope.tensor;

/**
 * The argument checks of the {@link Backend} ops that every backend makes, with the messages that users
 * and tests see. They live here once, so that the CUDA backend cannot drift from the CPU reference: the
 * same wrong call fails with the same message on either.
 *
 * <p>Each op's method makes that op's checks in the reference's order and returns what the op needs to
 * run (the GEMM's m, n and k; the number of maxout units; how many activation parameters there are).
 * What depends on where the data lives stays in the backend: a tensor of another backend, the CUDA
 * kernels' int indexing, each operand's dtype as a backend reads it, and the CPU's checks of index
 * values that the GPU leaves on the device.
 */
public final class OpChecks {
    private OpChecks() {
    }

    // ---- primitives ---------------------------------------------------------------------------

    /** Fails unless {@code t} holds {@code dtype}; the message every backend gives for a tensor of the wrong type. */
    public static void requireDType(Tensor t, DType dtype) {
        if (t.dtype() != dtype) {
            throw new IllegalArgumentException("expected a " + dtype + " tensor, got " + t);
        }
    }

    /** Fails unless {@code t} has exactly {@code expected} elements, whatever its shape. */
    public static void requireLength(String op, int expected, Tensor t) {
        if (t.size() != expected) {
            throw new IllegalArgumentException(op + ": tensor " + Shapes.describe(t.shape()) + " must have "
                    + expected + " elements");
        }
    }

    // ---- memory -------------------------------------------------------------------------------

    /** {@link Backend#copy}: source and destination have the same dtype and size. */
    public static void copy(Tensor src, Tensor dst) {
        if (src.dtype() != dst.dtype() || src.size() != dst.size()) {
            throw new IllegalArgumentException("copy: source " + src + " and destination " + dst
                    + " must have the same dtype and size");
        }
    }

    // ---- dense layers -------------------------------------------------------------------------

    /** The dimensions of {@code c[m, n] = op(a)[m, k] op(b)[k, n]}. */
    public record GemmShape(int m, int n, int k) {
    }

    /**
     * {@link Backend#gemm}: a, b and c are matrices and {@code op(a) op(b)} has the shape of c.
     *
     * @return m, n and k as the transposes resolve them
     */
    public static GemmShape gemm(boolean transposeA, boolean transposeB, Tensor a, Tensor b, Tensor c) {
        Shapes.requireMatrix("gemm", "a", a);
        Shapes.requireMatrix("gemm", "b", b);
        Shapes.requireMatrix("gemm", "c", c);
        int m = transposeA ? a.dim(1) : a.dim(0);
        int k = transposeA ? a.dim(0) : a.dim(1);
        int kb = transposeB ? b.dim(1) : b.dim(0);
        int n = transposeB ? b.dim(0) : b.dim(1);
        if (k != kb || c.dim(0) != m || c.dim(1) != n) {
            throw new IllegalArgumentException("gemm: op(a) " + (transposeA ? "transposed " : "")
                    + Shapes.describe(a.shape()) + " times op(b) " + (transposeB ? "transposed " : "")
                    + Shapes.describe(b.shape()) + " does not give c " + Shapes.describe(c.shape()));
        }
        return new GemmShape(m, n, k);
    }

    /** {@link Backend#addRowVectorAccumulate}: one bias element per column of {@code y}. */
    public static void addRowVector(Tensor y, Tensor bias) {
        requireLength("addRowVectorAccumulate (bias)", y.columnCount(), bias);
    }

    /** {@link Backend#columnSums}: one output element per column of {@code x}. */
    public static void columnSums(Tensor x, Tensor out) {
        requireLength("columnSums (out)", x.columnCount(), out);
    }

    // ---- activations --------------------------------------------------------------------------

    /** Fails for softmax, which has no element-wise form: the losses fuse it. */
    public static void elementWise(ActivationKind kind) {
        if (!kind.isElementWise()) {
            throw new IllegalArgumentException(kind.id() + " is not element-wise; it is fused into the loss");
        }
    }

    /**
     * How many parameters an activation of {@code z} is given: 0 when {@code param} is null, which only a
     * kind without a parameter allows; else 1 (shared by every unit) or one per column of {@code z}.
     */
    public static int activationParameterCount(String op, ActivationKind kind, Tensor param, Tensor z) {
        if (param == null) {
            if (kind.hasParameter()) {
                throw new IllegalArgumentException(op + ": " + kind.id() + " needs its " + kind.parameterName());
            }
            return 0;
        }
        int cols = z.columnCount();
        if (param.size() != 1 && param.size() != cols) {
            throw new IllegalArgumentException(op + ": parameter " + Shapes.describe(param.shape())
                    + " must have 1 element or one per column of " + Shapes.describe(z.shape()));
        }
        return (int) param.size();
    }

    /** {@link Backend#activationForward}; returns the {@linkplain #activationParameterCount parameter count}. */
    public static int activationForward(ActivationKind kind, Tensor z, Tensor param, Tensor y) {
        String op = "activationForward(" + kind.id() + ")";
        Shapes.requireSame(op, "z", z, "y", y);
        elementWise(kind);
        return activationParameterCount(op, kind, param, z);
    }

    /** {@link Backend#activationBackward}; returns the {@linkplain #activationParameterCount parameter count}. */
    public static int activationBackward(ActivationKind kind, Tensor z, Tensor param, Tensor dy, Tensor dz) {
        String op = "activationBackward(" + kind.id() + ")";
        Shapes.requireSame(op, "z", z, "dy", dy);
        Shapes.requireSame(op, "z", z, "dz", dz);
        elementWise(kind);
        return activationParameterCount(op, kind, param, z);
    }

    /**
     * {@link Backend#activationParameterGradient}: also fails for a kind without a parameter. Returns the
     * {@linkplain #activationParameterCount parameter count} (1 or one per column).
     */
    public static int activationParameterGradient(ActivationKind kind, Tensor z, Tensor param, Tensor dy,
                                                  Tensor dParam) {
        String op = "activationParameterGradient(" + kind.id() + ")";
        Shapes.requireSame(op, "z", z, "dy", dy);
        Shapes.requireSame(op, "param", param, "dParam", dParam);
        elementWise(kind);
        if (!kind.hasParameter()) {
            throw new IllegalArgumentException(op + ": " + kind.id() + " has no parameter");
        }
        return activationParameterCount(op, kind, param, z);
    }

    /**
     * {@link Backend#biasActivationForward}: {@code y} has the shape of {@code z}, one bias element per
     * column. Returns the {@linkplain #activationParameterCount parameter count}.
     */
    public static int biasActivationForward(ActivationKind kind, Tensor z, Tensor bias, Tensor param, Tensor y) {
        String op = "biasActivationForward(" + kind.id() + ")";
        Shapes.requireSame(op, "z", z, "y", y);
        requireLength(op + " (bias)", z.columnCount(), bias);
        elementWise(kind);
        return activationParameterCount(op, kind, param, z);
    }

    /**
     * {@link Backend#biasActivationBackward} (and so {@link Backend#activationBackwardWithStatistics} and
     * {@link Backend#accumulateUnitStatistics}, whose names the messages use when called as them):
     * {@code dy} and {@code dz} both or neither, and with the shape of {@code z}; a bias gradient only
     * with them, one element per column; with statistics, {@code y} has the shape of {@code z} and
     * {@code statistics} is [4, columns of z]. Returns the {@linkplain #activationParameterCount
     * parameter count}.
     */
    public static int biasActivationBackward(ActivationKind kind, Tensor z, Tensor param, Tensor y, Tensor dy,
                                             Tensor dz, Tensor biasGradient, Tensor statistics) {
        String name = biasGradient != null || statistics == null ? "biasActivationBackward("
                : dy == null ? "accumulateUnitStatistics(" : "activationBackwardWithStatistics(";
        String op = name + kind.id() + ")";
        if (statistics != null) {
            Shapes.requireSame(op, "z", z, "y", y);
        }
        if ((dy == null) != (dz == null)) {
            throw new IllegalArgumentException(op + ": dy and dz go together, got dy " + (dy == null ? "null" : dy)
                    + " and dz " + (dz == null ? "null" : dz));
        }
        if (dy != null) {
            Shapes.requireSame(op, "z", z, "dy", dy);
            Shapes.requireSame(op, "z", z, "dz", dz);
        }
        if (biasGradient != null) {
            if (dz == null) {
                throw new IllegalArgumentException(op + ": a bias gradient needs dy and dz");
            }
            requireLength(op + " (biasGradient)", z.columnCount(), biasGradient);
        }
        if (statistics != null) {
            Shapes.require(op, "statistics", statistics, 4, z.columnCount());
        }
        elementWise(kind);
        return activationParameterCount(op, kind, param, z);
    }

    /**
     * The optional {@link UpdateNorms} of an optimizer op over {@code params}: the INT32 segment starts
     * have one more element than each FLOAT32 output. The bounds' values are checked where they are read.
     */
    public static void updateNorms(String op, Tensor params, UpdateNorms norms) {
        if (norms == null) {
            return;
        }
        Shapes.requireSame(op, "weightSquares", norms.weightSquares(), "updateSquares", norms.updateSquares());
        segmentSums(op, norms.segmentStarts(), norms.weightSquares());
        Tensor table = norms.table();
        if (table != null) {
            Shapes.requireType(op, "update norms table", table, DType.FLOAT32);
            long rowLength = 2 * norms.weightSquares().size();
            if (table.rank() < 2 || table.dim(0) == 0 || table.size() / table.dim(0) != rowLength) {
                throw new IllegalArgumentException(op + ": update norms table " + Shapes.describe(table.shape())
                        + " needs rows of " + rowLength + " elements (the weight and the update squares of "
                        + norms.weightSquares().size() + " segments)");
            }
            counter(op, "update norms row", norms.row());
        }
    }

    /**
     * {@link Backend#maxoutForward} and {@link Backend#maxoutBackward}: the columns of {@code z} split into
     * units of {@code pieces}; {@code y} and the INT32 {@code winner} are [rows of z, units].
     *
     * @return the number of units
     */
    public static int maxoutUnits(String op, Tensor z, int pieces, Tensor y, Tensor winner) {
        if (pieces < 1 || z.columnCount() % pieces != 0) {
            throw new IllegalArgumentException(op + ": " + Shapes.describe(z.shape()) + " cannot be split into "
                    + pieces + " pieces per unit");
        }
        int units = z.columnCount() / pieces;
        Shapes.require(op, "output", y, z.rowCount(), units);
        Shapes.require(op, "winner", winner, z.rowCount(), units);
        Shapes.requireType(op, "winner", winner, DType.INT32);
        return units;
    }

    /** {@link Backend#softmax}: the probabilities have the logits' shape. */
    public static void softmax(Tensor logits, Tensor probabilities) {
        Shapes.requireSame("softmax", "logits", logits, "probabilities", probabilities);
    }

    // ---- losses -------------------------------------------------------------------------------

    /**
     * The fused softmax losses: the logits are a matrix, the targets and the gradient have its shape, and
     * {@code totals} has two elements (loss sum, correct count).
     */
    public static void softmaxLoss(String op, Tensor logits, Tensor targets, Tensor dLogits, Tensor totals) {
        Shapes.requireMatrix(op, "logits", logits);
        Shapes.requireSame(op, "logits", logits, "targets", targets);
        Shapes.requireSame(op, "logits", logits, "dLogits", dLogits);
        requireLength(op + " (totals)", 2, totals);
    }

    // ---- reductions ---------------------------------------------------------------------------

    /**
     * The segmented sums of squares: the INT32 {@code segmentStarts} has one more element than
     * {@code out}. The segments' bounds are values, not shapes: a backend checks them where it reads them.
     */
    public static void segmentSums(String op, Tensor segmentStarts, Tensor out) {
        Shapes.requireType(op, "segmentStarts", segmentStarts, DType.INT32);
        requireLength(op + " (segmentStarts)", (int) out.size() + 1, segmentStarts);
    }

    // ---- optimizers ---------------------------------------------------------------------------

    /** {@link Backend#adamUpdate}: the gradient and both moments have the shape of the parameters. */
    public static void adamUpdate(Tensor params, Tensor grads, Tensor m, Tensor v) {
        Shapes.requireSame("adamUpdate", "params", params, "grads", grads);
        Shapes.requireSame("adamUpdate", "params", params, "m", m);
        Shapes.requireSame("adamUpdate", "params", params, "v", v);
    }

    /** {@link Backend#sgdUpdate}: the gradient has the shape of the parameters. */
    public static void sgdUpdate(Tensor params, Tensor grads) {
        Shapes.requireSame("sgdUpdate", "params", params, "grads", grads);
    }

    /** {@link Backend#sgdUpdate} with momentum: a velocity buffer of the parameters' shape is given. */
    public static void sgdVelocity(Tensor params, Tensor velocity, float momentum) {
        if (velocity == null) {
            throw new IllegalArgumentException("sgdUpdate: momentum " + momentum + " needs a velocity buffer");
        }
        Shapes.requireSame("sgdUpdate", "params", params, "velocity", velocity);
    }

    /**
     * {@link Backend#rmspropUpdate}: the gradient and the velocity have the shape of the parameters, and so do
     * the average gradient when centered and the momentum buffer when the momentum is not 0 (each is needed
     * then).
     */
    public static void rmspropUpdate(Tensor params, Tensor grads, Tensor velocity, Tensor averageGradient,
                                     Tensor momentumBuffer, float momentum, boolean centered) {
        Shapes.requireSame("rmspropUpdate", "params", params, "grads", grads);
        if (velocity == null) {
            throw new IllegalArgumentException("rmspropUpdate: no velocity buffer");
        }
        Shapes.requireSame("rmspropUpdate", "params", params, "velocity", velocity);
        if (centered) {
            if (averageGradient == null) {
                throw new IllegalArgumentException("rmspropUpdate: centered needs an averageGradient buffer");
            }
            Shapes.requireSame("rmspropUpdate", "params", params, "averageGradient", averageGradient);
        }
        if (momentum != 0) {
            if (momentumBuffer == null) {
                throw new IllegalArgumentException("rmspropUpdate: momentum " + momentum
                        + " needs a momentumBuffer");
            }
            Shapes.requireSame("rmspropUpdate", "params", params, "momentumBuffer", momentumBuffer);
        }
    }

    /** AMSGrad's {@code vHat} of {@link Backend#adamUpdate}, when given: the parameters' shape. */
    public static void adamVelocityHat(Tensor params, Tensor vHat) {
        if (vHat != null) {
            Shapes.requireSame("adamUpdate", "params", params, "vHat", vHat);
        }
    }

    /**
     * {@link Backend#nadamUpdate}: the gradient and both moments have the shape of the parameters, a one-element
     * INT32 counter and a one-element FLOAT32 {@code uProduct}.
     */
    public static void nadamUpdate(Tensor params, Tensor grads, Tensor m, Tensor v, Tensor iterations,
                                   Tensor uProduct) {
        moments("nadamUpdate", params, grads, "m", m, "v", v);
        counter("nadamUpdate", "iterations", iterations);
        Shapes.requireType("nadamUpdate", "uProduct", uProduct, DType.FLOAT32);
        requireLength("nadamUpdate (uProduct)", 1, uProduct);
    }

    /** {@link Backend#adamaxUpdate}: the gradient, {@code m} and {@code u} have the parameters' shape; a counter. */
    public static void adamaxUpdate(Tensor params, Tensor grads, Tensor m, Tensor u, Tensor iterations) {
        moments("adamaxUpdate", params, grads, "m", m, "u", u);
        counter("adamaxUpdate", "iterations", iterations);
    }

    /** {@link Backend#adagradUpdate}: the gradient and the accumulator have the shape of the parameters. */
    public static void adagradUpdate(Tensor params, Tensor grads, Tensor accumulator) {
        Shapes.requireSame("adagradUpdate", "params", params, "grads", grads);
        if (accumulator == null) {
            throw new IllegalArgumentException("adagradUpdate: no accumulator buffer");
        }
        Shapes.requireSame("adagradUpdate", "params", params, "accumulator", accumulator);
    }

    private static void moments(String op, Tensor params, Tensor grads, String first, Tensor m, String second,
                                Tensor v) {
        Shapes.requireSame(op, "params", params, "grads", grads);
        Shapes.requireSame(op, "params", params, first, m);
        Shapes.requireSame(op, "params", params, second, v);
    }

    // ---- data ---------------------------------------------------------------------------------

    /**
     * {@link Backend#gatherRows}: INT32 indices, a FLOAT32 output as wide as the source's rows, and
     * {@code [first, first + rows of out)} within the indices. The index values are checked by the
     * backend that reads them.
     */
    public static void gatherRows(Tensor source, Tensor indices, int first, Tensor out) {
        Shapes.requireType("gatherRows", "indices", indices, DType.INT32);
        Shapes.requireType("gatherRows", "out", out, DType.FLOAT32);
        int rows = out.rowCount();
        int cols = out.columnCount();
        if (source.columnCount() != cols) {
            throw new IllegalArgumentException("gatherRows: source rows " + Shapes.describe(source.shape())
                    + " and out rows " + Shapes.describe(out.shape()) + " differ in width");
        }
        if (first < 0 || first + rows > indices.size()) {
            throw new IllegalArgumentException("gatherRows: indices [" + first + ", " + (first + rows)
                    + ") outside " + indices.size() + " indices");
        }
    }

    // ---- the step's changing values on the device ---------------------------------------------

    /** A device counter: an INT32 tensor of one element. */
    public static void counter(String op, String name, Tensor counter) {
        Shapes.requireType(op, name, counter, DType.INT32);
        requireLength(op + " (" + name + ")", 1, counter);
    }

    /**
     * The step count of an update that may go without one (SGD's, RMSprop's, Adagrad's): a one-element INT32
     * {@code iterations} when given; without one, no per-step {@code schedule}, which needs the count.
     */
    public static void optionalStepCount(String op, Tensor iterations, StepSchedule schedule) {
        if (iterations != null) {
            counter(op, "iterations", iterations);
        } else if (schedule.isScheduled()) {
            throw new IllegalArgumentException(op + ": a per-step learning-rate schedule needs the step count"
                    + " (iterations), got none");
        }
    }

    /**
     * {@link Backend#gatherRows(Tensor, Tensor, Tensor, int, float, Tensor)}: the checks of {@link #gatherRows}
     * at count 0 (types, widths, enough indices for one batch), a one-element INT32 counter and
     * {@code rowsPerCount >= 0}. Where the counter's value puts the batch is checked where it is read.
     */
    public static void gatherRowsAtCounter(Tensor source, Tensor indices, Tensor counter, int rowsPerCount,
                                           Tensor out) {
        gatherRows(source, indices, 0, out); // the first batch of the count: types, widths, enough indices
        counter("gatherRows", "counter", counter);
        if (rowsPerCount < 0) {
            throw new IllegalArgumentException("gatherRows: rows per count must be >= 0, got " + rowsPerCount);
        }
    }

    /**
     * {@link Backend#gatherBatch} and {@link Backend#gatherNextBatch}: both gathers' operands
     * ({@link #gatherRowsAtCounter}), and outputs of the same row count.
     */
    public static void gatherBatchAtCounter(String op, Tensor features, Tensor targets, Tensor indices,
                                            Tensor counter, int rowsPerCount, Tensor featuresOut,
                                            Tensor targetsOut) {
        gatherRowsAtCounter(features, indices, counter, rowsPerCount, featuresOut);
        gatherRowsAtCounter(targets, indices, counter, rowsPerCount, targetsOut);
        if (featuresOut.rowCount() != targetsOut.rowCount()) {
            throw new IllegalArgumentException(op + ": features out " + Shapes.describe(featuresOut.shape())
                    + " and targets out " + Shapes.describe(targetsOut.shape()) + " have different row counts");
        }
    }

    /** {@link Backend#copyToRow}: FLOAT32 source and table, a table row as long as the source, a counter. */
    public static void copyToRow(Tensor src, Tensor table, Tensor row) {
        Shapes.requireType("copyToRow", "src", src, DType.FLOAT32);
        Shapes.requireType("copyToRow", "table", table, DType.FLOAT32);
        if (table.rank() < 1 || table.columnCount() != src.size()) {
            throw new IllegalArgumentException("copyToRow: table " + Shapes.describe(table.shape())
                    + " needs rows of " + src.size() + " elements, the size of src " + Shapes.describe(src.shape()));
        }
        counter("copyToRow", "row", row);
    }

    /**
     * {@link Backend#dropoutForward} and {@link Backend#dropoutBackward}: input and output of one size, a rate
     * in [0, 1), and the step as two INT32 elements (epoch, step of the epoch).
     */
    public static void dropout(String op, Tensor in, double rate, Tensor step, Tensor out) {
        if (in.size() != out.size()) {
            throw new IllegalArgumentException(op + ": input " + Shapes.describe(in.shape()) + " and output "
                    + Shapes.describe(out.shape()) + " differ in size");
        }
        if (!(rate >= 0 && rate < 1) || (float) rate >= 1) {
            throw new IllegalArgumentException(op + ": rate must be in [0, 1), got " + rate);
        }
        Shapes.requireType(op, "step", step, DType.INT32);
        requireLength(op + " (step: epoch, step of the epoch)", 2, step);
    }

    /**
     * {@link Backend#batchNormTrainingForward}: the shapes and values of {@link #batchNormOfBatch}, and nothing it
     * writes ({@code y}, the four statistics) overlaps another of its operands: {@code y} is not {@code x}.
     */
    public static void batchNormTrainingForward(Tensor x, Tensor gamma, Tensor beta, double momentum, float epsilon,
                                                Tensor movingMean, Tensor movingVariance, Tensor batchMean,
                                                Tensor batchInvStd, Tensor y) {
        String op = "batchNormTrainingForward";
        batchNormOfBatch(op, x, y, momentum, epsilon, gamma, beta, movingMean, movingVariance, batchMean,
                batchInvStd);
        requireWrittenApart(op, 5,
                new String[] {"y", "movingMean", "movingVariance", "batchMean", "batchInvStd", "x", "gamma", "beta"},
                y, movingMean, movingVariance, batchMean, batchInvStd, x, gamma, beta);
    }

    /**
     * {@link Backend#batchNormInferenceForward}: the shapes and values of {@link #batchNorm}; {@code y} is {@code x}
     * (in place) or overlaps none of the operands.
     */
    public static void batchNormInferenceForward(Tensor x, Tensor gamma, Tensor beta, Tensor movingMean,
                                                 Tensor movingVariance, float epsilon, Tensor y) {
        String op = "batchNormInferenceForward";
        batchNorm(op, x, y, 0, epsilon, gamma, beta, movingMean, movingVariance);
        requireWrittenApart(op, 1, new String[] {"y", "x", "gamma", "beta", "movingMean", "movingVariance"}, y,
                sameView(y, x) ? null : x, gamma, beta, movingMean, movingVariance);
    }

    /**
     * {@link Backend#batchNormBackward}: the shapes of {@link #batchNormOfBatch}, {@code dx} (when given) of the shape
     * of {@code dy}, and nothing it writes ({@code dx}, {@code dGamma}, {@code dBeta}) overlaps another of its
     * operands: {@code dx} is neither {@code dy} nor {@code x}.
     */
    public static void batchNormBackward(Tensor x, Tensor gamma, Tensor batchMean, Tensor batchInvStd, Tensor dy,
                                         Tensor dx, Tensor dGamma, Tensor dBeta) {
        String op = "batchNormBackward";
        batchNormOfBatch(op, x, dy, 0, 1f, gamma, batchMean, batchInvStd, dGamma, dBeta);
        if (dx != null) {
            Shapes.requireSame(op, "dy", dy, "dx", dx);
        }
        requireWrittenApart(op, 3,
                new String[] {"dx", "dGamma", "dBeta", "dy", "x", "gamma", "batchMean", "batchInvStd"},
                dx, dGamma, dBeta, dy, x, gamma, batchMean, batchInvStd);
    }

    /**
     * The batch-normalization ops: {@code y} (or {@code dx}, {@code dy}) has the shape of the matrix {@code x}, and
     * every per-unit tensor (gamma, beta, the statistics, their gradients) one element per column; a momentum in
     * [0, 1] and an epsilon above 0 (the ops take the square root of var + epsilon, and var may be 0).
     */
    private static void batchNorm(String op, Tensor x, Tensor same, double momentum, float epsilon,
                                  Tensor... perUnit) {
        Shapes.requireMatrix(op, "x", x);
        Shapes.requireSame(op, "x", x, "output", same);
        for (Tensor t : perUnit) {
            if (t != null) {
                requireLength(op + " (per-unit tensor)", x.columnCount(), t);
            }
        }
        if (!(momentum >= 0 && momentum <= 1)) {
            throw new IllegalArgumentException(op + ": momentum must be in [0, 1], got " + momentum);
        }
        if (!(epsilon > 0) || Float.isInfinite(epsilon)) {
            throw new IllegalArgumentException(op + ": epsilon must be a finite number > 0, got " + epsilon);
        }
    }

    /** {@link #batchNorm} for the ops that take the batch's statistics: they need at least one row. */
    private static void batchNormOfBatch(String op, Tensor x, Tensor same, double momentum, float epsilon,
                                         Tensor... perUnit) {
        batchNorm(op, x, same, momentum, epsilon, perUnit);
        if (x.rowCount() < 1) {
            throw new IllegalArgumentException(op + ": a batch of " + x.rowCount() + " rows has no mean or variance");
        }
    }

    // ---- operands that share memory -----------------------------------------------------------

    /**
     * Fails when one of the first {@code writtenCount} operands (those the op writes) shares memory with another
     * operand: the same storage and overlapping element ranges. A GPU kernel whose blocks read rows that other
     * blocks write (batch normalization's, which add every row of a column before writing their slice of it) would
     * read what was already overwritten, where the CPU's loops, reading all before writing, would not: so the
     * contract refuses it on every backend. Operands that are only read may share memory; null operands (absent,
     * or allowed to be in place) are skipped.
     */
    private static void requireWrittenApart(String op, int writtenCount, String[] names, Tensor... operands) {
        for (int w = 0; w < writtenCount; w++) {
            for (int o = w + 1; o < operands.length; o++) {
                if (overlap(operands[w], operands[o])) {
                    throw new IllegalArgumentException(op + ": " + names[w] + " " + where(operands[w])
                            + " overlaps " + names[o] + " " + where(operands[o]) + " in one storage; " + names[w]
                            + " must not share memory with " + names[o]);
                }
            }
        }
    }

    /** Whether {@code a} and {@code b} (either may be null) share at least one element of one storage. */
    static boolean overlap(Tensor a, Tensor b) {
        return a != null && b != null && a.storage() == b.storage() && a.size() > 0 && b.size() > 0
                && a.offset() < b.offset() + b.size() && b.offset() < a.offset() + a.size();
    }

    /** Whether {@code a} and {@code b} are the same elements of one storage (an op in place). */
    private static boolean sameView(Tensor a, Tensor b) {
        return a.storage() == b.storage() && a.offset() == b.offset() && a.size() == b.size();
    }

    /** A tensor and the elements of its storage it spans: {@code Tensor[256, 45] FLOAT32 on cpu at [0, 11520)}. */
    private static String where(Tensor t) {
        return t + " at [" + t.offset() + ", " + (t.offset() + t.size()) + ")";
    }

    /** {@link Backend#advanceCounters}: an INT32 tensor. */
    public static void advanceCounters(Tensor counters) {
        Shapes.requireType("advanceCounters", "counters", counters, DType.INT32);
    }

    /** The counter form of {@link Backend#adamUpdate}: the shapes of {@link #adamUpdate} and a counter. */
    public static void adamUpdateAtCounter(Tensor params, Tensor grads, Tensor m, Tensor v, Tensor iterations) {
        adamUpdate(params, grads, m, v);
        counter("adamUpdate", "iterations", iterations);
    }
}
