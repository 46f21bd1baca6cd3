package dev.gradscope.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.data.MnistSubset;
import dev.gradscope.report.HistoryJson;
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
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code gradscope compare} reads finished runs back and sets them side by side on one page. */
class CompareCommandTest {
    @TempDir
    static Path runs;

    @TempDir
    Path tmp;

    private final StringWriter err = new StringWriter();


    @BeforeAll
    static void trainTwoRuns() {
        for (String activation : List.of("relu", "sigmoid")) {
            StringWriter err = new StringWriter();
            List<String> args = List.of("train", "--device", "cpu", "--data-dir", MnistSubset.dir().toString(), "--hidden",
                    "32,16,16", "--train-limit", "512", "--epochs", "2", "--activation", activation, "--quiet",
                    "--out", runs.resolve(activation).toString());
            assertEquals(0, GradScope.run(new PrintWriter(err, true), args.toArray(String[]::new)), err.toString());
        }
    }

    private int run(String... args) {
        return GradScope.run(new PrintWriter(err, true), args);
    }

    @Test
    void twoRunsMakeOnePageWhoseSummaryIsTheirHistories() throws IOException {
        Path out = tmp.resolve("compare");
        assertEquals(0, run("compare", runs.resolve("relu").toString(), runs.resolve("sigmoid").toString(), "--out",
                out.toString()), err.toString());
        String page = Files.readString(out.resolve("report.html"));
        assertTrue(page.contains("The runs differ in: activation: relu, sigmoid."), "what the runs differ in");
        assertTrue(page.contains("Vanishing gradients: sigmoid"), "the verdict of the sigmoid run");
        List<String> summary = Files.readAllLines(out.resolve("summary.csv"));
        assertEquals(3, summary.size(), "a header and a row per run");
        for (String activation : List.of("relu", "sigmoid")) {
            Map<String, Object> history = HistoryJson.read(runs.resolve(activation).resolve("history.json"));
            double valAccuracy = ((Number) ((List<?>) history.get("val_accuracy")).get(1)).doubleValue();
            assertTrue(summary.stream().anyMatch(row -> row.startsWith(activation + ",2,")
                    && row.contains("," + valAccuracy + ",")), activation + " " + valAccuracy + " in " + summary);
        }
        for (String figure : List.of("loss", "val-loss", "accuracy", "final-accuracy", "gradient-norm-by-depth",
                "gradient-norm-by-depth-last", "layer-1-gradient-norm-per-step")) {
            assertTrue(Files.exists(out.resolve("figures").resolve(figure + ".png")), figure);
        }
        RunReportTest.assertPage(out.resolve("report.html"), 7);
    }

