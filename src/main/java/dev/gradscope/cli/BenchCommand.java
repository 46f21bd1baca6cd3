package dev.gradscope.cli;

import dev.gradscope.data.Mnist;
import dev.gradscope.nn.Sequential;
import dev.gradscope.report.HistoryJson;
import dev.gradscope.train.FitOptions;
import dev.gradscope.train.GradientProfiler;
import dev.gradscope.train.History;
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
 * cross-entropy, Adam, batch 256, all 60000 images), as the median of the epochs after a warm-up one.
 * That is what {@code bench} does without a subcommand; {@code bench kernels} ({@link BenchKernelsCommand})
 * times single kernels against the memory bandwidth.
 */
@Command(name = "bench", mixinStandardHelpOptions = true, sortOptions = false,
        subcommands = BenchKernelsCommand.class,
        description = "Time training epochs of the chapter's MLP on MNIST (median after one warm-up epoch); "
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

    @Option(names = "--no-profile",
            description = "Switch the gradient profiler off, to measure what profiling costs (on by default, as in train).")
    boolean noProfile;

    @Override
    public Integer call() {
        if (epochs < 2) {
            throw run.usage("--epochs must be >= 2 (one warm-up and at least one timed), got " + epochs);
        }
        ModelOptions.Resolved resolved = model.resolve(run);
        Mnist mnist = run.loadMnist();
        var device = run.openDevice();
        try (var backend = device.backend();
             Sequential net = resolved.build(backend, run.seed, mnist.train().featureCount(),
                     mnist.train().classCount())) {
            if (device.fallback() != null) {
                System.err.println("gradscope: " + device.fallback());
            }
            var train = run.trainLimit > 0 ? mnist.train().take(Math.min(run.trainLimit, mnist.train().rows()))
                    : mnist.train();
            History history = net.fit(train, FitOptions.builder().batchSize(run.batchSize).epochs(epochs)
                    .verbose(0).profiler(noProfile ? null : new GradientProfiler()).build());
            List<Double> timed = new ArrayList<>(history.epochSeconds().subList(1, epochs));
            List<Double> sorted = new ArrayList<>(timed);
            sorted.sort(null);
            double median = sorted.size() % 2 == 1 ? sorted.get(sorted.size() / 2)
                    : (sorted.get(sorted.size() / 2 - 1) + sorted.get(sorted.size() / 2)) / 2;
            Map<String, Object> result = new LinkedHashMap<>();
            result.put("backend", backend.name());
            result.put("device", backend.description());
            result.putAll(resolved.config());
            result.put("batch_size", run.batchSize);
            result.put("profile", !noProfile);
            result.put("train_examples", train.rows());
            result.put("warmup_epoch_seconds", history.epochSeconds().get(0));
            result.put("epoch_seconds", timed);
            result.put("median_epoch_seconds", median);
            result.put("final_loss", history.last("loss"));
            System.out.printf(Locale.ROOT, "%-10s %-40s %8s %8s %14s%n", "backend", "device", "examples", "profile",
                    "epoch (median)");
            System.out.printf(Locale.ROOT, "%-10s %-40s %8d %8s %12.3f s%n", backend.name(), backend.description(),
                    train.rows(), noProfile ? "off" : "on", median);
            if (out != null) {
                HistoryJson.writeAtomically(out, result);
            }
        }
        return 0;
    }
}
