package dev.gradscope.backend.cpu;

import dev.gradscope.tensor.ActivationKind;
import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.Shapes;
import dev.gradscope.tensor.Tensor;
import java.util.function.DoubleBinaryOperator;
import java.util.stream.IntStream;

/**
 * The reference backend: plain Java on host arrays. Every op here is the definition that the CUDA
 * kernels are tested against, so each is written to be obviously correct: simple loops, double
 * accumulation where a sum runs long. Only GEMM ({@link CpuGemm}) and the element-wise activation
 * loops are tuned, because they are nearly all of an epoch's time.
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
        requireLength("fromHost", data.length, t);
        System.arraycopy(data, 0, storage(t).bytes, off(t), data.length);
        return t;
    }

    @Override
    public void copyFromHost(float[] data, Tensor dst) {
        requireLength("copyFromHost", data.length, dst);
        System.arraycopy(data, 0, floats(dst), off(dst), data.length);
    }

    @Override
    public void copyFromHost(int[] data, Tensor dst) {
        requireLength("copyFromHost", data.length, dst);
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
        if (src.dtype() != dst.dtype() || src.size() != dst.size()) {
            throw new IllegalArgumentException("copy: source " + src + " and destination " + dst
                    + " must have the same dtype and size");
        }
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
        CpuGemm.gemm(transposeA, transposeB, m, n, k, alpha, floats(a), off(a), floats(b), off(b), beta,
                floats(c), off(c));
    }

    @Override
    public void addRowVectorAccumulate(Tensor y, Tensor bias) {
        int rows = y.rowCount();
        int cols = y.columnCount();
        requireLength("addRowVectorAccumulate (bias)", cols, bias);
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
        int rows = x.rowCount();
        int cols = x.columnCount();
        requireLength("columnSums (out)", cols, out);
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

    // ---- activations --------------------------------------------------------------------------

    @Override
    public void activationForward(ActivationKind kind, Tensor z, Tensor param, Tensor y) {
        Shapes.requireSame("activationForward(" + kind.id() + ")", "z", z, "y", y);
        DoubleBinaryOperator f = CpuActivations.of(kind).forward();
        ParameterView p = ParameterView.of("activationForward(" + kind.id() + ")", kind, param, z);
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
        String op = "activationBackward(" + kind.id() + ")";
        Shapes.requireSame(op, "z", z, "dy", dy);
        Shapes.requireSame(op, "z", z, "dz", dz);
        DoubleBinaryOperator df = CpuActivations.of(kind).derivative();
        ParameterView p = ParameterView.of(op, kind, param, z);
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

    @Override
    public void activationParameterGradient(ActivationKind kind, Tensor z, Tensor param, Tensor dy, Tensor dParam) {
        String op = "activationParameterGradient(" + kind.id() + ")";
        Shapes.requireSame(op, "z", z, "dy", dy);
        Shapes.requireSame(op, "param", param, "dParam", dParam);
        DoubleBinaryOperator dfdp = CpuActivations.of(kind).parameterDerivative();
        if (dfdp == null) {
            throw new IllegalArgumentException(op + ": " + kind.id() + " has no parameter");
        }
        ParameterView p = ParameterView.of(op, kind, param, z);
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
        int units = requireMaxoutShapes("maxoutForward", z, pieces, y, winner);
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
        int units = requireMaxoutShapes("maxoutBackward", dz, pieces, dy, winner);
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

    private static int requireMaxoutShapes(String op, Tensor z, int pieces, Tensor y, Tensor winner) {
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

    @Override
    public void softmax(Tensor logits, Tensor probabilities) {
        Shapes.requireSame("softmax", "logits", logits, "probabilities", probabilities);
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
        Shapes.requireMatrix(op, "logits", logits);
        Shapes.requireSame(op, "logits", logits, "targets", targets);
        Shapes.requireSame(op, "logits", logits, "dLogits", dLogits);
        requireLength(op + " (totals)", 2, totals);
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

    @Override
    public void segmentSumOfSquares(Tensor x, Tensor segmentStarts, Tensor out) {
        segmentSums("segmentSumOfSquares", x, null, segmentStarts, out);
    }

    @Override
    public void segmentSumOfSquaredDifferences(Tensor a, Tensor b, Tensor segmentStarts, Tensor out) {
        Shapes.requireSame("segmentSumOfSquaredDifferences", "a", a, "b", b);
        segmentSums("segmentSumOfSquaredDifferences", a, b, segmentStarts, out);
    }

    /** {@code out[s] = sum over segment s of (a - b)^2}, or of {@code a^2} when {@code b} is null. */
    private static void segmentSums(String op, Tensor a, Tensor b, Tensor segmentStarts, Tensor out) {
        Shapes.requireType(op, "segmentStarts", segmentStarts, DType.INT32);
        requireLength(op + " (segmentStarts)", (int) out.size() + 1, segmentStarts);
        int[] starts = ints(segmentStarts);
        int so = off(segmentStarts);
        float[] ad = floats(a);
        float[] bd = b == null ? null : floats(b);
        float[] od = floats(out);
        for (int s = 0; s < out.size(); s++) {
            int from = starts[so + s];
            int to = starts[so + s + 1];
            if (from < 0 || from > to || to > a.size()) {
                throw new IllegalArgumentException(op + ": segment " + s + " [" + from + ", " + to
                        + ") is outside a tensor of " + a.size() + " elements");
            }
            double sum = 0;
            for (int k = from; k < to; k++) {
                double v = bd == null ? ad[off(a) + k] : (double) ad[off(a) + k] - bd[off(b) + k];
                sum += v * v;
            }
            od[off(out) + s] = (float) sum;
        }
    }

    @Override
    public void accumulateUnitStatistics(ActivationKind kind, Tensor z, Tensor param, Tensor y,
                                         float saturationThreshold, Tensor statistics) {
        String op = "accumulateUnitStatistics(" + kind.id() + ")";
        Shapes.requireSame(op, "z", z, "y", y);
        int rows = z.rowCount();
        int cols = z.columnCount();
        Shapes.require(op, "statistics", statistics, 4, cols);
        DoubleBinaryOperator df = CpuActivations.of(kind).derivative();
        ParameterView p = ParameterView.of(op, kind, param, z);
        float[] zd = floats(z);
        float[] yd = floats(y);
        float[] st = floats(statistics);
        int so = off(statistics);
        for (int j = 0; j < cols; j++) {
            double active = 0;
            double saturated = 0;
            double sum = 0;
            double sumOfSquares = 0;
            for (int i = 0; i < rows; i++) {
                int e = i * cols + j;
                double d = Math.abs(df.applyAsDouble(zd[off(z) + e], p.at(e)));
                if (d != 0) {
                    active++;
                }
                if (d < saturationThreshold) {
                    saturated++;
                }
                double v = yd[off(y) + e];
                sum += v;
                sumOfSquares += v * v;
            }
            st[so + j] += (float) active;
            st[so + cols + j] += (float) saturated;
            st[so + 2 * cols + j] += (float) sum;
            st[so + 3 * cols + j] += (float) sumOfSquares;
        }
    }

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
                           float stepSize) {
        Shapes.requireSame("adamUpdate", "params", params, "grads", grads);
        Shapes.requireSame("adamUpdate", "params", params, "m", m);
        Shapes.requireSame("adamUpdate", "params", params, "v", v);
        float[] p = floats(params);
        float[] g = floats(grads);
        float[] md = floats(m);
        float[] vd = floats(v);
        int po = off(params);
        int go = off(grads);
        int mo = off(m);
        int vo = off(v);
        forEachChunk((int) params.size(), (from, to) -> {
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
    public void sgdUpdate(Tensor params, Tensor grads, Tensor velocity, float learningRate, float momentum,
                          boolean nesterov) {
        Shapes.requireSame("sgdUpdate", "params", params, "grads", grads);
        float[] p = floats(params);
        float[] g = floats(grads);
        int po = off(params);
        int go = off(grads);
        int n = (int) params.size();
        if (momentum == 0) {
            for (int i = 0; i < n; i++) {
                p[po + i] -= learningRate * g[go + i];
            }
            return;
        }
        if (velocity == null) {
            throw new IllegalArgumentException("sgdUpdate: momentum " + momentum + " needs a velocity buffer");
        }
        Shapes.requireSame("sgdUpdate", "params", params, "velocity", velocity);
        float[] vel = floats(velocity);
        int vo = off(velocity);
        for (int i = 0; i < n; i++) {
            float vi = momentum * vel[vo + i] - learningRate * g[go + i];
            vel[vo + i] = vi;
            p[po + i] += nesterov ? momentum * vi - learningRate * g[go + i] : vi;
        }
    }

    // ---- data ---------------------------------------------------------------------------------

    @Override
    public void gatherRows(Tensor source, Tensor indices, int first, float scale, Tensor out) {
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

    @Override
    public void close() {
        // Nothing native to release; the GEMM thread pool is shared and made of daemon threads.
    }

    // ---- helpers ------------------------------------------------------------------------------

    /** Runs {@code body} over [0, n) in contiguous chunks, in parallel when n is large. */
    private static void forEachChunk(int n, ChunkBody body) {
        if (n < PARALLEL_THRESHOLD) {
            body.run(0, n);
            return;
        }
        int chunks = Math.min(Runtime.getRuntime().availableProcessors(), n / (PARALLEL_THRESHOLD / 2));
        IntStream.range(0, chunks).parallel().forEach(c -> body.run(
                (int) ((long) n * c / chunks), (int) ((long) n * (c + 1) / chunks)));
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

        static ParameterView of(String op, ActivationKind kind, Tensor param, Tensor z) {
            if (param == null) {
                if (kind.hasParameter()) {
                    throw new IllegalArgumentException(op + ": " + kind.id() + " needs its " + kind.parameterName());
                }
                return new ParameterView(new float[] {0f}, 0, 1, true);
            }
            int cols = z.columnCount();
            if (param.size() != 1 && param.size() != cols) {
                throw new IllegalArgumentException(op + ": parameter " + Shapes.describe(param.shape())
                        + " must have 1 element or one per column of " + Shapes.describe(z.shape()));
            }
            return new ParameterView(floats(param), off(param), cols, param.size() == 1);
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
        if (s.floats == null) {
            throw new IllegalArgumentException("expected a FLOAT32 tensor, got " + t);
        }
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

    private static void requireLength(String op, int expected, Tensor t) {
        if (t.size() != expected) {
            throw new IllegalArgumentException(op + ": tensor " + Shapes.describe(t.shape()) + " must have "
                    + expected + " elements");
        }
    }
}
