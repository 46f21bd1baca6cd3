package dev.gradscope.report;

import java.awt.Color;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.CategoryAxis;
import org.jfree.chart.axis.CategoryLabelPositions;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.labels.StandardCategoryItemLabelGenerator;
import org.jfree.chart.plot.CategoryPlot;
import org.jfree.chart.renderer.category.BarRenderer;
import org.jfree.chart.renderer.category.StandardBarPainter;
import org.jfree.data.category.DefaultCategoryDataset;

/**
 * Grouped bars: for each category (along x) one bar per group, each group in its own colour, e.g.
 * final train and test accuracy per activation.
 *
 * <pre>{@code
 * BarChart chart = BarChart.builder()
 *         .title("Figure 5.18: final accuracy per activation")
 *         .xLabel("activation").yLabel("accuracy").yRange(0, 1)
 *         .groups("train", "test")
 *         .category("sigmoid", 0.93, 0.92)
 *         .category("relu", 0.99, 0.98)
 *         .build();
 * }</pre>
 *
 * <p>The value axis includes zero. NaN and infinite values get no bar, and the chart says which
 * under its title (also {@link #notes()}). Each bar is labelled with its value (3 significant
 * digits) when there are at most {@value #VALUE_LABEL_LIMIT} bars, unless
 * {@link Builder#valueLabels(boolean)} says otherwise. Category names are drawn slanted when there
 * are more than {@value #UPRIGHT_LIMIT} categories.
 */
public final class BarChart extends Chart {
    /** Charts with at most this many bars label each bar with its value by default. */
    public static final int VALUE_LABEL_LIMIT = 24;
    /** Charts with more categories than this draw the category names slanted. */
    public static final int UPRIGHT_LIMIT = 8;

    private final Boolean valueLabels;
    private final List<String> groups;
    private final List<String> categories;
    /** values.get(category).get(group), NaN where no value was given. */
    private final Map<String, Map<String, Double>> values;
    private final List<String> notes;

    private BarChart(Builder b) {
        super(b);
        this.valueLabels = b.valueLabels;
        this.groups = List.copyOf(b.groups);
        this.categories = List.copyOf(b.values.keySet());
        Map<String, Map<String, Double>> copy = new LinkedHashMap<>();
        b.values.forEach((category, byGroup) -> copy.put(category, Map.copyOf(byGroup)));
        this.values = copy;
        this.notes = List.copyOf(computeNotes());
    }

    public static Builder builder() {
        return new Builder();
    }

    public List<String> groups() {
        return groups;
    }

    public List<String> categories() {
        return categories;
    }

    /** The value of {@code group} in {@code category}, or NaN when none was given. */
    public double value(String category, String group) {
        Map<String, Double> byGroup = values.get(category);
        Double v = byGroup == null ? null : byGroup.get(group);
        return v == null ? Double.NaN : v;
    }

    @Override
    public List<String> notes() {
        return notes;
    }

    /** Wide format: a {@code category} column, then one column per group (empty where no value was given). */
    @Override
    public CsvTable dataTable() {
        List<String> header = new ArrayList<>();
        header.add(groups.contains("category") ? "_category" : "category");
        header.addAll(groups);
        CsvTable table = new CsvTable(header);
        for (String category : categories) {
            List<Object> row = new ArrayList<>();
            row.add(category);
            for (String group : groups) {
                row.add(values.get(category).get(group));
            }
            table.addRow(row);
        }
        return table;
    }

    private List<String> computeNotes() {
        List<String> result = new ArrayList<>();
        for (String category : categories) {
            for (String group : groups) {
                Double v = values.get(category).get(group);
                if (v != null && !Double.isFinite(v)) {
                    result.add(String.format(Locale.ROOT, "%s / %s: %s", category, group,
                            Double.isNaN(v) ? "NaN" : v > 0 ? "+infinity" : "-infinity"));
                }
            }
        }
        return result;
    }

