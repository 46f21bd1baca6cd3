package dev.gradscope.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.data.SafeTensors;
import dev.gradscope.report.HistoryJson;
import dev.gradscope.report.RunReport;
import dev.gradscope.report.RunReportTest;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** {@code train --out} keeps the training state after every epoch; {@code train --resume DIR} goes on from it. */
class ResumeCommandTest {
    @TempDir
    static Path shared;

    /** Three epochs in one go, the run the resumed ones must equal. */
    private static Path straight;

    @TempDir
    Path tmp;

    private final StringWriter err = new StringWriter();

    /** A run of many settings at once; with dropout, a resumed run must draw the masks of the run in one go. */
    private static final List<String> RUN = List.of("--device", "cpu", "--hidden", "32,16", "--train-limit", "300",
            "--batch-size", "64", "--activation", "prelu", "--optimizer", "sgd", "--momentum", "0.9",
            "--clip-norm", "5", "--dropout", "0.2", "--quiet");


    private static int run(StringWriter err, List<String> args) {
        return GradScope.run(new PrintWriter(err, true), args.toArray(String[]::new));
    }

    private int run(String... args) {
        return run(err, List.of(args));
    }

    private static List<String> train(Path out, int epochs) {
        List<String> args = new ArrayList<>(List.of("train", "--data-dir", MnistSubset.dir().toString(), "--epochs",
                Integer.toString(epochs), "--out", out.toString()));
        args.addAll(RUN);
        return args;
    }

    @BeforeAll
    static void trainThreeEpochs() {
        straight = shared.resolve("straight");
        StringWriter err = new StringWriter();
        assertEquals(0, run(err, train(straight, 3)), err.toString());
    }

    private static Map<String, SafeTensors.Entry> tensors(Path file) {
        return SafeTensors.read(file).tensors();
    }

    /** Same names, shapes and values, bit for bit. */
    private static void assertSameTensors(Path expected, Path actual) {
        assertSameTensors(tensors(expected), tensors(actual));
    }

    private static void assertSameTensors(Map<String, SafeTensors.Entry> a, Map<String, SafeTensors.Entry> b) {
        assertEquals(a.keySet(), b.keySet());
        a.forEach((name, entry) -> {
            org.junit.jupiter.api.Assertions.assertArrayEquals(entry.shape(), b.get(name).shape(), name);
            assertTrue(java.util.Arrays.equals(entry.values(), b.get(name).values()), name + " differs");
        });
    }

    private static void assertSameRun(Path expected, Path actual) throws IOException {
        assertSameTensors(expected.resolve("model.safetensors"), actual.resolve("model.safetensors"));
        assertSameTensors(expected.resolve(ResumedRun.FILE), actual.resolve(ResumedRun.FILE));
        Map<String, Object> a = HistoryJson.read(expected.resolve("history.json"));
        Map<String, Object> b = HistoryJson.read(actual.resolve("history.json"));
        for (String metric : List.of("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")) {
            assertEquals(a.get(metric), b.get(metric), metric + " of every epoch");
        }
        for (String table : List.of("gradients.csv", "layers.csv", "diagnosis.txt")) {
            assertEquals(Files.readString(expected.resolve(table)), Files.readString(actual.resolve(table)), table);
        }
    }

    /** Trains the first epoch of the run {@code straightArgs} trains (in one go) into tmp/run; returns that folder. */
    private Path firstEpochOf(List<String> straightArgs) {
        List<String> oneEpoch = new ArrayList<>(straightArgs);
        Path dir = tmp.resolve("run");
        oneEpoch.set(oneEpoch.indexOf("--epochs") + 1, "1");
        oneEpoch.set(oneEpoch.indexOf("--out") + 1, dir.toString());
        assertEquals(0, run(err, oneEpoch), err.toString());
        return dir;
    }

    /** Rewrites the config that {@code dir}'s training state records. */
    @SuppressWarnings("unchecked")
    private static void editConfig(Path dir, Consumer<Map<String, Object>> edit) throws IOException {
        Path state = dir.resolve(ResumedRun.FILE);
        SafeTensors.Contents contents = SafeTensors.read(state);
        Map<String, String> metadata = new LinkedHashMap<>(contents.metadata());
        Map<String, Object> config = new ObjectMapper().readValue(metadata.get("config"), Map.class);
        edit.accept(config);
        metadata.put("config", new ObjectMapper().writeValueAsString(config));
        SafeTensors.write(state, metadata, new ArrayList<>(contents.tensors().values()));
    }

