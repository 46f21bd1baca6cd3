package dev.gradscope.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.data.InvalidDataException;
import dev.gradscope.data.SafeTensors;
import dev.gradscope.tensor.ActivationKind;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class WeightsFileTest {
    @TempDir
    Path dir;

    /** Every kind of parameter a layer declares: kernels and biases, PReLU's alphas, a learned beta, maxout's. */
    private static Sequential everyKind(CpuBackend backend, long seed) {
        Sequential model = new Sequential(backend, seed).input(7)
                .add(new Dense(6))
                .add(new PReLU(true))
                .add(new Dense(5))
                .add(new Swish(1.0, true))
                .add(new Maxout(4, 3))
                .add(new Dense(3, ActivationKind.SOFTMAX))
                .compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY);
        model.build(7);
        return model;
    }

    private static float[][] inputs() {
        float[][] x = new float[5][7];
        for (int r = 0; r < x.length; r++) {
            for (int c = 0; c < 7; c++) {
                x[r][c] = (float) Math.sin(3 * r + c);
            }
        }
        return x;
    }

    @Test
    void loadedWeightsReplaceTheInitialOnesBitForBit() {
        Path file = dir.resolve("model.safetensors");
        try (CpuBackend backend = new CpuBackend();
             Sequential saved = everyKind(backend, 1);
             Sequential loaded = everyKind(backend, 2)) {
            float[] before = loaded.parameters().toFloatArray();
            assertTrue(!Arrays.equals(saved.parameters().toFloatArray(), before), "different seeds start apart");
            saved.saveWeights(file);
            loaded.loadWeights(file);
            assertArrayEquals(saved.parameters().toFloatArray(), loaded.parameters().toFloatArray());
            float[][] x = inputs();
            assertArrayEquals(saved.predict(x, 2)[4], loaded.predict(x, 2)[4]);
        }
    }

    @Test
    void tensorsAreNamedLayerDotSlotWithKerasShapesAndTheFileSaysWhatWroteIt() throws IOException {
        Path file = dir.resolve("model.safetensors");
        try (CpuBackend backend = new CpuBackend(); Sequential model = everyKind(backend, 1)) {
            model.saveWeights(file, Map.of("epoch", "7"));
        }
        SafeTensors.Contents contents = SafeTensors.read(file);
        List<String> names = new ArrayList<>(contents.tensors().keySet());
        assertEquals(List.of("dense.kernel", "dense.bias", "p_re_lu.alpha", "dense_1.kernel", "dense_1.bias",
                "swish.beta", "maxout.kernel", "maxout.bias", "dense_2.kernel", "dense_2.bias"), names);
        assertArrayEquals(new int[] {7, 6}, contents.tensors().get("dense.kernel").shape(), "[inputs, units]");
        assertArrayEquals(new int[] {6}, contents.tensors().get("p_re_lu.alpha").shape(), "an alpha per unit");
        Map<String, String> metadata = contents.metadata();
        assertEquals(WeightsFile.FORMAT, metadata.get(WeightsFile.FORMAT_KEY));
        assertEquals("7", metadata.get("input_units"));
        assertEquals("7", metadata.get("epoch"));
        List<?> layers = new ObjectMapper().readValue(metadata.get("layers"), List.class);
        assertEquals(6, layers.size());
        assertEquals(Map.of("name", "maxout", "type", "Maxout", "config", "units=4, pieces=3, kernel=glorot_uniform"),
                layers.get(4));
    }

    @Test
    void aFileThatDoesNotFitNamesEveryMismatchAndChangesNothing() {
        Path file = dir.resolve("other.safetensors");
        try (CpuBackend backend = new CpuBackend();
             Sequential model = everyKind(backend, 1);
             Sequential other = new Sequential(backend, 1).input(7).add(new Dense(6)).add(new Dense(3, "softmax"))
                     .compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY)) {
            other.build(7);
            other.saveWeights(file);
            float[] before = model.parameters().toFloatArray();
            InvalidDataException e = assertThrows(InvalidDataException.class, () -> model.loadWeights(file));
            String message = e.getMessage();
            assertTrue(message.startsWith(file + ": these weights do not fit the model"), message);
            assertTrue(message.contains("no tensor p_re_lu.alpha [6]"), message);
            assertTrue(message.contains("dense_1.kernel is [6, 3] in the file, [6, 5] in the model"), message);
            assertTrue(message.contains("; and 2 more"),
                    "six of the eight problems listed, the rest counted: " + message);
            assertArrayEquals(before, model.parameters().toFloatArray(), "unchanged");

            model.saveWeights(file);
            InvalidDataException reverse = assertThrows(InvalidDataException.class, () -> other.loadWeights(file));
            assertTrue(reverse.getMessage().contains("the model has no tensor p_re_lu.alpha"), reverse.getMessage());
        }
    }

    @Test
    void nonFiniteWeightsAreNeitherLoadedNorSaved() throws IOException {
        Path file = dir.resolve("nan.safetensors");
        try (CpuBackend backend = new CpuBackend(); Sequential model = everyKind(backend, 1)) {
            List<SafeTensors.Entry> entries = new ArrayList<>(WeightsFile.entries(model));
            SafeTensors.Entry kernel = entries.get(3); // dense_1.kernel, [6, 5]
            float[] values = kernel.values();
            values[2 * 5 + 4] = Float.NaN;
            entries.set(3, new SafeTensors.Entry(kernel.name(), kernel.shape(), values));
            SafeTensors.write(file, Map.of(), entries);
            float[] before = model.parameters().toFloatArray();
            InvalidDataException e = assertThrows(InvalidDataException.class, () -> model.loadWeights(file));
            assertTrue(e.getMessage().contains("dense_1.kernel[2, 4] = NaN"), e.getMessage());
            assertArrayEquals(before, model.parameters().toFloatArray(), "unchanged");

            Path good = dir.resolve("good.safetensors");
            model.saveWeights(good);
            byte[] kept = Files.readAllBytes(good);
            float[] infinite = before.clone();
            infinite[infinite.length - 1] = Float.POSITIVE_INFINITY;
            backend.copyFromHost(infinite, model.parameters());
            IllegalStateException refused = assertThrows(IllegalStateException.class, () -> model.saveWeights(good));
            assertTrue(refused.getMessage().contains("dense_2.bias[2] = Infinity"), refused.getMessage());
            assertArrayEquals(kept, Files.readAllBytes(good), "the file saved before is kept as it was");
        }
    }

    @Test
    void callersCannotOverwriteTheFilesOwnMetadata() {
        try (CpuBackend backend = new CpuBackend(); Sequential model = everyKind(backend, 1)) {
            assertThrows(IllegalArgumentException.class,
                    () -> model.saveWeights(dir.resolve("m.safetensors"), Map.of("format", "mine")));
        }
    }
}
