package dev.gradscope.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.gradscope.backend.Devices;
import dev.gradscope.data.Dataset;
import dev.gradscope.data.DatasetKind;
import dev.gradscope.data.ImageInput;
import dev.gradscope.data.InvalidDataException;
import dev.gradscope.data.Mnist;
import dev.gradscope.data.SafeTensors;
import dev.gradscope.nn.Sequential;
import dev.gradscope.nn.WeightsFile;
import dev.gradscope.report.HistoryJson;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code gradscope predict WEIGHTS IMAGE...}: Keras's {@code model.predict} on image files (or on images of the
 * data set's test split, {@code --test-index}), with weights that {@code train --out} saved. Each image is made
 * into what the model trained on by {@link ImageInput}; the output is the model's softmax: the most likely class,
 * its probability and the top K.
 *
 * <p>An image that cannot be read is reported on the error stream, naming the file; the others are still
 * classified (and written to {@code --out}), and the command then exits with status 1.
 */
@Command(name = "predict", mixinStandardHelpOptions = true,
        versionProvider = GradScope.Version.class, sortOptions = false,
        description = "Classify images (PNG, JPEG, GIF, BMP) or test images of the data set with the weights a train"
                + " run saved (its --out DIR/model.safetensors).")
final class PredictCommand implements Callable<Integer> {
    /** What {@code --top} may ask for: one class up to all of them. */
    static final int MAX_TOP = Mnist.CLASS_COUNT;

    private static final int BATCH = 256;

    @Spec
    CommandSpec spec;

    @Parameters(index = "0", paramLabel = "WEIGHTS", description = "A model.safetensors written by train --out.")
    Path weights;

    @Parameters(index = "1..*", paramLabel = "IMAGE", arity = "0..*",
            description = "Image files: grey or colour, any size; made 28x28 light-on-dark grey as the training"
                    + " images are (see --invert).")
    List<Path> images = new ArrayList<>();

    @Option(names = "--test-index", split = ",", paramLabel = "I",
            description = "Classify these images of the data set's test split instead (0-based), with their true"
                    + " labels.")
    List<Integer> testIndices;

    @Option(names = "--top", paramLabel = "K", defaultValue = "3",
            description = "How many of the most likely classes to show, 1.." + MAX_TOP
                    + " (default: ${DEFAULT-VALUE}).")
    int top;

    /** Null when not given: {@code auto} for image files; refused with --test-index. */
    @Option(names = "--invert", paramLabel = "auto|yes|no",
            description = "Make dark-on-light images light-on-dark, as the training images are: auto (the default)"
                    + " inverts an image whose border is light (mean above 0.5), and says so.")
    String invert;

    /** Null when not given: the framing of the images the weights were trained on; refused with --test-index. */
    @Option(names = "--frame", paramLabel = "digit|whole",
            description = "How an image becomes 28x28: digit (the default for weights trained on MNIST) frames its"
                    + " ink as MNIST framed its digits, in a 20x20 box centred by its centre of mass; whole (the"
                    + " default for Fashion-MNIST's, whose clothes fill their frames) scales the whole image to fit."
                    + " An image in MNIST's format already (28x28, light on black) is taken as it is.")
    String frame;

    /** --test-index reads only the test files. */
    @Mixin
    DeviceOptions machine = new DeviceOptions(new DataOptions.TestFiles());

    private ImageInput.Invert inversion;

    @Option(names = "--out", paramLabel = "FILE.json", description = "Also write the predictions as JSON.")
    Path out;

    /** One image to classify: where it came from, its pixels, and its true label (-1 for a file). */
    private record Input(String source, Path file, int testIndex, int label, ImageInput.Prepared prepared,
                         float[] pixels) {
    }

