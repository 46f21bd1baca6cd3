package dev.gradscope.report;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.axis.ValueAxis;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.data.Range;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

/**
 * Lines of y over x, one per named series, on linear or base-10 log axes: losses per epoch, gradient
 * norms per step or per layer.
 *
 * <pre>{@code
 * LineChart chart = LineChart.builder()
 *         .title("Figure 5.17: training loss per epoch")
 *         .xLabel("epoch").yLabel("training loss").logY(true)
 *         .series("sigmoid", sigmoidLoss)          // x = 1, 2, ..., n
 *         .series("relu", epochs, reluLoss)
 *         .build();
 * chart.writePng(out.resolve("loss.png"), 960, 540);
 * }</pre>
 *
 * <p>Points that cannot be drawn are left out and the line breaks there: NaN and infinite values,
 * and zero or negative values on a log axis. The chart says under its title how many points of
 * which series were left out, and why (also {@link #notes()}). A series of one point, an empty
 * series and a chart with no series all draw. Series are told apart by colour, then (after ten) by
 * line pattern; markers are drawn when every series has at most {@value #MARKER_LIMIT} points,
 * unless {@link Builder#markers(boolean)} says otherwise. An x axis whose values are all whole
 * numbers gets whole-number ticks.
 */
public final class LineChart extends Chart {
    /** Series with at most this many points get markers by default. */
    public static final int MARKER_LIMIT = 30;

    private final boolean logX;
    private final boolean logY;
    private final Boolean markers;
    private final List<Series> series;
    private final List<String> notes;

    /**
     * @param style   which colour, marker and line pattern it gets ({@link ChartStyle}): its index, or the index of
     *                the series it is a variant of
     * @param variant whether it is drawn as a variant: the next line pattern after its style's
     */
    private record Series(String name, double[] x, double[] y, int style, boolean variant) {
    }

