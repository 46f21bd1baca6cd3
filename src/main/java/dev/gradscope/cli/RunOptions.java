package dev.gradscope.cli;

import dev.gradscope.backend.Devices;
import dev.gradscope.data.Mnist;
import java.util.function.Function;
import picocli.CommandLine;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * Options every command that trains shares: device and data ({@link DeviceOptions}), batch size, seed, graph
 * mode and steps per graph.
 */
final class RunOptions {
    @Spec(Spec.Target.MIXEE)
    CommandSpec spec;

    @Mixin
    DeviceOptions machine;

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
        validate(this::usage);
    }

    /** Checks every choice; a bad one becomes {@code invalid}'s exception. */
    void validate(Function<String, RuntimeException> invalid) {
        machine.validate(invalid);
        if (batchSize < 1) {
            throw invalid.apply("--batch-size must be >= 1, got " + batchSize);
        }
        if (trainLimit < 0) {
            throw invalid.apply("--train-limit must be >= 0, got " + trainLimit);
        }
        if (stepsPerGraph < 1) {
            throw invalid.apply("--steps-per-graph must be >= 1, got " + stepsPerGraph);
        }
    }

    /** See {@link DeviceOptions#loadData()}. */
    Mnist loadData() {
        return machine.loadData();
    }

    /** See {@link DeviceOptions#openDevice()}. */
    Devices.Selection openDevice() {
        return machine.openDevice();
    }
}
