package dev.gradscope.report;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Paint;
import java.awt.Shape;
import java.awt.Stroke;
import java.text.FieldPosition;
import java.text.NumberFormat;
import java.text.ParsePosition;
import java.util.List;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.Axis;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.DefaultDrawingSupplier;
import org.jfree.chart.plot.Plot;
import org.jfree.chart.title.LegendTitle;
import org.jfree.chart.title.TextTitle;
import org.jfree.chart.ui.HorizontalAlignment;
import org.jfree.chart.ui.RectangleEdge;
import org.jfree.chart.ui.RectangleInsets;

/** The look every chart shares: white background, fonts, palette, line styles, title and notes. */
final class ChartStyle {
    /** Matplotlib's "tab10", distinct and familiar to readers of Keras plots. */
    private static final Color[] PALETTE = {
        new Color(0x1f77b4), new Color(0xff7f0e), new Color(0x2ca02c), new Color(0xd62728),
        new Color(0x9467bd), new Color(0x8c564b), new Color(0xe377c2), new Color(0x7f7f7f),
        new Color(0xbcbd22), new Color(0x17becf),
    };
    /** After each round of the palette the line pattern changes: solid, dashed, dotted, dash-dot. */
    private static final float[][] DASHES = {null, {8f, 5f}, {2f, 4f}, {10f, 4f, 2f, 4f}};
    private static final Shape[] SHAPES = DefaultDrawingSupplier.createStandardSeriesShapes();

    static final String FONT_FAMILY = Font.SANS_SERIF;
    static final Font TITLE_FONT = new Font(FONT_FAMILY, Font.BOLD, 18);
    static final Font SUBTITLE_FONT = new Font(FONT_FAMILY, Font.PLAIN, 13);
    static final Font NOTE_FONT = new Font(FONT_FAMILY, Font.ITALIC, 12);
    static final Font AXIS_LABEL_FONT = new Font(FONT_FAMILY, Font.PLAIN, 14);
    static final Font TICK_FONT = new Font(FONT_FAMILY, Font.PLAIN, 12);
    static final Font LEGEND_FONT = new Font(FONT_FAMILY, Font.PLAIN, 13);
    static final Font VALUE_LABEL_FONT = new Font(FONT_FAMILY, Font.PLAIN, 11);
    static final Color TEXT = new Color(0x222222);
    static final Color NOTE_TEXT = new Color(0x9a3412);
    static final Color GRID = new Color(0xdddddd);
    static final Color MINOR_GRID = new Color(0xf0f0f0);
    static final Color AXIS_LINE = new Color(0x888888);

    private ChartStyle() {
    }

    static Paint color(int series) {
        return PALETTE[series % PALETTE.length];
    }

    static Stroke lineStroke(int series) {
        float[] dash = DASHES[(series / PALETTE.length) % DASHES.length];
        return new BasicStroke(2f, BasicStroke.CAP_ROUND, BasicStroke.JOIN_ROUND, 10f, dash, 0f);
    }

    /** The line of a variant of series {@code series}: the pattern after that series' own (dashed after solid). */
    static Stroke variantStroke(int series) {
        float[] dash = DASHES[(series / PALETTE.length + 1) % DASHES.length];
        return new BasicStroke(2f, BasicStroke.CAP_ROUND, BasicStroke.JOIN_ROUND, 10f, dash, 0f);
    }

    static Shape shape(int series) {
        return SHAPES[series % SHAPES.length];
    }

    static void styleAxis(Axis axis) {
        axis.setLabelFont(AXIS_LABEL_FONT);
        axis.setLabelPaint(TEXT);
        axis.setTickLabelFont(TICK_FONT);
        axis.setTickLabelPaint(TEXT);
        axis.setAxisLinePaint(AXIS_LINE);
        axis.setTickMarkPaint(AXIS_LINE);
    }

    /**
     * A linear axis: locale-independent tick labels without digit grouping ({@code 2400}, not
     * {@code 2,400} or {@code 2.400}), and room around each label so ticks stay sparse (about one
     * per 40 px upright, one per 90 px across).
     */
    static void styleNumberAxis(NumberAxis axis, boolean vertical) {
        axis.setNumberFormatOverride(new ReadableFormat(6));
        axis.setTickLabelInsets(vertical ? new RectangleInsets(9, 4, 9, 4) : new RectangleInsets(2, 14, 2, 14));
    }

    static void stylePlot(Plot plot) {
        plot.setBackgroundPaint(Color.WHITE);
        plot.setOutlinePaint(AXIS_LINE);
        plot.setInsets(new RectangleInsets(8, 8, 8, 16));
        plot.setNoDataMessage("No data");
        plot.setNoDataMessageFont(SUBTITLE_FONT);
    }

    /** Title, subtitle, notes (what was not drawn, in a warning colour) and legend. */
    static JFreeChart finish(JFreeChart chart, String subtitle, List<String> notes) {
        chart.setBackgroundPaint(Color.WHITE);
        chart.setPadding(new RectangleInsets(8, 8, 8, 8));
        TextTitle title = chart.getTitle();
        if (title != null) {
            title.setFont(TITLE_FONT);
            title.setPaint(TEXT);
        }
        if (subtitle != null && !subtitle.isEmpty()) {
            TextTitle sub = new TextTitle(subtitle, SUBTITLE_FONT);
            sub.setPaint(TEXT);
            chart.addSubtitle(sub);
        }
        if (!notes.isEmpty()) {
            TextTitle note = new TextTitle("Not drawn \u2014 " + String.join("; ", notes), NOTE_FONT);
            note.setPaint(NOTE_TEXT);
            note.setTextAlignment(HorizontalAlignment.CENTER);
            note.setPadding(new RectangleInsets(2, 12, 2, 12));
            chart.addSubtitle(note);
        }
        LegendTitle legend = chart.getLegend();
        if (legend != null) {
            legend.setItemFont(LEGEND_FONT);
            legend.setItemPaint(TEXT);
            legend.setBackgroundPaint(Color.WHITE);
            legend.setFrame(org.jfree.chart.block.BlockBorder.NONE);
            legend.setPosition(RectangleEdge.BOTTOM);
        }
        return chart;
    }

    /** {@link NumberText#readable(double, int)} as a {@link NumberFormat}, for tick and bar labels. */
    static final class ReadableFormat extends NumberFormat {
        private static final long serialVersionUID = 1L;
        private final int significantDigits;

        ReadableFormat(int significantDigits) {
            this.significantDigits = significantDigits;
        }

        @Override
        public StringBuffer format(double number, StringBuffer toAppendTo, FieldPosition pos) {
            return toAppendTo.append(NumberText.readable(number, significantDigits));
        }

        @Override
        public StringBuffer format(long number, StringBuffer toAppendTo, FieldPosition pos) {
            return toAppendTo.append(number);
        }

        @Override
        public Number parse(String source, ParsePosition parsePosition) {
            throw new UnsupportedOperationException("labels are only formatted");
        }
    }
}