    @Override
    public Integer call() {
        CommandLine cli = spec.commandLine();
        machine.validate(message -> new CommandLine.ParameterException(cli, message));
        if (top < 1 || top > MAX_TOP) {
            throw new CommandLine.ParameterException(cli, "--top must be in 1.." + MAX_TOP + ", got " + top);
        }
        if (out != null) {
            List<Path> inputs = new ArrayList<>(images);
            inputs.add(weights);
            OutputFiles.requireFreeOutput(cli, out, inputs);
        }
        boolean fromTestSet = testIndices != null;
        if (fromTestSet && !images.isEmpty()) {
            throw new CommandLine.ParameterException(cli, "give image files or --test-index, not both");
        }
        if (!fromTestSet && images.isEmpty()) {
            throw new CommandLine.ParameterException(cli, "nothing to classify: give image files or --test-index");
        }
        if (fromTestSet && invert != null) {
            throw new CommandLine.ParameterException(cli, "--invert is for image files; the test images are"
                    + " light on dark already");
        }
        if (fromTestSet && frame != null) {
            throw new CommandLine.ParameterException(cli, "--frame is for image files; the test images are framed"
                    + " already");
        }
        ImageInput.Frame framing;
        try {
            inversion = invert == null ? ImageInput.Invert.AUTO : ImageInput.Invert.fromId(invert);
            framing = frame == null ? null : ImageInput.Frame.fromId(frame);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(cli, e.getMessage());
        }
        PrintWriter err = cli.getErr();
        try (SafeTensors.Reader reader = SafeTensors.open(weights)) {
            SavedWeights.Recorded recorded = SavedWeights.recorded(reader, "predict");
            Map<String, Object> config = recorded.config();
            ModelOptions.Resolved resolved = recorded.model();
            requireImageClassifier(reader);
            DatasetKind trainedOn = EvaluateCommand.recordedDataset(config, weights);
            if (machine.data.dataset == null) {
                machine.data.dataset = trainedOn.id();
            } else if (machine.data.dataset() != trainedOn) {
                err.println("gradscope: note: the weights were trained on " + trainedOn.title() + "; naming"
                        + " their classes as " + machine.data.dataset().title() + "'s, as --dataset asks");
            }
            DatasetKind kind = machine.data.dataset();
            if (framing == null) {
                // the framing of the images the weights learnt from; --dataset only renames the classes
                framing = ImageInput.Frame.of(trainedOn);
            }
            EvaluateCommand.requireWeightsForEveryKernel(reader, resolved, Mnist.PIXELS, Mnist.CLASS_COUNT);

            List<Input> inputs = new ArrayList<>();
            List<Map<String, Object>> failures = new ArrayList<>();
            if (fromTestSet) {
                inputs.addAll(testImages(cli, machine.loadTestData()));
            } else {
                for (Path image : images) {
                    try {
                        ImageInput.Prepared prepared = ImageInput.prepare(image, inversion, framing);
                        inputs.add(new Input(image.toString(), image, -1, -1, prepared, prepared.pixels()));
                    } catch (InvalidDataException e) {
                        err.println("gradscope: error: " + e.getMessage());
                        Map<String, Object> failure = new LinkedHashMap<>();
                        failure.put("image", image.toString());
                        failure.put("error", e.getMessage());
                        failures.add(failure);
                    }
                }
            }

            float[][] probabilities = new float[0][];
            String backendName;
            Devices.Selection selection = machine.openDevice();
            try (var backend = selection.backend();
                 Sequential net = resolved.buildToLoad(backend, Mnist.PIXELS, Mnist.CLASS_COUNT)) {
                if (selection.fallback() != null) {
                    err.println("gradscope: " + selection.fallback());
                }
                WeightsFile.load(net, reader);
                if (!inputs.isEmpty()) {
                    probabilities = net.predict(inputs.stream().map(Input::pixels).toArray(float[][]::new), BATCH);
                }
                backendName = backend.name();
            }

            List<Map<String, Object>> predictions = new ArrayList<>();
            for (int i = 0; i < inputs.size(); i++) {
                Input input = inputs.get(i);
                Map<String, Object> prediction = prediction(input, probabilities[i], kind);
                predictions.add(prediction);
                System.out.println(line(input, prediction, kind));
            }
            if (out != null) {
                Map<String, Object> result = new LinkedHashMap<>();
                result.put("weights", weights.toString());
                result.put("dataset", kind.id());
                result.put("class_names", kind.classNames());
                result.put("backend", backendName);
                result.put("top", top);
                result.put("predictions", predictions);
                result.put("errors", failures);
                HistoryJson.writeAtomically(out, result);
            }
            if (!failures.isEmpty()) {
                err.printf(Locale.ROOT, "gradscope: error: %d of %d images could not be read%s%n", failures.size(),
                        images.size(), inputs.isEmpty() ? "" : "; the others are classified above");
                return 1;
            }
        }
        return 0;
    }