    /**
     * A run saved before configs recorded the data set, dropout, batch norm, label smoothing, a warmup, weight decay,
     * Adam's AMSGrad flag and early stopping's restore_best_weights had MNIST and none.
     */
    @Test
    @SuppressWarnings("unchecked")
    void anOlderRunDoesNotDifferInSettingsItsConfigDidNotRecordYet() throws IOException {
        Path old = Files.createDirectories(tmp.resolve("old-relu"));
        try (var files = Files.list(runs.resolve("relu"))) {
            for (Path f : files.filter(Files::isRegularFile).toList()) {
                Files.copy(f, old.resolve(f.getFileName()));
            }
        }
        Map<String, Object> history = HistoryJson.read(old.resolve("history.json"));
        Map<String, Object> config = (Map<String, Object>) history.get("config");
        config.remove("dataset");
        config.remove("dropout");
        config.remove("batch_norm");
        config.remove("label_smoothing");
        assertEquals(0, config.remove("warmup_steps"), "a run without a warmup records 0 steps");
        assertEquals(0.0, config.remove("warmup_start"), "and a start of 0.0");
        ((Map<String, Object>) config.get("optimizer")).remove("weight_decay");
        assertEquals(false, ((Map<String, Object>) config.get("optimizer")).remove("amsgrad"), "Adam records it");
        // early stopping as configs recorded it before restore_best_weights, against one that records it false
        config.put("early_stopping", new LinkedHashMap<>(Map.of("monitor", "val_loss", "patience", 3,
                "min_delta", 0.0)));
        HistoryJson.writeAtomically(old.resolve("history.json"), history);
        Path today = Files.createDirectories(tmp.resolve("sigmoid"));
        try (var files = Files.list(runs.resolve("sigmoid"))) {
            for (Path f : files.filter(Files::isRegularFile).toList()) {
                Files.copy(f, today.resolve(f.getFileName()));
            }
        }
        Map<String, Object> todays = HistoryJson.read(today.resolve("history.json"));
        ((Map<String, Object>) todays.get("config")).put("early_stopping", new LinkedHashMap<>(Map.of("monitor",
                "val_loss", "patience", 3, "min_delta", 0.0, "restore_best_weights", false)));
        HistoryJson.writeAtomically(today.resolve("history.json"), todays);
        Path out = tmp.resolve("compare");
        assertEquals(0, run("compare", old.toString(), today.toString(), "--out", out.toString()),
                err.toString());
        assertTrue(Files.readString(out.resolve("report.html")).contains(
                "The runs differ in: activation: relu (old-relu), sigmoid."), "only in the activation");
    }

    /**
     * A batch-normalized run saved before configs recorded the normalisation's momentum and epsilon had Keras's; a
     * run with another momentum differs in it.
     */
    @Test
    @SuppressWarnings("unchecked")
    void anOlderBatchNormRunHadKerasMomentumAndEpsilon() throws IOException {
        Map<String, Path> dirs = new LinkedHashMap<>();
        Map<String, Map<String, Object>> settings = new LinkedHashMap<>();
        settings.put("old", Map.of());
        settings.put("new", Map.of("batch_norm_momentum", 0.99, "batch_norm_epsilon", 0.001));
        settings.put("slow", Map.of("batch_norm_momentum", 0.9, "batch_norm_epsilon", 0.001));
        for (var e : settings.entrySet()) {
            Path copy = Files.createDirectories(tmp.resolve(e.getKey()));
            try (var files = Files.list(runs.resolve("relu"))) {
                for (Path f : files.filter(Files::isRegularFile).toList()) {
                    Files.copy(f, copy.resolve(f.getFileName()));
                }
            }
            Map<String, Object> history = HistoryJson.read(copy.resolve("history.json"));
            Map<String, Object> config = (Map<String, Object>) history.get("config");
            config.put("batch_norm", true);
            config.putAll(e.getValue());
            HistoryJson.writeAtomically(copy.resolve("history.json"), history);
            dirs.put(e.getKey(), copy);
        }
        Path same = tmp.resolve("same");
        assertEquals(0, run("compare", dirs.get("old").toString(), dirs.get("new").toString(), "--out",
                same.toString()), err.toString());
        assertTrue(Files.readString(same.resolve("report.html")).contains("The runs&#39; configs are the same"),
                "the defaults are what the old run had");
        Path differ = tmp.resolve("differ");
        assertEquals(0, run("compare", dirs.get("old").toString(), dirs.get("slow").toString(), "--out",
                differ.toString()), err.toString());
        assertTrue(Files.readString(differ.resolve("report.html")).contains(
                "The runs differ in: batch_norm_momentum: 0.99 (old), 0.9 (slow)."), "only in the momentum");
    }

