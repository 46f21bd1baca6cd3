package dev.gradscope.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.data.SafeTensors;
import dev.gradscope.report.HistoryJson;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code train --early-stopping ... --restore-best-weights}: the run ends with the best epoch's weights, in
 * model.safetensors and in what it reports, and a run resumed after the best epoch ends with the same weights as
 * the run never interrupted.
 */
class RestoreBestWeightsCommandTest {
    @TempDir
    static Path shared;

    /** The run in one go: it overfits 200 images, so val_loss turns up after a few epochs and the run stops. */
    private static Path straight;
    private static String straightOutput;
    private static int bestEpoch;

    @TempDir
    Path tmp;

    private final StringWriter err = new StringWriter();

    static List<String> train(Path out, int epochs, String... more) {
        List<String> args = new ArrayList<>(List.of("train", "--data-dir", MnistSubset.dir().toString(), "--device",
                "cpu", "--hidden", "64", "--train-limit", "200", "--batch-size", "100", "--learning-rate", "0.01",
                "--early-stopping", "2", "--restore-best-weights", "--epochs", Integer.toString(epochs), "--out",
                out.toString(), "--quiet"));
        args.addAll(List.of(more));
        return args;
    }

    /** Runs the command line; returns what it printed, after checking that it exited with 0. */
    static String runPrinting(List<String> args) {
        StringWriter err = new StringWriter();
        ByteArrayOutputStream printed = new ByteArrayOutputStream();
        PrintStream stdout = System.out;
        System.setOut(new PrintStream(printed, true, StandardCharsets.UTF_8));
        try {
            assertEquals(0, GradScope.run(new PrintWriter(err, true), args.toArray(String[]::new)), err.toString());
        } finally {
            System.setOut(stdout);
        }
        return printed.toString(StandardCharsets.UTF_8);
    }

    private int run(List<String> args) {
        return GradScope.run(new PrintWriter(err, true), args.toArray(String[]::new));
    }

    @SuppressWarnings("unchecked")
    private static List<Double> metric(Path dir, String name) {
        return ((List<Number>) HistoryJson.read(dir.resolve("history.json")).get(name)).stream()
                .map(Number::doubleValue).toList();
    }

    /** The first epoch (from 0) with the lowest value: EarlyStopping's best with min_delta 0. */
    private static int lowest(List<Double> values) {
        int best = 0;
        for (int e = 1; e < values.size(); e++) {
            best = values.get(e) < values.get(best) ? e : best;
        }
        return best;
    }

    @BeforeAll
    static void trainUntilItStops() {
        straight = shared.resolve("straight");
        straightOutput = runPrinting(train(straight, 12));
        List<Double> valLoss = metric(straight, "val_loss");
        bestEpoch = lowest(valLoss);
        assertEquals(bestEpoch + 3, valLoss.size(), "stopped two epochs after the best: " + valLoss);
        assertTrue(valLoss.size() < 12, "stopped early: " + valLoss);
    }

