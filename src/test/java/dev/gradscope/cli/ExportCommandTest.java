package dev.gradscope.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.Tolerances;
import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.data.Dataset;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.nn.Initializer;
import dev.gradscope.nn.Mlp;
import dev.gradscope.nn.OnnxRuntimeModel;
import dev.gradscope.nn.Sequential;
import dev.gradscope.report.HistoryJson;
import dev.gradscope.train.ClassificationReport;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code gradscope export WEIGHTS}: a subset-trained run's weights, exported, give in ONNX Runtime the outputs of the
 * network {@code evaluate} scores; usage errors exit 2, bad files 1, each naming what is wrong.
 */
class ExportCommandTest {
    /** One run with PReLU, batch normalization and dropout: learned slopes, moving statistics, a layer to skip. */
    @TempDir
    static Path run;

    @TempDir
    Path tmp;

    private final StringWriter err = new StringWriter();

    @BeforeAll
    static void train() {
        StringWriter err = new StringWriter();
        int status = SubsetTrainRuns.run(err, SubsetTrainRuns.train("--activation", "prelu", "--batch-norm",
                "--dropout", "0.2", "--epochs", "2", "--out", run.toString()));
        assertEquals(0, status, err::toString);
    }

    private Path weights() {
        return run.resolve(SavedWeights.FILE);
    }

    /** Runs the command line; returns its standard output, after checking its exit status. */
    private String export(int expectedStatus, String... args) {
        PrintStream stdout = System.out;
        ByteArrayOutputStream printed = new ByteArrayOutputStream();
        System.setOut(new PrintStream(printed, true, StandardCharsets.UTF_8));
        int status;
        try {
            status = SubsetTrainRuns.run(err, List.of(args));
        } finally {
            System.setOut(stdout);
        }
        assertEquals(expectedStatus, status, err::toString);
        return printed.toString(StandardCharsets.UTF_8);
    }

    @Test
    void theExportedModelScoresTheTestSetAsEvaluateDoes() throws Exception {
        String printed = export(0, "export", weights().toString());
        Path file = run.resolve(ExportCommand.DEFAULT_FILE); // beside the weights by default
        assertTrue(printed.contains("wrote " + file) && printed.contains("opset 17")
                && printed.contains("input 'input' float [batch, 784]")
                && printed.contains("outputs 'logits' and 'probabilities' float [batch, 10]")
                && printed.contains(String.format("%,d bytes", Files.size(file))), printed);

        Path scored = tmp.resolve("evaluate.json");
        assertEquals(0, SubsetTrainRuns.run(err, List.of("evaluate", weights().toString(), "--device", "cpu",
                "--data-dir", MnistSubset.dir().toString(), "--out", scored.toString())), err::toString);
        double evaluated = ((Number) HistoryJson.read(scored).get("accuracy")).doubleValue();

        Dataset test = MnistSubset.load().test();
        float[][] images = rows(test);
        float[][] logits;
        float[][] probabilities;
        try (CpuBackend cpu = new CpuBackend();
             Sequential model = Mlp.build(cpu, 0, 784, new int[] {16}, 10, Mlp.HiddenUnits.of("prelu"),
                     Initializer.glorotUniform(), 0.2, true)) {
            model.loadWeights(weights());
            logits = model.predictLogits(images, 256);
            probabilities = model.predict(images, 256);
        }
        OnnxRuntimeModel.Outputs onnx;
        try (OnnxRuntimeModel runtime = OnnxRuntimeModel.of(file)) {
            onnx = runtime.run(images);
        }
        int correct = 0;
        for (int r = 0; r < images.length; r++) {
            for (int c = 0; c < 10; c++) {
                assertEquals(probabilities[r][c], onnx.probabilities()[r][c], Tolerances.ONNX_PROBABILITY_ABS,
                        "row " + r + ", class " + c);
            }
            int predicted = ClassificationReport.predictedClass(onnx.logits()[r]);
            assertEquals(ClassificationReport.predictedClass(logits[r]), predicted, "row " + r);
            correct += predicted == test.label(r) ? 1 : 0;
        }
        assertEquals(evaluated, correct / (double) images.length, 1e-12);
    }

