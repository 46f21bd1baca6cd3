package dev.gradscope.report;

import static dev.gradscope.report.Documents.parseXml;
import static dev.gradscope.report.Documents.readPng;
import static dev.gradscope.report.Documents.svgTexts;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BarChartTest {
    @TempDir
    Path dir;

    private static BarChart accuracyChart() {
        return BarChart.builder()
                .title("Figure 5.18: final accuracy per activation")
                .xLabel("activation").yLabel("accuracy").yRange(0, 1)
                .groups("train", "test")
                .category("sigmoid", 0.9712, 0.9655)
                .category("tanh", 0.9871, 0.9745)
                .category("softsign", 0.9850, 0.9731)
                .category("relu", 0.9961, 0.9812)
                .category("elu", 0.9944, 0.9801)
                .build();
    }

    @Test
    void pngDecodesAtTheRequestedSize() throws IOException {
        Path png = dir.resolve("accuracy.png");
        accuracyChart().writePng(png, 720, 480);
        BufferedImage image = readPng(png);
        assertEquals(720, image.getWidth());
        assertEquals(480, image.getHeight());
    }

    @Test
    void svgNamesEveryCategoryAndGroupAndLabelsTheBars() {
        String text = String.join("\n", svgTexts(parseXml(accuracyChart().toSvgString(800, 450))));
        for (String expected : List.of("Figure 5.18: final accuracy per activation", "sigmoid", "tanh", "softsign",
                "relu", "elu", "train", "test", "accuracy", "0.981", "0.971")) {
            assertTrue(text.contains(expected), () -> "SVG text lacks \"" + expected + "\": " + text);
        }
    }

    @Test
    void nanAndInfiniteValuesGetNoBarAndAreNamed() throws IOException {
        BarChart chart = BarChart.builder()
                .groups("train", "test")
                .category("relu", 0.99, Double.NaN)
                .category("step", Double.NEGATIVE_INFINITY, 0.1)
                .build();
        chart.writePng(dir.resolve("bars.png"), 400, 300);
        assertEquals(List.of("relu / test: NaN", "step / train: -infinity"), chart.notes());
        String text = String.join("\n", svgTexts(parseXml(chart.toSvgString(600, 400))));
        assertTrue(text.contains("Not drawn") && text.contains("relu / test: NaN"), text);
    }

    @Test
    void valuesMayComeOneByOneAndMissingOnesStayEmpty() {
        BarChart chart = BarChart.builder()
                .value("relu", "train", 0.99)
                .value("elu", "test", 0.97)
                .value("relu", "test", 0.98)
                .build();
        assertEquals(List.of("train", "test"), chart.groups());
        assertEquals(List.of("relu", "elu"), chart.categories());
        assertTrue(Double.isNaN(chart.value("elu", "train")));
        assertEquals("category,train,test\r\nrelu,0.99,0.98\r\nelu,,0.97\r\n", chart.dataTable().toCsv());
        chart.toImage(300, 200);
    }

    @Test
    void manyCategoriesNegativeValuesAndEmptyChartsDraw() {
        BarChart.Builder many = BarChart.builder().groups("train", "test");
        for (int i = 0; i < 25; i++) {
            many.category("activation_number_" + i, i / 25.0, -i / 50.0);
        }
        many.build().toImage(900, 500);
        BarChart.builder().build().toImage(300, 200);
        BarChart.builder().groups("only").category("one", 5).build().toImage(300, 200);
        parseXml(BarChart.builder().build().toSvgString(300, 200));
    }

    @Test
    void aCategoryNeedsOneValuePerGroup() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> BarChart.builder().groups("train", "test").category("relu", 0.9));
        assertTrue(e.getMessage().contains("relu") && e.getMessage().contains("1 values")
                && e.getMessage().contains("2 groups"), e.getMessage());
    }

    @Test
    void groupOrderIsDeclarationOrder() {
        BarChart chart = BarChart.builder().groups("test", "train").category("relu", 1, 2).build();
        assertEquals(List.of("test", "train"), chart.groups());
        assertEquals(1.0, chart.value("relu", "test"));
        assertEquals(Arrays.asList("relu", 1.0, 2.0), chart.dataTable().row(0));
    }
}
