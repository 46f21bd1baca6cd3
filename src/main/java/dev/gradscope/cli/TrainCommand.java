package dev.gradscope.cli;

import dev.gradscope.backend.Devices;
import dev.gradscope.data.Mnist;
import dev.gradscope.nn.Mlp;
import dev.gradscope.nn.Sequential;
import dev.gradscope.report.HistoryJson;
import dev.gradscope.train.Callback;
import dev.gradscope.train.FitOptions;
import dev.gradscope.train.History;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code gradscope train}: trains the chapter's MLP on MNIST and writes its history. */
@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Train an MLP (by default the chapter's 784-512-256-128-64-10) on MNIST.")
final class TrainCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model;

    @Mixin
    RunOptions run;

    @Option(names = "--epochs", defaultValue = "10", description = "Passes over the training data (default: ${DEFAULT-VALUE}).")
    int epochs;

    @Option(names = "--out", paramLabel = "DIR", description = "Write history.json (updated after every epoch) here.")
    Path out;

    @Option(names = {"-q", "--quiet"}, description = "Print only errors and the final result.")
    boolean quiet;

    @Override
    public Integer call() {
        if (epochs < 1) {
            throw run.usage("--epochs must be >= 1, got " + epochs);
        }
        ModelOptions.Resolved resolved = model.resolve(run);
        Mnist mnist = run.loadMnist();
        Devices.Selection device = run.openDevice();
        try (var backend = device.backend();
             Sequential net = resolved.build(backend, run.seed, mnist.train().featureCount(),
                     mnist.train().classCount())) {
            if (device.fallback() != null) {
                System.err.println("gradscope: " + device.fallback());
            }
            var train = run.trainLimit > 0 ? mnist.train().take(Math.min(run.trainLimit, mnist.train().rows()))
                    : mnist.train();
            Map<String, Object> config = new LinkedHashMap<>();
            config.put("command", "train");
            config.putAll(resolved.config());
            config.put("epochs", epochs);
            config.put("batch_size", run.batchSize);
            config.put("seed", run.seed);
            config.put("device", run.device);
            config.put("backend", backend.name());
            config.put("backend_description", backend.description());
            config.put("data_dir", run.dataDir.toString());
            config.put("train_examples", train.rows());
            config.put("validation_examples", mnist.test().rows());
            if (!quiet) {
                System.out.print(net.summary());
            }
            FitOptions.Builder fit = FitOptions.builder().batchSize(run.batchSize).epochs(epochs)
                    .validation(mnist.test()).verbose(quiet ? 0 : 1);
            if (out != null) {
                fit.callback(new HistoryWriter(out.resolve("history.json"), config));
            }
            History history = net.fit(train, fit.build());
            System.out.printf(Locale.ROOT, "final: loss %.4f, accuracy %.4f, val_loss %.4f, val_accuracy %.4f%s%n",
                    history.last("loss"), history.last("accuracy"), history.last("val_loss"),
                    history.last("val_accuracy"), out == null ? "" : "; wrote " + out.resolve("history.json"));
        }
        return 0;
    }

    /** Rewrites history.json after every epoch, so an interrupted run keeps what it learned so far. */
    private static final class HistoryWriter implements Callback {
        private final Path file;
        private final Map<String, Object> config;
        private final History soFar = new History();
        private long epochStart;

        HistoryWriter(Path file, Map<String, Object> config) {
            this.file = file;
            this.config = config;
        }

        @Override
        public void onEpochBegin(int epoch) {
            epochStart = System.nanoTime();
        }

        @Override
        public void onEpochEnd(int epoch, Map<String, Double> logs) {
            soFar.record(logs, (System.nanoTime() - epochStart) / 1e9);
            HistoryJson.write(file, soFar, config);
        }

        @Override
        public void onTrainEnd(History history) {
            HistoryJson.write(file, history, config);
        }
    }
}
