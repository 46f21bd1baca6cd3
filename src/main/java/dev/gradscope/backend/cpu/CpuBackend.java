package dev.gradscope.backend.cpu;

import dev.gradscope.tensor.ActivationKind;
import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.DropoutMask;
import dev.gradscope.tensor.OpChecks;
import dev.gradscope.tensor.Shapes;
import dev.gradscope.tensor.StepSchedule;
import dev.gradscope.tensor.Tensor;
import dev.gradscope.tensor.UpdateNorms;
import java.util.Arrays;
import java.util.function.DoubleBinaryOperator;

/**
 * The reference backend: plain Java on host arrays. Every op here is the definition that the CUDA
 * kernels are tested against, so each is written to be plainly correct first: simple loops, double
 * accumulation where a sum runs long. Tuned where an epoch's time goes: GEMM ({@link CpuGemm}), the
 * element-wise loops (written so that HotSpot vectorises them), and the profiler's unit statistics and
 * update norms, which add float partial sums of a few terms in double (within 1e-6; the ops' javadoc
 * says so). Parallel parts run on {@link CpuWorkers}.
 */
public final class CpuBackend implements Backend {
    /** Below this many elements an element-wise op runs on the calling thread; forking costs more. */
    private static final int PARALLEL_THRESHOLD = 1 << 15;

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public String description() {
        return "CPU, " + Runtime.getRuntime().availableProcessors() + " threads, Java "
                + Runtime.version().feature();
    }

    // ---- memory -------------------------------------------------------------------------------

    @Override
    public Tensor allocate(DType dtype, int... shape) {
        return Tensor.owning(new CpuStorage(this, dtype, Shapes.size(shape)), shape);
    }

    @Override
    public Tensor fromHost(float[] data, int... shape) {
        Tensor t = allocate(DType.FLOAT32, shape);
        copyFromHost(data, t);
        return t;
    }

    @Override
    public Tensor fromHost(int[] data, int... shape) {
        Tensor t = allocate(DType.INT32, shape);
        copyFromHost(data, t);
        return t;
    }

    @Override
    public Tensor fromHost(byte[] data, int... shape) {
        Tensor t = allocate(DType.UINT8, shape);
        OpChecks.requireLength("fromHost", data.length, t);
        System.arraycopy(data, 0, storage(t).bytes, off(t), data.length);
        return t;
    }

    @Override
    public void copyFromHost(float[] data, Tensor dst) {
        OpChecks.requireLength("copyFromHost", data.length, dst);
        System.arraycopy(data, 0, floats(dst), off(dst), data.length);
    }

    @Override
    public void copyFromHost(int[] data, Tensor dst) {
        OpChecks.requireLength("copyFromHost", data.length, dst);
        System.arraycopy(data, 0, ints(dst), off(dst), data.length);
    }

    @Override
    public float[] toHostFloats(Tensor t) {
        float[] out = new float[(int) t.size()];
        System.arraycopy(floats(t), off(t), out, 0, out.length);
        return out;
    }

    @Override
    public int[] toHostInts(Tensor t) {
        int[] out = new int[(int) t.size()];
        System.arraycopy(ints(t), off(t), out, 0, out.length);
        return out;
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        OpChecks.copy(src, dst);
        CpuStorage s = storage(src);
        CpuStorage d = storage(dst);
        int n = (int) src.size();
        switch (src.dtype()) {
            case FLOAT32 -> System.arraycopy(s.floats, off(src), d.floats, off(dst), n);
            case INT32 -> System.arraycopy(s.ints, off(src), d.ints, off(dst), n);
            case UINT8 -> System.arraycopy(s.bytes, off(src), d.bytes, off(dst), n);
        }
    }

    @Override
    public void fill(Tensor t, float value) {
        int o = off(t);
        java.util.Arrays.fill(floats(t), o, o + (int) t.size(), value);
    }

    @Override
    public boolean sharesHostMemory() {
        return true;
    }

    @Override
    public void synchronize() {
        // Every op has finished when it returns.
    }

    // ---- dense layers -------------------------------------------------------------------------

    @Override
    public void gemm(boolean transposeA, boolean transposeB, float alpha, Tensor a, Tensor b, float beta, Tensor c) {
        OpChecks.GemmShape shape = OpChecks.gemm(transposeA, transposeB, a, b, c);
        CpuGemm.gemm(transposeA, transposeB, shape.m(), shape.n(), shape.k(), alpha, floats(a), off(a), floats(b),
                off(b), beta, floats(c), off(c));
    }

    @Override
    public void addRowVectorAccumulate(Tensor y, Tensor bias) {
        int rows = y.rowCount();
        int cols = y.columnCount();
        OpChecks.addRowVector(y, bias);
        float[] yd = floats(y);
        float[] bd = floats(bias);
        int yo = off(y);
        int bo = off(bias);
        for (int i = 0; i < rows; i++) {
            int row = yo + i * cols;
            for (int j = 0; j < cols; j++) {
                yd[row + j] += bd[bo + j];
            }
        }
    }

    @Override
    public void columnSums(Tensor x, Tensor out) {
        OpChecks.columnSums(x, out);
        sumColumns(x, out);
    }

    /** {@code out[j] = sum_i x[i][j]}, rows in order, in double; the arguments are checked. */
    private static void sumColumns(Tensor x, Tensor out) {
        int rows = x.rowCount();
        int cols = x.columnCount();
        float[] xd = floats(x);
        int xo = off(x);
        double[] sums = new double[cols];
        for (int i = 0; i < rows; i++) {
            int row = xo + i * cols;
            for (int j = 0; j < cols; j++) {
                sums[j] += xd[row + j];
            }
        }
        float[] od = floats(out);
        int oo = off(out);
        for (int j = 0; j < cols; j++) {
            od[oo + j] = (float) sums[j];
        }
    }

    /**
     * One parallel pass over rows: each element gets its bias (the float addition of
     * addRowVectorAccumulate) and then its activation (activationForward's), the same bits as the two.
     */
    @Override
    public void biasActivationForward(ActivationKind kind, Tensor z, Tensor bias, Tensor param, Tensor y) {
        int paramCount = OpChecks.biasActivationForward(kind, z, bias, param, y);
        DoubleBinaryOperator f = CpuActivations.of(kind).forward();
        ParameterView p = ParameterView.of(paramCount, param, z);
        int cols = z.columnCount();
        float[] zd = floats(z);
        float[] bd = floats(bias);
        float[] yd = floats(y);
        int zo = off(z);
        int bo = off(bias);
        int yo = off(y);
        forEachChunk(z.rowCount(), cols, (firstRow, lastRow) -> {
            for (int i = firstRow; i < lastRow; i++) {
                for (int j = 0, e = i * cols; j < cols; j++, e++) {
                    float biased = zd[zo + e] + bd[bo + j];
                    zd[zo + e] = biased;
                    yd[yo + e] = (float) f.applyAsDouble(biased, p.at(e));
                }
            }
        });
    }

    /**
     * The derivative pass of activationBackward (or, with statistics, of activationBackwardWithStatistics),
     * then the bias gradient as columnSums adds it: the same bits as the separate ops. On the CPU the
     * fusion saves calls, not passes.
     */
    @Override
    public void biasActivationBackward(ActivationKind kind, Tensor z, Tensor param, Tensor y, Tensor dy, Tensor dz,
                                       Tensor biasGradient, float saturationThreshold, Tensor statistics) {
        int paramCount = OpChecks.biasActivationBackward(kind, z, param, y, dy, dz, biasGradient, statistics);
        ParameterView p = ParameterView.of(paramCount, param, z);
        if (statistics != null) {
            backwardWithStatistics(kind, p, z, y, dy, dz, saturationThreshold, statistics);
        } else if (dy != null) {
            backwardElements(kind, p, z, dy, dz);
        }
        if (biasGradient != null) {
            sumColumns(dz, biasGradient);
        }
    }