    @Test
    void aRunResumedToMoreEpochsIsTheRunTrainedInOneGo() throws IOException {
        Path dir = tmp.resolve("run");
        assertEquals(0, run(err, train(dir, 1)), err.toString());
        assertEquals(0, run("train", "--resume", dir.toString(), "--epochs", "2", "--quiet"), err.toString());
        assertEquals(0, run("train", "--resume", dir.toString(), "--epochs", "3", "--quiet"), err.toString());
        assertSameRun(straight, dir);
        Map<String, Object> config = HistoryJson.read(dir.resolve("history.json"));
        @SuppressWarnings("unchecked")
        Map<String, Object> c = (Map<String, Object>) config.get("config");
        assertEquals(List.of(1, 2), c.get("resumed_at_epochs"));
        assertEquals(3, c.get("epochs"));
        assertEquals(3, ((List<?>) config.get("epoch_seconds")).size());
    }

    /**
     * An RMSprop run with every buffer (centered, momentum) and a weight decay, resumed, is the run trained in
     * one go; its settings come from the saved config, and --resume refuses to change them.
     */
    @Test
    void anRmsPropRunWithWeightDecayResumesBitForBit() throws IOException {
        List<String> rmsprop = List.of("--optimizer", "rmsprop", "--rho", "0.8", "--momentum", "0.5", "--centered",
                "--weight-decay", "0.01");
        List<String> straightArgs = new ArrayList<>(train(tmp.resolve("straight"), 2));
        straightArgs.removeAll(List.of("--optimizer", "sgd", "--momentum", "0.9"));
        straightArgs.addAll(rmsprop);
        assertEquals(0, run(err, straightArgs), err.toString());
        Path dir = firstEpochOf(straightArgs);
        for (List<String> change : List.of(List.of("--rho", "0.9"), List.of("--weight-decay", "0"),
                List.of("--centered"), List.of("--optimizer", "adam"))) {
            List<String> args = new ArrayList<>(List.of("train", "--resume", dir.toString(), "--epochs", "2"));
            args.addAll(change);
            assertEquals(2, run(err, args), err.toString());
            assertTrue(err.toString().contains("takes no " + change.get(0)), err.toString());
        }
        assertEquals(0, run("train", "--resume", dir.toString(), "--epochs", "2", "--quiet"), err.toString());
        assertSameRun(tmp.resolve("straight"), dir);
        Map<?, ?> optimizer = (Map<?, ?>) ((Map<?, ?>) HistoryJson.read(dir.resolve("history.json")).get("config"))
                .get("optimizer");
        assertEquals(List.of("rmsprop", 0.8, 0.5, true, 0.01), List.of(optimizer.get("name"), optimizer.get("rho"),
                optimizer.get("momentum"), optimizer.get("centered"), optimizer.get("weight_decay")));
    }

