package dev.gradscope.cli;

import dev.gradscope.backend.Devices;
import dev.gradscope.data.Mnist;
import java.nio.file.Path;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** Options every command that trains shares: device, data, batch size, seed, graph mode. */
final class RunOptions {
    @Spec(Spec.Target.MIXEE)
    CommandSpec spec;

    @Option(names = "--device", defaultValue = "auto",
            description = "auto, cpu or cuda (default: ${DEFAULT-VALUE}). auto falls back to the CPU and says why.")
    String device;

    @Option(names = "--data-dir", paramLabel = "DIR", defaultValue = Mnist.DEFAULT_DIR,
            description = "Folder with the four MNIST IDX files, plain or .gz (default: ${DEFAULT-VALUE}).")
    Path dataDir;

    @Option(names = "--batch-size", defaultValue = "256", description = "Rows per step (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--seed", defaultValue = "42",
            description = "Seeds the initial weights and every shuffle (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--train-limit", paramLabel = "N", defaultValue = "0",
            description = "Train on the first N training images only (default: all).")
    int trainLimit;

    @Option(names = "--no-graph",
            description = "Run every training step eagerly, kernel by kernel, instead of capturing the step once as a "
                    + "CUDA graph and replaying it (the default on a GPU; the CPU always runs eagerly). Both give the "
                    + "same parameters, bit for bit.")
    boolean noGraph;

    /** A usage error (exit status 2) for this command. */
    CommandLine.ParameterException usage(String message) {
        return new CommandLine.ParameterException(spec.commandLine(), message);
    }

    void validate() {
        if (!Devices.NAMES.contains(device.trim().toLowerCase(java.util.Locale.ROOT))) {
            throw usage("unknown device '" + device + "'; valid: " + Devices.CHOICES);
        }
        if (batchSize < 1) {
            throw usage("--batch-size must be >= 1, got " + batchSize);
        }
        if (trainLimit < 0) {
            throw usage("--train-limit must be >= 0, got " + trainLimit);
        }
    }

    Mnist loadMnist() {
        return Mnist.load(dataDir);
    }

    Devices.Selection openDevice() {
        return Devices.open(device);
    }
}
