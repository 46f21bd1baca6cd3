package dev.gradscope.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.data.MnistSubset;
import dev.gradscope.report.HistoryJson;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A smoothed run's loss is against its smoothed targets, so it is not comparable with an unsmoothed run's: evaluate and
 * compare say so (found in review). A -0 given for a rate is the 0 it means in the config.
 */
class LabelSmoothingCommandTest {
    @TempDir
    Path tmp;

    private final StringWriter err = new StringWriter();

    /** Runs {@code command} with the standard output captured; returns {exit status, output}. */
    private static Object[] captured(Callable<Integer> command) throws Exception {
        ByteArrayOutputStream stdout = new ByteArrayOutputStream();
        PrintStream original = System.out;
        System.setOut(new PrintStream(stdout, true, StandardCharsets.UTF_8));
        try {
            int status = command.call();
            return new Object[] {status, stdout.toString(StandardCharsets.UTF_8)};
        } finally {
            System.setOut(original);
        }
    }

    @Test
    void evaluateAndCompareSayASmoothedLossIsNotAnUnsmoothedOne() throws Exception {
        Path smoothed = tmp.resolve("smoothed");
        Path plain = tmp.resolve("plain");
        assertEquals(0, SubsetTrainRuns.run(err, SubsetTrainRuns.train("--epochs", "1", "--label-smoothing", "0.1",
                "--out", smoothed.toString())), err.toString());
        // -0 is 0: recorded as 0.0, so compare finds no difference in what was not changed
        assertEquals(0, SubsetTrainRuns.run(err, SubsetTrainRuns.train("--epochs", "1", "--label-smoothing", "-0",
                "--dropout", "-0", "--out", plain.toString())), err.toString());
        @SuppressWarnings("unchecked")
        Map<String, Object> config = (Map<String, Object>) HistoryJson.read(plain.resolve("history.json")).get("config");
        assertEquals("0.0", String.valueOf(config.get("label_smoothing")));
        assertEquals("0.0", String.valueOf(config.get("dropout")));

        Path json = tmp.resolve("evaluate.json");
        Object[] evaluated = captured(() -> SubsetTrainRuns.run(err, List.of("evaluate",
                smoothed.resolve("model.safetensors").toString(), "--data-dir", MnistSubset.dir().toString(),
                "--device", "cpu", "--out", json.toString())));
        assertEquals(0, evaluated[0], err.toString());
        assertTrue(((String) evaluated[1]).matches("(?s)test: loss [0-9.]+ \\(label smoothing 0\\.1\\), accuracy .*"),
                (String) evaluated[1]);
        assertEquals(0.1, HistoryJson.read(json).get("label_smoothing"));
        Object[] unsmoothed = captured(() -> SubsetTrainRuns.run(err, List.of("evaluate",
                plain.resolve("model.safetensors").toString(), "--data-dir", MnistSubset.dir().toString(),
                "--device", "cpu")));
        assertTrue(!((String) unsmoothed[1]).contains("label smoothing"), (String) unsmoothed[1]);

        Path out = tmp.resolve("compare");
        Object[] compared = captured(() -> SubsetTrainRuns.run(err, List.of("compare", smoothed.toString(),
                plain.toString(), "--out", out.toString())));
        assertEquals(0, compared[0], err.toString());
        assertTrue(((String) compared[1]).contains("the runs differ in label smoothing; their losses are not"
                + " comparable"), (String) compared[1]);
        String page = Files.readString(out.resolve("report.html"));
        assertTrue(page.contains("categorical_crossentropy (label smoothing 0.1)"), "the run's setting line");
        assertTrue(page.contains("The runs differ in label smoothing, so their losses are not comparable"), "page");
        assertTrue(!page.contains("dropout: "), "no difference in dropout from a -0");
    }

    @Test
    void runsOfOneSmoothingGetNoNote() throws Exception {
        Path a = tmp.resolve("a");
        Path b = tmp.resolve("b");
        for (Path dir : List.of(a, b)) {
            assertEquals(0, SubsetTrainRuns.run(err, SubsetTrainRuns.train("--epochs", "1", "--label-smoothing", "0.1",
                    "--out", dir.toString())), err.toString());
        }
        Object[] compared = captured(() -> SubsetTrainRuns.run(err, List.of("compare", a.toString(), b.toString(),
                "--out", tmp.resolve("compare").toString())));
        assertEquals(0, compared[0], err.toString());
        assertTrue(!((String) compared[1]).contains("label smoothing"), (String) compared[1]);
    }
}