    /**
     * Keras's other optimizers, each with a weight decay, resumed, are the runs trained in one go: their buffers,
     * their step count and Nadam's u_product (metadata {@code optimizer_scalars}) are in the training state;
     * --resume refuses their options.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"nadam", "adamax", "adagrad --initial-accumulator 0.2", "adamw --amsgrad"})
    void kerasOptimizersResumeBitForBit(String options) throws IOException {
        List<String> optimizer = new ArrayList<>(List.of(("--optimizer " + options).split(" ")));
        if (!options.startsWith("adamw")) { // adamw: Keras's default decay, 0.004
            optimizer.addAll(List.of("--weight-decay", "0.01"));
        }
        Path straightRun = tmp.resolve("straight");
        List<String> straightArgs = new ArrayList<>(train(straightRun, 2));
        straightArgs.removeAll(List.of("--optimizer", "sgd", "--momentum", "0.9"));
        straightArgs.addAll(optimizer);
        assertEquals(0, run(err, straightArgs), err.toString());
        Path dir = firstEpochOf(straightArgs);
        List<String> change = optimizer.subList(2, optimizer.size());
        if (!change.isEmpty()) {
            List<String> args = new ArrayList<>(List.of("train", "--resume", dir.toString(), "--epochs", "2"));
            args.addAll(change);
            assertEquals(2, run(err, args), err.toString());
            assertTrue(err.toString().contains("takes no " + change.get(0)), err.toString());
        }
        assertEquals(0, run("train", "--resume", dir.toString(), "--epochs", "2", "--quiet"), err.toString());
        assertSameRun(straightRun, dir);
        Map<String, String> straightMeta = SafeTensors.read(straightRun.resolve(ResumedRun.FILE)).metadata();
        Map<String, String> resumedMeta = SafeTensors.read(dir.resolve(ResumedRun.FILE)).metadata();
        for (String key : List.of("iterations", "optimizer", "optimizer_scalars")) {
            assertEquals(straightMeta.get(key), resumedMeta.get(key), key);
        }
        assertEquals(options.equals("nadam"), straightMeta.containsKey("optimizer_scalars"),
                "only Nadam has scalar state: " + straightMeta.get("optimizer_scalars"));
        Map<?, ?> config = (Map<?, ?>) ((Map<?, ?>) HistoryJson.read(dir.resolve("history.json")).get("config"))
                .get("optimizer");
        assertEquals(optimizer.get(1), config.get("name"));
        assertEquals(options.startsWith("adamw") ? 0.004 : 0.01, config.get("weight_decay"));
    }

    /**
     * A Nadam state without its u_product, or one the config says another optimizer made, is refused, naming
     * the file and what is wrong.
     */
    @Test
    void aNadamStateWithoutItsProductOrFromAnotherOptimizerIsRefused() throws IOException {
        List<String> straightArgs = new ArrayList<>(train(tmp.resolve("straight"), 2));
        straightArgs.removeAll(List.of("--optimizer", "sgd", "--momentum", "0.9"));
        straightArgs.addAll(List.of("--optimizer", "nadam"));
        Path dir = firstEpochOf(straightArgs);
        Path state = dir.resolve(ResumedRun.FILE);
        SafeTensors.Contents contents = SafeTensors.read(state);
        editConfig(dir, config -> ((Map<String, Object>) config.get("optimizer")).put("name", "adamax"));
        assertEquals(1, run("train", "--resume", dir.toString(), "--epochs", "2", "--quiet"));
        assertTrue(err.toString().contains("the state was saved by optimizer 'nadam', the model's is 'adamax'"),
                err.toString());
        Map<String, String> metadata = new LinkedHashMap<>(contents.metadata());
        metadata.remove("optimizer_scalars");
        SafeTensors.write(state, metadata, new ArrayList<>(contents.tensors().values()));
        assertEquals(1, run("train", "--resume", dir.toString(), "--epochs", "2", "--quiet"));
        assertTrue(err.toString().contains("metadata 'optimizer_scalars' is missing; nadam needs [u_product]"),
                err.toString());
    }

    /**
     * A run with batch normalization (and AdamW's weight decay), resumed through the CLI, is the run trained in
     * one go: the moving statistics are in the training state and the weights file, bit for bit; --resume refuses
     * --batch-norm, which would change the network. The run's own momentum and epsilon (not Keras's) go on: with
     * the defaults, the moving statistics and the outputs would differ from the straight run's.
     */
    @Test
    void aBatchNormalizedRunResumesBitForBit() throws IOException {
        List<String> straightArgs = new ArrayList<>(train(tmp.resolve("straight"), 2));
        straightArgs.removeAll(List.of("--optimizer", "sgd", "--momentum", "0.9"));
        straightArgs.set(straightArgs.indexOf("prelu"), "sigmoid");
        straightArgs.addAll(List.of("--batch-norm", "--bn-momentum", "0.9", "--bn-epsilon", "0.01",
                "--weight-decay", "0.004"));
        assertEquals(0, run(err, straightArgs), err.toString());
        Path dir = firstEpochOf(straightArgs);
        assertEquals(2, run("train", "--resume", dir.toString(), "--epochs", "2", "--batch-norm"));
        assertTrue(err.toString().contains("takes no --batch-norm;"), err.toString());
        assertEquals(2, run("train", "--resume", dir.toString(), "--epochs", "2", "--bn-momentum", "0.99"));
        assertTrue(err.toString().contains("takes no --bn-momentum;"), err.toString());
        assertEquals(0, run("train", "--resume", dir.toString(), "--epochs", "2", "--quiet"), err.toString());
        assertSameRun(tmp.resolve("straight"), dir);
        assertTrue(tensors(dir.resolve("model.safetensors")).containsKey("batch_normalization_1.moving_variance"));
        Map<?, ?> config = (Map<?, ?>) HistoryJson.read(dir.resolve("history.json")).get("config");
        assertEquals(List.of(true, 0.9, 0.01), List.of(config.get("batch_norm"), config.get("batch_norm_momentum"),
                config.get("batch_norm_epsilon")));
    }