    /**
     * Refuses a file whose network does not take 28x28 images or does not give ten classes, from what
     * {@link WeightsFile} records: the input width, and the last layer, whose kernel's columns are the outputs.
     */
    private void requireImageClassifier(SafeTensors.Reader reader) {
        String inputUnits = reader.metadata().get("input_units");
        if (inputUnits != null && !inputUnits.equals(Integer.toString(Mnist.PIXELS))) {
            throw new InvalidDataException(weights + ": its network takes " + inputUnits + " inputs; predict"
                    + " classifies 28x28 images, " + Mnist.PIXELS + " inputs");
        }
        String lastLayer = lastLayerName(reader.metadata().get("layers"));
        int[] kernel = lastLayer == null ? null : reader.shapes().get(lastLayer + ".kernel");
        if (kernel != null && kernel.length == 2 && kernel[1] != Mnist.CLASS_COUNT) {
            throw new InvalidDataException(weights + ": its network gives " + kernel[1] + " outputs ("
                    + lastLayer + ".kernel " + Arrays.toString(kernel) + "); predict needs the "
                    + Mnist.CLASS_COUNT + " classes of the data sets");
        }
    }

    /** The name of the last layer in {@link WeightsFile#layersJson}'s list, or null when there is none. */
    private String lastLayerName(String layersJson) {
        if (layersJson == null) {
            return null;
        }
        try {
            List<?> layers = new ObjectMapper().readValue(layersJson, List.class);
            if (!layers.isEmpty() && layers.get(layers.size() - 1) instanceof Map<?, ?> last
                    && last.get("name") instanceof String name) {
                return name;
            }
            return null;
        } catch (JsonProcessingException e) {
            throw new InvalidDataException(weights + ": metadata 'layers' is not valid JSON: "
                    + e.getOriginalMessage(), e);
        }
    }

    /** The test images {@code --test-index} names, as the model trained on them. */
    private List<Input> testImages(CommandLine cli, Dataset test) {
        List<Input> inputs = new ArrayList<>();
        for (int index : testIndices) {
            if (index < 0 || index >= test.rows()) {
                throw new CommandLine.ParameterException(cli, "--test-index " + index + " is outside the test"
                        + " split's 0.." + (test.rows() - 1));
            }
        }
        float[] scaled = test.scaledFeatures();
        int width = test.featureCount();
        for (int index : testIndices) {
            float[] pixels = Arrays.copyOfRange(scaled, index * width, (index + 1) * width);
            inputs.add(new Input("test image " + index, null, index, test.label(index), null, pixels));
        }
        return inputs;
    }

