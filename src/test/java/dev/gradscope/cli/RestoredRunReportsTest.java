package dev.gradscope.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.data.MnistSubset;
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
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A run that --restore-best-weights restored to an epoch before its last, as its own report.html and compare show
 * it: the restored model's numbers and epoch, as the run's final line and model.safetensors have them.
 */
class RestoredRunReportsTest {
    @TempDir
    static Path shared;

    private static Path restored;
    private static int bestEpoch;
    private static int epochs;

    private static List<String> train(Path out, String... more) {
        List<String> args = new ArrayList<>(List.of("train", "--data-dir", MnistSubset.dir().toString(), "--device",
                "cpu", "--hidden", "64", "--train-limit", "200", "--batch-size", "100", "--learning-rate", "0.01",
                "--early-stopping", "2", "--restore-best-weights", "--epochs", "12", "--out", out.toString(),
                "--quiet"));
        args.addAll(List.of(more));
        return args;
    }

    private static String runPrinting(List<String> args) {
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

    @SuppressWarnings("unchecked")
    private static List<Double> metric(Path dir, String name) {
        return ((List<Number>) HistoryJson.read(dir.resolve("history.json")).get(name)).stream()
                .map(Number::doubleValue).toList();
    }

    @BeforeAll
    static void trainUntilItStops() {
        restored = shared.resolve("restored");
        runPrinting(train(restored));
        List<Double> valLoss = metric(restored, "val_loss");
        epochs = valLoss.size();
        bestEpoch = 0;
        for (int e = 1; e < epochs; e++) {
            bestEpoch = valLoss.get(e) < valLoss.get(bestEpoch) ? e : bestEpoch;
        }
        assertTrue(bestEpoch + 1 < epochs, "the best epoch is not the last: " + valLoss);
    }

    /** Without a split, the restored model's test accuracy is its best epoch's val_accuracy (the final line's). */
    @Test
    void compareShowsTheRestoredModelsTestAccuracy() throws IOException {
        Path other = shared.resolve("other");
        runPrinting(train(other, "--seed", "1"));
        Path out = shared.resolve("compare");
        runPrinting(List.of("compare", restored.toString(), other.toString(), "--out", out.toString()));
        List<String> rows = Files.readAllLines(out.resolve("summary.csv"));
        List<String> header = List.of(rows.get(0).split(","));
        String[] row = rows.get(1).split(",");
        assertEquals("restored", row[0]);
        double expected = metric(restored, "val_accuracy").get(bestEpoch);
        assertEquals(expected, Double.parseDouble(row[header.indexOf("test_accuracy")]),
                "test_accuracy of the model restored from epoch " + (bestEpoch + 1) + " of " + epochs
                        + ", val_accuracy by epoch " + metric(restored, "val_accuracy"));
    }

    /** The per-class paragraph names the epoch whose model the per-class figures are of: the restored one. */
    @Test
    void theReportsPerClassFiguresNameTheRestoredEpoch() throws IOException {
        String page = Files.readString(restored.resolve("report.html"));
        assertTrue(page.contains("(after epoch " + (bestEpoch + 1)), "restored epoch " + (bestEpoch + 1) + " of "
                + epochs + "; the page says: " + page.substring(page.indexOf("Per class"),
                page.indexOf("Per class") + 200));
    }
}
