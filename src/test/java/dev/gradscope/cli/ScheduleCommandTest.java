package dev.gradscope.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.report.HistoryJson;
import dev.gradscope.report.RunReport;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code train --lr-schedule}: the rates it logs, its config, its refusals, and a resume past its end. */
class ScheduleCommandTest {
    @TempDir
    Path tmp;

    private final StringWriter err = new StringWriter();

    private int run(List<String> args) {
        return SubsetTrainRuns.run(err, args);
    }

    private static List<String> train(String... more) {
        return SubsetTrainRuns.train(more);
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> history(Path out) {
        return (Map<String, Object>) HistoryJson.read(out.resolve(RunReport.HISTORY_FILE));
    }

    @Test
    void theRatesAreLoggedAndTheScheduleRecordedWithItsLength() {
        Path out = tmp.resolve("step");
        assertEquals(0, run(train("--epochs", "3", "--lr-schedule", "step:2:0.5", "--out", out.toString())),
                err.toString());
        assertEquals(List.of(0.001, 0.001, 0.0005), history(out).get("learning_rate"));
        assertEquals("step:2:0.5", ((Map<?, ?>) history(out).get("config")).get("lr_schedule"));

        Path cosine = tmp.resolve("cosine");
        assertEquals(0, run(train("--epochs", "2", "--lr-schedule", "cosine", "--out", cosine.toString())),
                err.toString());
        assertEquals("cosine:0.0:2", ((Map<?, ?>) history(cosine).get("config")).get("lr_schedule"),
                "the length the cosine took from --epochs");
        assertEquals(List.of(0.001, 0.0005), history(cosine).get("learning_rate"));
    }

    @Test
    void aResumeKeepsTheScheduleAndCannotRunACosineToZero() {
        Path out = tmp.resolve("run");
        assertEquals(0, run(train("--epochs", "2", "--lr-schedule", "cosine:0.0001", "--out", out.toString())),
                err.toString());
        assertEquals(0, run(List.of("train", "--resume", out.toString(), "--epochs", "3", "--quiet")), err.toString());
        assertEquals(List.of(0.001, 0.00055, 0.0001), history(out).get("learning_rate"),
                "past its 2 epochs the cosine stays at its minimum");

        Path toZero = tmp.resolve("to-zero");
        assertEquals(0, run(train("--epochs", "1", "--lr-schedule", "cosine", "--out", toZero.toString())),
                err.toString());
        assertEquals(2, run(List.of("train", "--resume", toZero.toString(), "--epochs", "2", "--quiet")));
        assertTrue(err.toString().contains("--lr-schedule cosine:0.0:1 gives epoch 2 of 2 a learning rate of 0.0,"
                + " which is not above 0 as a float; the saved run's schedule cannot go on that far: train at most 1"
                + " epoch"), err.toString());
        assertTrue(!err.toString().contains("at most 1 epochs"), err.toString());
        assertEquals(2, run(List.of("train", "--resume", out.toString(), "--epochs", "4", "--lr-schedule", "step:1:0.5")));
        assertTrue(err.toString().contains("--resume goes on with the saved run as it was set up, so it takes no"
                + " --lr-schedule"), err.toString());
    }

    @Test
    void badSchedulesAndAScheduleWithAPlateauAreUsageErrors() {
        Map<String, String> refusals = Map.of(
                "linear:3", "unknown schedule 'linear'",
                "step:2", "expected step:EPOCHS:GAMMA",
                "step:0:0.5", "a step schedule needs a step size >= 1 epoch",
                "step:1.5:0.5", "EPOCHS must be a whole number of epochs, got '1.5'",
                "exponential:1.5", "an exponential schedule needs 0 < gamma <= 1",
                "exponential:x", "GAMMA must be a number, got 'x'",
                "cosine:-1", "a cosine schedule needs epochs >= 1 and a finite minimum rate >= 0",
                "cosine:0:2:7", "expected step:EPOCHS:GAMMA",
                "cosine:0.01", "the cosine's minimum rate 0.01 must be below the learning rate it starts from, 0.001",
                // 1e-3 * 1e-300 is a double, but the float 0: the third epoch would not train
                "exponential:1e-300", "gives epoch 2 of 3 a learning rate of 1.0000000000000001E-303, which is not above 0"
                        + " as a float");
        refusals.forEach((bad, message) -> {
            StringWriter errors = new StringWriter();
            assertEquals(2, GradScope.run(new PrintWriter(errors, true), train("--epochs", "3", "--lr-schedule", bad)
                    .toArray(String[]::new)), bad);
            assertTrue(errors.toString().contains(message), bad + ": " + errors);
        });
        assertEquals(2, run(train("--epochs", "1", "--lr-schedule", "step:1:0.5", "--reduce-lr-on-plateau", "2",
                "--out", tmp.resolve("both").toString())));
        assertTrue(err.toString().contains("--lr-schedule sets every epoch's learning rate, which would undo the"
                + " reductions of --reduce-lr-on-plateau: give one of them"), err.toString());
        assertTrue(Files.notExists(tmp.resolve("both")));
    }
}
