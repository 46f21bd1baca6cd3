package dev.gradscope.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.Tolerances;
import dev.gradscope.Vectors;
import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.data.Dataset;
import dev.gradscope.data.DatasetKind;
import dev.gradscope.data.Mnist;
import dev.gradscope.data.ImageInput;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.data.SafeTensors;
import dev.gradscope.nn.Sequential;
import dev.gradscope.report.HistoryJson;
import dev.gradscope.train.ClassificationReport;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code gradscope predict} end to end: a small model trained on the MNIST subset classifies subset test images
 * written out as PNG files, and the same images by {@code --test-index}, as {@link Sequential#predict} does on
 * the data set's own floats.
 */
class PredictCommandTest {
    @TempDir
    static Path shared;

    private static Path weights;

    /** The subset test images written as 28x28 grey PNGs, and their rows. */
    private static final int[] ROWS = {0, 1, 2, 3, 4, 5, 6, 7};

    private static final List<Path> PNGS = new ArrayList<>();

    @TempDir
    Path tmp;

    private final StringWriter err = new StringWriter();

    private String stdout = "";

    @BeforeAll
    static void trainAndDrawTestImages() throws IOException {
        Path run = shared.resolve("run");
        StringWriter err = new StringWriter();
        assertEquals(0, SubsetTrainRuns.run(err, SubsetTrainRuns.train("--epochs", "2", "--out", run.toString())),
                err.toString());
        weights = run.resolve(SavedWeights.FILE);
        Dataset test = MnistSubset.load().test();
        for (int row : ROWS) {
            BufferedImage image = new BufferedImage(28, 28, BufferedImage.TYPE_BYTE_GRAY);
            for (int i = 0; i < Mnist.PIXELS; i++) {
                image.getRaster().setSample(i % 28, i / 28, 0, test.feature(row, i));
            }
            Path png = shared.resolve("test-" + row + ".png");
            assertTrue(ImageIO.write(image, "png", png.toFile()));
            PNGS.add(png);
        }
    }

    /** Runs the command line, keeping what it printed in {@link #stdout} and its errors in {@link #err}. */
    private int predict(String... args) {
        List<String> all = new ArrayList<>(List.of("predict"));
        all.addAll(List.of(args));
        PrintStream saved = System.out;
        ByteArrayOutputStream printed = new ByteArrayOutputStream();
        System.setOut(new PrintStream(printed, true, StandardCharsets.UTF_8));
        try {
            return SubsetTrainRuns.run(err, all);
        } finally {
            System.setOut(saved);
            stdout = printed.toString(StandardCharsets.UTF_8);
        }
    }

    /** {@link Sequential#predict} of the subset test rows, by the model the weights file describes, on the CPU. */
    private static float[][] reference(int[] rows) {
        float[] scaled = MnistSubset.load().test().scaledFeatures();
        float[][] x = new float[rows.length][];
        for (int i = 0; i < rows.length; i++) {
            x[i] = Arrays.copyOfRange(scaled, rows[i] * Mnist.PIXELS, (rows[i] + 1) * Mnist.PIXELS);
        }
        try (SafeTensors.Reader reader = SafeTensors.open(weights);
             CpuBackend backend = new CpuBackend()) {
            ModelOptions.Resolved resolved = ModelOptions.fromConfig(SavedWeights.config(reader), "test")
                    .resolve(IllegalStateException::new);
            try (Sequential model = resolved.build(backend, 0, Mnist.PIXELS, Mnist.CLASS_COUNT)) {
                dev.gradscope.nn.WeightsFile.load(model, reader);
                return model.predict(x, 256);
            }
        }
    }

    @SuppressWarnings("unchecked")
    private static List<Map<String, Object>> predictions(Path json) {
        return (List<Map<String, Object>>) HistoryJson.read(json).get("predictions");
    }

    private static float[] probabilities(Map<String, Object> prediction) {
        List<?> values = (List<?>) prediction.get("probabilities");
        float[] p = new float[values.size()];
        for (int i = 0; i < p.length; i++) {
            p[i] = ((Number) values.get(i)).floatValue();
        }
        return p;
    }

    /**
     * Each PNG's prediction is argmax of Sequential.predict on the data set's own floats, its probabilities are
     * those very floats and sum to 1, the top K are the K largest in order, and each image gets one line.
     */
    @Test
    @SuppressWarnings("unchecked")
    void imagesAreClassifiedAsSequentialPredictClassifiesTheirPixels() {
        Path json = tmp.resolve("predictions.json");
        List<String> args = new ArrayList<>(List.of(weights.toString(), "--device", "cpu", "--top", "4", "--out",
                json.toString()));
        PNGS.forEach(p -> args.add(p.toString()));
        assertEquals(0, predict(args.toArray(String[]::new)), err.toString());
        float[][] expected = reference(ROWS);
        List<Map<String, Object>> predictions = predictions(json);
        List<String> lines = stdout.lines().toList();
        assertEquals(ROWS.length, predictions.size());
        assertEquals(ROWS.length, lines.size(), stdout);
        for (int i = 0; i < ROWS.length; i++) {
            Map<String, Object> prediction = predictions.get(i);
            float[] p = probabilities(prediction);
            assertTrue(Arrays.equals(expected[i], p), "image " + i + ": " + Arrays.toString(p) + " vs "
                    + Arrays.toString(expected[i]));
            int predicted = ClassificationReport.predictedClass(expected[i]);
            assertEquals(predicted, prediction.get("class"));
            assertEquals(String.valueOf(predicted), prediction.get("name"));
            assertEquals(expected[i][predicted], ((Number) prediction.get("probability")).floatValue());
            double sum = 0;
            for (float v : p) {
                sum += v;
            }
            assertEquals(1.0, sum, Tolerances.SOFTMAX_ROW_SUM_ABS);
            List<Map<String, Object>> top = (List<Map<String, Object>>) prediction.get("top");
            assertEquals(4, top.size());
            assertEquals(predicted, top.get(0).get("class"));
            for (int k = 1; k < top.size(); k++) {
                float before = ((Number) top.get(k - 1).get("probability")).floatValue();
                float here = ((Number) top.get(k).get("probability")).floatValue();
                assertTrue(before >= here, "top is in order: " + top);
                assertEquals(p[(Integer) top.get(k).get("class")], here);
            }
            assertEquals(false, prediction.get("inverted"), "MNIST's border is black");
            assertEquals(PNGS.get(i).toString(), prediction.get("image"));
            assertTrue(lines.get(i).startsWith(PNGS.get(i) + ": " + predicted + " ("), lines.get(i));
            assertTrue(lines.get(i).contains("; top 4: " + predicted + " "), lines.get(i));
        }
        assertEquals("mnist", HistoryJson.read(json).get("dataset"));
    }

    /** The same images by index: the same probabilities, and each line shows the true label. */
    @Test
    void testIndicesClassifyTheDataSetsImagesAndShowTheirLabels() {
        Path json = tmp.resolve("indices.json");
        assertEquals(0, predict(weights.toString(), "--device", "cpu", "--data-dir", MnistSubset.dir().toString(),
                "--test-index", "3,0", "--out", json.toString()), err.toString());
        float[][] expected = reference(new int[] {3, 0});
        Dataset test = MnistSubset.load().test();
        List<Map<String, Object>> predictions = predictions(json);
        List<String> lines = stdout.lines().toList();
        int[] rows = {3, 0};
        for (int i = 0; i < rows.length; i++) {
            assertTrue(Arrays.equals(expected[i], probabilities(predictions.get(i))));
            assertEquals(rows[i], predictions.get(i).get("test_index"));
            assertEquals(test.label(rows[i]), predictions.get(i).get("label"));
            assertTrue(lines.get(i).startsWith("test image " + rows[i] + " (label " + test.label(rows[i]) + "): "
                    + ClassificationReport.predictedClass(expected[i]) + " ("), lines.get(i));
            assertTrue(lines.get(i).contains("; top 3: "), lines.get(i));
        }
    }

    /**
     * A dark-on-light image is inverted by auto and the line says so; a larger one is scaled and the line says
     * so. The inverted, shrunk copy of a test image is that image again, so it gets the same prediction.
     */
    @Test
    void aLargeInkOnPaperCopyIsInvertedAndScaledBackToTheSameImage() throws IOException {
        Dataset test = MnistSubset.load().test();
        BufferedImage paper = new BufferedImage(56, 56, BufferedImage.TYPE_BYTE_GRAY);
        for (int y = 0; y < 56; y++) {
            for (int x = 0; x < 56; x++) {
                paper.getRaster().setSample(x, y, 0, 255 - test.feature(0, (y / 2) * 28 + x / 2));
            }
        }
        Path png = tmp.resolve("paper.png");
        ImageIO.write(paper, "png", png.toFile());
        Path json = tmp.resolve("paper.json");
        assertEquals(0, predict(weights.toString(), png.toString(), "--device", "cpu", "--frame", "whole", "--out",
                json.toString()), err.toString());
        assertTrue(stdout.contains("; inverted (dark on light, its border's mean is 1.00); scaled 56x56 to 28x28"),
                stdout);
        Map<String, Object> prediction = predictions(json).get(0);
        assertTrue(Arrays.equals(reference(new int[] {0})[0], probabilities(prediction)));
        assertEquals(true, prediction.get("inverted"));
        assertEquals(List.of(56, 56), prediction.get("size"));
    }

    /**
     * By default an MNIST model's images are framed as MNIST framed its digits. A test image is framed so already, so
     * its enlarged ink-on-paper copy, placed off-centre on a wide grey sheet, comes back as it, but for rounding: a
     * cosine similarity above 0.999 with the test image's own pixels (whole-image scaling gives under 0.5: the digit
     * is small and off-centre, on grey). --dataset, which only renames the classes, does not change the frame.
     */
    @Test
    void aDigitOffCentreOnAWideSheetIsFramedAsMnistsDigitsAre() throws IOException {
        Dataset test = MnistSubset.load().test();
        float[] original = test.scaledFeatures();
        for (int i = 0; i < 4; i++) {
            BufferedImage sheet = new BufferedImage(150, 90, BufferedImage.TYPE_BYTE_GRAY);
            for (int y = 0; y < 90; y++) {
                for (int x = 0; x < 150; x++) {
                    int dx = x - 10 - 20 * i; // the digit's 56x56 copy starts at (10 + 20i, 20)
                    int dy = y - 20;
                    int ink = dx >= 0 && dx < 56 && dy >= 0 && dy < 56 ? test.feature(i, (dy / 2) * 28 + dx / 2) : 0;
                    sheet.getRaster().setSample(x, y, 0, 230 - ink * 200 / 255); // dark ink on grey paper
                }
            }
            float[] own = Arrays.copyOfRange(original, i * 784, (i + 1) * 784);
            double framed = Vectors.cosine(own,
                    ImageInput.prepare(sheet, ImageInput.Invert.AUTO, ImageInput.Frame.DIGIT).pixels());
            double whole = Vectors.cosine(own,
                    ImageInput.prepare(sheet, ImageInput.Invert.AUTO, ImageInput.Frame.WHOLE).pixels());
            assertTrue(framed > 0.999 && whole < 0.5, "test image " + i + ": framed " + framed + ", whole " + whole);
            if (i == 0) { // and through the command line, by default
                Path png = tmp.resolve("sheet.png");
                ImageIO.write(sheet, "png", png.toFile());
                Path json = tmp.resolve("sheet.json");
                assertEquals(0, predict(weights.toString(), png.toString(), "--device", "cpu", "--out",
                        json.toString()), err.toString());
                assertTrue(stdout.contains("framed as MNIST's digits: its ink scaled to"), stdout);
                assertEquals(true, predictions(json).get(0).get("framed_as_digit"));
                // --dataset only names the classes: the frame is still that of the data set the weights learnt
                String framedLine = stdout;
                assertEquals(0, predict(weights.toString(), png.toString(), "--device", "cpu", "--dataset",
                        "fashion_mnist", "--out", json.toString()), err.toString());
                assertEquals(true, predictions(json).get(0).get("framed_as_digit"));
                assertEquals(framedLine.substring(framedLine.indexOf("; framed")),
                        stdout.substring(stdout.indexOf("; framed")));
            }
        }
    }

    /** Class names come from the data set the weights record: a Fashion-MNIST run's classes are clothes. */
    @Test
    void classNamesAreThoseOfTheDataSetTheRunRecorded() {
        Path run = tmp.resolve("fashion");
        List<String> train = SubsetTrainRuns.train("--epochs", "1", "--out", run.toString(), "--dataset",
                "fashion_mnist");
        train.set(train.indexOf("--data-dir") + 1, MnistSubset.fashionDir().toString());
        assertEquals(0, SubsetTrainRuns.run(err, train), err.toString());
        Path json = tmp.resolve("fashion.json");
        String fashionWeights = run.resolve(SavedWeights.FILE).toString();
        assertEquals(0, predict(fashionWeights, PNGS.get(0).toString(), "--device", "cpu", "--top", "10", "--out",
                json.toString()), err.toString());
        Map<String, Object> prediction = predictions(json).get(0);
        List<String> names = DatasetKind.FASHION_MNIST.classNames();
        assertEquals(names.get((Integer) prediction.get("class")), prediction.get("name"));
        assertEquals("fashion_mnist", HistoryJson.read(json).get("dataset"));
        assertTrue(stdout.contains(": " + prediction.get("name") + " ("), stdout);
        // The test-index path reads the recorded data set and names its labels.
        Dataset fashion = MnistSubset.loadFashion().test();
        assertEquals(0, predict(fashionWeights, "--test-index", "0", "--device", "cpu", "--data-dir",
                MnistSubset.fashionDir().toString()), err.toString());
        assertTrue(stdout.startsWith("test image 0 (label " + names.get(fashion.label(0)) + "): "), stdout);
        // --dataset names the classes otherwise.
        assertEquals(0, predict(fashionWeights, PNGS.get(0).toString(), "--device", "cpu", "--dataset", "mnist"),
                err.toString());
        assertTrue(stdout.matches("(?s)[^:]*: [0-9] \\(.*"), stdout);
        assertTrue(err.toString().contains("gradscope: note: the weights were trained on Fashion-MNIST; naming their"
                + " classes as MNIST's, as --dataset asks"), err.toString());
    }

    /** Unreadable images are named and the rest still classified (and written); the status is then 1. */
    @Test
    void unreadableImagesAreNamedAndTheOthersStillClassified() throws IOException {
        Path missing = tmp.resolve("missing.png");
        Path notAnImage = Files.writeString(tmp.resolve("notes.png"), "a note, not an image");
        Path json = tmp.resolve("partial.json");
        assertEquals(1, predict(weights.toString(), missing.toString(), PNGS.get(1).toString(),
                notAnImage.toString(), "--device", "cpu", "--out", json.toString()));
        assertTrue(err.toString().contains(missing + ": file not found"), err.toString());
        assertTrue(err.toString().contains(notAnImage + ": not an image javax.imageio reads"), err.toString());
        assertTrue(err.toString().contains("2 of 3 images could not be read; the others are classified above"),
                err.toString());
        assertEquals(1, stdout.lines().count(), stdout);
        assertTrue(stdout.startsWith(PNGS.get(1) + ": "), stdout);
        Map<String, Object> result = HistoryJson.read(json);
        assertEquals(1, ((List<?>) result.get("predictions")).size());
        assertEquals(2, ((List<?>) result.get("errors")).size());
    }

    /**
     * An image larger than 2048 on a side is decoded subsampled; its line and JSON say so, and give the file's own
     * size.
     */
    @Test
    void aLargeImageIsDecodedSubsampledAndSaysSo() throws IOException {
        BufferedImage wide = new BufferedImage(2100, 60, BufferedImage.TYPE_BYTE_GRAY);
        for (int y = 10; y < 50; y++) {
            for (int x = 1000; x < 1030; x++) {
                wide.getRaster().setSample(x, y, 0, 255);
            }
        }
        Path png = tmp.resolve("wide.png");
        ImageIO.write(wide, "png", png.toFile());
        Path json = tmp.resolve("wide.json");
        assertEquals(0, predict(weights.toString(), png.toString(), "--device", "cpu", "--out", json.toString()),
                err.toString());
        assertTrue(stdout.contains("; decoded at one pixel in 2 each way (larger than 2048 on a side)"), stdout);
        Map<String, Object> prediction = predictions(json).get(0);
        assertEquals(2, prediction.get("subsampling"));
        assertEquals(List.of(2100, 60), prediction.get("size"));
    }

    /** A blank sheet is still classified, but its line and its JSON say that no ink was found. */
    @Test
    void aBlankImageIsClassifiedWithANote() throws IOException {
        BufferedImage sheet = new BufferedImage(60, 40, BufferedImage.TYPE_BYTE_GRAY);
        for (int y = 0; y < 40; y++) {
            for (int x = 0; x < 60; x++) {
                sheet.getRaster().setSample(x, y, 0, 235);
            }
        }
        Path png = tmp.resolve("blank.png");
        ImageIO.write(sheet, "png", png.toFile());
        Path json = tmp.resolve("blank.json");
        assertEquals(0, predict(weights.toString(), png.toString(), PNGS.get(0).toString(), "--device", "cpu",
                "--out", json.toString()), err.toString());
        List<String> lines = stdout.lines().toList();
        assertTrue(lines.get(0).contains("; no ink found (no pixel a tenth of white lighter than its border, after"
                + " any inversion): a blank image"), stdout);
        assertFalse(lines.get(1).contains("no ink"), stdout);
        assertEquals(true, predictions(json).get(0).get("no_ink"));
        assertEquals(false, predictions(json).get(1).get("no_ink"));
    }

    @Test
    void usageErrorsExitWithStatusTwo() {
        String w = weights.toString();
        String png = PNGS.get(0).toString();
        String data = MnistSubset.dir().toString();
        assertEquals(2, predict(w, png, "--top", "0"));
        assertTrue(err.toString().contains("--top must be in 1..10, got 0"), err.toString());
        assertEquals(2, predict(w, png, "--top", "11"));
        assertEquals(2, predict(w, "--test-index", "1000", "--data-dir", data, "--device", "cpu"));
        assertTrue(err.toString().contains("--test-index 1000 is outside the test split's 0..999"), err.toString());
        assertEquals(2, predict(w, "--test-index", "-1", "--data-dir", data, "--device", "cpu"));
        assertEquals(2, predict(w, png, "--test-index", "0", "--data-dir", data));
        assertTrue(err.toString().contains("give image files or --test-index, not both"), err.toString());
        assertEquals(2, predict(w));
        assertTrue(err.toString().contains("nothing to classify"), err.toString());
        assertEquals(2, predict(w, png, "--invert", "maybe"));
        assertTrue(err.toString().contains("unknown --invert 'maybe'; valid: auto, yes, no"), err.toString());
        assertEquals(2, predict(w, "--test-index", "0", "--invert", "yes"));
        assertEquals(2, predict(w, png, "--frame", "square"));
        assertTrue(err.toString().contains("unknown --frame 'square'; valid: whole, digit"), err.toString());
        assertEquals(2, predict(w, "--test-index", "0", "--frame", "digit"));
        assertTrue(err.toString().contains("--frame is for image files"), err.toString());
        assertEquals(2, predict(w, png, "--device", "gpu"));
        assertEquals(2, predict(w, png, "--dataset", "cifar10"));
        assertEquals(2, predict());
    }

    /** A network that does not take 784 inputs or does not give 10 classes is refused, saying which. */
    @Test
    void weightsOfAnotherShapeAreRefusedWithAClearMessage() {
        Path narrow = edited("dense.kernel", new int[] {100, 16}, "100");
        assertEquals(1, predict(narrow.toString(), PNGS.get(0).toString(), "--device", "cpu"));
        assertTrue(err.toString().contains(narrow + ": its network takes 100 inputs; predict classifies 28x28"
                + " images, 784 inputs"), err.toString());

        Path fiveClasses = edited("dense_1.kernel", new int[] {16, 5}, null);
        assertEquals(1, predict(fiveClasses.toString(), PNGS.get(0).toString(), "--device", "cpu"));
        assertTrue(err.toString().contains(fiveClasses + ": its network gives 5 outputs (dense_1.kernel [16, 5]);"
                + " predict needs the 10 classes of the data sets"), err.toString());

        Path missing = tmp.resolve("none.safetensors");
        assertEquals(1, predict(missing.toString(), PNGS.get(0).toString()));
        assertTrue(err.toString().contains(missing + ": file not found"), err.toString());
    }

    /** The trained weights with tensor {@code name} replaced by one of {@code shape}, and input_units if given. */
    private Path edited(String name, int[] shape, String inputUnits) {
        SafeTensors.Contents contents = SafeTensors.read(weights);
        Map<String, String> metadata = new LinkedHashMap<>(contents.metadata());
        if (inputUnits != null) {
            metadata.put("input_units", inputUnits);
        }
        List<SafeTensors.Entry> entries = new ArrayList<>();
        for (SafeTensors.Entry e : contents.tensors().values()) {
            entries.add(e.name().equals(name)
                    ? new SafeTensors.Entry(name, shape, new float[Arrays.stream(shape).reduce(1, (a, b) -> a * b)])
                    : e);
        }
        Path file = tmp.resolve(name + ".safetensors");
        SafeTensors.write(file, metadata, entries);
        return file;
    }
}
