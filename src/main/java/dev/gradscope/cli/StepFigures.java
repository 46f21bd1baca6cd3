package dev.gradscope.cli;

import dev.gradscope.backend.cuda.CudaBackend;
import dev.gradscope.nn.Sequential;
import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.Tensor;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What {@code gradscope bench} reports about one training step beside the epoch time and the kernels per
 * step ({@link dev.gradscope.train.History#operationsPerStep()}): how fast the model's own GEMMs run
 * ({@link #gemm}).
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
