package dev.gradscope.cli;

import dev.gradscope.backend.cuda.CudaBackend;
import dev.gradscope.data.Dataset;
import dev.gradscope.data.Mnist;
import dev.gradscope.nn.Sequential;
import dev.gradscope.report.HistoryJson;
import dev.gradscope.train.Callback;
import dev.gradscope.train.FitOptions;
import dev.gradscope.train.GradientProfiler;
import dev.gradscope.train.History;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code gradscope bench}: the time of one training epoch of the chapter's MLP (by default ReLU,
 * cross-entropy, Adam, batch 256, all 60000 images), as the median of the epochs after a warm-up one;
 * on the GPU also the kernels one step launches; and the time and rate of one step's GEMMs
 * ({@link StepFigures}).
 * That is what {@code bench} does without a subcommand; {@code bench kernels} ({@link BenchKernelsCommand})
 * times single kernels against the memory bandwidth.
 */
@Command(name = "bench", mixinStandardHelpOptions = true,
        versionProvider = GradScope.Version.class, sortOptions = false,
        subcommands = BenchKernelsCommand.class,
        description = "Time training epochs of the chapter's MLP on MNIST or --dataset's (median after one warm-up"
                + " epoch); "
                + "the subcommand kernels times single kernels instead.")
final class BenchCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model;

    @Mixin
    RunOptions run;

    @Option(names = "--epochs", defaultValue = "4",
            description = "Epochs to run; the first is warm-up and not counted (default: ${DEFAULT-VALUE}).")
    int epochs;

    @Option(names = "--out", paramLabel = "FILE", description = "Also write the results as JSON to FILE.")
    Path out;

    @Option(names = "--save-initial-weights", paramLabel = "FILE",
            description = "Write the model's initial weights to FILE (safetensors) before training, so that"
                    + " scripts/compare-peers.py --initial-weights FILE starts PyTorch and JAX from them too.")
    Path saveInitialWeights;

    @Option(names = "--no-profile",
            description = "Switch the gradient profiler off, to measure what profiling costs (on by default, as in train).")
    boolean noProfile;

    /**
     * Untimed epochs of each setting before --profile-cost times any. One is not enough: each switch
     * between the settings sends HotSpot through deoptimisations and recompiles of the code that differs
     * (a profiled backward pass, a measured optimizer step), and measured on the 2-core machine the
     * profiled epochs ran up to 40% slow for their first 7 epochs, then at the speed of the others.
     */
    static final int PROFILE_COST_WARMUP = 8;

    @Option(names = "--profile-cost",
            description = "Measure what the profiler costs: one model trains epochs alternately with the profiler off "
                    + "and on (--epochs of each, in off-on-on-off order so drift cancels, after "
                    + PROFILE_COST_WARMUP + " untimed epochs of each), and the medians of both and the overhead "
                    + "are reported. On a noisy machine shorter epochs alternate faster and cancel more of the "
                    + "drift: e.g. --train-limit 12800 --epochs 30.")
    boolean profileCost;

    @Option(names = "--op-times",
            description = "Also time every op of a training step on the GPU (CUDA events around each op of "
                    + StepFigures.OP_TIMING_STEPS + " eager steps, after the timed epochs): a table of where a step's"
                    + " time goes, and \"op_times\" in --out. Needs --device cuda.")
    boolean opTimes;

    @Override
    public Integer call() {
        if (epochs < 2) {
            throw run.usage("--epochs must be >= 2 (one warm-up and at least one timed), got " + epochs);
        }
        if (opTimes && profileCost) {
            throw run.usage("--op-times goes with the plain benchmark, not with --profile-cost");
        }
        if (profileCost && noProfile) {
            throw run.usage("--profile-cost times the profiler both off and on; drop --no-profile");
        }
        ModelOptions.Resolved resolved = model.resolve(run);
        Mnist mnist = run.loadData();
        var device = run.openDevice();
        try (var backend = device.backend();
             Sequential net = resolved.build(backend, run.seed, mnist.train().featureCount(),
                     mnist.train().classCount())) {
            if (device.fallback() != null) {
                System.err.println("gradscope: " + device.fallback());
            }
            if (opTimes && !(backend instanceof CudaBackend)) {
                throw run.usage("--op-times times ops with CUDA events: it needs the GPU, and this benchmark runs on "
                        + backend.name());
            }
            var train = run.trainLimit > 0 ? mnist.train().take(Math.min(run.trainLimit, mnist.train().rows()))
                    : mnist.train();
            if (saveInitialWeights != null) {
                net.saveWeights(saveInitialWeights);
            }
            if (profileCost) {
                return profileCost(net, train, backend.name(), backend.description(), resolved);
            }
            History history = net.fit(train, FitOptions.builder().batchSize(run.batchSize).epochs(epochs)
                    .verbose(0).profiler(noProfile ? null : new GradientProfiler()).graph(!run.noGraph)
                    .stepsPerGraph(run.stepsPerGraph).build());
            List<Double> timed = new ArrayList<>(history.epochSeconds().subList(1, epochs));
            double median = median(timed);
            int batch = Math.min(run.batchSize, train.rows());
            int steps = (train.rows() + batch - 1) / batch;
            StepFigures.GemmFigures gemm = StepFigures.gemm(net, backend, batch, median * 1000 / steps);
            Map<String, Object> result = new LinkedHashMap<>();
            result.put("backend", backend.name());
            result.put("device", backend.description());
            result.putAll(resolved.config());
            result.put("batch_size", run.batchSize);
            result.put("tf32", backend.tf32());
            result.put("profile", !noProfile);
            result.put("graph", history.graphs());
            result.put("steps_per_graph", history.graphs() ? history.stepsPerGraph() : null);
            result.put("kernels_per_step", history.operationsPerStep() < 0 ? null : history.operationsPerStep());
            result.put("dataset", mnist.kind().id());
            result.put("train_examples", train.rows());
            result.put("warmup_epoch_seconds", history.epochSeconds().get(0));
            result.put("epoch_seconds", timed);
            result.put("median_epoch_seconds", median);
            result.put("final_loss", history.last("loss"));
            result.put("steps_per_epoch", steps);
            result.put("gemm", gemm.json());
            String kernelsPerStep = history.operationsPerStep() < 0 ? "-"
                    : Long.toString(history.operationsPerStep());
            String stepsPerGraph = history.graphs() ? Integer.toString(history.stepsPerGraph()) : "-";
            System.out.printf(Locale.ROOT, "%-10s %-40s %8s %8s %5s %11s %5s %14s %13s%n", "backend", "device",
                    "examples", "profile", "graph", "steps/graph", "tf32", "epoch (median)", "kernels/step");
            System.out.printf(Locale.ROOT, "%-10s %-40s %8d %8s %5s %11s %5s %12.3f s %13s%n", backend.name(),
                    backend.description(), train.rows(), noProfile ? "off" : "on", history.graphs() ? "on" : "off",
                    stepsPerGraph, backend.tf32() ? "on" : "off", median, kernelsPerStep);
            System.out.println(gemm.line());
            if (opTimes) {
                StepFigures.OpFigures ops = StepFigures.opTimes(net, train, (CudaBackend) backend, batch, !noProfile,
                        median * 1000 / steps);
                result.put("op_times", ops.json());
                ops.lines().forEach(System.out::println);
            }
            if (out != null) {
                HistoryJson.writeAtomically(out, result);
            }
        }
        return 0;
    }

    /**
     * Alternates single epochs of the same model with the profiler off and on. One process, one model, one
     * data set: the comparison is not blurred by JIT warm-up, by the machine's load drifting between two
     * runs, or by different weights. The order off, on, on, off, off, on, ... gives each setting the same
     * share of early and late slots.
     */
    private int profileCost(Sequential net, Dataset train, String backendName, String description,
                            ModelOptions.Resolved resolved) {
        List<Double> off = new ArrayList<>();
        List<Double> on = new ArrayList<>();
        List<Double> cpuOff = new ArrayList<>();
        List<Double> cpuOn = new ArrayList<>();
        List<Double> pairRatios = new ArrayList<>();
        ProcessCpuClock clock = new ProcessCpuClock();
        int untimed = 2 * PROFILE_COST_WARMUP;
        for (int i = 0; i < 2 * epochs + untimed; i++) {
            boolean profiled = (i % 4 == 1) || (i % 4 == 2);
            History h = net.fit(train, FitOptions.builder().batchSize(run.batchSize).epochs(1).verbose(0)
                    .profiler(profiled ? new GradientProfiler() : null).callback(clock).graph(!run.noGraph)
                    .stepsPerGraph(run.stepsPerGraph).build());
            if (i >= untimed) {
                (profiled ? on : off).add(h.epochSeconds().get(0));
                (profiled ? cpuOn : cpuOff).add(clock.lastEpochSeconds());
            }
            if (i >= untimed && i % 2 == 1) { // slots 2k and 2k+1 are neighbours in time: one off, one on
                double a = h.epochSeconds().get(0);
                double b = profiled ? off.get(off.size() - 1) : on.get(on.size() - 1);
                pairRatios.add(profiled ? a / b : b / a);
            }
        }
        double medianOff = median(off);
        double medianOn = median(on);
        double overhead = medianOn / medianOff - 1;
        double pairedOverhead = median(pairRatios) - 1;
        double cpuOverhead = median(cpuOn) / median(cpuOff) - 1;
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("backend", backendName);
        result.put("device", description);
        result.putAll(resolved.config());
        result.put("batch_size", run.batchSize);
        result.put("tf32", net.backend().tf32());
        result.put("train_examples", train.rows());
        result.put("epoch_seconds_profile_off", off);
        result.put("epoch_seconds_profile_on", on);
        result.put("median_epoch_seconds_profile_off", medianOff);
        result.put("median_epoch_seconds_profile_on", medianOn);
        result.put("profile_overhead", overhead);
        result.put("profile_overhead_paired", pairedOverhead);
        result.put("cpu_seconds_profile_off", cpuOff);
        result.put("cpu_seconds_profile_on", cpuOn);
        result.put("profile_overhead_cpu_time", cpuOverhead);
        System.out.printf(Locale.ROOT, "%-10s %-40s %8s %12s %12s %9s %9s %9s%n", "backend", "device", "examples",
                "off (median)", "on (median)", "overhead", "paired", "cpu time");
        System.out.printf(Locale.ROOT, "%-10s %-40s %8d %10.3f s %10.3f s %8.1f%% %8.1f%% %8.1f%%%n", backendName,
                description, train.rows(), medianOff, medianOn, 100 * overhead, 100 * pairedOverhead,
                100 * cpuOverhead);
        if (out != null) {
            HistoryJson.writeAtomically(out, result);
        }
        return 0;
    }

    /**
     * The CPU time all of the JVM's threads spent in each epoch (seconds), from the thread clocks of
     * java.management: unlike the wall clock, it does not count time the machine gave to other work,
     * which on a shared machine is most of the noise between two epochs.
     */
    private static final class ProcessCpuClock implements Callback {
        private final ThreadMXBean threads = ManagementFactory.getThreadMXBean();
        private long atEpochBegin;
        private double lastEpochSeconds = Double.NaN;

        @Override
        public void onEpochBegin(int epoch) {
            atEpochBegin = cpuNanos();
        }

        @Override
        public void onEpochEnd(int epoch, Map<String, Double> logs) {
            lastEpochSeconds = (cpuNanos() - atEpochBegin) / 1e9;
        }

        double lastEpochSeconds() {
            return lastEpochSeconds;
        }

        private long cpuNanos() {
            if (!threads.isThreadCpuTimeSupported()) {
                return 0;
            }
            long total = 0;
            for (long id : threads.getAllThreadIds()) {
                long t = threads.getThreadCpuTime(id);
                if (t > 0) {
                    total += t; // -1: the thread has ended or its clock is off
                }
            }
            return total;
        }
    }

    private static double median(List<Double> values) {
        return Stopwatch.median(values.stream().mapToDouble(Double::doubleValue).toArray());
    }
}