    /**
     * A run from orthogonal kernels (with a gain) resumed through the CLI is the run trained in one go: the weights
     * come from the training state, not from a new draw; --resume refuses --init, and evaluate reports the run's
     * last val_accuracy from its weights file.
     */
    @Test
    void anOrthogonalRunResumesBitForBitAndEvaluates() throws IOException {
        List<String> straightArgs = new ArrayList<>(train(tmp.resolve("straight"), 2));
        straightArgs.addAll(List.of("--init", "orthogonal:1.1"));
        assertEquals(0, run(err, straightArgs), err.toString());
        Path dir = firstEpochOf(straightArgs);
        assertEquals(2, run("train", "--resume", dir.toString(), "--epochs", "2", "--init", "glorot_uniform"));
        assertTrue(err.toString().contains("takes no --init"), err.toString());
        assertEquals(0, run("train", "--resume", dir.toString(), "--epochs", "2", "--quiet"), err.toString());
        assertSameRun(tmp.resolve("straight"), dir);
        Map<String, Object> history = HistoryJson.read(dir.resolve("history.json"));
        assertEquals("orthogonal:1.1", ((Map<?, ?>) history.get("config")).get("init"));
        Path result = tmp.resolve("evaluate.json");
        assertEquals(0, run("evaluate", dir.resolve("model.safetensors").toString(), "--device", "cpu",
                "--data-dir", MnistSubset.dir().toString(), "--out", result.toString()), err.toString());
        assertEquals(((List<?>) history.get("val_accuracy")).get(1), HistoryJson.read(result).get("accuracy"));
        // built with zero kernels to load the weights into, it still reports the run's initializer
        assertEquals("orthogonal:1.1", ((Map<?, ?>) HistoryJson.read(result).get("config")).get("init"));
    }

    /**
     * A run with label smoothing, resumed through the CLI, is the run trained in one go, its loss and val_loss the
     * smoothed ones; --resume refuses --label-smoothing (the run's own is used). evaluate rebuilds the run's loss
     * from the weights file's config: it reports the run's last val_loss, bit for bit; without the key (an older
     * run's config) it reports the one-hot loss of the same weights, which is lower (the smoothed loss is
     * 0.9 CE + 0.1 mean_c(-log p_c), and that mean is at least log 10, far above a trained model's CE).
     */
    @Test
    void aRunWithLabelSmoothingResumesBitForBitAndEvaluatesWithItsLoss() throws IOException {
        List<String> straightArgs = new ArrayList<>(train(tmp.resolve("straight"), 2));
        straightArgs.addAll(List.of("--label-smoothing", "0.1"));
        assertEquals(0, run(err, straightArgs), err.toString());
        Path dir = firstEpochOf(straightArgs);
        assertEquals(2, run("train", "--resume", dir.toString(), "--epochs", "2", "--label-smoothing", "0"));
        assertTrue(err.toString().contains("takes no --label-smoothing;"), err.toString());
        assertEquals(0, run("train", "--resume", dir.toString(), "--epochs", "2", "--quiet"), err.toString());
        assertSameRun(tmp.resolve("straight"), dir);
        Map<String, Object> history = HistoryJson.read(dir.resolve("history.json"));
        assertEquals(0.1, ((Map<?, ?>) history.get("config")).get("label_smoothing"));
        List<?> valLoss = (List<?>) history.get("val_loss");

        Path result = tmp.resolve("evaluate.json");
        assertEquals(0, run("evaluate", dir.resolve("model.safetensors").toString(), "--device", "cpu",
                "--data-dir", MnistSubset.dir().toString(), "--out", result.toString()), err.toString());
        double evaluated = ((Number) HistoryJson.read(result).get("loss")).doubleValue();
        assertEquals(((Number) valLoss.get(1)).doubleValue(), evaluated, "the run's own last val_loss");
        editWeightsConfig(dir.resolve("model.safetensors"), config -> config.remove("label_smoothing"));
        assertEquals(0, run("evaluate", dir.resolve("model.safetensors").toString(), "--device", "cpu",
                "--data-dir", MnistSubset.dir().toString(), "--out", result.toString()), err.toString());
        double oneHot = ((Number) HistoryJson.read(result).get("loss")).doubleValue();
        assertTrue(oneHot < evaluated, "a config without label smoothing (an older run's) evaluates the one-hot"
                + " loss " + oneHot + ", below the smoothed " + evaluated);
    }

