package dev.gradscope.cli;

import dev.gradscope.backend.Devices;
import dev.gradscope.data.Mnist;
import java.nio.file.Path;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** Options every command that trains shares: device, data, batch size, seed, graph mode and steps per graph. */
final class RunOptions {
    @Spec(Spec.Target.MIXEE)
    CommandSpec spec;

    @Option(names = "--device", defaultValue = "auto",
            description = "auto, cpu or cuda (default: ${DEFAULT-VALUE}). auto falls back to the CPU and says why.")
    String device;

    @Option(names = "--tf32",
            description = "Let the GPU's GEMMs round their inputs to TF32 (10-bit mantissa) on tensor cores: faster,"
                    + " less exact; off by default. Ignored, with a note, where there is no TF32 (the CPU).")
    boolean tf32;

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

    @Option(names = "--steps-per-graph", paramLabel = "K", defaultValue = "1",
            description = "In graph mode, capture K consecutive training steps into one CUDA graph, so that an epoch "
                    + "takes about 1/K as many graph launches (default: ${DEFAULT-VALUE}; at most an epoch's full "
                    + "batches are used, so a large K makes them one graph). Same parameters, bit for bit; no effect "
                    + "on eager steps.")
    int stepsPerGraph;

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
        if (stepsPerGraph < 1) {
            throw usage("--steps-per-graph must be >= 1, got " + stepsPerGraph);
        }
    }

    Mnist loadMnist() {
        return Mnist.load(dataDir);
    }

    /**
     * The backend for {@code --device}, with TF32 GEMMs when {@code --tf32} asks for them; where they are
     * not available, the selection's note says that {@code --tf32} was ignored and why (after auto's
     * fallback reason, if any), and the run goes on in FP32.
     */
    Devices.Selection openDevice() {
        Devices.Selection selection = Devices.open(device);
        if (!tf32) {
            return selection;
        }
        var backend = selection.backend();
        var unavailable = backend.tf32Unavailable();
        if (unavailable.isEmpty()) {
            try {
                backend.setTf32(true);
            } catch (RuntimeException e) {
                backend.close();
                throw e;
            }
            return selection;
        }
        String note = "--tf32 ignored: " + unavailable.get();
        return new Devices.Selection(backend, selection.fallback() == null ? note : selection.fallback() + "; " + note);
    }
}
