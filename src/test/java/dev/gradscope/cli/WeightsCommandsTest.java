package dev.gradscope.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.nn.Adam;
import dev.gradscope.nn.Initializer;
import dev.gradscope.nn.Loss;
import dev.gradscope.nn.Mlp;
import dev.gradscope.nn.Sequential;
import dev.gradscope.report.HistoryJson;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code train --out} saves the weights, {@code train --load-weights} starts from them, {@code evaluate}
 * scores them.
 */
class WeightsCommandsTest {
    /** One small run's output, shared by the tests that read it. */
    @TempDir
    static Path shared;

    private static Path trained;

    @TempDir
    Path tmp;

    private final StringWriter err = new StringWriter();

    private static final List<String> SMALL = List.of("--device", "cpu", "--hidden", "32,16", "--train-limit", "512",
            "--quiet");

    private int run(List<String> args, String... more) {
        List<String> all = new ArrayList<>(args);
        all.addAll(List.of(more));
        return GradScope.run(new PrintWriter(err, true), all.toArray(String[]::new));
    }

    private static List<String> train(String... more) {
        List<String> args = new ArrayList<>(List.of("train", "--data-dir", MnistSubset.dir().toString()));
        args.addAll(SMALL);
        args.addAll(List.of(more));
        return args;
    }

    @BeforeAll
    static void trainTwoEpochs() {
        trained = shared.resolve("run");
        StringWriter err = new StringWriter();
        List<String> args = train("--epochs", "2", "--activation", "elu", "--out", trained.toString());
        assertEquals(0, GradScope.run(new PrintWriter(err, true), args.toArray(String[]::new)), err.toString());
    }

    @SuppressWarnings("unchecked")
    private static double last(Map<String, Object> history, String key) {
        List<Number> values = (List<Number>) history.get(key);
        return values.get(values.size() - 1).doubleValue();
    }

    @Test
    void evaluateScoresTheSavedWeightsExactlyAsTheRunsLastValidation() {
        Path result = tmp.resolve("eval.json");
        assertEquals(0, run(List.of("evaluate", trained.resolve("model.safetensors").toString(), "--device", "cpu",
                "--data-dir", MnistSubset.dir().toString(), "--out", result.toString())), err.toString());
        Map<String, Object> history = HistoryJson.read(trained.resolve("history.json"));
        Map<String, Object> evaluation = HistoryJson.read(result);
        assertEquals(last(history, "val_loss"), ((Number) evaluation.get("loss")).doubleValue());
        assertEquals(last(history, "val_accuracy"), ((Number) evaluation.get("accuracy")).doubleValue());
        assertEquals(2, evaluation.get("epoch"));
    }

    /**
     * With a learning rate of 1e-30 no weight can move (every step is far below a float's resolution), so
     * the run's first validation is the saved weights' own: the run started from them, not from --init.
     */
    @Test
    void trainWithLoadWeightsStartsFromTheSavedWeights() {
        Path out = tmp.resolve("continued");
        Path weights = trained.resolve("model.safetensors");
        assertEquals(0, run(train("--epochs", "1", "--activation", "elu", "--learning-rate", "1e-30",
                "--load-weights", weights.toString(), "--out", out.toString())), err.toString());
        Map<String, Object> before = HistoryJson.read(trained.resolve("history.json"));
        Map<String, Object> after = HistoryJson.read(out.resolve("history.json"));
        assertEquals(last(before, "val_accuracy"), last(after, "val_accuracy"));
        assertEquals(last(before, "val_loss"), last(after, "val_loss"));
        assertEquals(weights.toString(), ((Map<?, ?>) after.get("config")).get("initial_weights"));
    }

    @Test
    void weightsOfAnotherModelAreRefusedNamingWhatDiffers() {
        Path weights = trained.resolve("model.safetensors");
        assertEquals(1, run(train("--epochs", "1", "--load-weights", weights.toString())));
        assertTrue(err.toString().contains(weights + ": these weights come from another model: activation elu"
                + " (this run: relu)"), err.toString());
        assertEquals(1, run(List.of("train", "--data-dir", MnistSubset.dir().toString(), "--device", "cpu", "--epochs", "1",
                "--activation", "elu", "--hidden", "32", "--load-weights", weights.toString())));
        assertTrue(err.toString().contains("hidden [32, 16] (this run: [32])"), err.toString());
    }