    @Test
    void theRunEndsWithTheBestEpochsWeightsInTheFileAndInWhatItReports() throws IOException {
        List<Double> valLoss = metric(straight, "val_loss");
        List<Double> valAccuracy = metric(straight, "val_accuracy");
        Path weights = straight.resolve(SavedWeights.FILE);
        Map<String, String> metadata = SafeTensors.readMetadata(weights);
        assertEquals(Integer.toString(bestEpoch + 1), metadata.get("epoch"), "val_loss by epoch: " + valLoss);
        assertEquals(valLoss.get(bestEpoch), Double.parseDouble(metadata.get("val_loss")));

        // evaluate scores the file exactly as the best epoch's validation (the test set, without a split).
        Path result = tmp.resolve("eval.json");
        assertEquals(0, run(List.of("evaluate", weights.toString(), "--device", "cpu", "--data-dir",
                MnistSubset.dir().toString(), "--out", result.toString())), err.toString());
        Map<String, Object> evaluation = HistoryJson.read(result);
        assertEquals(valLoss.get(bestEpoch), ((Number) evaluation.get("loss")).doubleValue());
        assertEquals(valAccuracy.get(bestEpoch), ((Number) evaluation.get("accuracy")).doubleValue());
        assertEquals(bestEpoch + 1, evaluation.get("epoch"));

        // The per-class figures are the restored model's: its confusion matrix's diagonal is its accuracy.
        List<String> rows = Files.readAllLines(straight.resolve("confusion.csv"));
        long correct = 0;
        long all = 0;
        for (int r = 1; r < rows.size(); r++) {
            String[] cells = rows.get(r).split(",");
            for (int c = 1; c < cells.length; c++) {
                long count = Long.parseLong(cells[c]);
                all += count;
                correct += c - 1 == r - 1 ? count : 0;
            }
        }
        assertEquals(valAccuracy.get(bestEpoch), (double) correct / all, 1e-12);

        assertTrue(straightOutput.contains(String.format(Locale.ROOT, "restored the weights of epoch %d, the best"
                + " val_loss (%.4f): %s, the per-class figures and the final line are that model's", bestEpoch + 1,
                valLoss.get(bestEpoch), weights)), straightOutput);
        assertTrue(straightOutput.contains(String.format(Locale.ROOT, "final: loss %.4f, accuracy %.4f, val_loss %.4f,"
                + " val_accuracy %.4f", metric(straight, "loss").get(bestEpoch),
                metric(straight, "accuracy").get(bestEpoch), valLoss.get(bestEpoch), valAccuracy.get(bestEpoch))),
                straightOutput);
        Map<?, ?> config = (Map<?, ?>) HistoryJson.read(straight.resolve("history.json")).get("config");
        assertEquals(Map.of("monitor", "val_loss", "patience", 2, "min_delta", 0.0, "restore_best_weights", true),
                config.get("early_stopping"));

        // The training state goes on from the last epoch, and keeps the best copy beside it.
        Map<String, SafeTensors.Entry> state = SafeTensors.read(straight.resolve(ResumedRun.FILE)).tensors();
        Map<String, SafeTensors.Entry> kept = SafeTensors.read(weights).tensors();
        assertEquals("{\"monitor\":\"val_loss\",\"epoch\":" + bestEpoch + "}",
                SafeTensors.readMetadata(straight.resolve(ResumedRun.FILE)).get("best_weights"));
        kept.forEach((name, entry) -> {
            assertTrue(Arrays.equals(entry.values(), state.get("best_weights/" + name).values()), name);
            assertTrue(!Arrays.equals(entry.values(), state.get(name).values()), name + ": the state's is the last"
                    + " epoch's");
        });
    }

    /**
     * Interrupted one epoch after the best and resumed: the resumed run restores the best epoch from the training
     * state, and ends with the uninterrupted run's files, bit for bit.
     */
    @Test
    void aRunResumedAfterTheBestEpochEndsWithTheUninterruptedRunsWeights() {
        Path dir = tmp.resolve("interrupted");
        runPrinting(train(dir, bestEpoch + 2));
        assertEquals(bestEpoch + 2, metric(dir, "val_loss").size(), "not stopped yet");
        String output = runPrinting(List.of("train", "--resume", dir.toString(), "--epochs", "12", "--quiet"));
        assertTrue(output.contains("restored the weights of epoch " + (bestEpoch + 1) + ","), output);
        assertEquals(metric(straight, "val_loss"), metric(dir, "val_loss"));
        for (String file : List.of(SavedWeights.FILE, ResumedRun.FILE)) {
            Map<String, SafeTensors.Entry> expected = SafeTensors.read(straight.resolve(file)).tensors();
            Map<String, SafeTensors.Entry> actual = SafeTensors.read(dir.resolve(file)).tensors();
            assertEquals(expected.keySet(), actual.keySet(), file);
            expected.forEach((name, entry) -> assertTrue(Arrays.equals(entry.values(), actual.get(name).values()),
                    file + ": " + name + ", bit for bit"));
        }
    }