    // ---- activations --------------------------------------------------------------------------

    @Override
    public void activationForward(ActivationKind kind, Tensor z, Tensor param, Tensor y) {
        int paramCount = OpChecks.activationForward(kind, z, param, y);
        DoubleBinaryOperator f = CpuActivations.of(kind).forward();
        ParameterView p = ParameterView.of(paramCount, param, z);
        float[] zd = floats(z);
        float[] yd = floats(y);
        int zo = off(z);
        int yo = off(y);
        forEachChunk((int) z.size(), (from, to) -> {
            for (int i = from; i < to; i++) {
                yd[yo + i] = (float) f.applyAsDouble(zd[zo + i], p.at(i));
            }
        });
    }

    @Override
    public void activationBackward(ActivationKind kind, Tensor z, Tensor param, Tensor dy, Tensor dz) {
        int paramCount = OpChecks.activationBackward(kind, z, param, dy, dz);
        backwardElements(kind, ParameterView.of(paramCount, param, z), z, dy, dz);
    }

    /** {@code dz = dy * f'(z; p)}, in parallel chunks; the arguments are checked. */
    private static void backwardElements(ActivationKind kind, ParameterView p, Tensor z, Tensor dy, Tensor dz) {
        DoubleBinaryOperator df = CpuActivations.of(kind).derivative();
        float[] zd = floats(z);
        float[] dyd = floats(dy);
        float[] dzd = floats(dz);
        int zo = off(z);
        int dyo = off(dy);
        int dzo = off(dz);
        forEachChunk((int) z.size(), (from, to) -> {
            for (int i = from; i < to; i++) {
                dzd[dzo + i] = (float) (dyd[dyo + i] * df.applyAsDouble(zd[zo + i], p.at(i)));
            }
        });
    }

    // ---- dropout --------------------------------------------------------------------------------

    @Override
    public void dropoutForward(Tensor x, double rate, long streamKey, Tensor step, Tensor y) {
        OpChecks.dropout("dropoutForward", x, rate, step, y);
        dropoutElements(x, rate, streamKey, step, y);
    }

    @Override
    public void dropoutBackward(Tensor dy, double rate, long streamKey, Tensor step, Tensor dx) {
        OpChecks.dropout("dropoutBackward", dy, rate, step, dx);
        dropoutElements(dy, rate, streamKey, step, dx);
    }

    /**
     * {@code out[i] = in[i] * scale} where {@link DropoutMask} keeps element {@code i} at the step {@code step}
     * holds, else 0: the forward pass on x and the backward pass on dy are the same map. The arguments are checked.
     */
    private static void dropoutElements(Tensor in, double rate, long streamKey, Tensor step, Tensor out) {
        int[] s = ints(step);
        long stepKey = DropoutMask.stepKey(streamKey, s[off(step)], s[off(step) + 1]);
        int threshold = DropoutMask.threshold(rate);
        float scale = DropoutMask.scale(rate);
        float[] ind = floats(in);
        float[] outd = floats(out);
        int io = off(in);
        int oo = off(out);
        forEachChunk((int) in.size(), (from, to) -> {
            for (int i = from; i < to; i++) {
                outd[oo + i] = DropoutMask.bits(stepKey, i) >= threshold ? ind[io + i] * scale : 0f;
            }
        });
    }

    // ---- batch normalization ------------------------------------------------------------------------