    /**
     * Review bnclip: a run without batch normalization has no momentum or epsilon of one; compare must not say it
     * differs from a batch-normalized run in them (only in batch_norm).
     */
    @Test
    @SuppressWarnings("unchecked")
    void aRunWithoutBatchNormDiffersOnlyInBatchNorm() throws IOException {
        Path normalized = Files.createDirectories(tmp.resolve("normalized"));
        try (var files = Files.list(runs.resolve("relu"))) {
            for (Path f : files.filter(Files::isRegularFile).toList()) {
                Files.copy(f, normalized.resolve(f.getFileName()));
            }
        }
        Map<String, Object> history = HistoryJson.read(normalized.resolve("history.json"));
        Map<String, Object> config = (Map<String, Object>) history.get("config");
        config.put("batch_norm", true);
        config.put("batch_norm_momentum", 0.9);
        config.put("batch_norm_epsilon", 0.01);
        HistoryJson.writeAtomically(normalized.resolve("history.json"), history);
        Path out = tmp.resolve("bn-against-plain");
        assertEquals(0, run("compare", runs.resolve("relu").toString(), normalized.toString(), "--out",
                out.toString()), err.toString());
        String page = Files.readString(out.resolve("report.html"));
        assertFalse(page.contains("batch_norm_momentum: 0.99 (relu)"), "relu has no batch normalization");
        assertFalse(page.contains("batch_norm_epsilon: 0.001 (relu)"), "relu has no batch normalization");
    }

    @Test
    void namesAndBadInputAreChecked() throws IOException {
        String relu = runs.resolve("relu").toString();
        String sigmoid = runs.resolve("sigmoid").toString();
        Path out = tmp.resolve("compare");
        assertEquals(0, run("compare", relu, sigmoid, "--names", "ReLU,sigmoid", "--out", out.toString()),
                err.toString());
        assertTrue(Files.readString(out.resolve("summary.csv")).contains("\nReLU,2,"));

        List<List<String>> usage = List.of(
                List.of("compare", relu, "--out", out.toString()),
                List.of("compare", relu, sigmoid, "--names", "a", "--out", out.toString()),
                List.of("compare", relu, sigmoid, "--names", "a,a", "--out", out.toString()),
                List.of("compare", relu, sigmoid, "--out", relu));
        for (List<String> args : usage) {
            StringWriter messages = new StringWriter();
            assertEquals(2, GradScope.run(new PrintWriter(messages, true), args.toArray(String[]::new)),
                    args + ": " + messages);
        }
        List<String> missing = new ArrayList<>(List.of("compare", relu, tmp.resolve("nothing").toString(), "--out",
                out.toString()));
        assertEquals(1, run(missing.toArray(String[]::new)));
        assertTrue(err.toString().contains("nothing/history.json: file not found"), err.toString());
    }

    @Test
    void relativePathsWork() throws IOException {
        Path here = Path.of("").toAbsolutePath();
        Path out = here.relativize(tmp.resolve("compare"));
        assertEquals(0, run("compare", here.relativize(runs.resolve("relu")).toString(),
                here.relativize(runs.resolve("sigmoid")).toString(), "--out", out.toString()), err.toString());
        RunReportTest.assertPage(tmp.resolve("compare").resolve("report.html"), 7);
    }

    @Test
    void aRunGivenTwiceOrAnOutThatHoldsARunIsAUsageError() throws IOException {
        String relu = runs.resolve("relu").toString();
        Path link = tmp.resolve("link");
        Files.createSymbolicLink(link, runs.resolve("sigmoid"));
        byte[] report = Files.readAllBytes(runs.resolve("sigmoid").resolve("report.html"));
        for (List<String> args : List.of(
                List.of("compare", relu, relu + "/", "--out", tmp.resolve("c").toString()),
                List.of("compare", relu, runs.resolve("sigmoid").toString(), "--names", " ,b", "--out",
                        tmp.resolve("c").toString()),
                List.of("compare", relu, runs.resolve("sigmoid").toString(), "--out", link.toString()),
                List.of("compare", relu, link.toString(), "--out", runs.resolve("sigmoid").toString()))) {
            StringWriter messages = new StringWriter();
            assertEquals(2, GradScope.run(new PrintWriter(messages, true), args.toArray(String[]::new)),
                    args + ": " + messages);
        }
        assertTrue(java.util.Arrays.equals(report, Files.readAllBytes(runs.resolve("sigmoid").resolve("report.html"))));
    }
}