    @Override
    JFreeChart toJFreeChart() {
        DefaultCategoryDataset dataset = new DefaultCategoryDataset();
        for (String category : categories) {
            for (String group : groups) {
                Double v = values.get(category).get(group);
                dataset.addValue(v == null || !Double.isFinite(v) ? null : v, group, category);
            }
        }
        CategoryAxis categoryAxis = new CategoryAxis(xLabel);
        ChartStyle.styleAxis(categoryAxis);
        categoryAxis.setCategoryMargin(0.2);
        if (categories.size() > UPRIGHT_LIMIT) {
            categoryAxis.setCategoryLabelPositions(CategoryLabelPositions.UP_45);
        }
        NumberAxis valueAxis = new NumberAxis(yLabel);
        ChartStyle.styleAxis(valueAxis);
        ChartStyle.styleNumberAxis(valueAxis, true);
        valueAxis.setAutoRangeIncludesZero(true);
        if (yRange != null) {
            valueAxis.setRange(yRange);
        }

        BarRenderer renderer = new BarRenderer();
        renderer.setBarPainter(new StandardBarPainter());
        renderer.setShadowVisible(false);
        renderer.setDrawBarOutline(false);
        renderer.setItemMargin(0.04);
        for (int g = 0; g < groups.size(); g++) {
            renderer.setSeriesPaint(g, ChartStyle.color(g));
        }
        int bars = categories.size() * groups.size();
        if (valueLabels != null ? valueLabels : bars <= VALUE_LABEL_LIMIT) {
            renderer.setDefaultItemLabelGenerator(new StandardCategoryItemLabelGenerator("{2}", new ChartStyle.ReadableFormat(3)));
            renderer.setDefaultItemLabelsVisible(true);
            renderer.setDefaultItemLabelFont(ChartStyle.VALUE_LABEL_FONT);
            renderer.setDefaultItemLabelPaint(ChartStyle.TEXT);
            valueAxis.setUpperMargin(0.1); // room for the labels above the tallest bar
        }
        CategoryPlot plot = new CategoryPlot(dataset, categoryAxis, valueAxis, renderer);
        ChartStyle.stylePlot(plot);
        plot.setRangeGridlinePaint(ChartStyle.GRID);
        plot.setDomainGridlinesVisible(false);
        plot.setRangeZeroBaselineVisible(true);
        plot.setRangeZeroBaselinePaint(Color.GRAY);
        return finish(plot, !groups.isEmpty());
    }

    /**
     * Collects groups, categories and values (and, from {@link Chart.Builder}, the title and labels:
     * {@code xLabel} goes under the categories, {@code yLabel} on the value axis); {@link #build()}
     * makes the immutable chart.
     */
    public static final class Builder extends Chart.Builder<Builder> {
        private Boolean valueLabels;
        private final Set<String> groups = new LinkedHashSet<>();
        private final Map<String, Map<String, Double>> values = new LinkedHashMap<>();

        private Builder() {
        }

        /** Each bar labelled with its value (true) or not (false); by default only with at most {@value BarChart#VALUE_LABEL_LIMIT} bars. */
        public Builder valueLabels(boolean labels) {
            this.valueLabels = labels;
            return this;
        }

        /** Declares the groups (bars within each category, and the legend), in this order. */
        public Builder groups(String... names) {
            for (String name : names) {
                if (name == null) {
                    throw new IllegalArgumentException("group names must not be null: " + Arrays.toString(names));
                }
                groups.add(name);
            }
            return this;
        }

        /** Adds (or replaces) the bar of {@code group} in {@code category}; a new group or category goes last. */
        public Builder value(String category, String group, double value) {
            if (category == null || group == null) {
                throw new IllegalArgumentException("a bar needs a category and a group, got " + category + " / " + group);
            }
            groups.add(group);
            values.computeIfAbsent(category, c -> new LinkedHashMap<>()).put(group, value);
            return this;
        }

        /** Adds a category with one value per declared group, in the order of {@link #groups(String...)}. */
        public Builder category(String category, double... valuesPerGroup) {
            if (valuesPerGroup.length != groups.size()) {
                throw new IllegalArgumentException("category '" + category + "' has " + valuesPerGroup.length
                        + " values but there are " + groups.size() + " groups " + groups);
            }
            if (category == null) {
                throw new IllegalArgumentException("a category needs a name");
            }
            values.computeIfAbsent(category, c -> new LinkedHashMap<>());
            int g = 0;
            for (String group : List.copyOf(groups)) {
                value(category, group, valuesPerGroup[g++]);
            }
            return this;
        }

        public BarChart build() {
            return new BarChart(this);
        }
    }
}
