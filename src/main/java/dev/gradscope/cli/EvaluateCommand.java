package dev.gradscope.cli;

import dev.gradscope.backend.Devices;
import dev.gradscope.data.InvalidDataException;
import dev.gradscope.data.Mnist;
import dev.gradscope.data.SafeTensors;
import dev.gradscope.nn.Sequential;
import dev.gradscope.report.HistoryJson;
import dev.gradscope.train.Evaluation;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code gradscope evaluate WEIGHTS}: Keras's {@code evaluate} on the MNIST test set, for weights that
 * {@code train --out} saved. The file's metadata holds the run's config, so the command rebuilds the same
 * network without being told its options.
 */
@Command(name = "evaluate", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Evaluate the weights a train run saved (its --out DIR/model.safetensors) on the MNIST test set.")
final class EvaluateCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Parameters(index = "0", paramLabel = "WEIGHTS", description = "A model.safetensors written by train --out.")
    Path weights;

    @Mixin
    DeviceOptions machine;

    @Option(names = "--batch-size", defaultValue = "256",
            description = "Rows per forward pass (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--out", paramLabel = "FILE.json", description = "Also write the result as JSON.")
    Path out;

    @Override
    public Integer call() {
        machine.validate(message -> new CommandLine.ParameterException(spec.commandLine(), message));
        if (batchSize < 1) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--batch-size must be >= 1, got " + batchSize);
        }
        Map<String, Object> config = SavedWeights.config(weights);
        if (config == null) {
            throw new InvalidDataException(weights + ": no '" + SavedWeights.CONFIG_KEY + "' in its metadata, so it"
                    + " does not say which network it belongs to; evaluate reads the files that train --out writes");
        }
        ModelOptions.Resolved resolved = ModelOptions.fromConfig(config, weights.toString())
                .resolve(message -> new InvalidDataException(weights + ": its config is not a valid model: "
                        + message));
        Mnist mnist = machine.loadMnist();
        Devices.Selection selection = machine.openDevice();
        try (var backend = selection.backend();
             Sequential net = resolved.build(backend, 0, mnist.test().featureCount(), mnist.test().classCount())) {
            if (selection.fallback() != null) {
                System.err.println("gradscope: " + selection.fallback());
            }
            net.loadWeights(weights);
            Evaluation test = net.evaluate(mnist.test(), batchSize);
            String epoch = SafeTensors.readMetadata(weights).get("epoch");
            System.out.printf(Locale.ROOT, "test: loss %.4f, accuracy %.4f on %d images (%s %s%s, %s)%n",
                    test.loss(), test.accuracy(), test.examples(),
                    TrainCommand.architecture(mnist.test().featureCount(), resolved.hidden(),
                            mnist.test().classCount()), resolved.units().activation(),
                    epoch == null ? "" : ", after epoch " + epoch, backend.name());
            if (out != null) {
                Map<String, Object> result = new LinkedHashMap<>();
                result.put("weights", weights.toString());
                result.put("epoch", epoch != null && epoch.matches("[0-9]{1,9}") ? Integer.valueOf(epoch) : epoch);
                result.put("loss", test.loss());
                result.put("accuracy", test.accuracy());
                result.put("examples", test.examples());
                result.put("backend", backend.name());
                result.put("tf32", backend.tf32());
                result.put("config", config);
                HistoryJson.writeAtomically(out, result);
            }
        }
        return 0;
    }
}
