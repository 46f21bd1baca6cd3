package dev.gradscope.cli;

import dev.gradscope.backend.Devices;
import dev.gradscope.data.DatasetKind;
import dev.gradscope.data.InvalidDataException;
import dev.gradscope.data.Mnist;
import dev.gradscope.data.SafeTensors;
import dev.gradscope.nn.OnnxExport;
import dev.gradscope.nn.Sequential;
import dev.gradscope.nn.WeightsFile;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code gradscope export WEIGHTS}: the network a {@code train --out} run saved, as an ONNX model ({@link OnnxExport})
 * that ONNX Runtime runs from any language, as Keras's {@code model.export(path, format="onnx")} does. As
 * {@code evaluate}, it rebuilds the network from the config in the file's metadata.
 */
@Command(name = "export", mixinStandardHelpOptions = true,
        versionProvider = GradScope.Version.class, sortOptions = false,
        description = "Export the weights a train run saved (its --out DIR/model.safetensors) as an ONNX model:"
                + " input 'input' float [batch, 784], outputs 'logits' and 'probabilities' float [batch, 10].")
final class ExportCommand implements Callable<Integer> {
    /** The file written beside the weights when {@code --out} is not given. */
    static final String DEFAULT_FILE = "model.onnx";

    @Spec
    CommandSpec spec;

    @Parameters(index = "0", paramLabel = "WEIGHTS", description = "A model.safetensors written by train --out.")
    Path weights;

    @Option(names = "--out", paramLabel = "FILE.onnx",
            description = "Where to write the model (default: " + DEFAULT_FILE + " beside WEIGHTS).")
    Path out;

    @Option(names = "--device", defaultValue = "cpu",
            description = "auto, cpu or cuda: where the network is rebuilt to read its weights (default:"
                    + " ${DEFAULT-VALUE}; the file is the same from every device).")
    String device;

    @Override
    public Integer call() {
        if (!Devices.NAMES.contains(device.trim().toLowerCase(Locale.ROOT))) {
            throw new CommandLine.ParameterException(spec.commandLine(), "unknown device '" + device + "'; valid: "
                    + Devices.CHOICES);
        }
        Path target = out != null ? out : weights.toAbsolutePath().resolveSibling(DEFAULT_FILE);
        requireOnnxTarget(target);
        OnnxExport.Written written;
        // One open file for the config, the shapes and the values: a run rewriting it meanwhile cannot mix versions.
        try (SafeTensors.Reader reader = SafeTensors.open(weights)) {
            SavedWeights.Recorded recorded = SavedWeights.recorded(reader, "export");
            Map<String, Object> config = recorded.config();
            ModelOptions.Resolved resolved = recorded.model();
            DatasetKind dataset = EvaluateCommand.recordedDataset(config, weights);
            int inputs = inputUnits(reader);
            int classes = dataset.classNames().size();
            EvaluateCommand.requireWeightsForEveryKernel(reader, resolved, inputs, classes);
            Devices.Selection selection = Devices.open(device);
            try (var backend = selection.backend();
                 Sequential net = resolved.buildToLoad(backend, inputs, classes)) {
                if (selection.fallback() != null) {
                    System.err.println("gradscope: " + selection.fallback());
                }
                WeightsFile.load(net, reader);
                written = OnnxExport.write(net, target, metadata(dataset, reader));
            }
        }
        System.out.printf(Locale.ROOT, "wrote %s (%,d bytes): ONNX opset %d, IR version %d; input '%s' float [%s, %d];"
                        + " outputs '%s' and '%s' float [%s, %d]%n", written.file(), written.bytes(), OnnxExport.OPSET,
                OnnxExport.IR_VERSION, OnnxExport.INPUT, OnnxExport.BATCH, written.inputs(), OnnxExport.LOGITS,
                OnnxExport.PROBABILITIES, OnnxExport.BATCH, written.outputs());
        return 0;
    }

    /** Metadata key: the data set the model was trained on ({@link DatasetKind#id}). */
    static final String DATASET_KEY = "dataset";
    /** Metadata key: the names of the classes, in the order of the outputs, as a JSON array. */
    static final String CLASS_NAMES_KEY = "class_names";
    /** Metadata key: the config of the run that trained the model, as the weights file records it (JSON). */
    static final String CONFIG_KEY = "gradscope_config";

    /**
     * What a user of the ONNX file needs besides the graph: the names of the classes the outputs stand for, the data
     * set (its inputs are its images' pixels over 255) and the run's config.
     */
    private static Map<String, String> metadata(DatasetKind dataset, SafeTensors.Reader reader) {
        Map<String, String> metadata = new LinkedHashMap<>();
        metadata.put(DATASET_KEY, dataset.id());
        try {
            metadata.put(CLASS_NAMES_KEY, new ObjectMapper().writeValueAsString(dataset.classNames()));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write the class names as JSON", e);
        }
        metadata.put(CONFIG_KEY, reader.metadata().get(SavedWeights.CONFIG_KEY));
        return metadata;
    }

    /**
     * Refuses a target that would lose something or cannot be written ({@link OutputFiles#requireFreeOutput}), or a
     * safetensors file (a run's weights or training state elsewhere, which the ONNX file would replace).
     */
    private void requireOnnxTarget(Path target) {
        OutputFiles.requireFreeOutput(spec.commandLine(), target, List.of(weights));
        if (String.valueOf(target.getFileName()).toLowerCase(Locale.ROOT).endsWith(".safetensors")) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--out " + target + " would replace a"
                    + " safetensors file (a run's weights or training state) with the ONNX model; give a .onnx file");
        }
    }

    /** The input width the weights file records ({@link WeightsFile} writes it); an MNIST image's for files without. */
    private int inputUnits(SafeTensors.Reader reader) {
        String recorded = reader.metadata().get("input_units");
        if (recorded == null) {
            return Mnist.PIXELS;
        }
        try {
            int units = Integer.parseInt(recorded.trim());
            if (units >= 1) {
                return units;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new InvalidDataException(weights + ": metadata 'input_units' is not a width >= 1: '" + recorded + "'");
    }
}
