package dev.gradscope.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.Tolerances;
import dev.gradscope.data.SafeTensors;
import dev.gradscope.report.HistoryJson;
import dev.gradscope.report.RunReport;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

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

    /**
     * Keras's CosineDecay with a warmup target, written out in double with Math.cos (StepScheduleTest checks the
     * schedule against it at more steps).
     */
    private static double kerasCosineDecay(double start, double target, int warmupSteps, int decaySteps,
                                           double alpha, long step) {
        double s = Math.min(step, warmupSteps + decaySteps);
        if (s < warmupSteps) {
            return (target - start) * (s / warmupSteps) + start;
        }
        return target * ((1 - alpha) * 0.5 * (1 + Math.cos(Math.PI * (s - warmupSteps) / decaySteps)) + alpha);
    }

    /**
     * A warmup over 3 steps and a cosine over 2 (2 steps an epoch here): each epoch logs its last update's rate, the
     * config records the schedule, and a run resumed after its first epoch, mid-warmup, is the run trained in one
     * go, bit for bit: the saved step count carries the schedule on. For Adam, and for the optimizers whose rule
     * needs no count but which count their updates for the schedule: SGD with Nesterov momentum, RMSprop centered
     * with momentum, Adagrad.
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"adam, 0.001", "sgd --momentum 0.9 --nesterov, 0.05", "rmsprop --centered --momentum 0.5, 0.001",
        "adagrad, 0.01"})
    void aWarmupAndCosineDecayAreLoggedRecordedAndResumedExactly(String optimizer, double peak) throws IOException {
        List<String> schedule = new ArrayList<>(List.of("--optimizer"));
        schedule.addAll(List.of(optimizer.split(" ")));
        schedule.addAll(List.of("--learning-rate", Double.toString(peak), "--warmup-steps", "3", "--warmup-start",
                "0.0001", "--lr-schedule", "cosine-decay:2:0.1"));
        Path straight = tmp.resolve("straight");
        List<String> straightArgs = new ArrayList<>(train("--epochs", "3", "--out", straight.toString()));
        straightArgs.addAll(schedule);
        assertEquals(0, run(straightArgs), err.toString());
        List<?> rates = (List<?>) history(straight).get("learning_rate");
        long[] lastSteps = {1, 3, 5};
        for (int e = 0; e < 3; e++) {
            double want = kerasCosineDecay(1e-4, peak, 3, 2, 0.1, lastSteps[e]);
            assertEquals(want, (Double) rates.get(e), Tolerances.SCHEDULE_RATE_OF_PEAK * peak, "epoch " + e);
        }
        Map<?, ?> config = (Map<?, ?>) history(straight).get("config");
        assertEquals(List.of("cosine-decay:2:0.1", 3, 1e-4), List.of(config.get("lr_schedule"),
                config.get("warmup_steps"), config.get("warmup_start")));

        Path resumed = tmp.resolve("resumed");
        List<String> firstEpoch = new ArrayList<>(train("--epochs", "1", "--out", resumed.toString()));
        firstEpoch.addAll(schedule);
        assertEquals(0, run(firstEpoch), err.toString());
        assertEquals(2, run(List.of("train", "--resume", resumed.toString(), "--epochs", "3", "--warmup-steps", "5")));
        assertTrue(err.toString().contains("takes no --warmup-steps"), err.toString());
        assertEquals(0, run(List.of("train", "--resume", resumed.toString(), "--epochs", "3", "--quiet")),
                err.toString());
        for (String file : List.of("model.safetensors", ResumedRun.FILE)) { // the weights; the optimizer's state
            Map<String, SafeTensors.Entry> want = SafeTensors.read(straight.resolve(file)).tensors();
            Map<String, SafeTensors.Entry> got = SafeTensors.read(resumed.resolve(file)).tensors();
            assertEquals(want.keySet(), got.keySet(), file);
            want.forEach((name, entry) -> assertTrue(Arrays.equals(entry.values(), got.get(name).values()),
                    file + ": " + name + " differs from the straight run's"));
        }
        assertEquals("6", SafeTensors.read(straight.resolve(ResumedRun.FILE)).metadata().get("iterations"),
                "3 epochs of 2 steps");
        assertEquals(SafeTensors.read(straight.resolve(ResumedRun.FILE)).metadata().get("iterations"),
                SafeTensors.read(resumed.resolve(ResumedRun.FILE)).metadata().get("iterations"), "the step count");
        for (String metric : List.of("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")) {
            assertEquals(history(straight).get(metric), history(resumed).get(metric), metric);
        }
    }

    @Test
    void badStepSchedulesAndTheirMixWithEpochSchedulesOrAPlateauAreUsageErrors() {
        Map<List<String>, String> refusals = Map.of(
                List.of("--lr-schedule", "cosine-decay"), "expected step:EPOCHS:GAMMA",
                List.of("--lr-schedule", "cosine-decay:0"), "DECAY_STEPS must be at least 1 step, got 0",
                List.of("--lr-schedule", "cosine-decay:1.5"), "DECAY_STEPS must be a whole number of steps below 2^31, got '1.5'",
                List.of("--lr-schedule", "cosine-decay:100:2"), "the cosine's alpha must be in [0, 1], got 2.0",
                List.of("--warmup-steps", "-1"), "--warmup-steps must be a count of steps >= 0, got -1",
                List.of("--warmup-start", "0.0001"), "--warmup-start is the rate a warmup starts from; give"
                        + " --warmup-steps N too",
                List.of("--warmup-steps", "10", "--lr-schedule", "step:1:0.5"), "--warmup-steps warms up the rate"
                        + " step by step, which --lr-schedule step:1:0.5 would set again every epoch",
                List.of("--warmup-steps", "10", "--reduce-lr-on-plateau", "2"), "--warmup-steps sets every step's"
                        + " learning rate, which would undo the reductions of --reduce-lr-on-plateau",
                List.of("--lr-schedule", "cosine-decay:10", "--reduce-lr-on-plateau", "2"), "--lr-schedule sets every"
                        + " step's learning rate, which would undo the reductions of --reduce-lr-on-plateau");
        refusals.forEach((bad, message) -> {
            StringWriter errors = new StringWriter();
            List<String> args = new ArrayList<>(train("--epochs", "1"));
            args.addAll(bad);
            assertEquals(2, GradScope.run(new PrintWriter(errors, true), args.toArray(String[]::new)), bad.toString());
            assertTrue(errors.toString().contains(message), bad + ": " + errors);
        });
    }

    /**
     * A per-step cosine that reaches 0 before the run ends (ALPHA 0) leaves every later update at rate 0,
     * whole epochs that train nothing, and so does a resume past its end; the epoch cosine refuses both ("gives epoch
     * 3 of 4 a learning rate of 0.0, which is not above 0 as a float"; "the saved run's schedule cannot go on that
     * far"). The same refusal is expected here, as a usage error, before anything is saved.
     */
    @Test
    void aCosineDecayThatReachesZeroBeforeTheRunEndsIsRefusedAsTheEpochCosineIs() {
        Path frozen = tmp.resolve("frozen"); // 2 steps an epoch: steps 2 to 7 at rate 0
        int status = run(train("--epochs", "4", "--lr-schedule", "cosine-decay:2", "--out", frozen.toString()));
        List<?> rates = Files.exists(frozen) ? (List<?>) history(frozen).get("learning_rate") : List.of();
        assertEquals(2, status, "trained epochs at rate 0: learning_rate " + rates);
        assertTrue(Files.notExists(frozen));

        Path toEnd = tmp.resolve("to-end"); // 4 steps of cosine over 2 epochs of 2: its last update at rate > 0
        assertEquals(0, run(train("--epochs", "2", "--lr-schedule", "cosine-decay:4", "--out", toEnd.toString())),
                err.toString());
        int resumed = run(List.of("train", "--resume", toEnd.toString(), "--epochs", "5", "--quiet"));
        assertEquals(2, resumed, "resumed past the cosine's end at rate 0: learning_rate "
                + history(toEnd).get("learning_rate"));
    }
}
