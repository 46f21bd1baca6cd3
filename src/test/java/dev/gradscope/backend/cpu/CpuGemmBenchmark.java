package dev.gradscope.backend.cpu;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * Times {@link CpuGemm} on every matrix product of one training step of the 784-512-256-128-64-10
 * MLP at batch 256, on one thread and on all cores, and estimates the GEMM seconds of one MNIST
 * epoch. Not a unit test; run after {@code mvn test-compile} with
 * {@code java -cp target/classes:target/test-classes dev.gradscope.backend.cpu.CpuGemmBenchmark}.
 */
public final class CpuGemmBenchmark {

    private static final int[] LAYER_WIDTHS = {784, 512, 256, 128, 64, 10};
    private static final int BATCH = 256;

    /** Training images per epoch over the batch size: 234 full steps plus one of 96 images. */
    private static final double STEPS_PER_EPOCH = 60_000.0 / BATCH;

    /** Untimed calls per shape before measuring, enough for C2 to compile the kernel. */
    private static final int WARMUP_CALLS = 200;

    /** Timed calls per shape and round; their median resists a few preempted calls. */
    private static final int TIMED_CALLS = 41;

    /**
     * Rounds over all shapes. The machine may be shared (other builds), which only ever slows a
     * round down, so the fastest round's median is the least disturbed estimate.
     */
    private static final int ROUNDS = 5;

    private CpuGemmBenchmark() {
    }

    /** One product of the training step: c[m,n] = op(a)[m,k] · op(b)[k,n]. */
    private record Shape(String name, boolean transposeA, boolean transposeB, int m, int n, int k) {
        double flop() {
            return 2.0 * m * n * k;
        }
    }

    private interface Gemm {
        void run(Shape shape, float[] a, float[] b, float[] c);
    }

    /**
     * Forward {@code y = x·W}, weight gradient {@code dW = xᵀ·dz} and input gradient {@code dx = dz·Wᵀ}
     * for each layer; the first layer has no input gradient because nothing consumes it.
     */
    static List<Shape> trainingStepShapes() {
        List<Shape> shapes = new ArrayList<>();
        for (int layer = 0; layer + 1 < LAYER_WIDTHS.length; layer++) {
            int in = LAYER_WIDTHS[layer];
            int out = LAYER_WIDTHS[layer + 1];
            String dims = in + "x" + out;
            shapes.add(new Shape("forward " + dims + " NN", false, false, BATCH, out, in));
            shapes.add(new Shape("dW      " + dims + " TN", true, false, in, out, BATCH));
            if (layer > 0) {
                shapes.add(new Shape("dX      " + dims + " NT", false, true, BATCH, in, out));
            }
        }
        return shapes;
    }

    public static void main(String[] args) {
        System.out.printf("%s, %d cores, java %s%n", System.getProperty("os.arch"),
                Runtime.getRuntime().availableProcessors(), System.getProperty("java.version"));
        Gemm oneThread = (s, a, b, c) ->
                CpuGemm.gemmInParts(1, s.transposeA(), s.transposeB(), s.m(), s.n(), s.k(), 1f, a, 0, b, 0, 0f, c, 0);
        Gemm allCores = (s, a, b, c) ->
                CpuGemm.gemm(s.transposeA(), s.transposeB(), s.m(), s.n(), s.k(), 1f, a, 0, b, 0, 0f, c, 0);
        List<Shape> shapes = trainingStepShapes();
        double[] oneThreadSeconds = new double[shapes.size()];
        double[] allCoresSeconds = new double[shapes.size()];
        Arrays.fill(oneThreadSeconds, Double.POSITIVE_INFINITY);
        Arrays.fill(allCoresSeconds, Double.POSITIVE_INFINITY);
        for (int round = 0; round < ROUNDS; round++) {
            int warmupCalls = round == 0 ? WARMUP_CALLS : 0;
            for (int s = 0; s < shapes.size(); s++) {
                oneThreadSeconds[s] = Math.min(oneThreadSeconds[s], medianSeconds(shapes.get(s), oneThread, warmupCalls));
                allCoresSeconds[s] = Math.min(allCoresSeconds[s], medianSeconds(shapes.get(s), allCores, warmupCalls));
            }
        }
        double stepSecondsOne = 0;
        double stepSecondsAll = 0;
        double stepFlop = 0;
        System.out.printf("%-24s %9s %12s %12s%n", "product", "MFLOP", "1 thread", "all cores");
        for (int s = 0; s < shapes.size(); s++) {
            Shape shape = shapes.get(s);
            stepSecondsOne += oneThreadSeconds[s];
            stepSecondsAll += allCoresSeconds[s];
            stepFlop += shape.flop();
            System.out.printf("%-24s %9.1f %7.1f GF/s %7.1f GF/s%n", shape.name(), shape.flop() / 1e6,
                    shape.flop() / oneThreadSeconds[s] / 1e9, shape.flop() / allCoresSeconds[s] / 1e9);
        }
        System.out.printf("step total %.3g FLOP: 1 thread %.2f ms (%.1f GF/s), all cores %.2f ms (%.1f GF/s)%n",
                stepFlop, stepSecondsOne * 1e3, stepFlop / stepSecondsOne / 1e9,
                stepSecondsAll * 1e3, stepFlop / stepSecondsAll / 1e9);
        System.out.printf("epoch (%.1f steps, %.3g FLOP): GEMM %.2f s on 1 thread, %.2f s on all cores%n",
                STEPS_PER_EPOCH, stepFlop * STEPS_PER_EPOCH,
                stepSecondsOne * STEPS_PER_EPOCH, stepSecondsAll * STEPS_PER_EPOCH);
    }

    private static double medianSeconds(Shape shape, Gemm gemm, int warmupCalls) {
        Random random = new Random(42);
        float[] a = randomArray(random, shape.m() * shape.k());
        float[] b = randomArray(random, shape.k() * shape.n());
        float[] c = new float[shape.m() * shape.n()];
        for (int call = 0; call < warmupCalls; call++) {
            gemm.run(shape, a, b, c);
        }
        double[] seconds = new double[TIMED_CALLS];
        for (int call = 0; call < TIMED_CALLS; call++) {
            long start = System.nanoTime();
            gemm.run(shape, a, b, c);
            seconds[call] = (System.nanoTime() - start) * 1e-9;
        }
        Arrays.sort(seconds);
        return seconds[TIMED_CALLS / 2];
    }

    private static float[] randomArray(Random random, int length) {
        float[] values = new float[length];
        for (int i = 0; i < length; i++) {
            values[i] = random.nextFloat() * 2 - 1;
        }
        return values;
    }
}