    /** Rewrites the config that a weights file records. */
    @SuppressWarnings("unchecked")
    private static void editWeightsConfig(Path file, Consumer<Map<String, Object>> edit) throws IOException {
        SafeTensors.Contents contents = SafeTensors.read(file);
        Map<String, String> metadata = new LinkedHashMap<>(contents.metadata());
        Map<String, Object> config = new ObjectMapper().readValue(metadata.get("config"), Map.class);
        edit.accept(config);
        metadata.put("config", new ObjectMapper().writeValueAsString(config));
        SafeTensors.write(file, metadata, new ArrayList<>(contents.tensors().values()));
    }

    /**
     * A run records the real path of the data folder the user gave (relative here), so that it resumes from any
     * working directory: a second JVM started in another folder goes on with it. A run saved before that, whose
     * config holds the folder as given, still reads it relative to the working directory.
     */
    @Test
    @SuppressWarnings("unchecked")
    void aRunResumesFromAnotherWorkingDirectory() throws IOException, InterruptedException {
        Path cwd = Path.of("").toAbsolutePath();
        Path relative = cwd.relativize(MnistSubset.dir().toAbsolutePath());
        Path parent = relative.getParent(); // target/test-classes/../test-classes/mnist-subset
        String unnormalised = parent.resolve("..").resolve(parent.getFileName()).resolve(relative.getFileName())
                .toString();
        Path dir = tmp.resolve("run");
        List<String> args = train(dir, 1);
        args.set(args.indexOf("--data-dir") + 1, unnormalised);
        assertEquals(0, run(err, args), err.toString());
        String absolute = cwd.resolve(relative).toRealPath().toString();
        assertEquals(absolute, ((Map<String, Object>) HistoryJson.read(dir.resolve("history.json")).get("config"))
                .get("data_dir"));

        Path elsewhere = java.nio.file.Files.createDirectories(tmp.resolve("elsewhere"));
        Process resume = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp",
                System.getProperty("java.class.path"), GradScope.class.getName(), "train", "--resume",
                dir.toAbsolutePath().toString(), "--epochs", "2", "--quiet")
                .directory(elsewhere.toFile()).redirectErrorStream(true).start();
        String output = new String(resume.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        assertEquals(0, resume.waitFor(), output);
        Map<String, Object> history = HistoryJson.read(dir.resolve("history.json"));
        assertEquals(2, ((List<?>) history.get("val_loss")).size(), output);

        editConfig(dir, config -> config.put("data_dir", relative.toString())); // as a run saved it before
        assertEquals(0, run("train", "--resume", dir.toString(), "--epochs", "3", "--quiet"), err.toString());
        assertEquals(absolute, ((Map<String, Object>) HistoryJson.read(dir.resolve("history.json")).get("config"))
                .get("data_dir"), "the resumed run records where it read the images");
    }

    /**
     * A resumed --save-best run whose new epochs do not beat the earlier best keeps that epoch's weights, and its
     * weights file then records the resumed run's run-wide settings (its epochs, where it was resumed, its data and
     * TensorBoard folders, here others than the first run's), as history.json does, and keeps the device settings
     * that trained the kept epoch (--device auto here, where the first run said cpu).
     */
    @Test
    @SuppressWarnings("unchecked")
    void aResumedSaveBestRunRecordsItsOwnRunInTheWeightsItKeeps() throws IOException {
        // 64 training images: the network overfits, and its validation loss turns up after a few epochs.
        Path dir = tmp.resolve("best");
        assertEquals(0, run("train", "--data-dir", MnistSubset.dir().toString(), "--device", "cpu", "--hidden",
                "32,16", "--train-limit", "64", "--batch-size", "16", "--epochs", "8", "--learning-rate", "0.01",
                "--quiet", "--save-best", "val_loss", "--out", dir.toString()), err.toString());
        Path weights = dir.resolve("model.safetensors");
        String bestEpoch = SafeTensors.readMetadata(weights).get("epoch");
        Map<String, SafeTensors.Entry> bestTensors = tensors(weights);
        Map<String, Object> trainedBy = new ObjectMapper().readValue(SafeTensors.readMetadata(weights).get("config"),
                Map.class);
        Path copy = Files.createDirectories(tmp.resolve("copy"));
        try (var files = Files.list(MnistSubset.dir())) {
            for (Path f : files.toList()) {
                Files.copy(f, copy.resolve(f.getFileName()));
            }
        }
        Path board = tmp.resolve("board");

        assertEquals(0, run("train", "--resume", dir.toString(), "--epochs", "10", "--quiet", "--device", "auto",
                "--data-dir", copy.toString(), "--tensorboard", board.toString()), err.toString());
        Map<String, Object> history = HistoryJson.read(dir.resolve("history.json"));
        List<Number> valLoss = (List<Number>) history.get("val_loss");
        double best = valLoss.get(Integer.parseInt(bestEpoch) - 1).doubleValue();
        assertTrue(valLoss.subList(8, 10).stream().allMatch(v -> v.doubleValue() >= best),
                "the resumed epochs do not beat epoch " + bestEpoch + ": " + valLoss);
        Map<String, String> metadata = SafeTensors.readMetadata(weights);
        assertEquals(bestEpoch, metadata.get("epoch"), "the file keeps the best epoch");
        assertSameTensors(bestTensors, tensors(weights));
        Map<String, Object> config = new ObjectMapper().readValue(metadata.get("config"), Map.class);
        assertEquals(10, config.get("epochs"));
        assertEquals(List.of(8), config.get("resumed_at_epochs"));
        assertEquals(copy.toRealPath().toString(), config.get("data_dir"));
        assertEquals(Map.of("log_dir", board.toRealPath().toString(), "histogram_freq", 0), config.get("tensorboard"));
        assertEquals("cpu", config.get("device"), "the kept epoch trained with --device cpu");
        Map<String, Object> expected = new LinkedHashMap<>((Map<String, Object>) history.get("config"));
        assertEquals("auto", expected.get("device"), "the resumed run's");
        for (String key : List.of("device", "backend", "backend_description", "tf32", "graph", "steps_per_graph")) {
            expected.put(key, trainedBy.get(key));
        }
        assertEquals(expected, config, "the resumed run's config, with the kept epoch's device settings");
    }

