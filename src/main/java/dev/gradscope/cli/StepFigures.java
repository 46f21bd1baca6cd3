package dev.gradscope.cli;

import dev.gradscope.backend.cuda.CudaBackend;
import dev.gradscope.data.Dataset;
import dev.gradscope.nn.Sequential;
import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.Tensor;
import dev.gradscope.train.Callback;
import dev.gradscope.train.FitOptions;
import dev.gradscope.train.GradientProfiler;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What {@code gradscope bench} reports about one training step beside the epoch time and the kernels per
 * step ({@link dev.gradscope.train.History#operationsPerStep()}): how fast the model's own GEMMs run
 * ({@link #gemm}), and on the GPU where a step's time goes, op by op ({@link #opTimes}).
 */
final class StepFigures {
    /** Timed runs of the GEMMs of one step; the median is reported. */
    static final int GEMM_REPETITIONS = 20;

    /** Untimed runs before. */
    static final int GEMM_WARMUP_RUNS = 3;

    /** Floats of the buffer whose fills keep the GPU busy while the timed runs are queued (256 MiB). */
    static final int HEAD_START_FLOATS = 1 << 26;

    /** At most this many fills of head start (a few tenths of a second on an H100). */
    static final int MAX_HEAD_START_FILLS = 2000;

    private StepFigures() {
    }

    /**
     * The GEMM figures of one step.
     *
     * @param json {@code bench --out}'s {@code "gemm"} object
     * @param line one line for the terminal
     */
    record GemmFigures(Map<String, Object> json, String line) {
    }

    /** One GEMM of a step: {@code c[m, n] = op(a) op(b)} with the shared dimension k. */
    private record Gemm(String what, boolean transposeA, boolean transposeB, Tensor a, Tensor b, Tensor c, int m,
                        int k, int n) {
        long flop() {
            return 2L * m * k * n;
        }
    }

    /**
     * Times the GEMMs one training step of {@code net} makes at batch {@code batch}, on buffers of their
     * own: per weight matrix W [in, out] the forward product x W, the kernel gradient xᵀ dz and, except in
     * the first layer, the input gradient dz Wᵀ. Two figures, each the median of {@value #GEMM_REPETITIONS}
     * runs of the whole set ({@link Stopwatch}, so CUDA events on the GPU):
     * <ul>
     *   <li>launched: runs queued back to back as training queues them; when queueing a GEMM from Java
     *       takes longer than running it, this includes the device's idle gaps;</li>
     *   <li>device (CUDA only): the same, queued while the GPU is still busy with fills of a scratch buffer
     *       that last about twice as long as the queueing, so the runs execute without gaps and the events
     *       time the GEMMs alone. On the CPU it equals launched.</li>
     * </ul>
     *
     * @param stepMs the training step's time (median epoch / steps), for the GEMMs' share of it
     */
    static GemmFigures gemm(Sequential net, Backend backend, int batch, double stepMs) {
        boolean cuda = backend instanceof CudaBackend;
        List<Tensor> owned = new ArrayList<>();
        try {
            List<Gemm> gemms = new ArrayList<>();
            List<Map<String, Object>> shapes = new ArrayList<>();
            for (Sequential.ParameterGroup group : net.parameterGroups()) {
                if (!group.slot().isKernel()) {
                    continue;
                }
                int in = group.slot().shape()[0];
                int out = group.slot().shape()[1];
                Tensor x = filled(backend, owned, 0.01f, batch, in);
                Tensor w = filled(backend, owned, 0.02f, in, out);
                Tensor dz = filled(backend, owned, 0.03f, batch, out);
                Tensor z = filled(backend, owned, 0f, batch, out);
                Tensor dw = filled(backend, owned, 0f, in, out);
                String layer = group.layer().name();
                gemms.add(new Gemm(layer + " x W", false, false, x, w, z, batch, in, out));
                gemms.add(new Gemm(layer + " xᵀ dz", true, false, x, dz, dw, in, batch, out));
                if (group.layerIndex() > 0) {
                    Tensor dx = filled(backend, owned, 0f, batch, in);
                    gemms.add(new Gemm(layer + " dz Wᵀ", false, true, dz, w, dx, batch, out, in));
                }
            }
            long flop = 0;
            for (Gemm g : gemms) {
                flop += g.flop();
                Map<String, Object> shape = new LinkedHashMap<>();
                shape.put("gemm", g.what());
                shape.put("m", g.m());
                shape.put("k", g.k());
                shape.put("n", g.n());
                shapes.add(shape);
            }
            Runnable step = () -> {
                for (Gemm g : gemms) {
                    backend.gemm(g.transposeA(), g.transposeB(), 1f, g.a(), g.b(), 0f, g.c());
                }
            };
            for (int i = 0; i < GEMM_WARMUP_RUNS; i++) {
                step.run();
            }
            backend.synchronize();
            Stopwatch stopwatch = Stopwatch.of(backend);
            double launched = median(stopwatch.time(step, GEMM_REPETITIONS));
            double device = cuda ? withHeadStart(backend, stopwatch, step) : launched;

            Map<String, Object> json = new LinkedHashMap<>();
            json.put("gemms_per_step", gemms.size());
            json.put("flop_per_step", flop);
            json.put("batch", batch);
            json.put("timer", stopwatch.method());
            json.put("device_ms_per_step", device);
            json.put("device_gflop_per_s", flop / device / 1e6);
            json.put("launched_ms_per_step", launched);
            json.put("launched_gflop_per_s", flop / launched / 1e6);
            json.put("share_of_step", device / stepMs);
            String line = String.format(Locale.ROOT, "GEMMs of one step (%d SGEMMs, %.3f GFLOP): %.4f ms%s,"
                    + " %.0f GFLOP/s, %.0f%% of a step%s", gemms.size(), flop / 1e9, device, cuda ? " on the device"
                    : "", flop / device / 1e6, 100 * device / stepMs, cuda ? String.format(Locale.ROOT,
                    "; %.4f ms launched back to back (%.0f GFLOP/s)", launched, flop / launched / 1e6) : "");
            json.put("shapes", shapes);
            return new GemmFigures(json, line);
        } finally {
            Tensor.closeAll(owned.toArray(new Tensor[0]));
        }
    }

    /**
     * The median device time of {@code step} when the runs are queued while the GPU is still busy: first
     * how long queueing one run takes the host and how long one fill of a scratch buffer takes the GPU,
     * then enough fills for twice the queueing of all runs, then the timed runs.
     */
    private static double withHeadStart(Backend backend, Stopwatch stopwatch, Runnable step) {
        double hostMs = 0;
        for (int i = 0; i < 3; i++) {
            long start = System.nanoTime();
            step.run();
            hostMs = Math.max(hostMs, (System.nanoTime() - start) / 1e6);
            backend.synchronize();
        }
        try (Tensor scratch = backend.allocate(DType.FLOAT32, HEAD_START_FLOATS)) {
            double fillMs = median(stopwatch.time(() -> backend.fill(scratch, 0f), 3));
            long fills = (long) Math.ceil(2 * GEMM_REPETITIONS * hostMs / Math.max(fillMs, 1e-3)) + 1;
            for (long i = 0; i < Math.min(fills, MAX_HEAD_START_FILLS); i++) {
                backend.fill(scratch, 0f);
            }
            return median(stopwatch.time(step, GEMM_REPETITIONS));
        }
    }

    /** Eager steps before the per-op timing starts (JIT, first-use allocations, the host's queueing time). */
    static final int OP_TIMING_WARMUP_STEPS = 3;

    /** Steps whose ops are timed; each op's median is reported. */
    static final int OP_TIMING_STEPS = 10;

    /**
     * The device time of every op of one training step, for {@code bench --op-times}.
     *
     * @param json  {@code bench --out}'s {@code "op_times"} object
     * @param lines the table for the terminal
     */
    record OpFigures(Map<String, Object> json, List<String> lines) {
    }

    /**
     * Times each op of eager training steps of {@code net} on the GPU: a fresh {@code fit} of one epoch over
     * the first {@value #OP_TIMING_WARMUP_STEPS} + {@value #OP_TIMING_STEPS} batches, without graphs, in
     * which the ops of the last {@value #OP_TIMING_STEPS} steps are timed by CUDA events around each
     * ({@link CudaBackend#startTimingOps}). Before each timed step the GPU gets fills of a scratch buffer that
     * outlast twice the host's queueing of a step (measured on the warm-up steps), so the step's ops run
     * back to back and each pair of events times its op alone. Reports each op's median, the sum of the main
     * stream's (a step without any launch gap) and of the ops queued aside (which overlap them), and, beside
     * them, the graph step's time from the epochs, so the difference is what launching costs. It trains
     * {@code net} further: run it after the timed epochs.
     *
     * @param graphStepMs the training step's time with graphs (median epoch / steps), or a negative number
     */
    static OpFigures opTimes(Sequential net, Dataset train, CudaBackend cuda, int batch, boolean profiled,
                             double graphStepMs) {
        int steps = Math.min(OP_TIMING_WARMUP_STEPS + OP_TIMING_STEPS, train.rows() / batch);
        if (steps <= OP_TIMING_WARMUP_STEPS) {
            throw new IllegalArgumentException("op times need at least " + (OP_TIMING_WARMUP_STEPS + 1)
                    + " full batches of " + batch + " examples, the training data has " + train.rows());
        }
        Dataset data = train.take(steps * batch);
        List<List<CudaBackend.OpTime>> timedSteps = new ArrayList<>();
        try (Tensor scratch = cuda.allocate(DType.FLOAT32, HEAD_START_FLOATS)) {
            double fillMs = median(Stopwatch.of(cuda).time(() -> cuda.fill(scratch, 0f), 3));
            Callback timer = new Callback() {
                private long lastEnd = System.nanoTime();
                private double hostMsPerStep;
                private boolean timing;

                @Override
                public void onBatchEnd(int epoch, int step, RunningMetrics progress) {
                    long now = System.nanoTime();
                    if (timing) {
                        timedSteps.add(cuda.stopTimingOps());
                        timing = false;
                    } else if (step >= 1) { // step 0 also carries the epoch's setup
                        hostMsPerStep = Math.max(hostMsPerStep, (now - lastEnd) / 1e6);
                    }
                    if (step + 1 >= OP_TIMING_WARMUP_STEPS && step + 1 < steps) {
                        long fills = (long) Math.ceil(2 * hostMsPerStep / Math.max(fillMs, 1e-3)) + 1;
                        for (long i = 0; i < Math.min(fills, MAX_HEAD_START_FILLS); i++) {
                            cuda.fill(scratch, 0f);
                        }
                        cuda.startTimingOps();
                        timing = true;
                    }
                    lastEnd = System.nanoTime();
                }
            };
            net.fit(data, FitOptions.builder().batchSize(batch).epochs(1).verbose(0).shuffle(false)
                    .profiler(profiled ? new GradientProfiler() : null).callback(timer).graph(false).build());
        }
        List<CudaBackend.OpTime> first = timedSteps.get(0);
        List<Map<String, Object>> ops = new ArrayList<>();
        List<String> lines = new ArrayList<>();
        lines.add(String.format(Locale.ROOT, "ops of one eager step on the device (median of %d steps, CUDA events"
                + " around each op, queued behind a head start):", timedSteps.size()));
        double sumMs = 0; // the main stream's ops: the ops queued aside ran beside them
        double asideMs = 0;
        double[] medians = new double[first.size()];
        for (int i = 0; i < first.size(); i++) {
            double[] times = new double[timedSteps.size()];
            for (int t = 0; t < timedSteps.size(); t++) {
                List<CudaBackend.OpTime> step = timedSteps.get(t);
                if (step.size() != first.size() || !step.get(i).name().equals(first.get(i).name())) {
                    throw new IllegalStateException("op times: timed step " + t + " queued other ops than the first: "
                            + step.size() + " ops against " + first.size());
                }
                times[t] = step.get(i).milliseconds();
            }
            medians[i] = median(times);
            if (first.get(i).aside()) {
                asideMs += medians[i];
            } else {
                sumMs += medians[i];
            }
        }
        int asideOps = 0;
        for (int i = 0; i < first.size(); i++) {
            boolean aside = first.get(i).aside();
            asideOps += aside ? 1 : 0;
            Map<String, Object> op = new LinkedHashMap<>();
            op.put("op", first.get(i).name());
            op.put("aside", aside);
            op.put("median_ms", medians[i]);
            ops.add(op);
            lines.add(String.format(Locale.ROOT, "  %3d  %-48s %9.1f us %5.1f%%%s", i + 1, first.get(i).name(),
                    medians[i] * 1000, 100 * medians[i] / (sumMs + asideMs), aside ? "  aside" : ""));
        }
        lines.add(String.format(Locale.ROOT, "  sum of the %d main-stream ops: %.1f us; the %d aside, beside them:"
                + " %.1f us%s", first.size() - asideOps, sumMs * 1000, asideOps, asideMs * 1000,
                graphStepMs < 0 ? "" : String.format(Locale.ROOT, "; a step of the timed epochs: %.1f us, %+.1f us"
                        + " beside the main-stream sum (launches, gaps, waits for the aside ops, the epoch's own work)",
                        graphStepMs * 1000, (graphStepMs - sumMs) * 1000)));
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("timer", "CUDA events around each op of eager steps, queued behind a head start");
        json.put("steps_timed", timedSteps.size());
        json.put("ops_per_step", first.size());
        json.put("sum_ms", sumMs);
        json.put("aside_ms", asideMs);
        json.put("step_ms", graphStepMs < 0 ? null : graphStepMs);
        json.put("ops", ops);
        return new OpFigures(json, lines);
    }

    private static Tensor filled(Backend backend, List<Tensor> owned, float value, int... shape) {
        Tensor t = backend.allocate(DType.FLOAT32, shape);
        owned.add(t);
        if (value != 0f) {
            backend.fill(t, value);
        }
        return t;
    }

    private static double median(double[] values) {
        return Stopwatch.median(values);
    }
}
