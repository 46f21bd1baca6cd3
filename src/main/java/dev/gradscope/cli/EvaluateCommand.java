package dev.gradscope.cli;

import dev.gradscope.backend.Devices;
import dev.gradscope.data.Dataset;
import dev.gradscope.data.DatasetKind;
import dev.gradscope.data.InvalidDataException;
import dev.gradscope.data.SafeTensors;
import dev.gradscope.nn.Mlp;
import dev.gradscope.nn.Sequential;
import dev.gradscope.nn.WeightsFile;
import dev.gradscope.report.HistoryJson;
import dev.gradscope.train.ClassificationReport;
import dev.gradscope.train.Evaluation;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
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
 * {@code gradscope evaluate WEIGHTS}: Keras's {@code evaluate} on the test set of the data set the weights were
 * trained on, for weights that {@code train --out} saved. The file's metadata holds the run's config, so the
 * command rebuilds the same network, and reads the same data set, without being told its options.
 */
@Command(name = "evaluate", mixinStandardHelpOptions = true,
        versionProvider = GradScope.Version.class, sortOptions = false,
        description = "Evaluate the weights a train run saved (its --out DIR/model.safetensors) on the test set of"
                + " the data set they were trained on (or --dataset's).")
final class EvaluateCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Parameters(index = "0", paramLabel = "WEIGHTS", description = "A model.safetensors written by train --out.")
    Path weights;

    /** Reads only the test files. */
    @Mixin
    DeviceOptions machine = new DeviceOptions(new DataOptions.TestFiles());

    @Option(names = "--batch-size", paramLabel = "N",
            description = "Rows per forward pass (default: the run's batch size, so that the numbers are bit for"
                    + " bit the run's own for the epoch the file holds: that epoch's validation numbers (the last"
                    + " epoch's, or the one --save-best kept or --restore-best-weights restored), or for a"
                    + " --validation-split run its test numbers when the file holds the model training ended with;"
                    + " 256 when the file does not say).")
    Integer batchSize;

    @Option(names = "--out", paramLabel = "FILE.json", description = "Also write the result as JSON.")
    Path out;

    @Override
    public Integer call() {
        machine.validate(message -> new CommandLine.ParameterException(spec.commandLine(), message));
        if (batchSize != null && batchSize < 1) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--batch-size must be >= 1, got " + batchSize);
        }
        if (out != null) {
            OutputFiles.requireFreeOutput(spec.commandLine(), out, List.of(weights));
        }
        // One open file for the config, the shapes and the values: a run rewriting it meanwhile cannot mix versions.
        try (SafeTensors.Reader reader = SafeTensors.open(weights)) {
            SavedWeights.Recorded recorded = SavedWeights.recorded(reader, "evaluate");
            Map<String, Object> config = recorded.config();
            ModelOptions.Resolved resolved = recorded.model();
            DatasetKind trainedOn = recordedDataset(config, weights);
            if (machine.data.dataset == null) {
                machine.data.dataset = trainedOn.id();
            } else if (machine.data.dataset() != trainedOn) {
                System.err.println("gradscope: note: the weights were trained on " + trainedOn.title() + "; evaluating"
                        + " them on " + machine.data.dataset().title() + " as --dataset asks");
            }
            // the test split alone: weights copied with only the t10k files evaluate
            Dataset testSet = machine.loadTestData();
            DatasetKind kind = machine.data.dataset();
            int inputs = testSet.featureCount();
            int classes = testSet.classCount();
            requireWeightsForEveryKernel(reader, resolved, inputs, classes);
            int batch = batchSize != null ? batchSize : runsValidationBatch(config);
            Devices.Selection selection = machine.openDevice();
            try (var backend = selection.backend();
                 Sequential net = resolved.buildToLoad(backend, inputs, classes)) {
                if (selection.fallback() != null) {
                    System.err.println("gradscope: " + selection.fallback());
                }
                if (Boolean.TRUE.equals(config.get("tf32")) && !backend.tf32() && backend.tf32Unavailable().isEmpty()) {
                    System.err.println("gradscope: the run trained and validated with --tf32; evaluating in FP32"
                            + " (pass --tf32 for the run's own numbers)");
                }
                WeightsFile.load(net, reader);
                Evaluation test = net.evaluate(testSet, batch);
                ClassificationReport perClass = ClassificationReport.of(net, testSet, batch,
                        kind.classNames());
                String epoch = reader.metadata().get("epoch");
                // a smoothed run's loss is against its smoothed targets, as Keras reports it: not comparable with an
                // unsmoothed run's, so the line says so
                String smoothed = resolved.labelSmoothing() > 0
                        ? " (label smoothing " + TrainCommand.number(resolved.labelSmoothing()) + ")" : "";
                System.out.printf(Locale.ROOT, "test: loss %.4f%s, accuracy %.4f on %d %s images (%s %s%s, %s)%n",
                        test.loss(), smoothed, test.accuracy(), test.examples(), kind.title(),
                        TrainCommand.architecture(inputs, resolved.hidden(), classes), resolved.units().activation(),
                        epoch == null ? "" : ", after epoch " + epoch, backend.name());
                if (perClass.nonFiniteRows() > 0) {
                    System.out.println("per class: not reported: " + perClass.nonFiniteRows() + " of "
                            + perClass.examples() + " images get non-finite outputs from these weights");
                } else {
                    System.out.print(perClass.describe());
                }
                if (out != null) {
                    Map<String, Object> result = new LinkedHashMap<>();
                    result.put("weights", weights.toString());
                    result.put("epoch", epoch != null && epoch.matches("[0-9]{1,9}") ? Integer.valueOf(epoch) : epoch);
                    result.put("loss", test.loss());
                    result.put("label_smoothing", resolved.labelSmoothing());
                    result.put("accuracy", test.accuracy());
                    result.put("dataset", kind.id());
                    result.put("examples", test.examples());
                    result.put("batch_size", batch);
                    result.put("backend", backend.name());
                    result.put("tf32", backend.tf32());
                    if (perClass.nonFiniteRows() == 0) {
                        result.putAll(classesOf(perClass));
                    }
                    result.put("config", config);
                    HistoryJson.writeAtomically(out, result);
                }
            }
        }
        return 0;
    }

    /** The per-class numbers for the JSON, without the accuracy the evaluation already gives. */
    private static Map<String, Object> classesOf(ClassificationReport classes) {
        Map<String, Object> map = new LinkedHashMap<>(classes.toMap());
        map.remove("accuracy");
        return map;
    }

    private static final int DEFAULT_BATCH = 256;

    /** The data set a run's config records; MNIST for files written before runs recorded one. */
    static DatasetKind recordedDataset(Map<String, Object> config, Path weights) {
        Object id = config.get("dataset");
        if (id == null) {
            return DatasetKind.MNIST;
        }
        try {
            return DatasetKind.fromId(String.valueOf(id));
        } catch (IllegalArgumentException e) {
            throw new InvalidDataException(weights + ": its config names a data set this version does not know: "
                    + e.getMessage(), e);
        }
    }

    /**
     * The rows per forward pass of the run's validation: its batch size, cut to its training examples as fit
     * cuts it; {@link #DEFAULT_BATCH} when the config does not say.
     */
    private static int runsValidationBatch(Map<String, Object> config) {
        if (!(config.get("batch_size") instanceof Integer batch) || batch < 1) {
            return DEFAULT_BATCH;
        }
        return config.get("train_examples") instanceof Integer examples && examples >= 1
                ? Math.min(batch, examples) : batch;
    }

    /**
     * Refuses a config whose network has more kernel weights than the file has values, before that network
     * is allocated: a damaged config (hidden widths of 2e9) would otherwise exhaust the memory instead of
     * failing with a message. Each layer's kernel has at least inputs x units weights (x pieces for maxout).
     */
    static void requireWeightsForEveryKernel(SafeTensors.Reader reader, ModelOptions.Resolved resolved,
                                             int inputs, int classes) {
        int[] hidden = resolved.hidden();
        long pieces = resolved.units().activation().equals(Mlp.MAXOUT) ? resolved.units().maxoutPieces() : 1;
        long inFile = 0;
        for (int[] shape : reader.shapes().values()) {
            inFile += java.util.Arrays.stream(shape).asLongStream().reduce(1, (a, b) -> a * b);
        }
        long needed = 0;
        long width = inputs;
        try {
            for (int i = 0; i <= hidden.length && needed <= inFile; i++) {
                int units = i < hidden.length ? hidden[i] : classes;
                needed = Math.addExact(needed, Math.multiplyExact(width, units * (i < hidden.length ? pieces : 1)));
                width = units;
            }
        } catch (ArithmeticException e) {
            needed = Long.MAX_VALUE; // more than any file holds
        }
        if (needed > inFile) {
            throw new InvalidDataException(String.format(Locale.ROOT, "%s: its config describes a %s network, whose"
                    + " kernels alone have more weights than the file's %d values", reader.file(),
                    TrainCommand.architecture(inputs, hidden, classes), inFile));
        }
    }
}