    @Test
    void anInterruptedRunGoesOnToItsOwnEpochs() throws IOException {
        Path dir = tmp.resolve("run");
        assertEquals(0, run(err, train(dir, 1)), err.toString());
        editConfig(dir, config -> config.put("epochs", 3)); // as if started for 3 epochs and killed after 1

        assertEquals(0, run("train", "--resume", dir.toString(), "--quiet"), err.toString());
        assertSameRun(straight, dir);
    }

    @Test
    void resumeTakesOnlyOptionsThatDoNotChangeTheRun() {
        Path dir = tmp.resolve("run");
        assertEquals(0, run(err, train(dir, 1)), err.toString());
        assertEquals(2, run("train", "--resume", dir.toString(), "--epochs", "2", "--learning-rate", "0.1",
                "--seed", "7"));
        assertTrue(err.toString().contains("takes no --learning-rate, --seed; it may be given --epochs, --device"),
                err.toString());
        assertEquals(2, run("train", "--resume", dir.toString(), "--epochs", "2", "--dropout", "0.5"));
        assertTrue(err.toString().contains("takes no --dropout;"), err.toString());
        assertEquals(2, run("train", "--resume", dir.toString()));
        assertTrue(err.toString().contains("has finished all its 1 epochs; pass --epochs N (more than 1)"),
                err.toString());
        assertEquals(2, run("train", "--resume", dir.toString(), "--epochs", "1"));
        assertTrue(err.toString().contains("--epochs 1: the run in " + dir + " has finished 1 epochs"),
                err.toString());
        Map<String, Object> history = HistoryJson.read(dir.resolve("history.json"));
        assertEquals(1, ((List<?>) history.get("loss")).size(), "a refused resume changes nothing");
    }

    @Test
    void aDirectoryWithoutAStateSaysSoAndExits1() throws IOException {
        assertEquals(1, run("train", "--resume", tmp.toString(), "--epochs", "2"));
        assertTrue(err.toString().contains(tmp.resolve(ResumedRun.FILE) + ": file not found; train --out " + tmp
                + " writes it"), err.toString());
        Path dir = tmp.resolve("weights-only");
        Files.createDirectories(dir);
        Files.copy(straight.resolve("model.safetensors"), dir.resolve(ResumedRun.FILE));
        assertEquals(1, run("train", "--resume", dir.toString(), "--epochs", "4"));
        assertTrue(err.toString().contains("not a training state (format is 'gradscope.weights.v1')"),
                err.toString());
        Files.write(dir.resolve(ResumedRun.FILE), new byte[] {1, 2, 3});
        assertEquals(1, run("train", "--resume", dir.toString(), "--epochs", "4"));
        assertTrue(err.toString().contains("not a safetensors file"), err.toString());
    }

