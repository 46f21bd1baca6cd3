package dev.gradscope.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.data.Dataset;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.data.SafeTensors;
import dev.gradscope.nn.Initializer;
import dev.gradscope.nn.Loss;
import dev.gradscope.nn.Mlp;
import dev.gradscope.nn.Sequential;
import dev.gradscope.nn.Sgd;
import dev.gradscope.nn.WeightsFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelCheckpointTest {
    private static final Dataset TRAIN = MnistSubset.load().train().take(600);

    @TempDir
    Path dir;

    /** Puts {@code value} into parameter {@code index} of {@code model}, as an overflow would. */
    private static void spoil(Sequential model, int index, float value) {
        float[] parameters = model.parameters().toFloatArray();
        parameters[index] = value;
        model.backend().copyFromHost(parameters, model.parameters());
    }

    /** The bytes of a checkpoint's file as its first epoch left them (a callback after the checkpoint). */
    private static final class FirstEpochFile implements Callback {
        private final Path file;
        byte[] bytes;

        FirstEpochFile(Path file) {
            this.file = file;
        }

        @Override
        public void onEpochEnd(int epoch, Map<String, Double> logs) {
            if (epoch == 0) {
                try {
                    bytes = Files.readAllBytes(file);
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            }
        }
    }

    private static Sequential model(CpuBackend backend, Initializer init) {
        return Mlp.build(backend, 4, 784, new int[] {32, 16}, 10, Mlp.HiddenUnits.of("relu"), init)
                .compile(new Sgd(0.01), Loss.CATEGORICAL_CROSSENTROPY);
    }

    @Test
    void afterEveryEpochTheFileHoldsTheModelsWeightsAndThatEpochsLogs() {
        Path file = dir.resolve("model.safetensors");
        ModelCheckpoint checkpoint = new ModelCheckpoint(file, Map.of("run", "test"));
        try (CpuBackend backend = new CpuBackend();
             Sequential model = model(backend, Initializer.glorotUniform())) {
            List<String> epochsInTheFile = new ArrayList<>();
            Callback reader = new Callback() {
                @Override
                public void onEpochEnd(int epoch, Map<String, Double> logs) {
                    epochsInTheFile.add(SafeTensors.readMetadata(file).get("epoch"));
                }
            };
            History history = model.fit(TRAIN, FitOptions.builder().batchSize(100).epochs(2).verbose(0)
                    .callback(checkpoint).callback(reader).build());
            assertEquals(List.of("1", "2"), epochsInTheFile, "rewritten after each epoch");
            SafeTensors.Contents saved = SafeTensors.read(file);
            assertEquals("2", saved.metadata().get("epoch"));
            assertEquals("test", saved.metadata().get("run"));
            assertEquals(history.last("loss"), Double.parseDouble(saved.metadata().get("loss")));
            assertEquals(2, checkpoint.savedEpoch());
            assertTrue(checkpoint.skipped().isEmpty());
            try (Sequential fresh = model(backend, Initializer.zeros())) {
                fresh.loadWeights(file);
                assertArrayEquals(model.parameters().toFloatArray(), fresh.parameters().toFloatArray());
            }
        }
    }

    /**
     * A run whose weights go non-finite in its second epoch (a NaN put into the first kernel before the
     * epoch's last step, as an overflow would), and which stops at that last step: the file keeps the first
     * epoch's weights, byte for byte, and the checkpoint says which epoch it left out and why.
     */
    @Test
    void anEpochWithANonFiniteGradientLeavesTheLastGoodFile() throws IOException {
        Path file = dir.resolve("model.safetensors");
        ModelCheckpoint checkpoint = new ModelCheckpoint(file, Map.of());
        try (CpuBackend backend = new CpuBackend();
             Sequential model = model(backend, Initializer.glorotUniform())) {
            FirstEpochFile afterFirstEpoch = new FirstEpochFile(file);
            Callback spoiler = new Callback() {
                @Override
                public void onBatchEnd(int epoch, int step, RunningMetrics progress) {
                    if (epoch == 1 && step == 4) { // so that the last step of the epoch stops
                        spoil(model, 0, Float.NaN);
                    }
                }
            };
            History history = model.fit(TRAIN, FitOptions.builder().batchSize(100).epochs(3).verbose(0)
                    .callback(checkpoint).callback(spoiler).callback(afterFirstEpoch).build());
            assertTrue(history.nonFinite() != null && history.nonFinite().stopped(), "the run stopped in epoch 2");
            assertEquals(6, history.nonFinite().step() + 1, "the last step stopped: every step of the epoch ran");
            assertEquals("epoch 2 had a non-finite gradient (epoch 2, step 6, first in dense_2)",
                    checkpoint.skipped().orElse(null));
            assertEquals(1, checkpoint.savedEpoch());
            assertArrayEquals(afterFirstEpoch.bytes, Files.readAllBytes(file));
            assertEquals("1", SafeTensors.readMetadata(file).get("epoch"));
        }
    }

    /**
     * The other two epochs not worth keeping, each after a first epoch that was: one that ran all its steps
     * but whose weights end non-finite (as on a GPU, which stops at the end of such an epoch), and one whose
     * logs hold a NaN (weights that are finite but huge).
     */
    @Test
    void epochsEndingWithNonFiniteWeightsOrLogsAreNotWritten() throws IOException {
        for (String spoilt : new String[] {"weights", "logs"}) {
            Path file = dir.resolve(spoilt + ".safetensors");
            ModelCheckpoint checkpoint = new ModelCheckpoint(file, Map.of());
            try (CpuBackend backend = new CpuBackend();
                 Sequential model = model(backend, Initializer.glorotUniform())) {
                FirstEpochFile afterFirstEpoch = new FirstEpochFile(file);
                Callback spoiler = new Callback() {
                    @Override
                    public void onEpochEnd(int epoch, Map<String, Double> logs) {
                        if (epoch == 1 && spoilt.equals("weights")) {
                            spoil(model, (int) model.parameters().size() - 1, Float.POSITIVE_INFINITY);
                        } else if (epoch == 1) {
                            logs.put("val_loss", Double.NaN);
                        }
                    }
                };
                model.fit(TRAIN, FitOptions.builder().batchSize(100).epochs(2).verbose(0).validation(TRAIN.take(100))
                        .callback(spoiler).callback(checkpoint).callback(afterFirstEpoch).build());
                assertEquals(spoilt.equals("weights") ? "epoch 2 ended with dense_2.bias[9] = Infinity"
                        : "epoch 2 ended with val_loss NaN", checkpoint.skipped().orElse(null));
                assertEquals(1, checkpoint.savedEpoch());
                assertArrayEquals(afterFirstEpoch.bytes, Files.readAllBytes(file), spoilt);
            }
        }
    }

    /**
     * Keras's save_best_only: the file is rewritten only by an epoch that improves the metric. The metric is
     * scripted (a callback ahead of the checkpoint sets it in the epoch's logs) so that the best epochs are
     * known: the second for the loss (3, 1, 2, 1.5), the third for the accuracy (0.2, 0.5, 0.7, 0.6).
     */
    @Test
    void bestOfKeepsTheEpochThatImprovedTheMetricLast() {
        Map<String, double[]> scripts = Map.of("val_loss", new double[] {3, 1, 2, 1.5},
                "val_accuracy", new double[] {0.2, 0.5, 0.7, 0.6});
        Map<String, Integer> bestEpochs = Map.of("val_loss", 2, "val_accuracy", 3);
        for (Map.Entry<String, double[]> script : scripts.entrySet()) {
            String metric = script.getKey();
            Path file = dir.resolve(metric + ".safetensors");
            ModelCheckpoint checkpoint = ModelCheckpoint.bestOf(file, Map.of(), metric);
            try (CpuBackend backend = new CpuBackend();
                 Sequential model = model(backend, Initializer.glorotUniform())) {
                List<float[]> parametersByEpoch = new ArrayList<>();
                Callback scripted = new Callback() {
                    @Override
                    public void onEpochEnd(int epoch, Map<String, Double> logs) {
                        logs.put(metric, script.getValue()[epoch]);
                        parametersByEpoch.add(model.parameters().toFloatArray());
                    }
                };
                model.fit(TRAIN, FitOptions.builder().batchSize(100).epochs(4).verbose(0)
                        .validation(TRAIN.take(100)).callback(scripted).callback(checkpoint).build());
                int best = bestEpochs.get(metric);
                assertEquals(best, checkpoint.savedEpoch(), metric);
                assertEquals(script.getValue()[best - 1], checkpoint.best(), metric);
                assertEquals(Integer.toString(best), SafeTensors.readMetadata(file).get("epoch"), metric);
                try (Sequential loaded = model(backend, Initializer.zeros())) {
                    loaded.loadWeights(file);
                    assertArrayEquals(parametersByEpoch.get(best - 1), loaded.parameters().toFloatArray(), metric);
                }
            }
        }
    }

    @Test
    void aResumedBestOfCheckpointKeepsTheEarlierBestUntilAnEpochBeatsIt() {
        Path file = dir.resolve("best.safetensors");
        try (CpuBackend backend = new CpuBackend();
             Sequential model = model(backend, Initializer.glorotUniform()).build(784)) {
            History earlier = new History();
            earlier.record(Map.of("val_loss", 0.5), 1);
            earlier.record(Map.of("val_loss", 0.7), 1);

            ModelCheckpoint withoutFile = ModelCheckpoint.bestOf(file, Map.of(), "val_loss");
            withoutFile.onTrainBegin(new TrainingRun(model, 4, 2, earlier, List.of("val_loss"), 1,
                    List.of(), null, null, null));
            assertEquals(0, withoutFile.savedEpoch(), "no file holds the earlier best: the next epoch is written");
            assertTrue(Double.isNaN(withoutFile.best()));

            model.saveWeights(file, Map.of("epoch", "1")); // the earlier run's best, epoch 1
            ModelCheckpoint best = ModelCheckpoint.bestOf(file, Map.of(), "val_loss");
            best.onTrainBegin(new TrainingRun(model, 4, 2, earlier, List.of("val_loss"), 1,
                    List.of(), null, null, null));
            assertEquals(1, best.savedEpoch());
            assertEquals(0.5, best.best());
            best.onEpochEnd(2, Map.of("val_loss", 0.6));
            assertEquals("1", SafeTensors.readMetadata(file).get("epoch"), "0.6 is worse than epoch 1's 0.5");
            best.onEpochEnd(3, Map.of("val_loss", 0.4));
            assertEquals("4", SafeTensors.readMetadata(file).get("epoch"));
            assertEquals(4, best.savedEpoch());
        }
    }
    /**
     * A resumed best-of run that keeps the earlier best epoch leaves that file's metadata as it is, unless given a
     * refreshKept, which makes the metadata at the first epoch that does not beat it; the tensors stay the file's.
     */
    @Test
    void aResumedBestOfCheckpointRefreshesTheKeptMetadataOnlyAsItIsTold() {
        Path file = dir.resolve("kept.safetensors");
        try (CpuBackend backend = new CpuBackend();
             Sequential model = model(backend, Initializer.glorotUniform()).build(784);
             Sequential earlierModel = model(backend, Initializer.zeros()).build(784)) {
            History earlier = new History();
            earlier.record(Map.of("val_loss", 0.5), 1);
            earlier.record(Map.of("val_loss", 0.7), 1);
            for (boolean refresh : new boolean[] {false, true}) {
                // the earlier run's best, epoch 1: other weights than the resumed run's
                earlierModel.saveWeights(file, Map.of("epoch", "1", "trained_on", "cpu", "epochs", "2"));
                Map<String, SafeTensors.Entry> kept = SafeTensors.read(file).tensors();
                ModelCheckpoint best = refresh
                        ? ModelCheckpoint.bestOf(file, Map.of("trained_on", "gpu", "epochs", "4"), "val_loss",
                                metadata -> {
                                    Map<String, String> refreshed = new LinkedHashMap<>(metadata);
                                    refreshed.put("epochs", "4");
                                    return refreshed;
                                })
                        : ModelCheckpoint.bestOf(file, Map.of("trained_on", "gpu", "epochs", "4"), "val_loss");
                best.onTrainBegin(new TrainingRun(model, 4, 2, earlier, List.of("val_loss"), 1,
                        List.of(), null, null, null));
                best.onEpochEnd(2, Map.of("val_loss", 0.6));
                Map<String, String> metadata = SafeTensors.readMetadata(file);
                assertEquals("1", metadata.get("epoch"));
                assertEquals("cpu", metadata.get("trained_on"), "how the kept epoch was trained stays");
                assertEquals(refresh ? "4" : "2", metadata.get("epochs"), "refresh " + refresh);
                Map<String, SafeTensors.Entry> now = SafeTensors.read(file).tensors();
                assertEquals(kept.keySet(), now.keySet());
                kept.forEach((name, entry) -> assertArrayEquals(entry.values(), now.get(name).values(), name));
            }
        }
    }

    /**
     * Weights early stopping put back after training are written as their epoch's, with its logs, by a checkpoint
     * that keeps the last epoch; one that keeps the best by its own rule refuses them.
     */
    @Test
    void aLastEpochCheckpointTakesRestoredWeightsAsTheirEpochs() {
        Path file = dir.resolve("model.safetensors");
        try (CpuBackend backend = new CpuBackend(); Sequential model = model(backend, Initializer.glorotUniform())) {
            ModelCheckpoint checkpoint = new ModelCheckpoint(file, Map.of("note", "kept"));
            EarlyStopping stopping = new EarlyStopping("loss", 5, 10, true);
            History history = model.fit(TRAIN, FitOptions.builder().batchSize(100).epochs(3).verbose(0)
                    .callback(checkpoint).callback(stopping).build());
            assertEquals(List.of(3, 0), List.of(checkpoint.savedEpoch(), stopping.restoredEpoch()));
            Map<String, Double> logs = new LinkedHashMap<>();
            history.metrics().forEach((metric, values) -> logs.put(metric, values.get(0)));
            checkpoint.saveRestored(model, 0, logs);
            assertEquals(1, checkpoint.savedEpoch());
            Map<String, String> metadata = SafeTensors.readMetadata(file);
            assertEquals(List.of("1", "kept", String.valueOf(history.get("loss").get(0))),
                    List.of(metadata.get("epoch"), metadata.get("note"), metadata.get("loss")));
            Map<String, SafeTensors.Entry> written = SafeTensors.read(file).tensors();
            for (SafeTensors.Entry e : WeightsFile.entries(model)) {
                assertArrayEquals(e.values(), written.get(e.name()).values(), e.name());
            }
            ModelCheckpoint best = ModelCheckpoint.bestOf(dir.resolve("best.safetensors"), Map.of(), "loss");
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> best.saveRestored(model, 0, logs));
            assertTrue(e.getMessage().contains("keeps the best loss by its own rule"), e.getMessage());
        }
    }
}
