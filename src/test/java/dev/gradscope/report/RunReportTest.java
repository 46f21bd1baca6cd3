package dev.gradscope.report;

import static dev.gradscope.report.Documents.assertLinksResolve;
import static dev.gradscope.report.Documents.elements;
import static dev.gradscope.report.Documents.links;
import static dev.gradscope.report.Documents.parseXml;
import static dev.gradscope.report.Documents.readPng;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.data.Dataset;
import dev.gradscope.data.Mnist;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.nn.Adam;
import dev.gradscope.nn.Initializer;
import dev.gradscope.nn.Loss;
import dev.gradscope.nn.Mlp;
import dev.gradscope.nn.Optimizer;
import dev.gradscope.nn.Sequential;
import dev.gradscope.nn.Sgd;
import dev.gradscope.train.Diagnosis;
import dev.gradscope.train.FitOptions;
import dev.gradscope.train.History;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.w3c.dom.Document;

/**
 * A run's files as an independent reader sees them: every file there, PNGs that decode, SVG and the page
 * well-formed XML with every link resolving, CSVs with the documented header and one row per (step,
 * parameter tensor) and per (epoch, watched layer). {@link #assertRunArtifacts} is shared with the
 * command-line tests.
 */
public class RunReportTest {
    private static final Mnist MNIST = MnistSubset.load();
    private static final int ROWS = 512;
    private static final int BATCH = 128;

    @TempDir
    Path tmp;

    private static History train(Mlp.HiddenUnits units, Initializer init, Optimizer optimizer, int epochs,
                                 boolean profile) {
        return train(new int[] {32, 16}, ROWS, BATCH, units, init, optimizer, epochs, profile);
    }

    private static History train(int[] hidden, int rows, int batch, Mlp.HiddenUnits units, Initializer init,
                                 Optimizer optimizer, int epochs, boolean profile) {
        Dataset train = MNIST.train().take(rows);
        try (CpuBackend backend = new CpuBackend();
             Sequential model = Mlp.build(backend, 42, 784, hidden, 10, units, init)
                     .compile(optimizer, Loss.CATEGORICAL_CROSSENTROPY, "accuracy")) {
            FitOptions.Builder fit = FitOptions.builder().batchSize(batch).epochs(epochs).validation(MNIST.test())
                    .verbose(0);
            if (!profile) {
                fit.profiler(null);
            }
            return model.fit(train, fit.build());
        }
    }

    @Test
    void writesEveryFileWithDocumentedColumnsAndOneRowPerStepAndTensor() throws IOException {
        History history = train(Mlp.HiddenUnits.of("sigmoid"), Initializer.glorotUniform(), new Adam(), 2, true);
        RunReport.Written written = RunReport.write(tmp, "sigmoid run", "784-32-16-10 sigmoid", history,
                Map.of("activation", "sigmoid"));
        int steps = 2 * (ROWS / BATCH);
        assertRunArtifacts(tmp, steps, 6, 2 * 2); // 3 Dense layers x (kernel, bias); 2 hidden layers watched
        assertEquals(tmp.resolve(RunReport.REPORT_FILE), written.report());

        CsvTable gradients = CsvTable.read(tmp.resolve(RunReport.GRADIENTS_FILE));
        assertEquals(List.of("1", "1", "1", "0", "dense", "kernel"), gradients.row(0).subList(0, 6),
                "epochs, steps and global steps count from 1, layer_index from 0");
        assertEquals("", gradients.row(1).get(9), "a zero bias has no update ratio at the first step");
        List<Object> lastRow = gradients.row(gradients.rowCount() - 1);
        assertEquals(List.of("2", String.valueOf(ROWS / BATCH), String.valueOf(steps)), lastRow.subList(0, 3));
        CsvTable layers = CsvTable.read(tmp.resolve(RunReport.LAYERS_FILE));
        assertEquals("sigmoid", layers.row(0).get(3));
        double kernelMean = Double.parseDouble((String) layers.row(0).get(11));
        assertEquals(RunReport.kernelGradientNormsByDepth(history.profile(), 0)[0], kernelMean, 1e-12,
                "layers.csv's grad_norm is the epoch's mean kernel gradient norm");

        Map<String, Object> json = HistoryJson.read(tmp.resolve(RunReport.HISTORY_FILE));
        assertEquals(2, ((List<?>) json.get("val_accuracy")).size());
        assertTrue(json.containsKey("non_finite"));
        assertNull(json.get("non_finite"));
        assertEquals(written.diagnosis().verdicts().size(), ((List<?>) json.get("diagnosis")).size());
        assertEquals(written.diagnosis().describe(),
                Files.readString(tmp.resolve(RunReport.DIAGNOSIS_FILE), StandardCharsets.UTF_8));
    }

    @Test
    void aRunThatOverflowsNamesTheStepInHistoryJsonAndAsARedVerdict() throws IOException {
        // The chapter's ReLU MLP from random_normal:3 kernels, plain SGD: the third step's gradient overflows.
        History history = train(Mlp.CHAPTER_HIDDEN, 1024, 256, Mlp.HiddenUnits.of("relu"),
                new Initializer(Initializer.Kind.RANDOM_NORMAL, 3), new Sgd(0.01, 0, false), 1, true);
        assertNotNull(history.nonFinite(), "random_normal:3 with plain SGD overflows within 4 steps");
        RunReport.write(tmp, "exploding", "784-32-16-10 relu", history, Map.of());
        Map<?, ?> event = (Map<?, ?>) HistoryJson.read(tmp.resolve(RunReport.HISTORY_FILE)).get("non_finite");
        assertEquals(history.nonFinite().step() + 1, event.get("step"));
        assertEquals(history.nonFinite().layerName(), event.get("layer"));
        assertEquals(true, event.get("stopped"));
        String page = Files.readString(tmp.resolve(RunReport.REPORT_FILE), StandardCharsets.UTF_8);
        assertTrue(page.contains("tone-failure"), "a non-finite gradient is a red verdict");
        assertTrue(page.contains("step " + (history.nonFinite().step() + 1)), page);
        assertEquals(HtmlReport.Tone.FAILURE, RunReport.tone(Diagnosis.Kind.NON_FINITE));
        assertEquals(HtmlReport.Tone.FAILURE, RunReport.tone(Diagnosis.Kind.EXPLODING));
        assertEquals(HtmlReport.Tone.WARNING, RunReport.tone(Diagnosis.Kind.VANISHING));
        assertEquals(HtmlReport.Tone.SUCCESS, RunReport.tone(Diagnosis.Kind.HEALTHY));
    }

