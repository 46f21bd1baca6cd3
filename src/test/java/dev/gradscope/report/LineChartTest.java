package dev.gradscope.report;

import static dev.gradscope.report.Documents.parseXml;
import static dev.gradscope.report.Documents.readPng;
import static dev.gradscope.report.Documents.svgTexts;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.w3c.dom.Document;

class LineChartTest {
    @TempDir
    Path dir;

    private static final double[] CE_LOSS = {0.42, 0.16, 0.11, 0.08, 0.06, 0.05, 0.04, 0.03, 0.03, 0.02};
    private static final double[] MSE_LOSS = {0.07, 0.03, 0.02, 0.016, 0.013, 0.011, 0.01, 0.009, 0.008, 0.007};

    private static LineChart lossChart() {
        return LineChart.builder()
                .title("Figure 5.15: training loss per epoch")
                .xLabel("epoch").yLabel("training loss")
                .series("categorical_crossentropy", CE_LOSS)
                .series("mse", MSE_LOSS)
                .build();
    }

    /** The text of every SVG text element joined by newlines, for "contains" checks. */
    private static String svgText(Chart chart) {
        return String.join("\n", svgTexts(parseXml(chart.toSvgString(800, 450))));
    }

    /** Writes PNG and SVG and checks both read back: the PNG at its size, the SVG as XML. */
    private void assertRenders(Chart chart) throws IOException {
        Path png = dir.resolve("chart.png");
        Path svg = dir.resolve("chart.svg");
        chart.writePng(png, 640, 400);
        chart.writeSvg(svg, 640, 400);
        BufferedImage image = readPng(png);
        assertEquals(640, image.getWidth());
        assertEquals(400, image.getHeight());
        parseXml(svg);
    }

    @Test
    void pngDecodesAtTheRequestedSize() throws IOException {
        LineChart chart = lossChart();
        for (int[] size : new int[][] {{960, 540}, {333, 217}, {1, 1}}) {
            Path png = dir.resolve("loss-" + size[0] + ".png");
            chart.writePng(png, size[0], size[1]);
            BufferedImage image = readPng(png);
            assertEquals(size[0], image.getWidth());
            assertEquals(size[1], image.getHeight());
        }
    }

    @Test
    void pngHasAWhiteBackgroundAndColouredLines() throws IOException {
        Path png = dir.resolve("loss.png");
        lossChart().writePng(png, 800, 450);
        BufferedImage image = readPng(png);
        assertEquals(0xffffff, image.getRGB(2, 2) & 0xffffff, "corner pixel is not white");
        boolean coloured = false;
        for (int y = 0; y < image.getHeight() && !coloured; y++) {
            for (int x = 0; x < image.getWidth() && !coloured; x++) {
                int rgb = image.getRGB(x, y);
                int r = (rgb >> 16) & 0xff;
                int g = (rgb >> 8) & 0xff;
                int b = rgb & 0xff;
                coloured = Math.max(r, Math.max(g, b)) - Math.min(r, Math.min(g, b)) > 100;
            }
        }
        assertTrue(coloured, "no saturated (series) colour anywhere in the image");
    }

    @Test
    void aVariantTakesItsBaseSeriesColourWithTheNextLinePattern() {
        String svg = LineChart.builder().series("sigmoid", CE_LOSS).series("relu", MSE_LOSS)
                .series("sigmoid + batch norm", MSE_LOSS).variantOf("sigmoid").build().toSvgString(800, 450);
        // The series' lines (2 px wide, in the legend and in the plot): colour, and dashed or not.
        Matcher line = Pattern.compile("style='stroke-width:2\\.0;stroke:(rgb\\([0-9,]+\\))([^']*)'").matcher(svg);
        Set<String> styles = new TreeSet<>();
        while (line.find()) {
            styles.add(line.group(1) + (line.group(2).contains("stroke-dasharray") ? " dashed" : " solid"));
        }
        assertEquals(Set.of("rgb(31,119,180) solid", "rgb(255,127,14) solid", "rgb(31,119,180) dashed"), styles);
        assertThrows(IllegalArgumentException.class, () -> LineChart.builder().series("a", CE_LOSS).variantOf("b"));
        assertThrows(IllegalArgumentException.class, () -> LineChart.builder().series("a", CE_LOSS).variantOf("a"));
        assertThrows(IllegalArgumentException.class, () -> LineChart.builder().variantOf("a"));
    }

    @Test
    void svgParsesAsXmlAndNamesTheTitleAxesAndEverySeries() throws IOException {
        LineChart chart = lossChart();
        Path svg = dir.resolve("loss.svg");
        chart.writeSvg(svg, 800, 450);
        String file = Files.readString(svg, StandardCharsets.UTF_8);
        assertTrue(file.startsWith("<?xml"), "standalone SVG lacks the XML declaration");
        assertFalse(file.contains("<!DOCTYPE"), "a DOCTYPE would make XML readers fetch the SVG DTD");
        Document doc = parseXml(file);
        assertEquals("svg", doc.getDocumentElement().getLocalName());
        assertEquals("http://www.w3.org/2000/svg", doc.getDocumentElement().getNamespaceURI());
        String text = String.join("\n", svgTexts(doc));
        for (String expected : List.of("Figure 5.15: training loss per epoch", "epoch", "training loss",
                "categorical_crossentropy", "mse")) {
            assertTrue(text.contains(expected), () -> "SVG text lacks \"" + expected + "\": " + text);
        }
    }