    /** With a held-out validation split, the one test evaluation is of the restored model, and says so. */
    @Test
    void theTestEvaluationAfterAValidationSplitIsOfTheRestoredModel() {
        Path dir = tmp.resolve("split");
        List<String> args = new ArrayList<>(train(dir, 12, "--validation-split", "0.2"));
        args.set(args.indexOf("--train-limit") + 1, "250"); // 200 to train on, as the other runs
        String output = runPrinting(args);
        int best = lowest(metric(dir, "val_loss"));
        assertTrue(best + 1 < metric(dir, "val_loss").size(), "the best epoch is not the last: "
                + metric(dir, "val_loss"));
        Map<?, ?> test = (Map<?, ?>) HistoryJson.read(dir.resolve("history.json")).get("test");
        assertEquals(best + 1, test.get("epoch"));
        Path result = tmp.resolve("eval.json");
        assertEquals(0, run(List.of("evaluate", dir.resolve(SavedWeights.FILE).toString(), "--device", "cpu",
                "--data-dir", MnistSubset.dir().toString(), "--out", result.toString())), err.toString());
        Map<String, Object> evaluation = HistoryJson.read(result);
        assertEquals(((Number) test.get("loss")).doubleValue(), ((Number) evaluation.get("loss")).doubleValue());
        assertEquals(((Number) test.get("accuracy")).doubleValue(),
                ((Number) evaluation.get("accuracy")).doubleValue());
        assertTrue(output.contains("the per-class figures, the test evaluation and the final line are that"
                + " model's"), output);
    }

    @Test
    void restoreBestWeightsNeedsEarlyStoppingAndComesFromTheRunOnResume() {
        List<String> args = new ArrayList<>(train(tmp.resolve("x"), 1));
        args.removeAll(List.of("--early-stopping", "2"));
        assertEquals(2, run(args), err.toString());
        assertTrue(err.toString().contains("--restore-best-weights puts back the weights of the epoch --early-stopping"
                + " found best; give --early-stopping too"), err.toString());
        assertTrue(!Files.exists(tmp.resolve("x")), "refused before anything is written");
        err.getBuffer().setLength(0);
        assertEquals(2, run(List.of("train", "--resume", straight.toString(), "--restore-best-weights")));
        assertTrue(err.toString().contains("so it takes no --restore-best-weights"), err.toString());
    }

    /**
     * A run saved before --restore-best-weights existed has no restore_best_weights in its config: it resumes, and
     * does not restore.
     */
    @Test
    @SuppressWarnings("unchecked")
    void aRunSavedBeforeTheOptionResumesWithoutRestoring() throws IOException {
        Path dir = tmp.resolve("old");
        List<String> args = new ArrayList<>(train(dir, 1));
        args.remove("--restore-best-weights");
        runPrinting(args);
        Path file = dir.resolve(ResumedRun.FILE);
        SafeTensors.Contents contents = SafeTensors.read(file);
        ObjectMapper json = new ObjectMapper();
        Map<String, Object> config = json.readValue(contents.metadata().get("config"), LinkedHashMap.class);
        Map<String, Object> stopping = (Map<String, Object>) config.get("early_stopping");
        assertEquals(false, stopping.remove("restore_best_weights"));
        Map<String, String> metadata = new LinkedHashMap<>(contents.metadata());
        metadata.put("config", json.writeValueAsString(config));
        SafeTensors.write(file, metadata, new ArrayList<>(contents.tensors().values()));
        String output = runPrinting(List.of("train", "--resume", dir.toString(), "--epochs", "2", "--quiet"));
        assertTrue(!output.contains("restored the weights"), output);
        Map<?, ?> resumed = (Map<?, ?>) HistoryJson.read(dir.resolve("history.json")).get("config");
        assertEquals(false, ((Map<?, ?>) resumed.get("early_stopping")).get("restore_best_weights"));
        assertNotEquals(null, resumed.get("resumed_at_epochs"));
    }

