package dev.gradscope.report;

import dev.gradscope.data.AtomicFiles;
import java.awt.Graphics2D;
import java.awt.Rectangle;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import javax.imageio.ImageIO;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.plot.Plot;
import org.jfree.chart.text.TextUtils;
import org.jfree.data.Range;
import org.jfree.svg.SVGGraphics2D;
import org.jfree.svg.ViewBox;

/**
 * A chart drawn from plain data: {@link LineChart} (lines over x, linear or log axes) or
 * {@link BarChart} (grouped bars). Immutable once built; each render draws afresh, so one chart may
 * be written at several sizes and from several threads.
 *
 * <p>Rendering never needs a display: the first use of a chart sets {@code java.awt.headless=true}
 * unless the property was already set. It also makes JFreeChart draw rotated text as text
 * ({@code TextUtils.setUseDrawRotatedStringWorkaround(false)}, a JVM-wide JFreeChart setting), so
 * the y axis label stays text in SVG.
 */
public abstract sealed class Chart permits LineChart, BarChart {
    static {
        if (System.getProperty("java.awt.headless") == null) {
            System.setProperty("java.awt.headless", "true");
        }
        // JFreeChart otherwise draws rotated text (the y axis label) as a TextLayout, which SVG
        // output turns into glyph outlines: unsearchable, unselectable, and large. Java 17 draws
        // rotated strings correctly, which is what the workaround was for.
        TextUtils.setUseDrawRotatedStringWorkaround(false);
    }

    /** Makes the ids in each SVG (clip paths, gradients) unique, so several can be inlined in one page. */
    private static final AtomicLong SVG_COUNTER = new AtomicLong();

    private final String title;
    /** The line under the title ({@code ""} or null when none). */
    final String subtitle;
    /** The label of the x axis (the categories of a bar chart). */
    final String xLabel;
    /** The label of the y (value) axis. */
    final String yLabel;
    /** A fixed y range, or null to fit the data. */
    final Range yRange;

    Chart(Builder<?> b) {
        this.title = b.title == null ? "" : b.title;
        this.subtitle = b.subtitle;
        this.xLabel = b.xLabel;
        this.yLabel = b.yLabel;
        this.yRange = b.yRange;
    }

    /** The title drawn at the top of the chart ({@code ""} when none). */
    public final String title() {
        return title;
    }

    /**
     * What the chart could not draw, one line per series (or bar) that lost points: NaN or infinite
     * values, and zero or negative values on a log axis. Empty when everything was drawn. The same
     * text appears on the chart under its title.
     */
    public abstract List<String> notes();

    /** The chart's data as a table, to write next to the image (see {@link #writeFiles}). */
    public abstract CsvTable dataTable();

    /** A fresh JFreeChart for one render. */
    abstract JFreeChart toJFreeChart();

    /** {@code plot} under the chart's title, subtitle and {@link #notes()}, with a legend when {@code legend}. */
    final JFreeChart finish(Plot plot, boolean legend) {
        JFreeChart chart = new JFreeChart(title.isEmpty() ? null : title, ChartStyle.TITLE_FONT, plot, legend);
        return ChartStyle.finish(chart, subtitle, notes());
    }

    /** The chart drawn on a white {@code width} x {@code height} RGB image. */
    public final BufferedImage toImage(int width, int height) {
        checkSize(width, height);
        BufferedImage image = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g2 = image.createGraphics();
        try {
            g2.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g2.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g2.setColor(java.awt.Color.WHITE);
            g2.fillRect(0, 0, width, height);
            toJFreeChart().draw(g2, new Rectangle(0, 0, width, height));
        } finally {
            g2.dispose();
        }
        return image;
    }

    /** Writes the chart as a {@code width} x {@code height} PNG, atomically; creates missing parent directories. */
    public final void writePng(Path file, int width, int height) {
        BufferedImage image = toImage(width, height);
        AtomicFiles.write(file, out -> {
            if (!ImageIO.write(image, "png", out)) {
                throw new IOException("no PNG writer in this Java runtime");
            }
        });
    }

    /**
     * Writes the chart as a standalone SVG document ({@code <?xml ...?>} and the {@link #toSvgString}
     * element, no DOCTYPE), atomically; creates missing parent directories.
     */
    public final void writeSvg(Path file, int width, int height) {
        AtomicFiles.writeString(file, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + toSvgString(width, height) + "\n");
    }

    /**
     * The chart as one {@code <svg>} element (with its namespace, {@code width}, {@code height} and a
     * {@code viewBox}, so CSS can scale it), ready to inline in an HTML or XHTML page. Text stays
     * text. Ids inside are unique to this call, so several charts can share a page.
     */
    public final String toSvgString(int width, int height) {
        checkSize(width, height);
        SVGGraphics2D g2 = new SVGGraphics2D(width, height);
        g2.setDefsKeyPrefix("gs" + SVG_COUNTER.incrementAndGet() + "_");
        toJFreeChart().draw(g2, new Rectangle(0, 0, width, height));
        return Xml.sanitize(g2.getSVGElement(null, true, new ViewBox(0, 0, width, height), null, null));
    }

    /**
     * Writes {@code baseName.png}, {@code baseName.svg} (both {@code width} x {@code height}) and
     * {@code baseName.csv} (the {@link #dataTable()}) into {@code dir}; returns the three paths in
     * that order, e.g. for {@link HtmlReport#chart(Chart, Path...)}.
     */
    public final List<Path> writeFiles(Path dir, String baseName, int width, int height) {
        Path png = dir.resolve(baseName + ".png");
        Path svg = dir.resolve(baseName + ".svg");
        Path csv = dir.resolve(baseName + ".csv");
        writePng(png, width, height);
        writeSvg(svg, width, height);
        dataTable().write(csv);
        return List.of(png, svg, csv);
    }

    private static void checkSize(int width, int height) {
        if (width <= 0 || height <= 0) {
            throw new IllegalArgumentException("chart size must be positive, got " + width + " x " + height);
        }
    }

    /**
     * What every chart's builder collects: title, subtitle, axis labels and a fixed y range. Each setter
     * returns the chart's own builder, so the calls chain with its own setters.
     *
     * @param <B> the chart's builder
     */
    public abstract static sealed class Builder<B extends Builder<B>> permits LineChart.Builder, BarChart.Builder {
        private String title = "";
        private String subtitle = "";
        private String xLabel = "";
        private String yLabel = "";
        private Range yRange;

        Builder() {
        }

        @SuppressWarnings("unchecked")
        private B self() {
            return (B) this;
        }

        /** The title drawn at the top of the chart. */
        public B title(String title) {
            this.title = title;
            return self();
        }

        /** A line under the title, e.g. the run's settings. */
        public B subtitle(String subtitle) {
            this.subtitle = subtitle;
            return self();
        }

        /** The label under the x axis (under the categories of a bar chart). */
        public B xLabel(String label) {
            this.xLabel = label;
            return self();
        }

        /** The label of the y (value) axis. */
        public B yLabel(String label) {
            this.yLabel = label;
            return self();
        }

        /**
         * A fixed y range instead of one fitted to the data (and, for bars, zero), e.g. 0 to 1 for
         * accuracies.
         */
        public B yRange(double lower, double upper) {
            if (!(lower < upper) || !Double.isFinite(lower) || !Double.isFinite(upper)) {
                throw new IllegalArgumentException("y range must be finite with lower < upper, got " + lower + " to " + upper);
            }
            this.yRange = new Range(lower, upper);
            return self();
        }

        /** The fixed y range given, or null. */
        final Range yRange() {
            return yRange;
        }
    }
}