    @Test
    void svgStringIsOneElementWithAViewBoxAndIdsUniqueToTheCall() {
        LineChart chart = lossChart();
        String first = chart.toSvgString(640, 360);
        String second = chart.toSvgString(640, 360);
        assertTrue(first.startsWith("<svg"), first.substring(0, 40));
        Document a = parseXml(first);
        assertEquals(List.of("0", "0", "640", "360"),
                List.of(a.getDocumentElement().getAttribute("viewBox").replace(".0", "").split(" ")),
                "a viewBox lets CSS scale the inlined chart");
        Document b = parseXml(second);
        List<String> idsA = Documents.elements(a, "clipPath").stream().map(e -> e.getAttribute("id")).toList();
        List<String> idsB = Documents.elements(b, "clipPath").stream().map(e -> e.getAttribute("id")).toList();
        assertFalse(idsA.isEmpty(), "expected clip paths in a JFreeChart SVG");
        for (String id : idsA) {
            assertFalse(idsB.contains(id), "id " + id + " repeats in a second render; two inlined charts would clash");
        }
    }

    @Test
    void markupAndControlCharactersInNamesStayWellFormed() {
        LineChart chart = LineChart.builder()
                .title("loss <before> & \"after\"")
                .xLabel("x < 1").yLabel("y & z")
                .series("a<b & c>'d'\u0001", new double[] {1, 2, 3})
                .build();
        String text = svgText(chart);
        assertTrue(text.contains("loss <before> & \"after\""), text);
        assertTrue(text.contains("a<b & c>'d'"), text);
    }

    @Test
    void logAxisLeavesOutZerosNegativesNanAndInfinityAndSaysSo() throws IOException {
        double[] norms = {1e-3, 0, -2, Double.NaN, Double.POSITIVE_INFINITY, 1e-5, 1e-4, Double.NEGATIVE_INFINITY};
        LineChart chart = LineChart.builder()
                .title("gradient norm per step").xLabel("step").yLabel("||dL/dW||").logY(true)
                .series("layer 1", norms)
                .series("layer 2", new double[] {1, 2, 3, 4, 5, 6, 7, 8})
                .build();
        assertRenders(chart);
        assertEquals(List.of("layer 1: 5 of 8 points (2 zero or negative on the log y axis, 1 NaN, 2 infinite)"),
                chart.notes());
        String text = svgText(chart);
        assertTrue(text.contains("Not drawn"), () -> "the chart does not say that points were left out: " + text);
        assertTrue(text.contains("layer 1: 5 of 8 points"), text);
        assertTrue(text.contains("(log scale)"), () -> "the log axis is not labelled as such: " + text);
    }

    @Test
    void linearAxisLeavesOutNanAndInfinityButDrawsZerosAndNegatives() throws IOException {
        LineChart chart = LineChart.builder()
                .series("s", new double[] {0, -1, Double.NaN, 2, Double.POSITIVE_INFINITY})
                .build();
        assertRenders(chart);
        assertEquals(List.of("s: 2 of 5 points (1 NaN, 1 infinite)"), chart.notes());
    }

    @Test
    void logXAxisLeavesOutNonPositiveX() throws IOException {
        LineChart chart = LineChart.builder().logX(true).logY(true)
                .series("s", new double[] {0, 1, 10, 100}, new double[] {5, 4, 3, 2})
                .build();
        assertRenders(chart);
        assertEquals(List.of("s: 1 of 4 points (1 zero or negative on a log axis)"), chart.notes());
    }

    @Test
    void drawsDegenerateData() throws IOException {
        double nan = Double.NaN;
        List<LineChart> charts = List.of(
                LineChart.builder().series("one", new double[] {0.5}).build(),
                LineChart.builder().logY(true).series("one", new double[] {0.5}).build(),
                LineChart.builder().logY(true).series("zero", new double[] {0}).build(),
                LineChart.builder().logY(true).series("none", new double[] {0, -1, nan}).build(),
                LineChart.builder().series("all nan", new double[] {nan, nan}).build(),
                LineChart.builder().series("constant", new double[] {3, 3, 3}).build(),
                LineChart.builder().logY(true).series("constant", new double[] {3, 3, 3}).build(),
                LineChart.builder().series("empty", new double[0]).build(),
                LineChart.builder().logY(true).series("empty", new double[0]).build(),
                LineChart.builder().title("no series").build(),
                LineChart.builder().logY(true).series("huge span", new double[] {1e-300, 1e300, Double.MIN_VALUE}).build(),
                LineChart.builder().logY(true).series("tiny span", new double[] {1.0, 1.0 + 1e-12}).build(),
                LineChart.builder().series("x order", new double[] {3, 1, 2}, new double[] {1, 2, 3}).build());
        for (LineChart chart : charts) {
            assertRenders(chart);
        }
        assertEquals(List.of("zero: all 1 point (1 zero or negative on the log y axis)"), charts.get(2).notes());
    }