    /**
     * A stopped run killed after its last epoch's training state but before its end-of-run writes (model.safetensors
     * then holds the last epoch, as the checkpoint left it, and there are no per-class files yet): train --resume
     * trains nothing, restores the state's best copy and does those writes. Resuming a run that had finished changes
     * none of its files.
     */
    @Test
    void aResumeOfAStoppedRunDoesItsEndOfRunWritesAgain() throws IOException {
        Path dir = tmp.resolve("run");
        runPrinting(train(dir, 12));
        List<String> files = List.of(SavedWeights.FILE, ResumedRun.FILE, "history.json", "classes.csv",
                "confusion.csv", "report.html");
        Map<String, byte[]> finished = new LinkedHashMap<>();
        for (String file : files) {
            finished.put(file, contentOf(dir.resolve(file)));
        }
        List<String> resume = List.of("train", "--resume", dir.toString(), "--epochs", "12", "--quiet");
        String again = runPrinting(resume);
        assertTrue(again.contains("nothing to train: the run in " + dir + " stopped early after epoch "
                + (bestEpoch + 3)), again);
        for (String file : files) {
            assertArrayEquals(finished.get(file), contentOf(dir.resolve(file)), file + " is rewritten as it was");
        }

        // As the files were before the end-of-run writes: model.safetensors holds the last epoch (the state's).
        Path weights = dir.resolve(SavedWeights.FILE);
        SafeTensors.Contents state = SafeTensors.read(dir.resolve(ResumedRun.FILE));
        SafeTensors.Contents kept = SafeTensors.read(weights);
        Map<String, String> metadata = new LinkedHashMap<>(kept.metadata());
        metadata.put("epoch", Integer.toString(bestEpoch + 3));
        List<SafeTensors.Entry> lastEpoch = new ArrayList<>();
        kept.tensors().keySet().forEach(name -> lastEpoch.add(state.tensors().get(name)));
        SafeTensors.write(weights, metadata, lastEpoch);
        Files.delete(dir.resolve("classes.csv"));
        Files.delete(dir.resolve("confusion.csv"));

        String finishing = runPrinting(resume);
        assertTrue(finishing.contains("restored the weights of epoch " + (bestEpoch + 1) + ", the best val_loss"),
                finishing);
        SafeTensors.read(weights).tensors().forEach((name, entry) -> assertTrue(Arrays.equals(entry.values(),
                state.tensors().get("best_weights/" + name).values()), name + ": model.safetensors holds epoch "
                + SafeTensors.readMetadata(weights).get("epoch") + ", not the restored best epoch"));
        for (String file : files) {
            assertArrayEquals(finished.get(file), contentOf(dir.resolve(file)), file + " is as the run left it");
        }
    }

