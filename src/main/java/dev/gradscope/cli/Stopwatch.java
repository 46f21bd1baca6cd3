package dev.gradscope.cli;

import dev.gradscope.backend.cuda.CudaBackend;
import dev.gradscope.tensor.Backend;
import java.util.Arrays;

/**
 * Times work queued on a backend, run by run, the same way for every backend a benchmark runs on: on
 * the GPU with CUDA events on the backend's stream ({@link CudaBackend#time}), elsewhere with
 * {@link System#nanoTime()} around each run followed by {@link Backend#synchronize()}.
 */
interface Stopwatch {
    /**
     * Runs {@code work} {@code repetitions} times and returns each run's time in milliseconds; every
     * run has finished when this returns.
     */
    double[] time(Runnable work, int repetitions);

    /** How the times are taken, in a few words, for reports. */
    String method();

    /** The median of some times (the mean of the middle two for an even count); the benchmarks' statistic. */
    static double median(double[] times) {
        double[] sorted = times.clone();
        Arrays.sort(sorted);
        int h = sorted.length / 2;
        return sorted.length % 2 == 1 ? sorted[h] : (sorted[h - 1] + sorted[h]) / 2;
    }

    /** The stopwatch for {@code backend}: CUDA events on the GPU, the host clock otherwise. */
    static Stopwatch of(Backend backend) {
        if (backend instanceof CudaBackend cuda) {
            return new Stopwatch() {
                @Override
                public double[] time(Runnable work, int repetitions) {
                    return cuda.time(work, repetitions);
                }

                @Override
                public String method() {
                    return "CUDA events on the backend's stream, runs back to back";
                }
            };
        }
        return new Stopwatch() {
            @Override
            public double[] time(Runnable work, int repetitions) {
                if (repetitions < 1) {
                    throw new IllegalArgumentException("time: repetitions must be >= 1, got " + repetitions);
                }
                backend.synchronize(); // earlier work stays out of the first run
                double[] milliseconds = new double[repetitions];
                for (int r = 0; r < repetitions; r++) {
                    long start = System.nanoTime();
                    work.run();
                    backend.synchronize();
                    milliseconds[r] = (System.nanoTime() - start) / 1e6;
                }
                return milliseconds;
            }

            @Override
            public String method() {
                return "System.nanoTime around each run, synchronize() inside";
            }
        };
    }
}