    /** One image's result for the JSON; {@link #line} prints it. */
    private Map<String, Object> prediction(Input input, float[] probabilities, DatasetKind kind) {
        Integer[] order = new Integer[probabilities.length];
        for (int c = 0; c < order.length; c++) {
            order[c] = c;
        }
        // Most likely first; equal probabilities in class order, so the first is argmax's choice (for finite outputs:
        // a diverged model's NaN sorts first).
        Arrays.sort(order, (a, b) -> probabilities[a] != probabilities[b]
                ? Float.compare(probabilities[b], probabilities[a]) : Integer.compare(a, b));
        Map<String, Object> prediction = new LinkedHashMap<>();
        if (input.file() != null) {
            prediction.put("image", input.source());
        } else {
            prediction.put("test_index", input.testIndex());
            prediction.put("label", input.label());
            prediction.put("label_name", kind.classNames().get(input.label()));
        }
        prediction.put("class", order[0]);
        prediction.put("name", kind.classNames().get(order[0]));
        prediction.put("probability", probabilities[order[0]]);
        List<Map<String, Object>> best = new ArrayList<>();
        for (int k = 0; k < top; k++) {
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("class", order[k]);
            entry.put("name", kind.classNames().get(order[k]));
            entry.put("probability", probabilities[order[k]]);
            best.add(entry);
        }
        prediction.put("top", best);
        prediction.put("probabilities", probabilities);
        ImageInput.Prepared prepared = input.prepared();
        if (prepared != null) {
            prediction.put("size", List.of(prepared.width(), prepared.height()));
            prediction.put("scaled_to", List.of(prepared.scaledWidth(), prepared.scaledHeight()));
            prediction.put("subsampling", prepared.subsampling());
            prediction.put("no_ink", prepared.blank());
            prediction.put("border_mean", prepared.borderMean());
            prediction.put("inverted", prepared.inverted());
            prediction.put("framed_as_digit", prepared.digitFramed());
            prediction.put("decoder_warnings", prepared.warnings());
        }
        return prediction;
    }

    /**
     * {@code digit.png: 7 (0.9871); top 3: 7 0.9871, 2 0.0080, 3 0.0021; inverted (light border, mean 0.96)}; a
     * test image's line names its index and true label.
     */
    @SuppressWarnings("unchecked")
    private String line(Input input, Map<String, Object> prediction, DatasetKind kind) {
        StringBuilder sb = new StringBuilder(input.source());
        if (input.file() == null) {
            sb.append(" (label ").append(kind.classNames().get(input.label())).append(')');
        }
        sb.append(String.format(Locale.ROOT, ": %s (%.4f); top %d: ", prediction.get("name"),
                (Float) prediction.get("probability"), ((List<?>) prediction.get("top")).size()));
        sb.append(((List<Map<String, Object>>) prediction.get("top")).stream()
                .map(e -> String.format(Locale.ROOT, "%s %.4f", e.get("name"), (Float) e.get("probability")))
                .collect(Collectors.joining(", ")));
        ImageInput.Prepared prepared = input.prepared();
        if (prepared != null && prepared.blank()) {
            sb.append("; no ink found (no pixel a tenth of white lighter than its border, after any inversion): a"
                    + " blank image");
        }
        if (prepared != null && !prepared.warnings().isEmpty()) {
            sb.append("; ").append(String.join("; ", prepared.warnings())).append(" (no pixel changed)");
        }
        if (prepared != null && prepared.subsampling() > 1) {
            sb.append(String.format(Locale.ROOT, "; decoded at one pixel in %d each way (larger than %d on a side)",
                    prepared.subsampling(), ImageInput.MAX_DECODED_SIDE));
        }
        if (prepared != null && prepared.inverted()) {
            sb.append(String.format(Locale.ROOT, "; inverted (%s, its border's mean is %.2f)",
                    inversion == ImageInput.Invert.AUTO ? "dark on light" : "--invert yes", prepared.borderMean()));
        }
        if (prepared != null && prepared.digitFramed()) {
            sb.append(String.format(Locale.ROOT, "; framed as MNIST's digits: its ink scaled to %dx%d in a %dx%d box,"
                    + " centred by its centre of mass", prepared.scaledWidth(), prepared.scaledHeight(),
                    ImageInput.DIGIT_BOX, ImageInput.DIGIT_BOX));
        } else if (prepared != null && prepared.scaled()) {
            sb.append(String.format(Locale.ROOT, "; scaled %dx%d to %dx%d", prepared.width(), prepared.height(),
                    prepared.scaledWidth(), prepared.scaledHeight()));
            if (prepared.padded()) {
                sb.append(" and padded to ").append(ImageInput.SIZE).append('x').append(ImageInput.SIZE)
                        .append(" with its background");
            }
        }
        return sb.toString();
    }
}