    /**
     * The file carries what a user of it needs besides the graph: the data set, the names of the classes in the
     * outputs' order, and the run's config, as ONNX Runtime hands them back.
     */
    @Test
    void theFileNamesItsClassesAndItsRun() throws Exception {
        Path onnx = tmp.resolve("named.onnx");
        export(0, "export", weights().toString(), "--out", onnx.toString());
        try (OnnxRuntimeModel runtime = OnnxRuntimeModel.of(onnx)) {
            Map<String, String> metadata = runtime.session().getMetadata().getCustomMetadata();
            assertEquals("mnist", metadata.get(ExportCommand.DATASET_KEY));
            assertEquals("[\"0\",\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]",
                    metadata.get(ExportCommand.CLASS_NAMES_KEY));
            @SuppressWarnings("unchecked")
            Map<String, Object> config = new com.fasterxml.jackson.databind.ObjectMapper()
                    .readValue(metadata.get(ExportCommand.CONFIG_KEY), Map.class);
            assertEquals("prelu", config.get("activation"));
            assertEquals(true, config.get("batch_norm"));
        }
    }

    @Test
    void outWritesWhereItIsTold() throws Exception {
        Path onnx = tmp.resolve("models/mlp.onnx");
        export(0, "export", weights().toString(), "--out", onnx.toString(), "--device", "auto");
        try (OnnxRuntimeModel runtime = OnnxRuntimeModel.of(onnx)) {
            assertEquals(3, runtime.run(Arrays.copyOf(rows(MnistSubset.load().test()), 3)).logits().length);
        }
    }

    @Test
    void usageErrorsExitWithStatusTwo() {
        export(2, "export");
        export(2, "export", weights().toString(), "--device", "gpu");
        assertTrue(err.toString().contains("unknown device 'gpu'"), err.toString());
        export(2, "export", weights().toString(), "--out");
    }

    /**
     * An --out that would lose something is a usage error and nothing changes: the weights file itself, the run's
     * training state, any safetensors file, a folder (found in review: the weights were replaced by the ONNX file).
     */
    @Test
    void anOutThatWouldReplaceTheRunsFilesOrIsAFolderIsRefused() throws Exception {
        byte[] before = Files.readAllBytes(weights());
        byte[] state = Files.readAllBytes(run.resolve(ResumedRun.FILE));
        for (Path target : List.of(weights(), run.resolve(ResumedRun.FILE), run.resolve("./" + SavedWeights.FILE),
                tmp.resolve("other.SAFETENSORS"))) {
            err.getBuffer().setLength(0);
            export(2, "export", weights().toString(), "--out", target.toString());
            assertTrue(err.toString().contains("which this command reads and would replace")
                    || err.toString().contains("would replace the file of that name of the train run")
                    || err.toString().contains("would replace a safetensors file"), err.toString());
        }
        assertArrayEquals(before, Files.readAllBytes(weights()), "the weights are untouched");
        assertArrayEquals(state, Files.readAllBytes(run.resolve(ResumedRun.FILE)), "the training state too");
        export(2, "export", weights().toString(), "--out", tmp.toString());
        assertTrue(err.toString().contains("is a folder; give the file to write"), err.toString());
    }

    @Test
    void badFilesExitWithStatusOneAndAreNamed() throws Exception {
        Path missing = tmp.resolve("missing.safetensors");
        export(1, "export", missing.toString());
        assertTrue(err.toString().contains(missing.toString()), err.toString());

        Path notWeights = tmp.resolve("notes.safetensors");
        Files.writeString(notWeights, "not a safetensors file");
        export(1, "export", notWeights.toString());
        assertTrue(err.toString().contains(notWeights.toString()), err.toString());

        Path withoutConfig = tmp.resolve("plain.safetensors");
        try (CpuBackend cpu = new CpuBackend();
             Sequential model = Mlp.build(cpu, 0, 784, new int[] {16}, 10, Mlp.HiddenUnits.of("relu"),
                     Initializer.glorotUniform())) {
            model.saveWeights(withoutConfig);
        }
        export(1, "export", withoutConfig.toString());
        assertTrue(err.toString().contains(withoutConfig + ": no 'config'"), err.toString());
        assertTrue(Files.notExists(tmp.resolve(ExportCommand.DEFAULT_FILE)));
    }

    private static float[][] rows(Dataset data) {
        float[] features = data.scaledFeatures();
        int width = data.featureCount();
        float[][] rows = new float[data.rows()][];
        for (int r = 0; r < rows.length; r++) {
            rows[r] = Arrays.copyOfRange(features, r * width, (r + 1) * width);
        }
        return rows;
    }
}
