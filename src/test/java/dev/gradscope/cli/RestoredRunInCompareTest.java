package dev.gradscope.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.report.HistoryJson;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A run that --restore-best-weights restored to an epoch before its last, as history.json records it and compare
 * shows it: the restored model's numbers and epoch, as the run's final line and model.safetensors have them, not
 * the last epoch's.
 */
class RestoredRunInCompareTest {
    @TempDir
    static Path shared;

    private static Path restored;
    private static int bestEpoch;
    private static int epochs;

    /** RestoreBestWeightsCommandTest's overfitting run, for 12 epochs: it stops early and restores. */
    private static List<String> train(Path out, String... more) {
        return RestoreBestWeightsCommandTest.train(out, 12, more);
    }

    private static String runPrinting(List<String> args) {
        return RestoreBestWeightsCommandTest.runPrinting(args);
    }

    @SuppressWarnings("unchecked")
    private static List<Double> metric(Path dir, String name) {
        return ((List<Number>) HistoryJson.read(dir.resolve("history.json")).get(name)).stream()
                .map(Number::doubleValue).toList();
    }

    /** The epoch (from 0) of the lowest val_loss, the first of equals, as early stopping finds it. */
    private static int lowestValLoss(Path dir) {
        List<Double> valLoss = metric(dir, "val_loss");
        int best = 0;
        for (int e = 1; e < valLoss.size(); e++) {
            best = valLoss.get(e) < valLoss.get(best) ? e : best;
        }
        return best;
    }

    @BeforeAll
    static void trainUntilItStops() {
        restored = shared.resolve("restored");
        runPrinting(train(restored));
        epochs = metric(restored, "val_loss").size();
        bestEpoch = lowestValLoss(restored);
        assertTrue(bestEpoch + 1 < epochs, "the best epoch is not the last: " + metric(restored, "val_loss"));
    }

    /** The summary's row of {@code run} in {@code out}'s summary.csv, by column. */
    private static Map<String, String> summaryRow(Path out, String run) throws IOException {
        List<String> rows = Files.readAllLines(out.resolve("summary.csv"));
        List<String> header = List.of(rows.get(0).split(","));
        for (String line : rows.subList(1, rows.size())) {
            String[] row = line.split(",");
            if (row[0].equals(run)) {
                Map<String, String> cells = new java.util.LinkedHashMap<>();
                for (int i = 0; i < header.size(); i++) {
                    cells.put(header.get(i), row[i]);
                }
                return cells;
            }
        }
        throw new AssertionError("no row of " + run + " in " + rows);
    }

    /** history.json says which epoch's model the run ended with, that epoch's logs and the metric that chose it. */
    @Test
    @SuppressWarnings("unchecked")
    void historyRecordsTheRestoredEpoch() {
        Map<String, Object> doc = HistoryJson.read(restored.resolve("history.json"));
        Map<String, Object> kept = (Map<String, Object>) doc.get("restored");
        assertEquals(bestEpoch + 1, kept.get("epoch"), "epochs from 1, as test.epoch and non_finite.epoch");
        assertEquals("val_loss", kept.get("monitor"));
        assertEquals(metric(restored, "val_loss").get(bestEpoch), ((Number) kept.get("best")).doubleValue());
        Map<String, Object> logs = (Map<String, Object>) kept.get("logs");
        for (String name : List.of("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")) {
            assertEquals(metric(restored, name).get(bestEpoch), ((Number) logs.get(name)).doubleValue(), name);
        }
        List<String> keys = new ArrayList<>(doc.keySet());
        assertEquals("config", keys.get(keys.size() - 1), "config stays last: " + keys);
    }

    /**
     * Without a split, the restored model's test accuracy is its best epoch's val_accuracy (the final line's), and
     * the row's other numbers are that epoch's too, labelled with it; the run it is compared with, which restored
     * nothing, keeps its last epoch's.
     */
    @Test
    void compareShowsTheRestoredModelsNumbers() throws IOException {
        Path other = shared.resolve("other");
        List<String> keepsTheLast = new ArrayList<>(train(other, "--seed", "1"));
        keepsTheLast.remove("--restore-best-weights");
        runPrinting(keepsTheLast);
        Path out = shared.resolve("compare");
        String printed = runPrinting(List.of("compare", restored.toString(), other.toString(), "--out",
                out.toString()));
        Map<String, String> row = summaryRow(out, "restored");
        assertEquals(metric(restored, "val_accuracy").get(bestEpoch), Double.parseDouble(row.get("test_accuracy")),
                "test_accuracy of the model restored from epoch " + (bestEpoch + 1) + " of " + epochs
                        + ", val_accuracy by epoch " + metric(restored, "val_accuracy"));
        for (String name : List.of("loss", "accuracy", "val_loss", "val_accuracy")) {
            assertEquals(metric(restored, name).get(bestEpoch), Double.parseDouble(row.get(name)), name);
        }
        assertEquals(String.valueOf(bestEpoch + 1), row.get("model epoch"));
        assertEquals(String.valueOf(epochs), row.get("epochs"));

        assertFalse(HistoryJson.read(other.resolve("history.json")).containsKey("restored"),
                "a run without --restore-best-weights restored nothing");
        Map<String, String> otherRow = summaryRow(out, "other");
        int otherEpochs = metric(other, "val_accuracy").size();
        assertEquals(String.valueOf(otherEpochs), otherRow.get("model epoch"));
        assertEquals(metric(other, "val_accuracy").get(otherEpochs - 1),
                Double.parseDouble(otherRow.get("test_accuracy")));

        assertTrue(printed.contains((bestEpoch + 1) + " of " + epochs), printed);
        assertTrue(printed.contains("restored ended with the weights of epoch " + (bestEpoch + 1) + " of " + epochs
                + ", the best val_loss"), printed);
        String page = Files.readString(out.resolve("report.html"));
        assertTrue(page.contains("restored ended with the weights of epoch " + (bestEpoch + 1) + " of " + epochs),
                "the page names the restored epoch");
        assertTrue(Files.readString(out.resolve("figures/final-accuracy.csv"))
                .contains("restored (epoch " + (bestEpoch + 1) + ")"), "the final-accuracy bars name the epoch");
    }

    /**
     * With a split, the row's test_accuracy is the one evaluation of the restored model, and its val_ numbers are
     * that model's epoch's, not the last epoch's beside it.
     */
    @Test
    @SuppressWarnings("unchecked")
    void aSplitRunsRowDescribesOneModel() throws IOException {
        Path split = shared.resolve("split");
        runPrinting(train(split, "--validation-split", "0.2"));
        int best = lowestValLoss(split);
        Map<String, Object> doc = HistoryJson.read(split.resolve("history.json"));
        Map<String, Object> test = (Map<String, Object>) doc.get("test");
        Path out = shared.resolve("compare-split");
        runPrinting(List.of("compare", split.toString(), restored.toString(), "--out", out.toString()));
        Map<String, String> row = summaryRow(out, "split");
        assertEquals(((Number) test.get("accuracy")).doubleValue(), Double.parseDouble(row.get("test_accuracy")));
        assertEquals(String.valueOf(best + 1), row.get("model epoch"));
        assertEquals(metric(split, "val_loss").get(best), Double.parseDouble(row.get("val_loss")));
        assertEquals(metric(split, "val_accuracy").get(best), Double.parseDouble(row.get("val_accuracy")));
        assertEquals(best + 1, ((Map<String, Object>) doc.get("restored")).get("epoch"));
        assertEquals(best + 1, test.get("epoch"), "the test evaluation is of the restored model");
    }
}