    private LineChart(Builder b) {
        super(b);
        this.logX = b.logX;
        this.logY = b.logY;
        this.markers = b.markers;
        this.series = List.copyOf(b.series);
        this.notes = List.copyOf(computeNotes());
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Names the series, in the order added. */
    public List<String> seriesNames() {
        return series.stream().map(Series::name).toList();
    }

    @Override
    public List<String> notes() {
        return notes;
    }

    /** Long format, one row per point as given (including points not drawn): {@code series, x, y}. */
    @Override
    public CsvTable dataTable() {
        CsvTable table = new CsvTable("series", "x", "y");
        for (Series s : series) {
            for (int i = 0; i < s.x.length; i++) {
                table.addRow(s.name, s.x[i], s.y[i]);
            }
        }
        return table;
    }

    private boolean drawable(double v, boolean log) {
        return Double.isFinite(v) && (!log || v > 0);
    }

    private List<String> computeNotes() {
        List<String> result = new ArrayList<>();
        for (Series s : series) {
            int notPositive = 0;
            int nan = 0;
            int infinite = 0;
            int skipped = 0;
            for (int i = 0; i < s.x.length; i++) {
                boolean skip = false;
                for (int axis = 0; axis < 2; axis++) {
                    double v = axis == 0 ? s.x[i] : s.y[i];
                    boolean log = axis == 0 ? logX : logY;
                    if (Double.isNaN(v)) {
                        nan++;
                    } else if (Double.isInfinite(v)) {
                        infinite++;
                    } else if (log && v <= 0) {
                        notPositive++;
                    } else {
                        continue;
                    }
                    skip = true;
                    break;
                }
                if (skip) {
                    skipped++;
                }
            }
            if (skipped == 0) {
                continue;
            }
            List<String> why = new ArrayList<>();
            if (notPositive > 0) {
                String axes = logX && logY ? "a log axis" : logX ? "the log x axis" : "the log y axis";
                why.add(notPositive + " zero or negative on " + axes);
            }
            if (nan > 0) {
                why.add(nan + " NaN");
            }
            if (infinite > 0) {
                why.add(infinite + " infinite");
            }
            String count = skipped == s.x.length ? "all " + skipped : skipped + " of " + s.x.length;
            result.add(String.format(Locale.ROOT, "%s: %s point%s (%s)", s.name, count,
                    s.x.length == 1 ? "" : "s", String.join(", ", why)));
        }
        return result;
    }

    @Override
    JFreeChart toJFreeChart() {
        XYSeriesCollection dataset = new XYSeriesCollection();
        double yMin = Double.POSITIVE_INFINITY;
        double yMax = Double.NEGATIVE_INFINITY;
        double xMin = Double.POSITIVE_INFINITY;
        double xMax = Double.NEGATIVE_INFINITY;
        boolean wholeX = true;
        int longest = 0;
        for (Series s : series) {
            XYSeries xy = new XYSeries(s.name, false, true);
            double lastX = Double.NaN;
            for (int i = 0; i < s.x.length; i++) {
                double x = s.x[i];
                double y = s.y[i];
                wholeX &= !Double.isFinite(x) || x == Math.rint(x);
                if (!drawable(x, logX)) {
                    if (!Double.isNaN(lastX)) {
                        xy.add(lastX, null); // nowhere to put the point: break the line after the last one
                    }
                    continue;
                }
                lastX = x;
                if (!drawable(y, logY)) {
                    xy.add(x, null); // a gap: the line breaks here
                    continue;
                }
                xy.add(x, y);
                xMin = Math.min(xMin, x);
                xMax = Math.max(xMax, x);
                yMin = Math.min(yMin, y);
                yMax = Math.max(yMax, y);
            }
            longest = Math.max(longest, s.x.length);
            dataset.addSeries(xy);
        }

        ValueAxis xAxis = axis(xLabel, logX);
        ValueAxis yAxis = axis(yLabel, logY);
        if (xAxis instanceof NumberAxis numberAxis) {
            ChartStyle.styleNumberAxis(numberAxis, false);
            numberAxis.setAutoRangeIncludesZero(false);
            if (wholeX) {
                numberAxis.setStandardTickUnits(NumberAxis.createIntegerTickUnits());
            }
        }
        if (yAxis instanceof NumberAxis numberAxis) {
            ChartStyle.styleNumberAxis(numberAxis, true);
            numberAxis.setAutoRangeIncludesZero(false);
        }
        fitRange(xAxis, logX, xMin, xMax, null);
        fitRange(yAxis, logY, yMin, yMax, yRange);

        XYLineAndShapeRenderer renderer = new XYLineAndShapeRenderer(true, markers != null ? markers : longest <= MARKER_LIMIT);
        renderer.setDrawSeriesLineAsPath(true); // one path per series: small SVGs even for thousands of steps
        for (int i = 0; i < series.size(); i++) {
            Series s = series.get(i);
            renderer.setSeriesPaint(i, ChartStyle.color(s.style));
            renderer.setSeriesStroke(i, s.variant ? ChartStyle.variantStroke(s.style) : ChartStyle.lineStroke(s.style));
            renderer.setSeriesShape(i, ChartStyle.shape(s.style));
        }
        XYPlot plot = new XYPlot(dataset, xAxis, yAxis, renderer);
        ChartStyle.stylePlot(plot);
        plot.setDomainGridlinePaint(ChartStyle.GRID);
        plot.setRangeGridlinePaint(ChartStyle.GRID);
        plot.setDomainMinorGridlinesVisible(logX);
        plot.setRangeMinorGridlinesVisible(logY);
        plot.setDomainMinorGridlinePaint(ChartStyle.MINOR_GRID);
        plot.setRangeMinorGridlinePaint(ChartStyle.MINOR_GRID);
        return finish(plot, !series.isEmpty());
    }

    private static ValueAxis axis(String label, boolean log) {
        String text = label == null ? "" : label;
        ValueAxis axis;
        if (log) {
            if (!text.toLowerCase(Locale.ROOT).contains("log")) {
                text = text.isEmpty() ? "log scale" : text + " (log scale)";
            }
            axis = new ReadableLogAxis(text);
        } else {
            axis = new NumberAxis(text);
        }
        ChartStyle.styleAxis(axis);
        return axis;
    }

    /**
     * Sets the axis range: the given one, or one around the drawn data with a margin (on log axes a
     * margin in decades; a single value gets half a decade or 10% either side). Leaves JFreeChart's
     * automatic range when there is nothing to draw.
     */
    private static void fitRange(ValueAxis axis, boolean log, double min, double max, Range fixed) {
        if (fixed != null) {
            axis.setRange(fixed);
            return;
        }
        if (!(min <= max)) {
            if (log) {
                axis.setRange(new Range(0.1, 10)); // nothing drawable: an empty decade either side of 1
            }
            return;
        }
        if (log) {
            double lo = Math.log10(min);
            double hi = Math.log10(max);
            double margin = hi > lo ? 0.05 * (hi - lo) : 0.5;
            axis.setRange(new Range(Math.pow(10, lo - margin), Math.pow(10, hi + margin)));
        } else if (min == max) {
            double pad = min == 0 ? 1 : 0.1 * Math.abs(min);
            axis.setRange(new Range(min - pad, max + pad));
        }
    }

    /**
     * Collects a chart's axes and series (the title and labels: {@link Chart.Builder});
     * {@link #build()} makes the immutable chart.
     */
    public static final class Builder extends Chart.Builder<Builder> {
        private boolean logX;
        private boolean logY;
        private Boolean markers;
        private final List<Series> series = new ArrayList<>();
        private final Set<String> names = new HashSet<>();

        private Builder() {
        }

        /** A base-10 log x axis; x values that are zero or negative are not drawn. */
        public Builder logX(boolean log) {
            this.logX = log;
            return this;
        }

        /** A base-10 log y axis; y values that are zero or negative are not drawn. */
        public Builder logY(boolean log) {
            this.logY = log;
            return this;
        }

        /** Markers at every point (true) or none (false); by default only when no series is longer than {@value LineChart#MARKER_LIMIT}. */
        public Builder markers(boolean markers) {
            this.markers = markers;
            return this;
        }

        /** Adds a line through the points (x[i], y[i]) in the order given; the arrays are copied. */
        public Builder series(String name, double[] x, double[] y) {
            if (name == null) {
                throw new IllegalArgumentException("a series needs a name");
            }
            if (x.length != y.length) {
                throw new IllegalArgumentException("series '" + name + "' has " + x.length + " x values but "
                        + y.length + " y values");
            }
            if (!names.add(name)) {
                throw new IllegalArgumentException("series '" + name + "' was added twice");
            }
            series.add(new Series(name, x.clone(), y.clone(), series.size(), false));
            return this;
        }

        /**
         * Draws the series added last as a variant of the series named {@code base}: in its colour and marker, with
         * the next line pattern (dashed where {@code base} is solid), e.g. a run with a cure beside the same run
         * without.
         */
        public Builder variantOf(String base) {
            if (series.isEmpty()) {
                throw new IllegalArgumentException("variantOf('" + base + "') needs a series added before it");
            }
            Series last = series.get(series.size() - 1);
            int index = seriesNamesAdded().indexOf(base);
            if (index < 0 || index == series.size() - 1) {
                throw new IllegalArgumentException("series '" + last.name + "' cannot be a variant of '" + base
                        + "': " + (index < 0 ? "no such series; added: " + seriesNamesAdded() : "itself"));
            }
            series.set(series.size() - 1, new Series(last.name, last.x, last.y, series.get(index).style, true));
            return this;
        }

        private List<String> seriesNamesAdded() {
            return series.stream().map(Series::name).toList();
        }

        /** Adds a line through (1, y[0]), (2, y[1]), ..., (n, y[n-1]): one value per epoch, numbered from 1 as Keras prints them. */
        public Builder series(String name, double[] y) {
            double[] x = new double[y.length];
            for (int i = 0; i < x.length; i++) {
                x[i] = i + 1;
            }
            return series(name, x, y);
        }

        /** {@link #series(String, double[])} for a list, e.g. {@code History.get("loss")}. */
        public Builder series(String name, List<? extends Number> y) {
            return series(name, y.stream().mapToDouble(v -> v == null ? Double.NaN : v.doubleValue()).toArray());
        }

        public LineChart build() {
            if (yRange() != null && logY && yRange().getLowerBound() <= 0) {
                throw new IllegalArgumentException("a log y axis needs a positive range, got " + yRange());
            }
            return new LineChart(this);
        }
    }
}