    @Test
    void withoutAProfileThePageSaysSoAndNoGradientFilesAreWritten() throws IOException {
        History history = train(Mlp.HiddenUnits.of("relu"), Initializer.glorotUniform(), new Adam(), 1, false);
        Path page = RunReport.write(tmp, "no profile", "784-32-16-10 relu", history, Map.of()).report();
        assertFalse(Files.exists(tmp.resolve(RunReport.GRADIENTS_FILE)));
        assertFalse(Files.exists(tmp.resolve(RunReport.LAYERS_FILE)));
        Document doc = parseXml(page);
        assertLinksResolve(doc, tmp);
        assertTrue(Files.readString(page).contains("No gradient profile"));
        assertEquals(2, elements(doc, "svg").size(), "loss and accuracy charts only");
        Diagnosis diagnosis = Diagnosis.of(history);
        assertEquals(List.of(Diagnosis.Kind.NOT_PROFILED), diagnosis.verdicts().stream().map(Diagnosis.Verdict::kind)
                .toList(), "not judged healthy: there is nothing to judge by");
        assertEquals(HtmlReport.Tone.INFO, RunReport.tone(Diagnosis.Kind.NOT_PROFILED));
        assertTrue(Files.readString(page).contains("No profile was recorded (the profiler was off)."),
                "the diagnosis's own verdict, as a callout");
    }

    /**
     * Fails unless {@code dir} holds a complete run: history.json, gradients.csv with {@code steps x tensors}
     * rows (each (global_step, layer, parameter) once), layers.csv with {@code unitRows} rows, diagnosis.txt,
     * every chart as a decodable PNG, a well-formed SVG and a CSV, and report.html that parses as XML, inlines
     * every chart and whose every link resolves.
     */
    public static void assertRunArtifacts(Path dir, int steps, int tensors, int unitRows) throws IOException {
        for (String name : List.of(RunReport.HISTORY_FILE, RunReport.GRADIENTS_FILE, RunReport.LAYERS_FILE,
                RunReport.DIAGNOSIS_FILE, RunReport.REPORT_FILE)) {
            assertTrue(Files.isRegularFile(dir.resolve(name)), () -> "missing " + dir.resolve(name));
        }
        CsvTable gradients = CsvTable.read(dir.resolve(RunReport.GRADIENTS_FILE));
        assertEquals(RunReport.GRADIENTS_HEADER, gradients.header());
        assertEquals(steps * tensors, gradients.rowCount(), "one row per step and parameter tensor");
        Set<String> keys = new HashSet<>();
        Set<String> globalSteps = new HashSet<>();
        Set<String> tensorNames = new HashSet<>();
        for (List<Object> row : gradients.rows()) {
            assertTrue(keys.add(row.get(2) + "/" + row.get(4) + "/" + row.get(5)), () -> "duplicate row " + row);
            globalSteps.add((String) row.get(2));
            tensorNames.add(row.get(4) + "/" + row.get(5));
        }
        assertEquals(steps, globalSteps.size());
        assertEquals(tensors, tensorNames.size());
        CsvTable layers = CsvTable.read(dir.resolve(RunReport.LAYERS_FILE));
        assertEquals(RunReport.LAYERS_HEADER, layers.header());
        assertEquals(unitRows, layers.rowCount(), "one row per epoch and watched layer");

        Path charts = dir.resolve(RunReport.CHARTS_DIR);
        for (String chart : RunReport.CHART_NAMES) {
            assertEquals(RunReport.CHART_WIDTH, readPng(charts.resolve(chart + ".png")).getWidth());
            parseXml(charts.resolve(chart + ".svg"));
            assertTrue(Files.isRegularFile(charts.resolve(chart + ".csv")), chart + ".csv");
        }
        assertPage(dir.resolve(RunReport.REPORT_FILE), RunReport.CHART_NAMES.size());
        List<String> pageLinks = links(parseXml(dir.resolve(RunReport.REPORT_FILE)));
        for (String file : List.of(RunReport.HISTORY_FILE, RunReport.GRADIENTS_FILE, RunReport.LAYERS_FILE,
                RunReport.DIAGNOSIS_FILE)) {
            assertTrue(pageLinks.contains(file), () -> "the page does not link " + file + ": " + pageLinks);
        }
    }

    /**
     * Fails unless {@code page} parses as XML, inlines {@code charts} SVG charts, and every link (href, src)
     * is relative and names an existing file; every linked PNG must decode and every linked SVG parse.
     */
    public static void assertPage(Path page, int charts) throws IOException {
        Document doc = parseXml(page);
        assertEquals(charts, elements(doc, "svg").size(), () -> "inline charts in " + page);
        assertLinksResolve(doc, page.getParent());
        for (String link : links(doc)) {
            Path target = page.getParent().resolve(java.net.URI.create(link).getPath());
            if (link.endsWith(".png")) {
                readPng(target);
            } else if (link.endsWith(".svg")) {
                parseXml(target);
            }
        }
    }
}