    @Test
    void aStateWhoseImagesAreNotThereSaysHowManyItTrainedOn() throws IOException {
        Path dir = tmp.resolve("run");
        assertEquals(0, run(err, train(dir, 1)), err.toString());
        editConfig(dir, config -> config.put("train_examples", 99_999));
        assertEquals(1, run("train", "--resume", dir.toString(), "--epochs", "2"));
        assertTrue(err.toString().contains("the run trained on 99999 images, " + MnistSubset.dir() + " has "),
                err.toString());
    }

    @Test
    void aSavedConfigThatNoRunCouldHaveIsTheFilesFaultAndExits1() throws IOException {
        Path dir = tmp.resolve("run");
        assertEquals(0, run(err, train(dir, 1)), err.toString());
        byte[] saved = Files.readAllBytes(dir.resolve(ResumedRun.FILE));
        Map<String, Object> badValues = new LinkedHashMap<>();
        badValues.put("batch_size", 0);
        badValues.put("activation", "foo");
        badValues.put("clip_norm", -1);
        badValues.put("save_best", "bogus");
        badValues.put("steps_per_graph", 0);
        badValues.put("device", "quantum");
        badValues.put("optimizer", Map.of("name", "rmsprop", "learning_rate", 1e-3, "rho", 1.5));
        for (Map.Entry<String, Object> bad : badValues.entrySet()) {
            Files.write(dir.resolve(ResumedRun.FILE), saved);
            editConfig(dir, config -> config.put(bad.getKey(), bad.getValue()));
            StringWriter out = new StringWriter();
            assertEquals(1, run(out, List.of("train", "--resume", dir.toString(), "--epochs", "2")),
                    bad + ": " + out);
            assertTrue(out.toString().contains(dir.resolve(ResumedRun.FILE) + ": its config does not describe a train"
                    + " run: "), bad + ": " + out);
        }
        Files.write(dir.resolve(ResumedRun.FILE), saved);
        assertEquals(2, run("train", "--resume", dir.toString(), "--epochs", "2", "--device", "quantum"));
        assertTrue(err.toString().contains("unknown device 'quantum'"), err.toString());
    }

    @Test
    void tf32MayBeSwitchedEitherWayOnResume() {
        Path dir = tmp.resolve("run");
        assertEquals(0, run(err, train(dir, 1)), err.toString());
        assertEquals(0, run("train", "--resume", dir.toString(), "--epochs", "2", "--no-tf32", "--quiet"),
                err.toString());
        assertEquals(0, run("train", "--resume", dir.toString(), "--epochs", "3", "--tf32", "--quiet"),
                err.toString());
        Map<?, ?> config = (Map<?, ?>) HistoryJson.read(dir.resolve("history.json")).get("config");
        assertEquals(false, config.get("tf32"), "the CPU has no TF32 (the run says so and goes on in FP32)");
        assertEquals(List.of(1, 2), config.get("resumed_at_epochs"));
    }

    @Test
    void earlyStoppingStopsTheRunAndAResumeOfItHasNothingToTrain() throws IOException {
        Path dir = tmp.resolve("run");
        List<String> args = new ArrayList<>(train(dir, 5));
        args.addAll(List.of("--early-stopping", "loss:1", "--min-delta", "10"));
        java.io.ByteArrayOutputStream printed = new java.io.ByteArrayOutputStream();
        java.io.PrintStream stdout = System.out;
        System.setOut(new java.io.PrintStream(printed, true, java.nio.charset.StandardCharsets.UTF_8));
        try {
            assertEquals(0, run(err, args), err.toString());
            assertEquals(2, ((List<?>) HistoryJson.read(dir.resolve("history.json")).get("loss")).size());
            byte[] state = Files.readAllBytes(dir.resolve(ResumedRun.FILE));
            assertEquals(0, run("train", "--resume", dir.toString(), "--quiet"), err.toString());
            assertTrue(java.util.Arrays.equals(state, Files.readAllBytes(dir.resolve(ResumedRun.FILE))),
                    "nothing rewritten");
        } finally {
            System.setOut(stdout);
        }
        String out = printed.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(out.contains("stopped early after epoch 2 of 5: loss did not improve on epoch 1's"), out);
        assertTrue(out.contains("by more than 10.0 for 1 epoch"), out);
        assertTrue(out.contains("nothing to train: the run in " + dir + " stopped early after epoch 2"), out);
        Map<?, ?> config = (Map<?, ?>) HistoryJson.read(dir.resolve("history.json")).get("config");
        assertEquals(Map.of("monitor", "loss", "patience", 1, "min_delta", 10.0, "restore_best_weights", false),
                config.get("early_stopping"));
    }

