package dev.gradscope.report;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * A report with every kind of block, drawn from made-up numbers shaped like the chapter's
 * experiments (no training involved). {@code SampleReportTest} checks it; run {@link #main} to
 * look at it: {@code java ... dev.gradscope.report.SampleReport out/sample-report}, then
 * {@code scripts/screenshot-report.sh out/sample-report/report.html out/sample-report.png}.
 */
public final class SampleReport {
    private static final String[] ACTIVATIONS = {"sigmoid", "tanh", "softsign", "relu", "elu"};
    private static final int LAYERS = 5;
    private static final int EPOCHS = 10;

    private SampleReport() {
    }

    public static void main(String[] args) throws IOException {
        Path dir = Path.of(args.length > 0 ? args[0] : "out/sample-report");
        Path report = write(dir);
        System.out.println(report.toAbsolutePath());
    }

    /** Writes the report, its charts (PNG, SVG, CSV) and a history.json into {@code dir}; returns the page. */
    public static Path write(Path dir) throws IOException {
        Random random = new Random(42);
        Path charts = dir.resolve("charts");

        LineChart lossByLoss = LineChart.builder()
                .title("Figure 5.15: training loss per epoch, MSE vs cross-entropy")
                .subtitle("784-512-256-128-64-10, relu, Adam, batch 256 (sample numbers)")
                .xLabel("epoch").yLabel("training loss").logY(true)
                .series("categorical_crossentropy", decay(random, 0.45, 0.65))
                .series("mse", decay(random, 0.05, 0.8))
                .build();

        LineChart.Builder byActivation = LineChart.builder()
                .title("Figure 5.17: training loss per epoch for each activation")
                .xLabel("epoch").yLabel("training loss");
        BarChart.Builder accuracy = BarChart.builder()
                .title("Figure 5.18: final train and test accuracy per activation")
                .xLabel("activation").yLabel("accuracy").yRange(0.9, 1.0).groups("train", "test");
        LineChart.Builder byDepth = LineChart.builder()
                .title("Gradient norm of each layer vs depth")
                .xLabel("layer (1 = next to the input)").yLabel("mean ||dL/dW|| over the run").logY(true);
        CsvTable summary = new CsvTable("activation", "final loss", "train accuracy", "test accuracy",
                "layer 1 / layer 5 gradient", "dead units");
        for (int a = 0; a < ACTIVATIONS.length; a++) {
            String name = ACTIVATIONS[a];
            double[] loss = decay(random, 0.9 - 0.12 * a, 0.75 - 0.04 * a);
            byActivation.series(name, loss);
            double train = 0.97 + 0.005 * a + 0.002 * random.nextDouble();
            double test = train - 0.01 - 0.005 * random.nextDouble();
            accuracy.category(name, train, a == 2 ? Double.NaN : test); // a missing value, to show the note
            double[] norms = new double[LAYERS];
            for (int layer = 0; layer < LAYERS; layer++) {
                double shrink = a < 3 ? Math.pow(0.25 + 0.1 * a, LAYERS - 1 - layer) : 0.8 + 0.1 * random.nextDouble();
                norms[layer] = 0.05 * shrink;
            }
            if (name.equals("relu")) {
                norms[0] = 0; // a dead first layer: not drawable on the log axis
            }
            byDepth.series(name, norms);
            summary.addRow(name, loss[EPOCHS - 1], train, a == 2 ? null : test, norms[0] / norms[LAYERS - 1],
                    name.equals("relu") ? 37 : 0);
        }

        LineChart.Builder perStep = LineChart.builder()
                .title("Gradient norm per step, one line per layer (sigmoid)")
                .xLabel("step").yLabel("||dL/dW||").logY(true);
        int steps = 235 * EPOCHS;
        for (int layer = 1; layer <= LAYERS; layer++) {
            double[] y = new double[steps];
            for (int s = 0; s < steps; s++) {
                y[s] = 0.05 * Math.pow(0.3, LAYERS - layer) * Math.exp(-s / 1500.0) * (1 + 0.3 * random.nextGaussian() * 0.3);
            }
            if (layer == 3) {
                y[1200] = Double.NaN;
            }
            perStep.series("layer " + layer, y);
        }

        Path history = dir.resolve("runs/relu/history.json");
        Files.createDirectories(history.getParent());
        Files.writeString(history, "{\"loss\": [0.27, 0.1]}\n");

        HtmlReport report = new HtmlReport("Activations & gradient flow <sample>");
        report.paragraph("Made-up numbers shaped like the chapter's experiments, to show every part of a report: "
                        + "headings, verdicts, tables, inlined charts and links. Text such as <b> & \"quotes\" is escaped.")
                .heading("Loss: MSE vs cross-entropy")
                .chart(lossByLoss, files(lossByLoss, charts, "fig-5-15-loss-mse-vs-ce"))
                .verdict(HtmlReport.Tone.SUCCESS, "Confirmed: cross-entropy learns faster",
                        "Cross-entropy's loss falls by 99% in 10 epochs; MSE's by 88%.")
                .heading("Activations")
                .chart(byActivation.build(), files(byActivation.build(), charts, "fig-5-17-loss-by-activation"))
                .chart(accuracy.build(), 960, 480, files(accuracy.build(), charts, "fig-5-18-accuracy"))
                .table("Summary per activation", summary)
                .verdict(HtmlReport.Tone.WARNING, "Partly confirmed: ReLU keeps gradients alive, but 37 units died", null)
                .heading("Gradient flow")
                .subheading("By depth")
                .chart(byDepth.build(), files(byDepth.build(), charts, "gradient-norm-by-depth"))
                .verdict(HtmlReport.Tone.FAILURE, "Vanishing gradients with sigmoid",
                        "Layer 1 receives 1/256 of the gradient of layer 5.")
                .subheading("By step")
                .chart(perStep.build(), files(perStep.build(), charts, "gradient-norm-per-step"))
                .verdict("Steps are counted over all epochs: 235 batches of 256 per epoch.")
                .heading("Run")
                .preformatted("gradscope train --activation relu --epochs 10 \\\n    --out out/relu")
                .links(history, dir.resolve("charts"));
        Path page = dir.resolve("report.html");
        report.write(page);
        return page;
    }

    private static Path[] files(Chart chart, Path dir, String baseName) {
        return chart.writeFiles(dir, baseName, 960, 540).toArray(Path[]::new);
    }

    private static double[] decay(Random random, double start, double rate) {
        double[] y = new double[EPOCHS];
        double value = start;
        for (int e = 0; e < EPOCHS; e++) {
            y[e] = value * (1 + 0.05 * random.nextGaussian());
            value *= rate;
        }
        return y;
    }

    /** The chart files the sample writes, relative to its directory. */
    static List<String> chartBaseNames() {
        return new ArrayList<>(List.of("fig-5-15-loss-mse-vs-ce", "fig-5-17-loss-by-activation", "fig-5-18-accuracy",
                "gradient-norm-by-depth", "gradient-norm-per-step"));
    }
}
