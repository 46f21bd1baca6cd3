package dev.gradscope.cli;

import dev.gradscope.backend.Devices;
import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.backend.cuda.CudaBackend;
import dev.gradscope.nn.BatchNormalization;
import dev.gradscope.report.HistoryJson;
import dev.gradscope.tensor.ActivationKind;
import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.DropoutMask;
import dev.gradscope.tensor.Tensor;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.function.IntToDoubleFunction;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code gradscope bench kernels}: how close each element-wise kernel comes to the memory bandwidth.
 *
 * <p>On one backend, with tensors of N floats allocated once: a device-to-device copy (8N bytes: read
 * plus write) gives the ceiling; then the forward (8N bytes: read z, write y) and the backward (12N
 * bytes: read z and dy, write dz) of every element-wise {@link ActivationKind}, with its default
 * parameter where it has one, are each run {@value #WARMUP_RUNS} times untimed and R times timed
 * ({@link Stopwatch}: CUDA events on the GPU). Each reports the median run, GB/s = bytes / median and
 * the percentage of the copy's GB/s. So does dropout at rate {@value #DROPOUT_RATE}, forward and backward (8N
 * bytes each: one tensor read, one written; the mask is hashed, not read). So does batch normalization's
 * training forward and backward pass over the N floats as a [N / {@value #BATCH_NORM_COLUMNS} x
 * {@value #BATCH_NORM_COLUMNS}] batch: the bytes a kernel must move at the least when a column does not fit on chip,
 * so that its statistics need a pass of their own, 12N forward (read x for the statistics, read it again and write
 * y) and 20N backward (read x and dy for the two sums, read them again and write dx), plus its per-column vectors
 * (forward: gamma, beta and the moving statistics read, the moving and the batch statistics written, 32 bytes a
 * column; backward: gamma and the batch statistics read, dGamma and dBeta written, 20). On a GPU the kernels move
 * those bytes: a batch this tall takes two kernels a pass, the sums (x, or x and dy, read once, by blocks of 32
 * columns x a slice of rows: 1024 blocks for 2^28 floats) and an element-wise pass; the sums' partials per slice
 * (at most 64 slices: 48 bytes a column and slice forward, 32 backward, written and read once) are left out, under
 * 0.1% of the batch for 2^28 floats. Two SGEMMs give GFLOP/s: the MLP's first layer and, off the CPU, 4096^3.
 *
 * <p>Inputs are varied (a Weyl sequence, z in [-8, 8): every kink and both saturated tails), never
 * zeros. Outputs are poisoned with NaN before the warm-up; after timing, windows at the start, middle
 * and end of each output are compared with the CPU reference, so an op that skips elements or writes
 * garbage fails the command instead of posting a fast time. Exit status: 0 when every result checks
 * out, whatever the bandwidth; 1 when something fails to run or gives wrong results; 2 on usage errors.
 */
@Command(name = "kernels", mixinStandardHelpOptions = true,
        versionProvider = GradScope.Version.class, sortOptions = false,
        description = "Time the copy, every element-wise activation (forward, backward) and two SGEMMs; "
                + "report GB/s, the percentage of the copy's GB/s, and GFLOP/s.")
final class BenchKernelsCommand implements Callable<Integer> {
    /** Untimed runs of each op before its timed ones. */
    static final int WARMUP_RUNS = 2;

    /** Fractions of the copy's bandwidth a kind is measured against, highest first. */
    static final double[] THRESHOLDS = {0.95, 0.90};

    /** The rate dropout is timed at: half the elements kept, so the branch is least predictable. */
    static final double DROPOUT_RATE = 0.5;

    /**
     * Columns of the batch batch normalization is timed on: the chapter MLP's widest hidden layer (its rows are the
     * rest of the N floats, so the column statistics are sums over many rows).
     */
    static final int BATCH_NORM_COLUMNS = 512;

    /**
     * Batch normalization's dGamma, a sum over the rows of dy * xhat, may also be off by this much of the sum of its
     * terms' magnitudes: a batch statistic one float ulp apart (the device sums in double too, but in another order)
     * moves every xhat by about 1e-7 of itself. dBeta, the sum of dy, takes no statistic and gets no such allowance.
     */
    static final double BATCH_NORM_SUM_CHECK_REL = 1e-6;

    /** Largest {@code --elements}: four tensors of 2^30 floats are 16 GiB. */
    static final int MAX_ELEMENTS = 1 << 30;

    /** Elements compared with the reference at each of an output's start, middle and end. */
    static final int CHECK_WINDOW = 16;

    /** Tolerance of those comparisons: {@code |got - expected| <= CHECK_ABS + CHECK_REL |expected|}. */
    static final double CHECK_ABS = 1e-5;
    static final double CHECK_REL = 1e-4;

    /** SGEMM check, per element: {@code |got - expected| <= CHECK_REL sqrt(k) sum_p |a_ip b_pj|}. */
    static final double GEMM_CHECK_REL = 1e-5;

    /**
     * {@code --elements} when not given, on a GPU: 2^28 floats, so that each of the four tensors (z, dy,
     * y, dz) is 1 GiB, 4 GiB in all, the size of the project's reference measurements (a 1 GiB copy, ReLU
     * over 2^28 floats); far beyond any L2 cache.
     */
    static final int CUDA_DEFAULT_ELEMENTS = 1 << 28;

    /** A GPU needs this much memory (GiB) for {@link #CUDA_DEFAULT_ELEMENTS}: the 4 GiB and room to spare. */
    static final int CUDA_DEFAULT_MIN_GIB = 8;

    /** {@code --elements} when not given, elsewhere: 2^26 floats, 256 MiB per tensor (seconds on a CPU). */
    static final int DEFAULT_ELEMENTS = 1 << 26;

    /** Elements written to the device per host chunk while filling inputs. */
    private static final int FILL_CHUNK = 1 << 20;

    @Spec
    CommandSpec spec;

    @Option(names = "--device", defaultValue = "auto",
            description = "auto, cpu or cuda (default: ${DEFAULT-VALUE}). auto falls back to the CPU and says why.")
    String device;

    @Option(names = "--elements", paramLabel = "N", converter = ElementCount.class,
            description = "Floats per tensor, as a number or 2^K (default: 2^28, 1 GiB per tensor and 4 GiB in all,"
                    + " on a GPU with at least " + CUDA_DEFAULT_MIN_GIB + " GiB; else 2^26, 256 MiB; keep it far"
                    + " above the GPU's L2 cache).")
    Integer elements;

    @Option(names = "--repetitions", paramLabel = "R", defaultValue = "20",
            description = "Timed runs of each op; the median is reported (default: ${DEFAULT-VALUE}).")
    int repetitions;

    @Option(names = "--out", paramLabel = "FILE", description = "Also write the results as JSON to FILE.")
    Path out;

    /** One timed op: each run's milliseconds and the bytes or floating-point operations of one run. */
    private record Timing(double[] milliseconds, long work) {
        double medianMs() {
            return Stopwatch.median(milliseconds);
        }

        /** Bytes (or operations) per second, in units of 10^9. */
        double gigaPerSecond() {
            return work / medianMs() / 1e6;
        }
    }

    @Override
    public Integer call() {
        if (!Devices.NAMES.contains(device.trim().toLowerCase(Locale.ROOT))) {
            throw usage("unknown device '" + device + "'; valid: " + Devices.CHOICES);
        }
        if (elements != null && (elements < 1 || elements > MAX_ELEMENTS)) {
            throw usage("--elements must be between 1 and 2^30 (" + MAX_ELEMENTS + "), got " + elements);
        }
        if (repetitions < 1) {
            throw usage("--repetitions must be >= 1, got " + repetitions);
        }
        Devices.Selection selection = Devices.open(device);
        try (Backend backend = selection.backend(); CpuBackend reference = new CpuBackend()) {
            if (selection.fallback() != null) {
                System.err.println("gradscope: " + selection.fallback());
            }
            return new Run(backend, reference, Stopwatch.of(backend), elements != null ? elements
                    : defaultElements(backend)).call();
        }
    }

    /** {@value #CUDA_DEFAULT_ELEMENTS} on a GPU with enough memory, else {@value #DEFAULT_ELEMENTS}. */
    static int defaultElements(Backend backend) {
        return backend instanceof CudaBackend cuda
                && cuda.device().totalMemoryBytes() >= ((long) CUDA_DEFAULT_MIN_GIB << 30)
                ? CUDA_DEFAULT_ELEMENTS : DEFAULT_ELEMENTS;
    }

    /**
     * The {@code "batch_norm"} entry of the JSON for {@code elements} floats on {@code backend}, with the copy it is
     * measured against: the command's inputs, timing and checks without the rest of the bench, for the CUDA
     * emulator, where the whole bench (its 4096^3 SGEMM above all) would take hours.
     */
    static Map<String, Object> batchNormEntry(Backend backend, int elements, int repetitions) {
        BenchKernelsCommand command = new BenchKernelsCommand();
        command.repetitions = repetitions;
        try (CpuBackend reference = new CpuBackend()) {
            return command.new Run(backend, reference, Stopwatch.of(backend), elements).batchNormOnly();
        }
    }

    private CommandLine.ParameterException usage(String message) {
        return new CommandLine.ParameterException(spec.commandLine(), message);
    }

    /** One benchmark on one backend: measures, checks, prints the table and writes the JSON. */
    private final class Run {
        private final Backend backend;
        private final CpuBackend reference;
        private final Stopwatch stopwatch;
        private final int n;
        /** Every op whose output failed its check, with the first differing element. */
        private final List<String> wrong = new ArrayList<>();

        Run(Backend backend, CpuBackend reference, Stopwatch stopwatch, int n) {
            this.backend = backend;
            this.reference = reference;
            this.stopwatch = stopwatch;
            this.n = n;
        }

        Integer call() {
            Map<String, Object> result = new LinkedHashMap<>();
            result.put("backend", backend.name());
            result.put("device", backend.description());
            result.put("timer", stopwatch.method());
            result.put("elements", n);
            result.put("repetitions", repetitions);
            result.put("warmup_runs", WARMUP_RUNS);
            result.put("statistic", "median");

            Timing copy;
            Timing[] dropout;
            Timing[] batchNorm;
            Map<ActivationKind, Timing[]> kinds = new LinkedHashMap<>();
            List<Map<String, Object>> kindJson = new ArrayList<>();
            try (Tensor z = patterned(n, Run::input); Tensor dy = patterned(n, Run::gradientInput);
                 Tensor y = backend.allocate(DType.FLOAT32, n); Tensor dz = backend.allocate(DType.FLOAT32, n)) {
                backend.fill(y, Float.NaN);
                copy = measure(() -> backend.copy(z, y), 8L * n);
                String copyCheck = checkWindows("copy", n, (start, length) -> {
                    double[] want = toDoubles(backend.toHostFloats(z.view(start, length)));
                    return compare("copy", start, backend.toHostFloats(y.view(start, length)), want, 0);
                });
                result.put("copy", timingJson(copy, "bytes", "gb_per_s", copyCheck));
                result.put("copy_gb_per_s", copy.gigaPerSecond());

                for (ActivationKind kind : ActivationKind.values()) {
                    if (!kind.isElementWise()) {
                        continue;
                    }
                    float[] parameter = kind.hasParameter() ? new float[] {(float) kind.defaultParameter()} : null;
                    try (Tensor param = parameter == null ? null : backend.fromHost(parameter, 1)) {
                        backend.fill(y, Float.NaN);
                        backend.fill(dz, Float.NaN);
                        Timing forward = measure(() -> backend.activationForward(kind, z, param, y), 8L * n);
                        String forwardCheck = checkActivation(kind, false, parameter, z, dy, y);
                        Timing backward = measure(() -> backend.activationBackward(kind, z, param, dy, dz), 12L * n);
                        String backwardCheck = checkActivation(kind, true, parameter, z, dy, dz);
                        kinds.put(kind, new Timing[] {forward, backward});
                        Map<String, Object> entry = new LinkedHashMap<>();
                        entry.put("kind", kind.id());
                        entry.put("parameter", parameter == null ? null
                                : Map.of("name", kind.parameterName(), "value", kind.defaultParameter()));
                        entry.put("forward", bandwidthJson(forward, copy, forwardCheck));
                        entry.put("backward", bandwidthJson(backward, copy, backwardCheck));
                        kindJson.add(entry);
                    }
                }
                dropout = measureDropout(z, dy, y, dz, copy, result);
                batchNorm = measureBatchNorm(z, dy, y, dz, copy, result);
            }
            result.put("kinds", kindJson);

            List<Map<String, Object>> gemms = new ArrayList<>();
            gemms.add(gemm("mlp_first_layer", 256, 784, 512));
            if (backend.name().equals("cpu")) {
                Map<String, Object> skipped = new LinkedHashMap<>();
                skipped.put("name", "square_4096");
                skipped.put("m", 4096);
                skipped.put("k", 4096);
                skipped.put("n", 4096);
                skipped.put("skipped", "not timed on the CPU (tens of seconds there)");
                gemms.add(skipped);
            } else {
                gemms.add(gemm("square_4096", 4096, 4096, 4096));
            }
            result.put("gemm", gemms);

            List<Map<String, Object>> thresholds = new ArrayList<>();
            int[] passingCounts = new int[THRESHOLDS.length];
            for (int t = 0; t < THRESHOLDS.length; t++) {
                List<String> passing = new ArrayList<>();
                List<String> below = new ArrayList<>();
                for (var e : kinds.entrySet()) {
                    boolean ok = fraction(e.getValue()[0], copy) >= THRESHOLDS[t]
                            && fraction(e.getValue()[1], copy) >= THRESHOLDS[t];
                    (ok ? passing : below).add(e.getKey().id());
                }
                passingCounts[t] = passing.size();
                Map<String, Object> entry = new LinkedHashMap<>();
                entry.put("percent_of_copy", THRESHOLDS[t] * 100);
                entry.put("rule", "forward and backward GB/s both at least this percentage of the copy's GB/s");
                entry.put("passing", passing);
                entry.put("below", below);
                thresholds.add(entry);
            }
            result.put("thresholds", thresholds);
            result.put("wrong_results", wrong);

            printTable(copy, kinds, dropout, batchNorm, gemms, passingCounts);
            if (out != null) {
                HistoryJson.writeAtomically(out, result);
            }
            if (!wrong.isEmpty()) {
                throw new IllegalStateException("wrong results from " + String.join("; ", wrong)
                        + "; their times mean nothing");
            }
            Object big = gemms.get(gemms.size() - 1).get("gflop_per_s");
            System.out.printf(Locale.ROOT, "copy %.0f GB/s; >=%.0f%%: %d/%d kinds, >=%.0f%%: %d/%d; %s%n",
                    copy.gigaPerSecond(), THRESHOLDS[0] * 100, passingCounts[0], kinds.size(), THRESHOLDS[1] * 100,
                    passingCounts[1], kinds.size(), big == null ? "4096^3 skipped"
                            : String.format(Locale.ROOT, "4096^3 %.0f GFLOP/s", (Double) big));
            return 0;
        }

        /** {@link #measureBatchNorm}'s entry, after the copy it is a percentage of (see {@link #batchNormEntry}). */
        @SuppressWarnings("unchecked")
        Map<String, Object> batchNormOnly() {
            Map<String, Object> result = new LinkedHashMap<>();
            try (Tensor z = patterned(n, Run::input); Tensor dy = patterned(n, Run::gradientInput);
                 Tensor y = backend.allocate(DType.FLOAT32, n); Tensor dz = backend.allocate(DType.FLOAT32, n)) {
                Timing copy = measure(() -> backend.copy(z, y), 8L * n);
                measureBatchNorm(z, dy, y, dz, copy, result);
            }
            return (Map<String, Object>) result.get("batch_norm");
        }

        /**
         * Times dropout's forward (z to y) and backward (dy to dz) at {@link #DROPOUT_RATE}, checks windows of both
         * against the hash ({@link DropoutMask}), and puts them into {@code result} as {@code "dropout"}.
         */
        private Timing[] measureDropout(Tensor z, Tensor dy, Tensor y, Tensor dz, Timing copy,
                                        Map<String, Object> result) {
            long key = DropoutMask.streamKey(0, 1);
            try (Tensor step = backend.fromHost(new int[] {0, 1}, 2)) {
                backend.fill(y, Float.NaN);
                backend.fill(dz, Float.NaN);
                Timing forward = measure(() -> backend.dropoutForward(z, DROPOUT_RATE, key, step, y), 8L * n);
                String forwardCheck = checkDropout("dropout forward", key, z, y);
                Timing backward = measure(() -> backend.dropoutBackward(dy, DROPOUT_RATE, key, step, dz), 8L * n);
                String backwardCheck = checkDropout("dropout backward", key, dy, dz);
                Map<String, Object> entry = new LinkedHashMap<>();
                entry.put("rate", DROPOUT_RATE);
                entry.put("forward", bandwidthJson(forward, copy, forwardCheck));
                entry.put("backward", bandwidthJson(backward, copy, backwardCheck));
                result.put("dropout", entry);
                return new Timing[] {forward, backward};
            }
        }

        /** A dropout output against its input: {@code in * scale} where the hash keeps the element, else 0. */
        private String checkDropout(String op, long key, Tensor in, Tensor out) {
            long stepKey = DropoutMask.stepKey(key, 0, 1);
            int threshold = DropoutMask.threshold(DROPOUT_RATE);
            float scale = DropoutMask.scale(DROPOUT_RATE);
            return checkWindows(op, n, (start, length) -> {
                float[] x = backend.toHostFloats(in.view(start, length));
                double[] expected = new double[length];
                for (int e = 0; e < length; e++) {
                    expected[e] = DropoutMask.bits(stepKey, start + e) >= threshold ? x[e] * scale : 0f;
                }
                return compare(op, start, backend.toHostFloats(out.view(start, length)), expected, 0);
            });
        }

        /**
         * Times batch normalization's training forward (z to y, with the batch's statistics) and backward (dy to dz,
         * with dGamma and dBeta) on z and dy as a [rows x {@link #BATCH_NORM_COLUMNS}] batch, checks windows of y,
         * dz, dGamma and dBeta against column statistics summed on the host from the inputs' formulas, and puts
         * them into {@code result} as {@code "batch_norm"}.
         */
        private Timing[] measureBatchNorm(Tensor z, Tensor dy, Tensor y, Tensor dz, Timing copy,
                                          Map<String, Object> result) {
            int cols = Math.min(BATCH_NORM_COLUMNS, n);
            int rows = n / cols;
            long elements = (long) rows * cols;
            float[] gammaValues = values(0, cols, j -> weyl(j, 0.7548776662466927, 0.5, 1.5));
            float[] betaValues = values(0, cols, j -> weyl(j, 0.5698402909980532, -0.5, 0.5));
            Tensor x = z.view(0, rows, cols);
            Tensor out = y.view(0, rows, cols);
            Tensor gradient = dy.view(0, rows, cols);
            Tensor dx = dz.view(0, rows, cols);
            try (Tensor gamma = backend.fromHost(gammaValues, cols); Tensor beta = backend.fromHost(betaValues, cols);
                 Tensor movingMean = backend.allocate(DType.FLOAT32, cols);
                 Tensor movingVariance = backend.allocate(DType.FLOAT32, cols);
                 Tensor batchMean = backend.allocate(DType.FLOAT32, cols);
                 Tensor batchInvStd = backend.allocate(DType.FLOAT32, cols);
                 Tensor dGamma = backend.allocate(DType.FLOAT32, cols);
                 Tensor dBeta = backend.allocate(DType.FLOAT32, cols)) {
                backend.fill(movingMean, 0f);
                backend.fill(movingVariance, 1f);
                for (Tensor t : List.of(out, dx, batchMean, batchInvStd, dGamma, dBeta)) {
                    backend.fill(t, Float.NaN);
                }
                // Keras's momentum and epsilon, as a layer built without settings has them.
                Timing forward = measure(() -> backend.batchNormTrainingForward(x, gamma, beta,
                        BatchNormalization.DEFAULT_MOMENTUM, BatchNormalization.DEFAULT_EPSILON, movingMean,
                        movingVariance, batchMean, batchInvStd, out), 12L * elements + 32L * cols);
                Timing backward = measure(() -> backend.batchNormBackward(x, gamma, batchMean, batchInvStd, gradient,
                        dx, dGamma, dBeta), 20L * elements + 20L * cols);
                String[] checks = checkBatchNorm(rows, cols, gammaValues, betaValues, out, dx, dGamma, dBeta);
                Map<String, Object> entry = new LinkedHashMap<>();
                entry.put("rows", rows);
                entry.put("cols", cols);
                entry.put("momentum", BatchNormalization.DEFAULT_MOMENTUM);
                entry.put("epsilon", ModelOptions.DEFAULT_BATCH_NORM_EPSILON); // the float's value as one types it
                entry.put("forward", bandwidthJson(forward, copy, checks[0]));
                entry.put("backward", bandwidthJson(backward, copy, checks[1]));
                result.put("batch_norm", entry);
                return new Timing[] {forward, backward};
            }
        }

        /**
         * Batch normalization's outputs against the host: each checked column's mean, biased variance, sum of dy
         * and sum of dy * xhat in double over the inputs' formulas (the values {@link #patterned} wrote), then
         * y and dx with the backends' float operations. Returns the forward's check (y) and the backward's (dx,
         * dGamma and dBeta).
         */
        private String[] checkBatchNorm(int rows, int cols, float[] gamma, float[] beta, Tensor y, Tensor dx,
                                        Tensor dGamma, Tensor dBeta) {
            int elements = rows * cols;
            java.util.Set<Integer> columns = new java.util.TreeSet<>();
            for (int start : windowStarts(elements)) {
                for (int e = start; e < Math.min(start + CHECK_WINDOW, elements); e++) {
                    columns.add(e % cols);
                }
            }
            for (int start : windowStarts(cols)) {
                for (int j = start; j < Math.min(start + CHECK_WINDOW, cols); j++) {
                    columns.add(j);
                }
            }
            Map<Integer, float[]> stats = new java.util.HashMap<>(); // mean, invStd, meanDy, meanDyXhat
            Map<Integer, double[]> sums = new java.util.HashMap<>(); // sum dy, sum dy xhat, and their magnitudes
            for (int j : columns) {
                double sum = 0;
                for (int i = 0; i < rows; i++) {
                    sum += input(i * cols + j);
                }
                double mean = sum / rows;
                double squares = 0;
                for (int i = 0; i < rows; i++) {
                    double d = input(i * cols + j) - mean;
                    squares += d * d;
                }
                float m = (float) mean;
                float s = (float) (1.0 / Math.sqrt(squares / rows + BatchNormalization.DEFAULT_EPSILON));
                double[] total = new double[4];
                for (int i = 0; i < rows; i++) {
                    float g = gradientInput(i * cols + j);
                    float xhat = (input(i * cols + j) - m) * s;
                    total[0] += g;
                    total[1] += (double) g * xhat;
                    total[2] += Math.abs(g);
                    total[3] += Math.abs((double) g * xhat);
                }
                stats.put(j, new float[] {m, s, (float) (total[0] / rows), (float) (total[1] / rows)});
                sums.put(j, total);
            }
            String forward = checkWindows("batch_norm forward", elements, (start, length) -> {
                double[] expected = new double[length];
                for (int e = 0; e < length; e++) {
                    int j = (start + e) % cols;
                    float[] st = stats.get(j);
                    expected[e] = gamma[j] * ((input(start + e) - st[0]) * st[1]) + beta[j];
                }
                return compare("batch_norm forward", start, backend.toHostFloats(y.reshape(elements)
                        .view(start, length)), expected, e -> CHECK_ABS + CHECK_REL * Math.abs(expected[e]));
            });
            String backward = checkWindows("batch_norm backward dx", elements, (start, length) -> {
                double[] expected = new double[length];
                for (int e = 0; e < length; e++) {
                    int j = (start + e) % cols;
                    float[] st = stats.get(j);
                    float scale = (float) ((double) gamma[j] * st[1]);
                    float xhat = (input(start + e) - st[0]) * st[1];
                    expected[e] = scale * ((gradientInput(start + e) - st[2]) - xhat * st[3]);
                }
                return compare("batch_norm backward dx", start, backend.toHostFloats(dx.reshape(elements)
                        .view(start, length)), expected, e -> CHECK_ABS + CHECK_REL * Math.abs(expected[e]));
            });
            for (int which = 0; which < 2 && backward.equals("ok"); which++) {
                int sum = which;
                String op = which == 0 ? "batch_norm backward dBeta" : "batch_norm backward dGamma";
                Tensor got = which == 0 ? dBeta : dGamma;
                backward = checkWindows(op, cols, (start, length) -> {
                    double[] expected = new double[length];
                    double[] magnitude = new double[length];
                    for (int e = 0; e < length; e++) {
                        expected[e] = (float) sums.get(start + e)[sum];
                        magnitude[e] = sums.get(start + e)[sum + 2];
                    }
                    return compare(op, start, backend.toHostFloats(got.view(start, length)), expected,
                            e -> CHECK_ABS + CHECK_REL * Math.abs(expected[e])
                                    + (sum == 1 ? BATCH_NORM_SUM_CHECK_REL * magnitude[e] : 0));
                });
            }
            return new String[] {forward, backward};
        }

        /** Element i of z as {@link #call} wrote it. */
        private static float input(int i) {
            return (float) weyl(i, 0.6180339887498949, -8, 8);
        }

        /** Element i of dy as {@link #call} wrote it. */
        private static float gradientInput(int i) {
            return (float) weyl(i, 0.41421356237309515, -1, 1);
        }

        /** Warms {@code op} up, then times it. */
        private Timing measure(Runnable op, long work) {
            for (int i = 0; i < WARMUP_RUNS; i++) {
                op.run();
            }
            return new Timing(stopwatch.time(op, repetitions), work);
        }

        /** A FLOAT32 tensor of {@code count} elements, element i = {@code at(i)}, written chunk by chunk. */
        private Tensor patterned(int count, IntToDoubleFunction at) {
            Tensor t = backend.allocate(DType.FLOAT32, count);
            try {
                for (int start = 0; start < count; start += FILL_CHUNK) {
                    float[] chunk = values(start, Math.min(FILL_CHUNK, count - start), at);
                    backend.copyFromHost(chunk, t.view(start, chunk.length));
                }
                return t;
            } catch (RuntimeException e) {
                t.close();
                throw e;
            }
        }

        /** The forward ({@code out} = y) or backward ({@code out} = dz) output against the CPU reference. */
        private String checkActivation(ActivationKind kind, boolean backward, float[] parameter, Tensor z, Tensor dy,
                                       Tensor out) {
            String op = kind.id() + (backward ? " backward" : " forward");
            return checkWindows(op, n, (start, length) -> {
                try (Tensor param = parameter == null ? null : reference.fromHost(parameter, 1);
                     Tensor zw = reference.fromHost(backend.toHostFloats(z.view(start, length)), length);
                     Tensor dyw = reference.fromHost(backend.toHostFloats(dy.view(start, length)), length);
                     Tensor want = reference.allocate(DType.FLOAT32, length)) {
                    if (backward) {
                        reference.activationBackward(kind, zw, param, dyw, want);
                    } else {
                        reference.activationForward(kind, zw, param, want);
                    }
                    double[] expected = toDoubles(reference.toHostFloats(want));
                    return compare(op, start, backend.toHostFloats(out.view(start, length)), expected,
                            e -> CHECK_ABS + CHECK_REL * Math.abs(expected[e]));
                }
            });
        }

        /** Times {@code c[m,cols] = a[m,k] b[k,cols]}, checks windows of c; returns the JSON entry. */
        private Map<String, Object> gemm(String name, int m, int k, int cols) {
            float[] a = values(0, m * k, i -> weyl(i, 0.7548776662466927, -1, 1));
            float[] b = values(0, k * cols, i -> weyl(i, 0.5698402909980532, -1, 1));
            String op = "sgemm " + name;
            Timing timing;
            String check;
            try (Tensor ta = backend.fromHost(a, m, k); Tensor tb = backend.fromHost(b, k, cols);
                 Tensor tc = backend.allocate(DType.FLOAT32, m, cols)) {
                backend.fill(tc, Float.NaN); // beta = 0: the old contents of c, even NaN, are ignored
                timing = measure(() -> backend.gemm(false, false, 1f, ta, tb, 0f, tc), 2L * m * k * cols);
                Tensor flat = tc.reshape(m * cols);
                check = checkWindows(op, m * cols, (start, length) -> {
                    double[] expected = new double[length];
                    double[] magnitude = new double[length];
                    for (int e = 0; e < length; e++) {
                        int row = (start + e) / cols;
                        int col = (start + e) % cols;
                        for (int p = 0; p < k; p++) {
                            double term = (double) a[row * k + p] * b[p * cols + col];
                            expected[e] += term;
                            magnitude[e] += Math.abs(term);
                        }
                    }
                    return compare(op, start, backend.toHostFloats(flat.view(start, length)), expected,
                            e -> GEMM_CHECK_REL * Math.sqrt(k) * magnitude[e]);
                });
            }
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("name", name);
            entry.put("m", m);
            entry.put("k", k);
            entry.put("n", cols);
            entry.putAll(timingJson(timing, "flop", "gflop_per_s", check));
            return entry;
        }

        /** Checks one window of an output: null when it is right, else what is wrong. */
        private interface WindowCheck {
            String check(int start, int length);
        }

        /** Runs {@code window} on the start, middle and end of an output; "ok" or "wrong: ..." (recorded). */
        private String checkWindows(String op, int count, WindowCheck window) {
            for (int start : windowStarts(count)) {
                String failure = window.check(start, Math.min(CHECK_WINDOW, count - start));
                if (failure != null) {
                    wrong.add(op + " (" + failure + ")");
                    return "wrong: " + failure;
                }
            }
            return "ok";
        }

        private String compare(String op, int start, float[] got, double[] expected, double tolerance) {
            return compare(op, start, got, expected, e -> tolerance);
        }

        /** Null when every element is within its tolerance (NaN never is), else the first that is not. */
        private String compare(String op, int start, float[] got, double[] expected, IntToDoubleFunction tolerance) {
            for (int e = 0; e < got.length; e++) {
                if (!(Math.abs(got[e] - expected[e]) <= tolerance.applyAsDouble(e))) {
                    return String.format(Locale.ROOT, "element %d: got %s, expected %s", start + e, got[e],
                            expected[e]);
                }
            }
            return null;
        }

        private void printTable(Timing copy, Map<ActivationKind, Timing[]> kinds, Timing[] dropout,
                                Timing[] batchNorm, List<Map<String, Object>> gemms, int[] passingCounts) {
            PrintStream o = System.out;
            o.printf(Locale.ROOT, "bench kernels on %s: %s%n", backend.name(), backend.description());
            o.printf(Locale.ROOT, "N = %d floats (%.1f MiB per tensor); median of %d runs after %d warm-up; %s%n",
                    n, n * 4.0 / (1 << 20), repetitions, WARMUP_RUNS, stopwatch.method());
            o.printf(Locale.ROOT, "copy (8N bytes): %.4f ms, %.1f GB/s, the ceiling%n%n", copy.medianMs(),
                    copy.gigaPerSecond());
            o.printf(Locale.ROOT, "%-14s %10s %7s %-4s %10s %7s%n", "kind", "fwd GB/s", "% copy", "", "bwd GB/s",
                    "% copy");
            for (var e : kinds.entrySet()) {
                Timing f = e.getValue()[0];
                Timing b = e.getValue()[1];
                o.println(String.format(Locale.ROOT, "%-14s %10.1f %7.1f %-4s %10.1f %7.1f %s", e.getKey().id(),
                        f.gigaPerSecond(), 100 * fraction(f, copy), flag(f, copy), b.gigaPerSecond(),
                        100 * fraction(b, copy), flag(b, copy)).stripTrailing());
            }
            printRow(o, "dropout(" + DROPOUT_RATE + ")", dropout, copy);
            printRow(o, "batch_norm", batchNorm, copy);
            o.printf(Locale.ROOT, "(fwd moves 8N bytes, bwd 12N, dropout's 8N; batch_norm's over [N/%d x %d] 12N and 20N"
                    + " (two passes) plus its per-column vectors; <95, <90: below 95%%, 90%% of the copy's GB/s)%n",
                    Math.min(BATCH_NORM_COLUMNS, n), Math.min(BATCH_NORM_COLUMNS, n));
            for (int t = 0; t < THRESHOLDS.length; t++) {
                o.printf(Locale.ROOT, "forward and backward >= %.0f%% of copy: %d of %d kinds%n", THRESHOLDS[t] * 100,
                        passingCounts[t], kinds.size());
            }
            o.println();
            o.printf(Locale.ROOT, "%-17s %-16s %12s %14s%n", "sgemm", "m x k x n", "median ms", "GFLOP/s");
            for (Map<String, Object> g : gemms) {
                String dims = g.get("m") + "x" + g.get("k") + "x" + g.get("n");
                if (g.containsKey("skipped")) {
                    o.printf(Locale.ROOT, "%-17s %-16s %s%n", g.get("name"), dims, g.get("skipped"));
                } else {
                    o.printf(Locale.ROOT, "%-17s %-16s %12.4f %14.1f%n", g.get("name"), dims, g.get("median_ms"),
                            g.get("gflop_per_s"));
                }
            }
            if (!wrong.isEmpty()) {
                o.println();
                wrong.forEach(w -> o.println("WRONG: " + w));
            }
        }
    }

    /** One op's row of the table: forward and backward GB/s and percentages of the copy's. */
    private static void printRow(PrintStream o, String name, Timing[] op, Timing copy) {
        Timing f = op[0];
        Timing b = op[1];
        o.println(String.format(Locale.ROOT, "%-14s %10.1f %7.1f %-4s %10.1f %7.1f %s", name, f.gigaPerSecond(),
                100 * fraction(f, copy), flag(f, copy), b.gigaPerSecond(), 100 * fraction(b, copy), flag(b, copy))
                .stripTrailing());
    }

    /** Start, middle and end windows of an output of {@code n} elements (overlapping when n is small). */
    private static int[] windowStarts(int n) {
        return new int[] {0, Math.max(0, n / 2 - CHECK_WINDOW / 2), Math.max(0, n - CHECK_WINDOW)};
    }

    /** {@code lo + (hi - lo) frac((i + 1) step)}: a deterministic, well-spread value for element i. */
    private static double weyl(int i, double step, double lo, double hi) {
        double f = (i + 1.0) * step;
        return lo + (hi - lo) * (f - Math.floor(f));
    }

    private static double[] toDoubles(float[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            d[i] = v[i];
        }
        return d;
    }

    private static float[] values(int start, int count, IntToDoubleFunction at) {
        float[] v = new float[count];
        for (int i = 0; i < count; i++) {
            v[i] = (float) at.applyAsDouble(start + i);
        }
        return v;
    }

    private static double fraction(Timing op, Timing copy) {
        return op.gigaPerSecond() / copy.gigaPerSecond();
    }

    private static String flag(Timing op, Timing copy) {
        double f = fraction(op, copy);
        for (int t = THRESHOLDS.length - 1; t >= 0; t--) {
            if (f < THRESHOLDS[t]) {
                return String.format(Locale.ROOT, "<%.0f", THRESHOLDS[t] * 100);
            }
        }
        return "";
    }

    private static Map<String, Object> timingJson(Timing timing, String workName, String rateName, String check) {
        Map<String, Object> json = new LinkedHashMap<>();
        json.put(workName, timing.work());
        json.put("median_ms", timing.medianMs());
        json.put(rateName, timing.gigaPerSecond());
        json.put("milliseconds", timing.milliseconds());
        json.put("check", check);
        return json;
    }

    /** A kind's forward or backward entry: the timing, its GB/s and the percentage of the copy's. */
    private static Map<String, Object> bandwidthJson(Timing op, Timing copy, String check) {
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("bytes", op.work());
        json.put("median_ms", op.medianMs());
        json.put("gb_per_s", op.gigaPerSecond());
        json.put("percent_of_copy", 100 * fraction(op, copy));
        json.put("milliseconds", op.milliseconds());
        json.put("check", check);
        return json;
    }

    /** {@code --elements}: a count, or {@code 2^K} for K from 0 to 30. */
    static final class ElementCount implements CommandLine.ITypeConverter<Integer> {
        @Override
        public Integer convert(String text) {
            String t = text.trim();
            if (t.startsWith("2^")) {
                int exponent = Integer.parseInt(t.substring(2).trim());
                if (exponent < 0 || exponent > 30) {
                    throw new CommandLine.TypeConversionException("'" + text + "': 2^K needs K from 0 to 30");
                }
                return 1 << exponent;
            }
            return Integer.parseInt(t);
        }
    }
}