    @Test
    void earlyStoppingOptionsAreChecked() {
        Path dir = tmp.resolve("run");
        for (List<String> bad : List.of(List.of("--early-stopping", "foo:3"), List.of("--early-stopping", "-1"),
                List.of("--early-stopping", "val_loss:x"), List.of("--min-delta", "-1"), List.of("--min-delta", "0.1"))) {
            List<String> args = new ArrayList<>(train(dir, 1));
            args.addAll(bad);
            StringWriter out = new StringWriter();
            assertEquals(2, run(out, args), bad + ": " + out);
            assertTrue(out.toString().contains(bad.get(0)), bad + ": " + out);
        }
    }

    @Test
    void aRunStoppedByANonFiniteGradientWasNotStoppedEarly() {
        Path dir = tmp.resolve("run");
        java.io.ByteArrayOutputStream printed = new java.io.ByteArrayOutputStream();
        java.io.PrintStream stdout = System.out;
        System.setOut(new java.io.PrintStream(printed, true, java.nio.charset.StandardCharsets.UTF_8));
        try {
            assertEquals(0, run("train", "--device", "cpu", "--data-dir", MnistSubset.dir().toString(), "--hidden",
                    "32,16", "--train-limit", "512", "--epochs", "3", "--init", "random_normal:1000", "--optimizer",
                    "sgd", "--learning-rate", "100", "--early-stopping", "loss:0", "--out", dir.toString(), "--quiet"),
                    err.toString());
        } finally {
            System.setOut(stdout);
        }
        String out = printed.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(out.contains("training stopped: non-finite gradient at epoch 2, step 1"), out);
        assertTrue(!out.contains("stopped early") && !out.contains("early stopping:"), out);
        Map<String, Object> history = HistoryJson.read(dir.resolve("history.json"));
        assertEquals(List.of("NaN", "NaN"), List.of(((List<?>) history.get("loss")).get(1),
                ((List<?>) history.get("accuracy")).get(1)), "an epoch stopped before its first update saw nothing");
    }

    @Test
    void aPlateauHalvesTheRateAndAResumedRunGoesOnAtTheHalvedRate() throws IOException {
        // val_loss: the training loss of RUN, which has dropout, moves with each epoch's masks even when the weights
        // do not.
        List<String> plateau = List.of("--learning-rate", "1e-9", "--reduce-lr-on-plateau", "val_loss:0",
                "--lr-factor", "0.5");
        Path once = tmp.resolve("once");
        List<String> args = new ArrayList<>(train(once, 4));
        args.addAll(plateau);
        assertEquals(0, run(err, args), err.toString());
        assertEquals(List.of(1e-9, 1e-9, 5e-10, 2.5e-10),
                HistoryJson.read(once.resolve("history.json")).get("learning_rate"),
                "at 1e-9 val_loss moves by less than 1e-4 an epoch: a plateau after every epoch but the first");
        Path resumed = tmp.resolve("resumed");
        args = new ArrayList<>(train(resumed, 2));
        args.addAll(plateau);
        assertEquals(0, run(err, args), err.toString());
        assertEquals(0, run("train", "--resume", resumed.toString(), "--epochs", "4", "--quiet"), err.toString());
        assertSameRun(once, resumed);
        assertEquals(HistoryJson.read(once.resolve("history.json")).get("learning_rate"),
                HistoryJson.read(resumed.resolve("history.json")).get("learning_rate"));
        // The rate changed, so the run's report and a comparison show it per epoch.
        RunReportTest.assertPage(once.resolve("report.html"), RunReport.CHART_NAMES.size() + 1);
        assertTrue(Files.exists(once.resolve("charts").resolve(RunReport.LEARNING_RATE_CHART + ".png")));
        Path compared = tmp.resolve("compared");
        assertEquals(0, run("compare", once.toString(), resumed.toString(), "--out", compared.toString()),
                err.toString());
        assertTrue(Files.exists(compared.resolve("figures").resolve("learning-rate.png")));
        for (List<String> bad : List.of(List.of("--lr-factor", "0.5"), List.of("--min-lr", "0.1"),
                List.of("--reduce-lr-on-plateau", "3", "--lr-factor", "1.5"),
                List.of("--reduce-lr-on-plateau", "foo:3"))) {
            List<String> refused = new ArrayList<>(train(tmp.resolve("refused"), 1));
            refused.addAll(bad);
            StringWriter out = new StringWriter();
            assertEquals(2, run(out, refused), bad + ": " + out);
        }
    }
}