    @Test
    void thousandsOfStepsAndManySeriesDraw() throws IOException {
        LineChart.Builder builder = LineChart.builder().logY(true).xLabel("step");
        for (int layer = 0; layer < 23; layer++) {
            double[] y = new double[3000];
            for (int i = 0; i < y.length; i++) {
                y[i] = Math.exp(-layer) * (1 + 0.5 * Math.sin(i * 0.01 + layer));
            }
            builder.series("layer " + layer, y);
        }
        LineChart chart = builder.build();
        assertRenders(chart);
        assertTrue(chart.toSvgString(800, 450).length() < 5_000_000, "SVG of 69k points should stay a few MB");
    }

    @Test
    void defaultXIsTheEpochNumberFromOne() {
        LineChart chart = LineChart.builder().series("loss", List.of(0.5, 0.25, 0.125)).build();
        CsvTable data = chart.dataTable();
        assertEquals(List.of("series", "x", "y"), data.header());
        assertEquals(List.of("loss", 1.0, 0.5), data.row(0));
        assertEquals(List.of("loss", 3.0, 0.125), data.row(2));
    }

    @Test
    void dataTableKeepsEveryPointIncludingThoseNotDrawn() {
        LineChart chart = LineChart.builder().logY(true)
                .series("a", new double[] {1, 2}, new double[] {0, Double.NaN})
                .series("b", new double[] {1}, new double[] {3})
                .build();
        CsvTable data = chart.dataTable();
        assertEquals(3, data.rowCount());
        assertEquals(List.of("a", "a", "b"), data.column("series"));
        assertEquals("a,2.0,NaN", data.toCsv().split("\r\n")[2]);
    }

    @Test
    void rejectsMismatchedLengthsDuplicateNamesAndBadRanges() {
        IllegalArgumentException lengths = assertThrows(IllegalArgumentException.class,
                () -> LineChart.builder().series("relu", new double[3], new double[4]));
        assertTrue(lengths.getMessage().contains("relu") && lengths.getMessage().contains("3")
                && lengths.getMessage().contains("4"), lengths.getMessage());
        LineChart.Builder twice = LineChart.builder().series("relu", new double[1]);
        assertThrows(IllegalArgumentException.class, () -> twice.series("relu", new double[1]));
        assertThrows(IllegalArgumentException.class, () -> LineChart.builder().yRange(1, 1));
        assertThrows(IllegalArgumentException.class, () -> LineChart.builder().logY(true).yRange(0, 1).build());
        assertThrows(IllegalArgumentException.class, () -> lossChart().writePng(dir.resolve("x.png"), 0, 10));
    }

    @Test
    void copiesTheCallersArrays() {
        double[] y = {1, 2, 3};
        LineChart chart = LineChart.builder().series("s", y).build();
        y[0] = 99;
        assertEquals(1.0, chart.dataTable().row(0).get(2));
    }

    @Test
    void writesThroughATemporaryFileAndReplacesTheOldOne() throws IOException {
        Path png = dir.resolve("nested/dir/loss.png");
        LineChart chart = lossChart();
        chart.writePng(png, 200, 100);
        chart.writePng(png, 300, 150);
        assertEquals(300, readPng(png).getWidth());
        try (Stream<Path> files = Files.list(png.getParent())) {
            assertEquals(List.of(png), files.toList(), "temporary files left behind");
        }
    }

    @Test
    void writeFilesWritesPngSvgAndCsvSideBySide() throws IOException {
        List<Path> files = lossChart().writeFiles(dir, "fig-5-15", 640, 360);
        assertEquals(List.of(dir.resolve("fig-5-15.png"), dir.resolve("fig-5-15.svg"), dir.resolve("fig-5-15.csv")), files);
        assertEquals(640, readPng(files.get(0)).getWidth());
        parseXml(files.get(1));
        assertEquals(20, CsvTable.read(files.get(2)).rowCount());
    }

    @Test
    void renderingNeedsNoDisplay() {
        lossChart().toImage(10, 10);
        assertEquals("true", System.getProperty("java.awt.headless"));
    }

    @Test
    void renderingTwiceGivesTheSamePicture() {
        BufferedImage a = lossChart().toImage(300, 200);
        BufferedImage b = lossChart().toImage(300, 200);
        for (int y = 0; y < 200; y += 7) {
            for (int x = 0; x < 300; x += 7) {
                assertEquals(a.getRGB(x, y), b.getRGB(x, y), "pixel " + x + "," + y);
            }
        }
    }
}