    @Override
    public void batchNormTrainingForward(Tensor x, Tensor gamma, Tensor beta, double momentum, float epsilon,
                                         Tensor movingMean, Tensor movingVariance, Tensor batchMean,
                                         Tensor batchInvStd, Tensor y) {
        OpChecks.batchNormTrainingForward(x, gamma, beta, momentum, epsilon, movingMean, movingVariance, batchMean,
                batchInvStd, y);
        int rows = x.rowCount();
        int cols = x.columnCount();
        float[] xd = floats(x);
        int xo = off(x);
        double[] mean = new double[cols];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                mean[j] += xd[xo + i * cols + j];
            }
        }
        double[] squares = new double[cols];
        for (int j = 0; j < cols; j++) {
            mean[j] /= rows;
        }
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                double d = xd[xo + i * cols + j] - mean[j];
                squares[j] += d * d;
            }
        }
        float[] meanF = new float[cols];
        float[] invStd = new float[cols];
        float keep = (float) momentum;
        float oneMinusMomentum = (float) (1.0 - momentum);
        for (int j = 0; j < cols; j++) {
            double variance = squares[j] / rows;
            meanF[j] = (float) mean[j];
            invStd[j] = (float) (1.0 / Math.sqrt(variance + epsilon));
            set(batchMean, j, meanF[j]);
            set(batchInvStd, j, invStd[j]);
            set(movingMean, j, get(movingMean, j) * keep + meanF[j] * oneMinusMomentum);
            set(movingVariance, j, get(movingVariance, j) * keep + (float) variance * oneMinusMomentum);
        }
        normalizeColumns(x, gamma, beta, meanF, invStd, y);
    }

    @Override
    public void batchNormInferenceForward(Tensor x, Tensor gamma, Tensor beta, Tensor movingMean,
                                          Tensor movingVariance, float epsilon, Tensor y) {
        OpChecks.batchNormInferenceForward(x, gamma, beta, movingMean, movingVariance, epsilon, y);
        int cols = x.columnCount();
        float[] mean = new float[cols];
        float[] invStd = new float[cols];
        for (int j = 0; j < cols; j++) {
            mean[j] = get(movingMean, j);
            invStd[j] = (float) (1.0 / Math.sqrt((double) get(movingVariance, j) + epsilon));
        }
        normalizeColumns(x, gamma, beta, mean, invStd, y);
    }

    /** {@code y = gamma * ((x - mean) * invStd) + beta} per column, each operation rounded to float. */
    private static void normalizeColumns(Tensor x, Tensor gamma, Tensor beta, float[] mean, float[] invStd,
                                         Tensor y) {
        int rows = x.rowCount();
        int cols = x.columnCount();
        float[] xd = floats(x);
        float[] yd = floats(y);
        int xo = off(x);
        int yo = off(y);
        float[] g = columns(gamma, cols);
        float[] b = columns(beta, cols);
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                float xhat = (xd[xo + i * cols + j] - mean[j]) * invStd[j];
                yd[yo + i * cols + j] = g[j] * xhat + b[j];
            }
        }
    }

    /** The first {@code cols} elements of {@code t}, for loops that read them once per row. */
    private static float[] columns(Tensor t, int cols) {
        return java.util.Arrays.copyOfRange(floats(t), off(t), off(t) + cols);
    }

    @Override
    public void batchNormBackward(Tensor x, Tensor gamma, Tensor batchMean, Tensor batchInvStd, Tensor dy,
                                  Tensor dx, Tensor dGamma, Tensor dBeta) {
        OpChecks.batchNormBackward(x, gamma, batchMean, batchInvStd, dy, dx, dGamma, dBeta);
        int rows = x.rowCount();
        int cols = x.columnCount();
        float[] xd = floats(x);
        float[] dyd = floats(dy);
        int xo = off(x);
        int dyo = off(dy);
        float[] mean = columns(batchMean, cols);
        float[] invStd = columns(batchInvStd, cols);
        double[] sumDy = new double[cols];
        double[] sumDyXhat = new double[cols];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                float xhat = (xd[xo + i * cols + j] - mean[j]) * invStd[j];
                float g = dyd[dyo + i * cols + j];
                sumDy[j] += g;
                sumDyXhat[j] += (double) g * xhat;
            }
        }
        for (int j = 0; j < cols; j++) {
            set(dBeta, j, (float) sumDy[j]);
            set(dGamma, j, (float) sumDyXhat[j]);
        }
        if (dx == null) {
            return;
        }
        float[] dxd = floats(dx);
        int dxo = off(dx);
        float[] scale = new float[cols];
        float[] meanDy = new float[cols];
        float[] meanDyXhat = new float[cols];
        for (int j = 0; j < cols; j++) {
            scale[j] = (float) ((double) get(gamma, j) * invStd[j]);
            meanDy[j] = (float) (sumDy[j] / rows);
            meanDyXhat[j] = (float) (sumDyXhat[j] / rows);
        }
        // Row by row, as the arrays lie: the same float operations per element as column by column.
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                float xhat = (xd[xo + i * cols + j] - mean[j]) * invStd[j];
                dxd[dxo + i * cols + j] = scale[j] * (dyd[dyo + i * cols + j] - meanDy[j] - xhat * meanDyXhat[j]);
            }
        }
    }

    private static float get(Tensor t, int i) {
        return floats(t)[off(t) + i];
    }

    private static void set(Tensor t, int i, float value) {
        floats(t)[off(t) + i] = value;
    }

    @Override
    public void activationParameterGradient(ActivationKind kind, Tensor z, Tensor param, Tensor dy, Tensor dParam) {
        int paramCount = OpChecks.activationParameterGradient(kind, z, param, dy, dParam);
        // Not null: OpChecks refused a kind without a parameter, and CpuActivations pairs the two.
        DoubleBinaryOperator dfdp = CpuActivations.of(kind).parameterDerivative();
        ParameterView p = ParameterView.of(paramCount, param, z);
        int rows = z.rowCount();
        int cols = z.columnCount();
        float[] zd = floats(z);
        float[] dyd = floats(dy);
        int zo = off(z);
        int dyo = off(dy);
        double[] sums = new double[(int) param.size()];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                int e = i * cols + j;
                sums[p.shared ? 0 : j] += dyd[dyo + e] * dfdp.applyAsDouble(zd[zo + e], p.at(e));
            }
        }
        float[] out = floats(dParam);
        int oo = off(dParam);
        for (int s = 0; s < sums.length; s++) {
            out[oo + s] = (float) sums[s];
        }
    }

    @Override
    public void maxoutForward(Tensor z, int pieces, Tensor y, Tensor winner) {
        int rows = z.rowCount();
        int units = OpChecks.maxoutUnits("maxoutForward", z, pieces, y, winner);
        float[] zd = floats(z);
        float[] yd = floats(y);
        int[] wd = ints(winner);
        int zo = off(z);
        int yo = off(y);
        int wo = off(winner);
        for (int i = 0; i < rows; i++) {
            for (int u = 0; u < units; u++) {
                int base = zo + (i * units + u) * pieces;
                int best = 0;
                float bestValue = zd[base];
                for (int p = 1; p < pieces; p++) {
                    if (zd[base + p] > bestValue) {
                        bestValue = zd[base + p];
                        best = p;
                    }
                }
                yd[yo + i * units + u] = bestValue;
                wd[wo + i * units + u] = best;
            }
        }
    }

    @Override
    public void maxoutBackward(Tensor dy, Tensor winner, int pieces, Tensor dz) {
        int rows = dz.rowCount();
        int units = OpChecks.maxoutUnits("maxoutBackward", dz, pieces, dy, winner);
        float[] dyd = floats(dy);
        float[] dzd = floats(dz);
        int[] wd = ints(winner);
        int dyo = off(dy);
        int dzo = off(dz);
        int wo = off(winner);
        for (int i = 0; i < rows; i++) {
            for (int u = 0; u < units; u++) {
                int base = dzo + (i * units + u) * pieces;
                int win = wd[wo + i * units + u];
                for (int p = 0; p < pieces; p++) {
                    dzd[base + p] = p == win ? dyd[dyo + i * units + u] : 0f;
                }
            }
        }
    }

    @Override
    public void softmax(Tensor logits, Tensor probabilities) {
        OpChecks.softmax(logits, probabilities);
        int rows = logits.rowCount();
        int cols = logits.columnCount();
        float[] zd = floats(logits);
        float[] pd = floats(probabilities);
        double[] p = new double[cols];
        for (int i = 0; i < rows; i++) {
            softmaxRow(zd, off(logits) + i * cols, cols, p);
            for (int c = 0; c < cols; c++) {
                pd[off(probabilities) + i * cols + c] = (float) p[c];
            }
        }
    }

    /** {@code p = softmax(z[from, from+cols))} in double; returns log(sum(exp(z - max))) + max. */
    private static double softmaxRow(float[] z, int from, int cols, double[] p) {
        double max = Double.NEGATIVE_INFINITY;
        for (int c = 0; c < cols; c++) {
            max = Math.max(max, z[from + c]);
        }
        double sum = 0;
        for (int c = 0; c < cols; c++) {
            p[c] = Math.exp(z[from + c] - max);
            sum += p[c];
        }
        for (int c = 0; c < cols; c++) {
            p[c] /= sum;
        }
        return Math.log(sum) + max;
    }

    // ---- losses -------------------------------------------------------------------------------

    @Override
    public void softmaxCrossEntropy(Tensor logits, Tensor targets, float gradientScale, Tensor dLogits,
                                    Tensor totals) {
        softmaxLoss("softmaxCrossEntropy", logits, targets, gradientScale, dLogits, totals, (z, zo, t, to, p,
                logSumExp, g) -> {
            int cols = p.length;
            double loss = 0;
            double targetMass = 0;
            for (int c = 0; c < cols; c++) {
                double tc = t[to + c];
                if (tc != 0) {
                    loss -= tc * (z[zo + c] - logSumExp);
                }
                targetMass += tc;
            }
            // d/dz of -sum t log softmax(z) is p * sum(t) - t; sum(t) is 1 for one-hot targets.
            for (int c = 0; c < cols; c++) {
                g[c] = p[c] * targetMass - t[to + c];
            }
            return loss;
        });
    }

    @Override
    public void softmaxMeanSquaredError(Tensor logits, Tensor targets, float gradientScale, Tensor dLogits,
                                        Tensor totals) {
        softmaxLoss("softmaxMeanSquaredError", logits, targets, gradientScale, dLogits, totals, (z, zo, t, to, p,
                logSumExp, g) -> {
            int cols = p.length;
            double loss = 0;
            double dot = 0;
            for (int c = 0; c < cols; c++) {
                double diff = p[c] - t[to + c];
                loss += diff * diff;
                g[c] = 2 * diff / cols; // dL/dp
                dot += g[c] * p[c];
            }
            // Back through the softmax Jacobian: dL/dz_c = p_c (dL/dp_c - sum_j dL/dp_j p_j).
            for (int c = 0; c < cols; c++) {
                g[c] = p[c] * (g[c] - dot);
            }
            return loss / cols;
        });
    }

    /** The per-row part of a softmax loss: returns the row's loss and writes dLoss/dLogits into g. */
    private interface RowLoss {
        double apply(float[] z, int zOffset, float[] t, int tOffset, double[] p, double logSumExp, double[] g);
    }

    private static void softmaxLoss(String op, Tensor logits, Tensor targets, float gradientScale, Tensor dLogits,
                                    Tensor totals, RowLoss rowLoss) {
        OpChecks.softmaxLoss(op, logits, targets, dLogits, totals);
        int rows = logits.rowCount();
        int cols = logits.columnCount();
        float[] z = floats(logits);
        float[] t = floats(targets);
        float[] d = floats(dLogits);
        double[] p = new double[cols];
        double[] g = new double[cols];
        double lossSum = 0;
        int correct = 0;
        for (int i = 0; i < rows; i++) {
            int zo = off(logits) + i * cols;
            int to = off(targets) + i * cols;
            double logSumExp = softmaxRow(z, zo, cols, p);
            lossSum += rowLoss.apply(z, zo, t, to, p, logSumExp, g);
            for (int c = 0; c < cols; c++) {
                d[off(dLogits) + i * cols + c] = (float) (g[c] * gradientScale);
            }
            if (argMax(z, zo, cols) == argMax(t, to, cols)) {
                correct++;
            }
        }
        float[] tot = floats(totals);
        tot[off(totals)] += (float) lossSum;
        tot[off(totals) + 1] += correct;
    }

    /** Index of the first largest element of {@code x[from, from+n)}. */
    private static int argMax(float[] x, int from, int n) {
        int best = 0;
        for (int c = 1; c < n; c++) {
            if (x[from + c] > x[from + best]) {
                best = c;
            }
        }
        return best;
    }

    // ---- reductions ---------------------------------------------------------------------------

    /** {@code out[s] = sum over segment s of x^2}. */
    @Override
    public void segmentSumOfSquares(Tensor x, Tensor segmentStarts, Tensor out) {
        OpChecks.segmentSums("segmentSumOfSquares", segmentStarts, out);
        int[] starts = ints(segmentStarts);
        int so = off(segmentStarts);
        float[] xd = floats(x);
        float[] od = floats(out);
        for (int s = 0; s < out.size(); s++) {
            int from = starts[so + s];
            int to = starts[so + s + 1];
            if (from < 0 || from > to || to > x.size()) {
                throw new IllegalArgumentException("segmentSumOfSquares: segment " + s + " [" + from + ", " + to
                        + ") is outside a tensor of " + x.size() + " elements");
            }
            od[off(out) + s] = (float) sumOfSquares(xd, off(x) + from, to - from);
        }
    }

    /**
     * Elements per block of a segment sum. Blocks are summed independently (in parallel for large
     * segments) and their sums added in block order, so the result depends only on this constant, not on
     * the number of threads.
     */
    private static final int SUM_BLOCK = 1 << 14;

    /** {@code sum of a[i]^2} over n elements, in double. */
    private static double sumOfSquares(float[] a, int aFrom, int n) {
        int blocks = (n + SUM_BLOCK - 1) / SUM_BLOCK;
        double[] partial = new double[blocks];
        forEachChunk(blocks, SUM_BLOCK, (first, last) -> {
            for (int k = first; k < last; k++) {
                int from = k * SUM_BLOCK;
                int count = Math.min(SUM_BLOCK, n - from);
                partial[k] = blockSumOfSquares(a, aFrom + from, count);
            }
        });
        double sum = 0;
        for (double p : partial) {
            sum += p;
        }
        return sum;
    }

    /**
     * Four running sums in a fixed interleave, added at the end: the same result every time, and about
     * four times faster than one chain of dependent additions.
     */
    private static double blockSumOfSquares(float[] a, int from, int n) {
        double s0 = 0;
        double s1 = 0;
        double s2 = 0;
        double s3 = 0;
        int i = 0;
        for (; i + 3 < n; i += 4) {
            double v0 = a[from + i];
            double v1 = a[from + i + 1];
            double v2 = a[from + i + 2];
            double v3 = a[from + i + 3];
            s0 += v0 * v0;
            s1 += v1 * v1;
            s2 += v2 * v2;
            s3 += v3 * v3;
        }
        for (; i < n; i++) {
            double v = a[from + i];
            s0 += v * v;
        }
        return (s0 + s1) + (s2 + s3);
    }

    /** Float lanes of an optimizer step's measurement: each adds NORM_BLOCK / NORM_LANES = 16 terms. */
    private static final int NORM_LANES = 256;

    /** One thread's buffers for measuring optimizer steps. */
    private static final class NormWorkspace {
        final float[] before = new float[NORM_BLOCK];
        final float[] beforeRow = new float[NORM_LANES];
        final float[] afterRow = new float[NORM_LANES];
        final float[] weightLanes = new float[NORM_LANES];
        final float[] updateLanes = new float[NORM_LANES];
        double weightSquares;
        double updateSquares;

        /**
         * Sums {@code before^2} and {@code (after - before)^2} over one block of n elements ({@code before}
         * from this workspace, {@code after} from {@code afterFrom}) into {@link #weightSquares} and
         * {@link #updateSquares}. Row by row through lanes that every array indexes alike, which lets HotSpot
         * vectorise the loop (a plain sum is a chain of dependent additions it cannot); each lane adds 16
         * floats (relative error within 1e-6), the lanes are added in double. The difference of two close
         * floats is exact.
         */
        void measure(float[] after, int afterFrom, int n) {
            Arrays.fill(weightLanes, 0f);
            Arrays.fill(updateLanes, 0f);
            int r = 0;
            for (; r + NORM_LANES <= n; r += NORM_LANES) {
                System.arraycopy(before, r, beforeRow, 0, NORM_LANES);
                System.arraycopy(after, afterFrom + r, afterRow, 0, NORM_LANES);
                for (int j = 0; j < NORM_LANES; j++) {
                    float b = beforeRow[j];
                    float change = afterRow[j] - b;
                    weightLanes[j] += b * b;
                    updateLanes[j] += change * change;
                }
            }
            double weights = 0;
            double updates = 0;
            for (int j = 0; j < NORM_LANES; j++) {
                weights += weightLanes[j];
                updates += updateLanes[j];
            }
            for (; r < n; r++) {
                double b = before[r];
                double change = (double) after[afterFrom + r] - b;
                weights += b * b;
                updates += change * change;
            }
            weightSquares = weights;
            updateSquares = updates;
        }
    }

    /**
     * The unit statistics of {@code y = f(z; p)} added to {@code statistics}, and, unless dy is null,
     * {@code dz = dy * f'(z; p)} from the same evaluation of f'; the arguments are checked.
     */
    private static void backwardWithStatistics(ActivationKind kind, ParameterView p, Tensor z, Tensor y, Tensor dy,
                                               Tensor dz, float saturationThreshold, Tensor statistics) {
        int rows = z.rowCount();
        int cols = z.columnCount();
        DoubleBinaryOperator df = CpuActivations.of(kind).derivative();
        boolean withGradient = dy != null;
        float[] zd = floats(z);
        float[] yd = floats(y);
        float[] dyd = withGradient ? floats(dy) : null;
        float[] dzd = withGradient ? floats(dz) : null;
        float[] st = floats(statistics);
        int so = off(statistics);
        int zo = off(z);
        int yo = off(y);
        int dyo = withGradient ? off(dy) : 0;
        int dzo = withGradient ? off(dz) : 0;
        // |f'| < threshold compared as the bits of two non-negative doubles; no threshold > 0: never.
        long thresholdBits = saturationThreshold > 0 ? Double.doubleToRawLongBits(saturationThreshold) : 0L;
        // Blocks of ROWS_PER_BLOCK rows (fixed by the shape, not by the threads) are measured in parallel and
        // added in block order: the result does not depend on the number of threads. Within a block, row by
        // row: one loop evaluates the derivative (a call per element, which nothing can vectorise) and keeps
        // |f'|'s bits; the counting and summing loops that follow index every array alike, which lets
        // HotSpot vectorise them. Counts come from bit arithmetic, not branches: whether a ReLU fired is a
        // coin toss per element, and mispredicted branches would cost more than all of it.
        int blocks = (rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK;
        long[][] counts = new long[blocks][]; // per unit: rows that passed gradient (high half), saturated (low)
        double[][] sums = new double[blocks][];
        double[][] sumsOfSquares = new double[blocks][];
        forEachChunk(blocks, ROWS_PER_BLOCK * cols, (firstBlock, lastBlock) -> {
            long[] magnitudes = new long[cols];
            float[] yRow = new float[cols];
            float[] partialSum = new float[cols];
            float[] partialSumOfSquares = new float[cols];
            for (int b = firstBlock; b < lastBlock; b++) {
                long[] count = new long[cols];
                double[] sum = new double[cols];
                double[] sumOfSquares = new double[cols];
                int last = Math.min(rows, (b + 1) * ROWS_PER_BLOCK);
                for (int i = b * ROWS_PER_BLOCK; i < last; i++) {
                    int rowStart = i * cols;
                    for (int u = 0; u < cols; u++) {
                        int e = rowStart + u;
                        double d = df.applyAsDouble(zd[zo + e], p.at(e));
                        if (withGradient) {
                            dzd[dzo + e] = (float) (dyd[dyo + e] * d);
                        }
                        magnitudes[u] = Double.doubleToRawLongBits(d) & Long.MAX_VALUE;
                    }
                    for (int u = 0; u < cols; u++) {
                        long magnitude = magnitudes[u];
                        long active = (magnitude | -magnitude) >>> 63; // d != 0; NaN counts as active
                        long saturated = (magnitude - thresholdBits) >>> 63; // |d| < threshold; NaN is not
                        count[u] += (active << 32) | saturated;
                    }
                    System.arraycopy(yd, yo + rowStart, yRow, 0, cols);
                    for (int u = 0; u < cols; u++) {
                        float v = yRow[u];
                        partialSum[u] += v;
                        partialSumOfSquares[u] += v * v;
                    }
                    // Float partial sums of at most ROWS_PER_FLOAT_SUM rows, added to the double sums: within
                    // 1e-6 of the magnitudes summed, as the GPU's sums in double.
                    if (i % ROWS_PER_FLOAT_SUM == ROWS_PER_FLOAT_SUM - 1 || i == last - 1) {
                        for (int u = 0; u < cols; u++) {
                            sum[u] += partialSum[u];
                            sumOfSquares[u] += partialSumOfSquares[u];
                            partialSum[u] = 0;
                            partialSumOfSquares[u] = 0;
                        }
                    }
                }
                counts[b] = count;
                sums[b] = sum;
                sumsOfSquares[b] = sumOfSquares;
            }
        });
        for (int u = 0; u < cols; u++) {
            long count = 0;
            double sum = 0;
            double sumOfSquares = 0;
            for (int b = 0; b < blocks; b++) {
                count += counts[b][u];
                sum += sums[b][u];
                sumOfSquares += sumsOfSquares[b][u];
            }
            st[so + u] += (float) (count >>> 32);
            st[so + cols + u] += (float) (count & 0xFFFFFFFFL);
            st[so + 2 * cols + u] += (float) sum;
            st[so + 3 * cols + u] += (float) sumOfSquares;
        }
    }

    /** Rows per parallel block of the unit statistics (a multiple of ROWS_PER_FLOAT_SUM). */
    private static final int ROWS_PER_BLOCK = 64;

    /** Rows per float partial sum of the unit statistics: 8 float additions, each within 2^-24, stay within 1e-6. */
    private static final int ROWS_PER_FLOAT_SUM = 8;

    @Override
    public void clipByValue(Tensor t, float limit) {
        float[] d = floats(t);
        int o = off(t);
        for (int i = 0; i < t.size(); i++) {
            d[o + i] = Math.max(-limit, Math.min(limit, d[o + i]));
        }
    }

    @Override
    public void clipByGlobalNorm(Tensor t, Tensor squaredNorms, float maxNorm) {
        double total = 0;
        float[] sq = floats(squaredNorms);
        for (int i = 0; i < squaredNorms.size(); i++) {
            total += sq[off(squaredNorms) + i];
        }
        double norm = Math.sqrt(total);
        if (!(norm > maxNorm)) {
            return; // within the limit (or NaN, which clipping cannot repair and the profiler reports)
        }
        float factor = (float) (maxNorm / norm);
        float[] d = floats(t);
        int o = off(t);
        for (int i = 0; i < t.size(); i++) {
            d[o + i] *= factor;
        }
    }

    // ---- optimizers ---------------------------------------------------------------------------

    @Override
    public void adamUpdate(Tensor params, Tensor grads, Tensor m, Tensor v, float beta1, float beta2, float epsilon,
                           float stepSize, UpdateNorms norms) {
        adamUpdate(params, grads, m, v, beta1, beta2, epsilon, stepSize, 0f, 0f, norms);
    }

    /** The Adam step after the weight decay {@code p -= p * weightDecay * learningRate} (none when 0). */
    private void adamUpdate(Tensor params, Tensor grads, Tensor m, Tensor v, float beta1, float beta2, float epsilon,
                            float stepSize, float weightDecay, float learningRate, UpdateNorms norms) {
        OpChecks.adamUpdate(params, grads, m, v);
        OpChecks.updateNorms("adamUpdate", params, norms);
        float[] p = floats(params);
        float[] g = floats(grads);
        float[] md = floats(m);
        float[] vd = floats(v);
        int po = off(params);
        int go = off(grads);
        int mo = off(m);
        int vo = off(v);
        if (go == po && mo == po && vo == po) {
            // The usual case (each buffer a whole tensor): one index for all four arrays, which lets HotSpot
            // vectorise the loop (it cannot rule out that differently offset arrays overlap); 5-8x faster.
            updateElements(params, norms, (from, to) -> {
                decay(p, po + from, po + to, weightDecay, learningRate);
                for (int i = po + from; i < po + to; i++) {
                    float gi = g[i];
                    float mi = md[i] + (1 - beta1) * (gi - md[i]);
                    float vi = vd[i] + (1 - beta2) * (gi * gi - vd[i]);
                    md[i] = mi;
                    vd[i] = vi;
                    p[i] -= stepSize * mi / ((float) Math.sqrt(vi) + epsilon);
                }
            });
            return;
        }
        updateElements(params, norms, (from, to) -> {
            decay(p, po + from, po + to, weightDecay, learningRate);
            for (int i = from; i < to; i++) {
                float gi = g[go + i];
                float mi = md[mo + i] + (1 - beta1) * (gi - md[mo + i]);
                float vi = vd[vo + i] + (1 - beta2) * (gi * gi - vd[vo + i]);
                md[mo + i] = mi;
                vd[vo + i] = vi;
                p[po + i] -= stepSize * mi / ((float) Math.sqrt(vi) + epsilon);
            }
        });
    }

    @Override
    public void sgdUpdate(Tensor params, Tensor grads, Tensor velocity, float peakRate, StepSchedule schedule,
                          float momentum, boolean nesterov, float weightDecay, Tensor iterations,
                          UpdateNorms norms) {
        OpChecks.sgdUpdate(params, grads);
        OpChecks.updateNorms("sgdUpdate", params, norms);
        OpChecks.optionalStepCount("sgdUpdate", iterations, schedule);
        float learningRate = rateAtCount(peakRate, schedule, iterations);
        float[] p = floats(params);
        float[] g = floats(grads);
        int po = off(params);
        int go = off(grads);
        if (momentum == 0) {
            updateElements(params, norms, (from, to) -> {
                decay(p, po + from, po + to, weightDecay, learningRate);
                for (int i = from; i < to; i++) {
                    p[po + i] -= learningRate * g[go + i];
                }
            });
            countUpdate(iterations);
            return;
        }
        OpChecks.sgdVelocity(params, velocity, momentum);
        float[] vel = floats(velocity);
        int vo = off(velocity);
        updateElements(params, norms, (from, to) -> {
            decay(p, po + from, po + to, weightDecay, learningRate);
            for (int i = from; i < to; i++) {
                float vi = momentum * vel[vo + i] - learningRate * g[go + i];
                vel[vo + i] = vi;
                p[po + i] += nesterov ? momentum * vi - learningRate * g[go + i] : vi;
            }
        });
        countUpdate(iterations);
    }

    /**
     * The rate of an update that may count its steps: {@code peakRate} without a count, else
     * {@code (float) schedule.rate(peakRate, iterations[0])} (the device's {@code gs::rateAtCount}).
     */
    private static float rateAtCount(float peakRate, StepSchedule schedule, Tensor iterations) {
        return iterations == null ? peakRate : (float) schedule.rate(peakRate, counterValue(iterations));
    }

    /** {@code iterations[0] += 1}, when there is a count. */
    /**
     * Adds one update to the count, which stays at {@link Integer#MAX_VALUE} once there, as optim.cu's
     * {@code gs::addOneUpdate}: a wrapped, negative count would put a per-step schedule back before its warmup.
     */
    private static void countUpdate(Tensor iterations) {
        if (iterations != null && ints(iterations)[off(iterations)] < Integer.MAX_VALUE) {
            ints(iterations)[off(iterations)]++;
        }
    }

    @Override
    public void rmspropUpdate(Tensor params, Tensor grads, Tensor velocity, Tensor averageGradient,
                              Tensor momentumBuffer, float peakRate, StepSchedule schedule, float rho, float momentum,
                              float epsilon, boolean centered, float weightDecay, Tensor iterations,
                              UpdateNorms norms) {
        OpChecks.rmspropUpdate(params, grads, velocity, averageGradient, momentumBuffer, momentum, centered);
        OpChecks.updateNorms("rmspropUpdate", params, norms);
        OpChecks.optionalStepCount("rmspropUpdate", iterations, schedule);
        float learningRate = rateAtCount(peakRate, schedule, iterations);
        float[] p = floats(params);
        float[] g = floats(grads);
        float[] vel = floats(velocity);
        float[] avg = centered ? floats(averageGradient) : null;
        float[] buf = momentum != 0 ? floats(momentumBuffer) : null;
        int po = off(params);
        int go = off(grads);
        int vo = off(velocity);
        int ao = centered ? off(averageGradient) : 0;
        int bo = momentum != 0 ? off(momentumBuffer) : 0;
        float oneMinusRho = 1 - rho;
        if (go == po && vo == po && (!centered || ao == po) && (momentum == 0 || bo == po)) {
            // The usual case (each buffer a whole tensor): one index for all arrays, which lets HotSpot vectorise
            // the loop (as Adam's; the branches, the same for every element, it takes out of the loop): 10-20x
            // faster centered or with momentum. The same float operations as the general loop below.
            updateElements(params, norms, (from, to) -> {
                decay(p, po + from, po + to, weightDecay, learningRate);
                for (int i = po + from; i < po + to; i++) {
                    float gi = g[i];
                    float vi = rho * vel[i] + oneMinusRho * (gi * gi);
                    vel[i] = vi;
                    float denominator;
                    if (centered) {
                        float ai = rho * avg[i] + oneMinusRho * gi;
                        avg[i] = ai;
                        denominator = vi - ai * ai + epsilon;
                    } else {
                        denominator = vi + epsilon;
                    }
                    float increment = learningRate * gi / (float) Math.sqrt(denominator);
                    if (momentum != 0) {
                        float bi = momentum * buf[i] + increment;
                        buf[i] = bi;
                        p[i] -= bi;
                    } else {
                        p[i] -= increment;
                    }
                }
            });
            countUpdate(iterations);
            return;
        }
        updateElements(params, norms, (from, to) -> {
            decay(p, po + from, po + to, weightDecay, learningRate);
            for (int i = from; i < to; i++) {
                float gi = g[go + i];
                float vi = rho * vel[vo + i] + oneMinusRho * (gi * gi);
                vel[vo + i] = vi;
                float denominator;
                if (centered) {
                    float ai = rho * avg[ao + i] + oneMinusRho * gi;
                    avg[ao + i] = ai;
                    denominator = vi - ai * ai + epsilon;
                } else {
                    denominator = vi + epsilon;
                }
                float increment = learningRate * gi / (float) Math.sqrt(denominator);
                if (momentum != 0) {
                    float bi = momentum * buf[bo + i] + increment;
                    buf[bo + i] = bi;
                    p[po + i] -= bi;
                } else {
                    p[po + i] -= increment;
                }
            }
        });
        countUpdate(iterations);
    }

    /**
     * Keras 3's decoupled weight decay over {@code p[from, to)}, before an optimizer's own update in the same
     * pass: {@code p -= p * weightDecay * learningRate}. Nothing when {@code weightDecay} is 0 (not
     * {@code p - 0}, which would turn -0 into +0 and an infinity into NaN).
     */
    private static void decay(float[] p, int from, int to, float weightDecay, float learningRate) {
        if (weightDecay == 0) {
            return;
        }
        for (int i = from; i < to; i++) {
            p[i] -= p[i] * weightDecay * learningRate;
        }
    }

    /**
     * Parameters per measured block of an optimizer step: small enough that a block and its copy stay in
     * the first-level cache between the update and the sums, and that the blocks share out evenly over
     * the threads.
     */
    private static final int NORM_BLOCK = 1 << 12;

    private static final ThreadLocal<NormWorkspace> NORM_WORKSPACE = ThreadLocal.withInitial(NormWorkspace::new);

    /**
     * Runs an optimizer's element loop over every element of {@code params}: without norms in parallel
     * chunks; with them in blocks of at most {@link #NORM_BLOCK} inside one segment each (all blocks of all
     * segments in one parallel pass), each block copied aside, updated by the same loop, and measured
     * against its copy while both are still in cache. The loop stays free of reductions, which would stop
     * HotSpot from vectorising it; block sums are added in block order, so the norms depend on the data
     * alone, not on the number of threads.
     */
    private static void updateElements(Tensor params, UpdateNorms norms, ChunkBody loop) {
        int n = (int) params.size();
        if (norms == null) {
            forEachChunk(n, loop);
            return;
        }
        int[] starts = ints(norms.segmentStarts());
        int so = off(norms.segmentStarts());
        int segments = (int) norms.weightSquares().size();
        if (starts[so] != 0 || starts[so + segments] != n) {
            throw new IllegalArgumentException("update norms: segments [" + starts[so] + ", " + starts[so + segments]
                    + ") must cover all " + n + " parameters");
        }
        if (norms.table() != null) { // a bad row fails before anything is updated
            int r = counterValue(norms.row());
            if (r < 0 || r >= norms.table().dim(0)) {
                throw new IndexOutOfBoundsException("update norms: row " + r + " outside a table of "
                        + norms.table().dim(0) + " rows");
            }
        }
        // Block k covers [blockStart[k], blockStart[k + 1]); blockSegment[k] is its segment.
        int[] firstBlock = new int[segments + 1];
        for (int s = 0; s < segments; s++) {
            int length = starts[so + s + 1] - starts[so + s];
            if (length < 0) {
                throw new IllegalArgumentException("update norms: segment " + s + " [" + starts[so + s] + ", "
                        + starts[so + s + 1] + ") is reversed");
            }
            firstBlock[s + 1] = firstBlock[s] + (length + NORM_BLOCK - 1) / NORM_BLOCK;
        }
        int blocks = firstBlock[segments];
        int[] blockStart = new int[blocks + 1];
        for (int s = 0; s < segments; s++) {
            for (int k = firstBlock[s]; k < firstBlock[s + 1]; k++) {
                blockStart[k] = starts[so + s] + (k - firstBlock[s]) * NORM_BLOCK;
            }
        }
        blockStart[blocks] = n;
        float[] p = floats(params);
        int po = off(params);
        double[] weightSquares = new double[blocks];
        double[] updateSquares = new double[blocks];
        forEachChunk(blocks, NORM_BLOCK, (first, last) -> {
            NormWorkspace workspace = NORM_WORKSPACE.get();
            for (int k = first; k < last; k++) {
                int from = blockStart[k];
                int count = Math.min(blockStart[k + 1], from + NORM_BLOCK) - from;
                System.arraycopy(p, po + from, workspace.before, 0, count);
                loop.run(from, from + count);
                workspace.measure(p, po + from, count);
                weightSquares[k] = workspace.weightSquares;
                updateSquares[k] = workspace.updateSquares;
            }
        });
        float[] weightOut = floats(norms.weightSquares());
        float[] updateOut = floats(norms.updateSquares());
        for (int s = 0; s < segments; s++) {
            double weights = 0;
            double updates = 0;
            for (int k = firstBlock[s]; k < firstBlock[s + 1]; k++) {
                weights += weightSquares[k];
                updates += updateSquares[k];
            }
            weightOut[off(norms.weightSquares()) + s] = (float) weights;
            updateOut[off(norms.updateSquares()) + s] = (float) updates;
        }
        if (norms.table() != null) {
            Tensor table = norms.table();
            int rowStart = off(table) + counterValue(norms.row()) * 2 * segments; // checked before the update
            System.arraycopy(weightOut, off(norms.weightSquares()), floats(table), rowStart, segments);
            System.arraycopy(updateOut, off(norms.updateSquares()), floats(table), rowStart + segments, segments);
        }
    }

    // ---- data ---------------------------------------------------------------------------------

    @Override
    public void gatherRows(Tensor source, Tensor indices, int first, float scale, Tensor out) {
        OpChecks.gatherRows(source, indices, first, out);
        int rows = out.rowCount();
        int cols = out.columnCount();
        int[] idx = ints(indices);
        float[] od = floats(out);
        CpuStorage s = storage(source);
        for (int r = 0; r < rows; r++) {
            int row = idx[off(indices) + first + r];
            if (row < 0 || row >= source.rowCount()) {
                throw new IndexOutOfBoundsException("gatherRows: index " + row + " at position " + (first + r)
                        + " outside a source of " + source.rowCount() + " rows");
            }
            int from = off(source) + row * cols;
            int to = off(out) + r * cols;
            if (source.dtype() == DType.UINT8) {
                for (int c = 0; c < cols; c++) {
                    od[to + c] = (s.bytes[from + c] & 0xFF) * scale;
                }
            } else {
                for (int c = 0; c < cols; c++) {
                    od[to + c] = s.floats[from + c] * scale;
                }
            }
        }
    }

    // ---- the step's changing values on the device ---------------------------------------------
    //
    // The "device" is host memory here: each op reads its counter when it runs and is then the host-scalar
    // op it stands for. No graphs: capture() keeps Backend's default, a graph that reruns the step.

    @Override
    public void gatherRows(Tensor source, Tensor indices, Tensor counter, int rowsPerCount, float scale, Tensor out) {
        OpChecks.gatherRowsAtCounter(source, indices, counter, rowsPerCount, out);
        long first = (long) counterValue(counter) * rowsPerCount;
        if (first < 0 || first + out.rowCount() > indices.size()) {
            throw new IllegalArgumentException("gatherRows: counter " + counterValue(counter) + " times "
                    + rowsPerCount + " rows puts indices [" + first + ", " + (first + out.rowCount()) + ") outside "
                    + indices.size() + " indices");
        }
        gatherRows(source, indices, (int) first, scale, out);
    }

    @Override
    public void gatherNextBatch(Tensor features, float featureScale, Tensor targets, Tensor indices, Tensor counter,
                                int rowsPerCount, Tensor featuresOut, Tensor targetsOut) {
        OpChecks.gatherBatchAtCounter("gatherNextBatch", features, targets, indices, counter, rowsPerCount,
                featuresOut, targetsOut);
        long first = (long) counterValue(counter) * rowsPerCount;
        if (first < 0) {
            throw new IllegalArgumentException("gatherNextBatch: counter " + counterValue(counter) + " times "
                    + rowsPerCount + " rows is below 0");
        }
        int rows = (int) Math.min(featuresOut.rowCount(), Math.max(0, indices.size() - first));
        if (rows > 0) {
            gatherRows(features, indices, (int) first, featureScale, featuresOut.rows(0, rows));
            gatherRows(targets, indices, (int) first, 1f, targetsOut.rows(0, rows));
        }
        ints(counter)[off(counter)]++;
    }

    @Override
    public void copyToRow(Tensor src, Tensor table, Tensor row) {
        OpChecks.copyToRow(src, table, row);
        int r = counterValue(row);
        if (r < 0 || r >= table.rowCount()) {
            throw new IndexOutOfBoundsException("copyToRow: row " + r + " outside a table of " + table.rowCount()
                    + " rows");
        }
        int n = (int) src.size();
        System.arraycopy(floats(src), off(src), floats(table), off(table) + r * n, n);
    }

    @Override
    public void advanceCounters(Tensor counters) {
        OpChecks.advanceCounters(counters);
        int[] c = ints(counters);
        for (int i = off(counters); i < off(counters) + counters.size(); i++) {
            c[i]++;
        }
    }

    @Override
    public void adamUpdate(Tensor params, Tensor grads, Tensor m, Tensor v, Tensor vHat, double learningRate,
                           StepSchedule schedule, double beta1, double beta2, float epsilon, float weightDecay,
                           Tensor iterations, UpdateNorms norms) {
        OpChecks.adamUpdateAtCounter(params, grads, m, v, iterations);
        OpChecks.adamVelocityHat(params, vHat);
        long step = counterValue(iterations);
        double rate = schedule.rate(learningRate, step);
        float stepSize = Backend.adamStepSize(rate, beta1, beta2, step + 1L);
        if (vHat == null) {
            adamUpdate(params, grads, m, v, (float) beta1, (float) beta2, epsilon, stepSize, weightDecay,
                    (float) rate, norms);
        } else {
            amsgradUpdate(params, grads, m, v, vHat, (float) beta1, (float) beta2, epsilon, stepSize, weightDecay,
                    (float) rate, norms);
        }
        countUpdate(iterations);
    }

    /** Adam's step with AMSGrad's running maximum {@code vHat} of {@code v} in the denominator. */
    private void amsgradUpdate(Tensor params, Tensor grads, Tensor m, Tensor v, Tensor vHat, float beta1,
                               float beta2, float epsilon, float stepSize, float weightDecay, float learningRate,
                               UpdateNorms norms) {
        OpChecks.updateNorms("adamUpdate", params, norms);
        float[] p = floats(params);
        float[] g = floats(grads);
        float[] md = floats(m);
        float[] vd = floats(v);
        float[] hd = floats(vHat);
        int po = off(params);
        int go = off(grads);
        int mo = off(m);
        int vo = off(v);
        int ho = off(vHat);
        updateElements(params, norms, (from, to) -> {
            decay(p, po + from, po + to, weightDecay, learningRate);
            for (int i = from; i < to; i++) {
                float gi = g[go + i];
                float mi = md[mo + i] + (1 - beta1) * (gi - md[mo + i]);
                float vi = vd[vo + i] + (1 - beta2) * (gi * gi - vd[vo + i]);
                float hi = Math.max(hd[ho + i], vi);
                md[mo + i] = mi;
                vd[vo + i] = vi;
                hd[ho + i] = hi;
                p[po + i] -= stepSize * mi / ((float) Math.sqrt(hi) + epsilon);
            }
        });
    }

    @Override
    public void nadamUpdate(Tensor params, Tensor grads, Tensor m, Tensor v, float peakRate, StepSchedule schedule,
                            double beta1, double beta2, float epsilon, float weightDecay, Tensor iterations,
                            Tensor uProduct, UpdateNorms norms) {
        OpChecks.nadamUpdate(params, grads, m, v, iterations, uProduct);
        OpChecks.updateNorms("nadamUpdate", params, norms);
        float learningRate = (float) schedule.rate(peakRate, counterValue(iterations));
        float[] scalars = Backend.nadamScalars(beta1, beta2, counterValue(iterations) + 1L,
                floats(uProduct)[off(uProduct)]);
        float uNow = scalars[0];
        float uNext = scalars[1];
        float productNow = scalars[2];
        float productNext = scalars[3];
        float beta2Correction = scalars[4];
        float oneMinusBeta1 = 1 - (float) beta1;
        float oneMinusBeta2 = 1 - (float) beta2;
        float[] p = floats(params);
        float[] g = floats(grads);
        float[] md = floats(m);
        float[] vd = floats(v);
        int po = off(params);
        int go = off(grads);
        int mo = off(m);
        int vo = off(v);
        updateElements(params, norms, (from, to) -> {
            decay(p, po + from, po + to, weightDecay, learningRate);
            for (int i = from; i < to; i++) {
                float gi = g[go + i];
                float mi = md[mo + i] + (gi - md[mo + i]) * oneMinusBeta1;
                float vi = vd[vo + i] + (gi * gi - vd[vo + i]) * oneMinusBeta2;
                md[mo + i] = mi;
                vd[vo + i] = vi;
                float mHat = uNext * mi / (1 - productNext) + (1 - uNow) * gi / (1 - productNow);
                float vHat = vi / beta2Correction;
                p[po + i] -= mHat * learningRate / ((float) Math.sqrt(vHat) + epsilon);
            }
        });
        floats(uProduct)[off(uProduct)] = productNow;
        countUpdate(iterations);
    }

    @Override
    public void adamaxUpdate(Tensor params, Tensor grads, Tensor m, Tensor u, float peakRate, StepSchedule schedule,
                             double beta1, double beta2, float epsilon, float weightDecay, Tensor iterations,
                             UpdateNorms norms) {
        OpChecks.adamaxUpdate(params, grads, m, u, iterations);
        OpChecks.updateNorms("adamaxUpdate", params, norms);
        float learningRate = (float) schedule.rate(peakRate, counterValue(iterations));
        float correction = Backend.adamaxCorrection(beta1, counterValue(iterations) + 1L);
        float oneMinusBeta1 = (float) (1 - beta1);
        float b2 = (float) beta2;
        float[] p = floats(params);
        float[] g = floats(grads);
        float[] md = floats(m);
        float[] ud = floats(u);
        int po = off(params);
        int go = off(grads);
        int mo = off(m);
        int uo = off(u);
        updateElements(params, norms, (from, to) -> {
            decay(p, po + from, po + to, weightDecay, learningRate);
            for (int i = from; i < to; i++) {
                float gi = g[go + i];
                float mi = md[mo + i] + (gi - md[mo + i]) * oneMinusBeta1;
                float ui = Math.max(b2 * ud[uo + i], Math.abs(gi));
                md[mo + i] = mi;
                ud[uo + i] = ui;
                p[po + i] -= learningRate * mi / (correction * (ui + epsilon));
            }
        });
        countUpdate(iterations);
    }

    @Override
    public void adagradUpdate(Tensor params, Tensor grads, Tensor accumulator, float peakRate,
                              StepSchedule schedule, float epsilon, float weightDecay, Tensor iterations,
                              UpdateNorms norms) {
        OpChecks.adagradUpdate(params, grads, accumulator);
        OpChecks.updateNorms("adagradUpdate", params, norms);
        OpChecks.optionalStepCount("adagradUpdate", iterations, schedule);
        float learningRate = rateAtCount(peakRate, schedule, iterations);
        float[] p = floats(params);
        float[] g = floats(grads);
        float[] acc = floats(accumulator);
        int po = off(params);
        int go = off(grads);
        int ao = off(accumulator);
        updateElements(params, norms, (from, to) -> {
            decay(p, po + from, po + to, weightDecay, learningRate);
            for (int i = from; i < to; i++) {
                float gi = g[go + i];
                float ai = acc[ao + i] + gi * gi;
                acc[ao + i] = ai;
                p[po + i] -= learningRate * gi / (float) Math.sqrt(ai + epsilon);
            }
        });
        countUpdate(iterations);
    }

    private static int counterValue(Tensor counter) {
        return ints(counter)[off(counter)];
    }

    @Override
    public void close() {
        // Nothing native to release; CpuWorkers' helpers are shared daemon threads.
    }

    // ---- helpers ------------------------------------------------------------------------------

    /** Runs {@code body} over [0, n) in contiguous chunks, in parallel when n is large. */
    private static void forEachChunk(int n, ChunkBody body) {
        forEachChunk(n, 1, body);
    }

    /**
     * Runs {@code body} over [0, n) in contiguous chunks, in parallel when the work ({@code n} items of
     * {@code elementsPerItem} elements each) is large.
     */
    private static void forEachChunk(int n, int elementsPerItem, ChunkBody body) {
        long work = (long) n * elementsPerItem;
        if (work < PARALLEL_THRESHOLD || n < 2) {
            body.run(0, n);
            return;
        }
        int chunks = (int) Math.min(Math.min(CpuWorkers.threads(), n), work / (PARALLEL_THRESHOLD / 2));
        CpuWorkers.run(chunks, c -> body.run((int) ((long) n * c / chunks), (int) ((long) n * (c + 1) / chunks)));
    }

    @FunctionalInterface
    private interface ChunkBody {
        void run(int from, int to);
    }

    /** How element {@code i} of a [rows, cols] input finds its activation parameter. */
    private static final class ParameterView {
        private final float[] data;
        private final int offset;
        private final int cols;
        final boolean shared;

        private ParameterView(float[] data, int offset, int cols, boolean shared) {
            this.data = data;
            this.offset = offset;
            this.cols = cols;
            this.shared = shared;
        }

        /** {@code count} is what {@link OpChecks#activationParameterCount} returned for {@code param}. */
        static ParameterView of(int count, Tensor param, Tensor z) {
            if (count == 0) {
                return new ParameterView(new float[] {0f}, 0, 1, true);
            }
            return new ParameterView(floats(param), off(param), z.columnCount(), count == 1);
        }

        double at(int element) {
            return shared ? data[offset] : data[offset + element % cols];
        }
    }

    private static CpuStorage storage(Tensor t) {
        if (!(t.storage() instanceof CpuStorage s)) {
            throw new IllegalArgumentException("tensor " + t + " is not on the CPU backend");
        }
        return s;
    }

    private static float[] floats(Tensor t) {
        CpuStorage s = storage(t);
        OpChecks.requireDType(t, DType.FLOAT32);
        return s.floats;
    }

    private static int[] ints(Tensor t) {
        CpuStorage s = storage(t);
        if (s.ints == null) {
            throw new IllegalArgumentException("expected an INT32 tensor, got " + t);
        }
        return s.ints;
    }

    private static int off(Tensor t) {
        return (int) t.offset();
    }
}