    /** A file without the run's config (saved from Java) loads by tensor names and shapes alone. */
    @Test
    void weightsSavedFromJavaLoadByNamesAndShapesButCannotBeEvaluated() {
        Path weights = tmp.resolve("java.safetensors");
        try (CpuBackend backend = new CpuBackend();
             Sequential model = Mlp.build(backend, 9, 784, new int[] {32, 16}, 10, Mlp.HiddenUnits.of("relu"),
                     Initializer.glorotUniform()).compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY)) {
            model.saveWeights(weights);
        }
        Path out = tmp.resolve("from-java");
        assertEquals(0, run(train("--epochs", "1", "--learning-rate", "1e-30", "--load-weights", weights.toString(),
                "--out", out.toString())), err.toString());
        try (CpuBackend backend = new CpuBackend();
             Sequential model = Mlp.build(backend, 1, 784, new int[] {32, 16}, 10, Mlp.HiddenUnits.of("relu"),
                     Initializer.glorotUniform()).compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY)) {
            model.loadWeights(weights);
            double accuracy = model.evaluate(dev.gradscope.data.Mnist.load(MnistSubset.dir()).test(), 256).accuracy();
            assertEquals(accuracy, last(HistoryJson.read(out.resolve("history.json")), "val_accuracy"),
                    "the run started from the file's weights (and could not move them)");
        }
        assertEquals(1, run(List.of("evaluate", weights.toString(), "--device", "cpu",
                "--data-dir", MnistSubset.dir().toString())));
        assertTrue(err.toString().contains(weights + ": no 'config' in its metadata"), err.toString());
    }

    @Test
    void brokenOrMissingFilesFailWithStatusOneAndKeepWhatARunSavedBefore() throws IOException {
        Path broken = Files.write(tmp.resolve("broken.safetensors"), new byte[] {1, 2, 3});
        Path out = Files.createDirectories(tmp.resolve("kept"));
        Path keptWeights = Files.copy(trained.resolve("model.safetensors"), out.resolve("model.safetensors"));
        Path keptHistory = Files.copy(trained.resolve("history.json"), out.resolve("history.json"));
        byte[] weightsBefore = Files.readAllBytes(keptWeights);
        byte[] historyBefore = Files.readAllBytes(keptHistory);
        assertEquals(1, run(train("--epochs", "1", "--load-weights", broken.toString(), "--out", out.toString())));
        assertTrue(err.toString().contains(broken + ": not a safetensors file: 3 bytes"), err.toString());
        assertArrayEquals(weightsBefore, Files.readAllBytes(keptWeights));
        assertArrayEquals(historyBefore, Files.readAllBytes(keptHistory));

        Path missing = tmp.resolve("missing.safetensors");
        assertEquals(1, run(List.of("evaluate", missing.toString(), "--data-dir", MnistSubset.dir().toString())));
        assertTrue(err.toString().contains(missing + ": file not found"), err.toString());
    }

    /**
     * evaluate and predict --test-index read the test split only: weights copied to a machine with just the
     * t10k files score as they did beside the whole data set. Without the test files, the message names them and
     * the folder.
     */
    @Test
    @SuppressWarnings("unchecked")
    void evaluateAndPredictNeedOnlyTheTestFiles() throws IOException {
        Path testOnly = Files.createDirectories(tmp.resolve("t10k-only"));
        for (String name : List.of(dev.gradscope.data.Mnist.TEST_IMAGES, dev.gradscope.data.Mnist.TEST_LABELS)) {
            Files.copy(MnistSubset.dir().resolve(name + ".gz"), testOnly.resolve(name + ".gz"));
        }
        String weights = trained.resolve("model.safetensors").toString();
        Path result = tmp.resolve("eval.json");
        assertEquals(0, run(List.of("evaluate", weights, "--device", "cpu", "--data-dir", testOnly.toString(),
                "--out", result.toString())), err.toString());
        Map<String, Object> evaluation = HistoryJson.read(result);
        Map<String, Object> history = HistoryJson.read(trained.resolve("history.json"));
        assertEquals(last(history, "val_loss"), ((Number) evaluation.get("loss")).doubleValue());
        assertEquals(MnistSubset.TEST_ROWS, evaluation.get("examples"));

        Path predictions = tmp.resolve("predict.json");
        assertEquals(0, run(List.of("predict", weights, "--device", "cpu", "--data-dir", testOnly.toString(),
                "--test-index", "0," + (MnistSubset.TEST_ROWS - 1), "--out", predictions.toString())), err.toString());
        List<Map<String, Object>> predicted = (List<Map<String, Object>>) HistoryJson.read(predictions)
                .get("predictions");
        assertEquals(2, predicted.size());
        assertEquals(MnistSubset.load().test().label(MnistSubset.TEST_ROWS - 1), predicted.get(1).get("label"));

        Path trainOnly = Files.createDirectories(tmp.resolve("train-only"));
        for (String name : List.of(dev.gradscope.data.Mnist.TRAIN_IMAGES, dev.gradscope.data.Mnist.TRAIN_LABELS)) {
            Files.copy(MnistSubset.dir().resolve(name + ".gz"), trainOnly.resolve(name + ".gz"));
        }
        for (List<String> command : List.of(List.of("evaluate", weights), List.of("predict", weights, "--test-index",
                "0"))) {
            err.getBuffer().setLength(0);
            assertEquals(1, run(command, "--device", "cpu", "--data-dir", trainOnly.toString()), err.toString());
            assertTrue(err.toString().contains("MNIST file not found: neither "
                    + trainOnly.resolve(dev.gradscope.data.Mnist.TEST_IMAGES) + " nor "), err.toString());
            assertTrue(err.toString().contains("Run scripts/fetch-mnist.sh " + trainOnly), err.toString());
        }
    }

    @Test
    void evaluateUsageErrorsExitWithStatusTwo() {
        Path weights = trained.resolve("model.safetensors");
        assertEquals(2, run(List.of("evaluate", weights.toString(), "--device", "gpu")));
        assertTrue(err.toString().contains("unknown device 'gpu'; valid: auto, cpu, cuda"), err.toString());
        assertEquals(2, run(List.of("evaluate")));
        assertEquals(2, run(List.of("evaluate", weights.toString(), "--batch-size", "0")));
    }

    /** A training state given where weights are wanted names itself and the file to give (found in review). */
    @Test
    void aTrainingStateGivenAsWeightsSaysWhichFileToGive() {
        Path state = trained.resolve(ResumedRun.FILE);
        for (List<String> command : List.of(List.of("evaluate", state.toString(), "--data-dir",
                MnistSubset.dir().toString()), List.of("export", state.toString(), "--out",
                tmp.resolve("m.onnx").toString()), List.of("predict", state.toString(), "--test-index", "0",
                "--data-dir", MnistSubset.dir().toString()))) {
            err.getBuffer().setLength(0);
            assertEquals(1, run(command, "--device", "cpu"), err.toString());
            assertTrue(err.toString().contains("a training state (what train --resume DIR goes on from), not a"
                    + " weights file; give " + trained.toAbsolutePath().resolve(SavedWeights.FILE)), err.toString());
        }
        err.getBuffer().setLength(0);
        assertEquals(1, run(train("--epochs", "1", "--load-weights", state.toString())), err.toString());
        assertTrue(err.toString().contains("a training state"), err.toString());
    }

    @Test
    @SuppressWarnings("unchecked")
    void saveBestKeepsTheEpochWithTheBestMetric() {
        // 64 training images, 8 epochs: the network overfits, and its validation loss turns up after a few.
        Path out = tmp.resolve("best");
        assertEquals(0, run(List.of("train", "--data-dir", MnistSubset.dir().toString(), "--device", "cpu", "--hidden",
                "32,16", "--train-limit", "64", "--batch-size", "16", "--epochs", "8", "--learning-rate", "0.01",
                "--quiet", "--save-best", "val_loss", "--out", out.toString())), err.toString());
        List<Number> valLoss = (List<Number>) HistoryJson.read(out.resolve("history.json")).get("val_loss");
        int best = 0;
        for (int e = 1; e < valLoss.size(); e++) {
            best = valLoss.get(e).doubleValue() < valLoss.get(best).doubleValue() ? e : best;
        }
        Map<String, String> metadata = dev.gradscope.data.SafeTensors.readMetadata(out.resolve("model.safetensors"));
        assertTrue(best + 1 < valLoss.size(), "the best epoch is not the last: " + valLoss);
        assertEquals(Integer.toString(best + 1), metadata.get("epoch"), "val_loss by epoch: " + valLoss);
        assertEquals(valLoss.get(best).doubleValue(), Double.parseDouble(metadata.get("val_loss")));
    }

    @Test
    void saveBestNeedsAKnownMetricAndAnOutputFolder() {
        assertEquals(2, run(train("--save-best", "val_los", "--out", tmp.resolve("x").toString())));
        assertTrue(err.toString().contains("--save-best: unknown metric 'val_los'; valid: val_loss, val_accuracy,"
                + " loss, accuracy"), err.toString());
        assertEquals(2, run(train("--save-best", "val_loss")));
        assertTrue(err.toString().contains("--save-best needs --out DIR"), err.toString());
    }

    /** The run's validation used its batch size; evaluate uses it too, and so repeats its numbers exactly. */
    @Test
    void evaluateUsesTheRunsBatchSize() {
        Path out = tmp.resolve("batch100");
        assertEquals(0, run(train("--epochs", "1", "--batch-size", "100", "--out", out.toString())), err.toString());
        Path result = tmp.resolve("eval100.json");
        assertEquals(0, run(List.of("evaluate", out.resolve("model.safetensors").toString(), "--device", "cpu",
                "--data-dir", MnistSubset.dir().toString(), "--out", result.toString())), err.toString());
        Map<String, Object> evaluation = HistoryJson.read(result);
        assertEquals(100, evaluation.get("batch_size"));
        assertEquals(last(HistoryJson.read(out.resolve("history.json")), "val_loss"),
                ((Number) evaluation.get("loss")).doubleValue());
    }

    /** Options that do not change the function the network computes do not refuse its weights. */
    @Test
    void weightsLoadWhenTheOptionsDifferOnlyInWhatTheFileOverrides() {
        Path leaky = tmp.resolve("leaky");
        assertEquals(0, run(train("--epochs", "1", "--activation", "leaky_relu", "--out", leaky.toString())),
                err.toString());
        String leakyWeights = leaky.resolve("model.safetensors").toString();
        assertEquals(0, run(train("--epochs", "1", "--activation", "leaky_relu", "--activation-parameter", "0.01",
                "--load-weights", leakyWeights)), "0.01 is leaky_relu's default: " + err);
        assertEquals(1, run(train("--epochs", "1", "--activation", "leaky_relu", "--activation-parameter", "0.2",
                "--load-weights", leakyWeights)));
        assertTrue(err.toString().contains("activation_parameter 0.01 (this run: 0.2)"), err.toString());

        Path prelu = tmp.resolve("prelu");
        assertEquals(0, run(train("--epochs", "1", "--activation", "prelu", "--out", prelu.toString())),
                err.toString());
        assertEquals(0, run(train("--epochs", "1", "--activation", "prelu", "--learn-parameter",
                "--activation-parameter", "0.1", "--load-weights", prelu.resolve("model.safetensors").toString())),
                "prelu's alphas are learned and in the file: " + err);
    }

    /**
     * A run with dropout records its rate, and its weights file lists the Dropout layers; evaluate rebuilds that
     * network and scores it as the run's last validation did (no unit dropped in either). The weights fit a network
     * with other dropout (or none), which computes the same function from them: with a learning rate of 1e-30 a run
     * started from them validates as the saved run did, either way round.
     */
    @Test
    void dropoutIsRecordedAndWeightsLoadWhateverTheDropout() {
        Path dropped = tmp.resolve("dropout");
        assertEquals(0, run(train("--epochs", "1", "--activation", "elu", "--dropout", "0.25", "--out",
                dropped.toString())), err.toString());
        Map<String, Object> history = HistoryJson.read(dropped.resolve("history.json"));
        assertEquals(0.25, ((Map<?, ?>) history.get("config")).get("dropout"));
        String weights = dropped.resolve("model.safetensors").toString();
        String layers = dev.gradscope.data.SafeTensors.read(Path.of(weights)).metadata().get("layers");
        assertTrue(layers.contains("{\"name\":\"dropout_1\",\"type\":\"Dropout\",\"config\":\"rate=0.25\"}"), layers);

        Path result = tmp.resolve("eval.json");
        assertEquals(0, run(List.of("evaluate", weights, "--device", "cpu", "--data-dir", MnistSubset.dir().toString(),
                "--out", result.toString())), err.toString());
        Map<String, Object> evaluation = HistoryJson.read(result);
        assertEquals(last(history, "val_loss"), ((Number) evaluation.get("loss")).doubleValue());
        assertEquals(last(history, "val_accuracy"), ((Number) evaluation.get("accuracy")).doubleValue());

        Path without = tmp.resolve("without");
        assertEquals(0, run(train("--epochs", "1", "--activation", "elu", "--learning-rate", "1e-30",
                "--load-weights", weights, "--out", without.toString())), err.toString());
        assertEquals(last(history, "val_loss"), last(HistoryJson.read(without.resolve("history.json")), "val_loss"));
        Path with = tmp.resolve("with");
        assertEquals(0, run(train("--epochs", "1", "--activation", "elu", "--learning-rate", "1e-30", "--dropout",
                "0.5", "--load-weights", trained.resolve("model.safetensors").toString(), "--out", with.toString())),
                err.toString());
        assertEquals(last(HistoryJson.read(trained.resolve("history.json")), "val_loss"),
                last(HistoryJson.read(with.resolve("history.json")), "val_loss"));
    }

    /**
     * A run with batch normalization records it, and its weights file holds the BatchNormalization layers' gamma,
     * beta and moving statistics; evaluate rebuilds that network and scores it as the run's last validation did
     * (both normalise with the moving statistics). Its weights do not fit a network without batch normalization,
     * nor the other way round: the file and the error say which tensors differ.
     */
    @Test
    void batchNormIsRecordedEvaluatedAndRefusedByANetworkWithout() {
        Path normalized = tmp.resolve("batch-norm");
        assertEquals(0, run(train("--epochs", "1", "--activation", "sigmoid", "--batch-norm", "--out",
                normalized.toString())), err.toString());
        Map<String, Object> history = HistoryJson.read(normalized.resolve("history.json"));
        assertEquals(true, ((Map<?, ?>) history.get("config")).get("batch_norm"));
        Path weights = normalized.resolve("model.safetensors");
        dev.gradscope.data.SafeTensors.Contents contents = dev.gradscope.data.SafeTensors.read(weights);
        assertTrue(contents.metadata().get("layers").contains("\"type\":\"BatchNormalization\""));
        assertEquals(List.of("dense.kernel", "dense.bias", "batch_normalization.gamma", "batch_normalization.beta"),
                contents.tensors().keySet().stream().limit(4).toList());
        assertTrue(contents.tensors().containsKey("batch_normalization_1.moving_mean"), contents.tensors().keySet()
                .toString());

        Path result = tmp.resolve("eval.json");
        assertEquals(0, run(List.of("evaluate", weights.toString(), "--device", "cpu", "--data-dir",
                MnistSubset.dir().toString(), "--out", result.toString())), err.toString());
        Map<String, Object> evaluation = HistoryJson.read(result);
        assertEquals(last(history, "val_loss"), ((Number) evaluation.get("loss")).doubleValue());
        assertEquals(last(history, "val_accuracy"), ((Number) evaluation.get("accuracy")).doubleValue());

        assertEquals(1, run(train("--epochs", "1", "--activation", "sigmoid", "--load-weights", weights.toString(),
                "--out", tmp.resolve("without").toString())));
        assertTrue(err.toString().contains("batch_norm true (this run: false)"), err.toString());
        assertEquals(1, run(train("--epochs", "1", "--activation", "elu", "--batch-norm", "--load-weights",
                trained.resolve("model.safetensors").toString(), "--out", tmp.resolve("with").toString())));
        assertTrue(err.toString().contains("batch_norm false (this run: true)"), err.toString());
        assertEquals(2, run(train("--epochs", "1", "--activation", "maxout", "--batch-norm")));
        assertTrue(err.toString().contains("--batch-norm goes between a Dense layer and its activation"),
                err.toString());
    }

    /**
     * {@code --bn-momentum} and {@code --bn-epsilon} reach every BatchNormalization layer, the config and the weights
     * file's layer configs; evaluate builds the layers with the file's values, so it scores the weights exactly as
     * the run's last validation did (with Keras's epsilon the normalisation, and so the loss, would differ). Other
     * weights may start a run whose momentum differs (it acts in training only), but not one whose epsilon does.
     */
    @Test
    void batchNormMomentumAndEpsilonAreRecordedAndEvaluatedWithTheRunsValues() {
        Path normalized = tmp.resolve("batch-norm");
        assertEquals(0, run(train("--epochs", "1", "--activation", "sigmoid", "--batch-norm", "--bn-momentum", "0.9",
                "--bn-epsilon", "0.01", "--out", normalized.toString())), err.toString());
        Map<String, Object> history = HistoryJson.read(normalized.resolve("history.json"));
        Map<?, ?> config = (Map<?, ?>) history.get("config");
        assertEquals(List.of(0.9, 0.01), List.of(config.get("batch_norm_momentum"), config.get("batch_norm_epsilon")));
        Path weights = normalized.resolve("model.safetensors");
        String layers = dev.gradscope.data.SafeTensors.read(weights).metadata().get("layers");
        assertEquals(2, layers.split("\"config\":\"momentum=0.9, epsilon=0.01\"", -1).length - 1, layers);

        Path result = tmp.resolve("eval.json");
        assertEquals(0, run(List.of("evaluate", weights.toString(), "--device", "cpu", "--data-dir",
                MnistSubset.dir().toString(), "--out", result.toString())), err.toString());
        assertEquals(last(history, "val_loss"), ((Number) HistoryJson.read(result).get("loss")).doubleValue());

        assertEquals(0, run(train("--epochs", "1", "--activation", "sigmoid", "--batch-norm", "--bn-epsilon", "0.01",
                "--load-weights", weights.toString(), "--out", tmp.resolve("momentum").toString())), err.toString());
        assertEquals(1, run(train("--epochs", "1", "--activation", "sigmoid", "--batch-norm", "--load-weights",
                weights.toString(), "--out", tmp.resolve("epsilon").toString())));
        assertTrue(err.toString().contains("batch_norm_epsilon 0.01 (this run: 0.001)"), err.toString());
    }

    /** Only with --batch-norm, and within what the kernels take as floats: usage errors naming the option. */
    @Test
    void badBatchNormSettingsAreUsageErrors() {
        assertEquals(2, run(train("--epochs", "1", "--bn-momentum", "0.9")));
        assertTrue(err.toString().contains("--bn-momentum only applies with --batch-norm"), err.toString());
        assertEquals(2, run(train("--epochs", "1", "--bn-momentum", "0.9", "--bn-epsilon", "0.01")));
        assertTrue(err.toString().contains("--bn-momentum, --bn-epsilon only apply with --batch-norm"),
                err.toString());
        for (String momentum : new String[] {"1", "0.99999999", "-0.1", "NaN", "Infinity"}) {
            assertEquals(2, run(train("--epochs", "1", "--batch-norm", "--bn-momentum", momentum)), momentum);
            assertTrue(err.toString().contains("--bn-momentum must be in [0, 1) as a float (0.99999999 is 1), got "
                    + Double.parseDouble(momentum)), err.toString());
        }
        for (String epsilon : new String[] {"0", "-1e-3", "1e-50", "1e39", "NaN", "Infinity"}) {
            assertEquals(2, run(train("--epochs", "1", "--batch-norm", "--bn-epsilon", epsilon)), epsilon);
            assertTrue(err.toString().contains("--bn-epsilon must be a positive number that a float can hold, got "
                    + Double.parseDouble(epsilon)), err.toString());
        }
    }

    @Test
    void aDropoutRateOutsideZeroToOneIsAUsageError() {
        for (String rate : new String[] {"1", "-0.1", "NaN", "1.5"}) {
            assertEquals(2, run(train("--epochs", "1", "--dropout", rate)), rate);
            assertTrue(err.toString().contains("--dropout must be a rate in [0, 1) (0 is none), got "), err.toString());
        }
    }

    /** A run that diverges keeps the weights file of the run before it, byte for byte, and says so. */
    @Test
    void aRunThatDivergesKeepsTheWeightsThatWereThere() throws IOException {
        Path out = Files.createDirectories(tmp.resolve("diverged"));
        Path weights = Files.copy(trained.resolve("model.safetensors"), out.resolve("model.safetensors"));
        byte[] before = Files.readAllBytes(weights);
        java.io.ByteArrayOutputStream printed = new java.io.ByteArrayOutputStream();
        java.io.PrintStream stdout = System.out;
        System.setOut(new java.io.PrintStream(printed, true, java.nio.charset.StandardCharsets.UTF_8));
        try {
            assertEquals(0, run(train("--epochs", "1", "--activation", "elu", "--optimizer", "sgd", "--learning-rate",
                    "1e12", "--keep-going-on-nan", "--load-weights", weights.toString(), "--out", out.toString())),
                    err.toString());
        } finally {
            System.setOut(stdout);
        }
        assertArrayEquals(before, Files.readAllBytes(weights));
        String text = printed.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(text.contains("weights not saved: epoch 1 had a non-finite gradient (epoch 1, step 2, first in"
                + " dense_2); this run wrote no " + weights + "; the one there holds an earlier run's weights"), text);
        // Its outputs are NaN: no per-class numbers that would say nothing, and no files of them.
        assertTrue(text.contains("per class: not reported: 1000 of 1000 test images get non-finite outputs"), text);
        assertTrue(Files.notExists(out.resolve("classes.csv")) && Files.notExists(out.resolve("confusion.csv")));
    }

    /**
     * A config damaged into absurd widths or maxout pieces fails with a message before any network is
     * allocated; a config with an optimizer evaluate does not know still evaluates (it needs none).
     */
    @Test
    void evaluateRefusesAConfigWhoseNetworkTheFileCannotHold() throws IOException {
        Path damaged = damagedConfig("\"hidden\":[32,16]", "\"hidden\":[2000000000]");
        assertEquals(1, run(List.of("evaluate", damaged.toString(), "--device", "cpu", "--data-dir",
                MnistSubset.dir().toString())));
        assertTrue(err.toString().contains(damaged + ": its config describes a 784-2000000000-10 network, whose"
                + " kernels alone have more weights than the file's 25818 values"), err.toString());

        for (String pieces : List.of("1000000000", "2500000")) {
            Path maxout = damagedConfig("\"activation\":\"elu\"", "\"activation\":\"maxout\"",
                    "\"maxout_pieces\":2", "\"maxout_pieces\":" + pieces, "\"hidden\":[32,16]", "\"hidden\":[3]");
            assertEquals(1, run(List.of("evaluate", maxout.toString(), "--device", "cpu", "--data-dir",
                    MnistSubset.dir().toString())), pieces);
            assertTrue(err.toString().contains(pieces.length() > 7
                    ? maxout + ": its config is not a valid model: --maxout-pieces 1000000000 with --hidden [3] gives"
                            + " a layer more than 2147483647 pre-activations per row"
                    : maxout + ": its config describes a 784-3-10 network, whose kernels alone have more weights"),
                    err.toString());
        }

        Path rmsprop = damagedConfig("\"name\":\"adam\"", "\"name\":\"rmsprop\"");
        assertEquals(0, run(List.of("evaluate", rmsprop.toString(), "--device", "cpu", "--data-dir",
                MnistSubset.dir().toString())), err.toString());
    }

    /** The trained run's weights file with its config's text edited: each pair of arguments, old then new. */
    private Path damagedConfig(String... replacements) {
        dev.gradscope.data.SafeTensors.Contents contents =
                dev.gradscope.data.SafeTensors.read(trained.resolve("model.safetensors"));
        Map<String, String> metadata = new java.util.LinkedHashMap<>(contents.metadata());
        String config = metadata.get("config");
        for (int i = 0; i < replacements.length; i += 2) {
            assertTrue(config.contains(replacements[i]), replacements[i] + " in " + config);
            config = config.replace(replacements[i], replacements[i + 1]);
        }
        metadata.put("config", config);
        Path damaged = tmp.resolve("damaged-" + Integer.toHexString(config.hashCode()) + ".safetensors");
        dev.gradscope.data.SafeTensors.write(damaged, metadata, List.copyOf(contents.tensors().values()));
        return damaged;
    }
}