    /**
     * The bytes of {@code file}; for report.html, with the ids JFreeSVG numbers across the charts one JVM draws
     * ({@code gs12_clip-0}) made the same, as two runs of the command (two JVMs) draw them.
     */
    private static byte[] contentOf(Path file) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        if (!file.getFileName().toString().endsWith(".html")) {
            return bytes;
        }
        return new String(bytes, StandardCharsets.UTF_8).replaceAll("gs\\d+_clip", "gs_clip")
                .getBytes(StandardCharsets.UTF_8);
    }

    /**
     * report.html says which epoch's model the per-class figures and the result row describe: the restored one's,
     * with the epochs trained beside it.
     */
    @Test
    void theReportSaysWhichEpochTheRestoredModelIs() throws IOException {
        String page = Files.readString(straight.resolve("report.html"));
        int epochs = metric(straight, "val_loss").size();
        assertTrue(!page.contains("The model as training left it (after epoch " + epochs + ","), page);
        assertTrue(page.contains("The model training ended with, the weights of epoch " + (bestEpoch + 1) + ", the"
                + " best, which early stopping put back after epoch " + epochs + " (--restore-best-weights;"), page);
        String table = page.substring(page.indexOf("<table", page.indexOf(">Result<")));
        table = table.substring(0, table.indexOf("</table>"));
        List<String> cells = Stream.of(table.split("<t[hd](?: [^>]*)?>")).skip(1)
                .map(cell -> cell.substring(0, cell.indexOf('<'))).toList();
        int columns = cells.indexOf("non-finite gradient") + 1;
        assertEquals(List.of("epochs", "model epoch", "loss", "accuracy", "val_loss", "val_accuracy"),
                cells.subList(0, 6), table);
        assertEquals(List.of(Integer.toString(epochs), Integer.toString(bestEpoch + 1)),
                cells.subList(columns, columns + 2), table);
        // the model epoch's val_loss, not the last epoch's, shown to four significant digits
        double valLoss = metric(straight, "val_loss").get(bestEpoch);
        assertEquals(valLoss, Double.parseDouble(cells.get(columns + 4)), 1e-3 * valLoss, table);
    }

    /**
     * A training state whose best copy is not of the best epoch its history gives, or that has none, is not the run's
     * own (the command saves the copy with every state): the resume is refused, exit status 1, and writes nothing.
     */
    @Test
    void aStateWhoseBestCopyIsNotItsBestEpochsIsRefused() throws IOException {
        Path dir = tmp.resolve("copied");
        try (Stream<Path> files = Files.list(straight)) {
            Files.createDirectories(dir);
            for (Path file : files.filter(Files::isRegularFile).toList()) {
                Files.copy(file, dir.resolve(file.getFileName()));
            }
        }
        Path file = dir.resolve(ResumedRun.FILE);
        SafeTensors.Contents contents = SafeTensors.read(file);
        byte[] history = Files.readAllBytes(dir.resolve("history.json"));
        byte[] weights = Files.readAllBytes(dir.resolve(SavedWeights.FILE));

        Map<String, String> otherEpoch = new LinkedHashMap<>(contents.metadata());
        otherEpoch.put("best_weights", "{\"monitor\":\"val_loss\",\"epoch\":" + (bestEpoch + 1) + "}");
        SafeTensors.write(file, otherEpoch, new ArrayList<>(contents.tensors().values()));
        assertEquals(1, run(List.of("train", "--resume", dir.toString(), "--epochs", "12", "--quiet")));
        assertTrue(err.toString().contains(file + ": the run restores its best weights (--restore-best-weights) and"
                + " its history's best val_loss is epoch " + (bestEpoch + 1) + "'s, but the state keeps the best"
                + " val_loss weights of epoch " + (bestEpoch + 2) + "; it cannot end as the run would have"),
                err.toString());

        err.getBuffer().setLength(0);
        Map<String, String> noCopy = new LinkedHashMap<>(contents.metadata());
        noCopy.remove("best_weights");
        SafeTensors.write(file, noCopy, contents.tensors().values().stream()
                .filter(e -> !e.name().startsWith("best_weights/")).toList());
        assertEquals(1, run(List.of("train", "--resume", dir.toString(), "--epochs", "12", "--quiet")));
        assertTrue(err.toString().contains("but the state keeps no best weights"), err.toString());
        assertArrayEquals(history, Files.readAllBytes(dir.resolve("history.json")), "nothing written");
        assertArrayEquals(weights, Files.readAllBytes(dir.resolve(SavedWeights.FILE)), "nothing written");
    }

    /**
     * A run whose val_loss is NaN in every epoch (it diverges and goes on) has no best epoch: nothing is restored, and
     * the run says so.
     */
    @Test
    void aRunWithNoFiniteValLossRestoresNothingAndSaysSo() {
        Path dir = tmp.resolve("diverged");
        List<String> args = new ArrayList<>(train(dir, 3, "--activation", "elu", "--optimizer", "sgd",
                "--keep-going-on-nan"));
        args.set(args.indexOf("--learning-rate") + 1, "1e12");
        String output = runPrinting(args);
        assertTrue(output.contains("restored nothing: no epoch had a finite val_loss; the model keeps the last"
                + " epoch's weights"), output);
        assertTrue(!output.contains("restored the weights"), output);
    }
}
