package dev.gradscope.report;

import java.awt.Graphics2D;
import java.awt.geom.Rectangle2D;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import org.jfree.chart.axis.AxisState;
import org.jfree.chart.axis.LogAxis;
import org.jfree.chart.axis.NumberTick;
import org.jfree.chart.axis.TickType;
import org.jfree.chart.axis.ValueTick;
import org.jfree.chart.ui.RectangleEdge;
import org.jfree.chart.ui.TextAnchor;
import org.jfree.data.Range;

/**
 * A base-10 log axis whose ticks read well over any span: 1-2-5 steps ({@code 0.1, 0.2, 0.5, 1})
 * over a few decades, powers of ten ({@code 1e-6, 1e-5, ...}) over many, every n-th power over
 * very many, plain steps ({@code 0.4, 0.6, 0.8}) within less than a decade. Labels are plain
 * numbers, not superscripts, so they look the same in PNG and SVG.
 */
final class ReadableLogAxis extends LogAxis {
    private static final long serialVersionUID = 1L;
    private static final double[] ONE_TWO_FIVE = {1, 2, 5};
    private static final int[] DECADE_STRIDES = {1, 2, 3, 5, 10, 20, 50, 100};
    /** Pixels per labelled tick: a label's height (vertical axis) or width (horizontal axis), with room. */
    private static final double VERTICAL_SPACING = 36;
    private static final double HORIZONTAL_SPACING = 80;

    ReadableLogAxis(String label) {
        super(label);
        setBase(10);
        setMinorTickMarksVisible(false);
    }

    @Override
    public List<ValueTick> refreshTicks(Graphics2D g2, AxisState state, Rectangle2D dataArea, RectangleEdge edge) {
        Range range = getRange();
        double lo = range.getLowerBound();
        double hi = range.getUpperBound();
        List<ValueTick> ticks = new ArrayList<>();
        if (!(lo > 0) || !(hi > lo) || Double.isInfinite(hi)) {
            return ticks;
        }
        boolean vertical = RectangleEdge.isLeftOrRight(edge);
        double length = vertical ? dataArea.getHeight() : dataArea.getWidth();
        int maxTicks = Math.max(2, (int) (length / (vertical ? VERTICAL_SPACING : HORIZONTAL_SPACING)));
        TextAnchor anchor = edge == RectangleEdge.LEFT ? TextAnchor.CENTER_RIGHT
                : edge == RectangleEdge.RIGHT ? TextAnchor.CENTER_LEFT
                : edge == RectangleEdge.TOP ? TextAnchor.BOTTOM_CENTER
                : TextAnchor.TOP_CENTER;
        double[][] majorAndMinor = ticks(lo, hi, maxTicks);
        for (double v : majorAndMinor[0]) {
            ticks.add(new NumberTick(TickType.MAJOR, v, NumberText.readable(v, 3), anchor, anchor, 0.0));
        }
        for (double v : majorAndMinor[1]) {
            ticks.add(new NumberTick(TickType.MINOR, v, "", anchor, anchor, 0.0));
        }
        return ticks;
    }

    /** The major (labelled) and minor (grid only) tick values in {@code [lo, hi]}, at most {@code maxTicks} major. */
    static double[][] ticks(double lo, double hi, int maxTicks) {
        int firstDecade = (int) Math.floor(Math.log10(lo)) - 1;
        int lastDecade = (int) Math.ceil(Math.log10(hi)) + 1;
        List<Double> oneTwoFive = mantissaTicks(lo, hi, firstDecade, lastDecade, ONE_TWO_FIVE, 1);
        if (oneTwoFive.size() >= 3 && oneTwoFive.size() <= maxTicks) {
            return new double[][] {toArray(oneTwoFive), toArray(minusAll(
                    mantissaTicks(lo, hi, firstDecade, lastDecade, new double[] {1, 2, 3, 4, 5, 6, 7, 8, 9}, 1),
                    oneTwoFive))};
        }
        if (oneTwoFive.size() < 3) {
            List<Double> linear = linearTicks(lo, hi, maxTicks);
            return new double[][] {toArray(linear.size() >= 2 ? linear : oneTwoFive), new double[0]};
        }
        for (int stride : DECADE_STRIDES) {
            List<Double> decades = mantissaTicks(lo, hi, firstDecade, lastDecade, new double[] {1}, stride);
            if (decades.size() <= maxTicks || stride == DECADE_STRIDES[DECADE_STRIDES.length - 1]) {
                List<Double> minor = stride == 1
                        ? mantissaTicks(lo, hi, firstDecade, lastDecade, new double[] {2, 3, 4, 5, 6, 7, 8, 9}, 1)
                        : minusAll(mantissaTicks(lo, hi, firstDecade, lastDecade, new double[] {1}, 1), decades);
                return new double[][] {toArray(decades), toArray(minor)};
            }
        }
        throw new AssertionError("unreachable");
    }

    /** m x 10^k for each mantissa m and each decade k divisible by {@code stride}, within [lo, hi]. */
    private static List<Double> mantissaTicks(double lo, double hi, int firstDecade, int lastDecade,
            double[] mantissas, int stride) {
        List<Double> ticks = new ArrayList<>();
        for (int k = firstDecade; k <= lastDecade; k++) {
            if (Math.floorMod(k, stride) != 0) {
                continue;
            }
            for (double m : mantissas) {
                double v = Double.parseDouble(m + "e" + k); // exact decimal, unlike m * Math.pow(10, k)
                if (v >= lo && v <= hi) {
                    ticks.add(v);
                }
            }
        }
        return ticks;
    }

    /** Evenly spaced ticks (step 1, 2 or 5 x 10^k), for spans under a decade. */
    private static List<Double> linearTicks(double lo, double hi, int maxTicks) {
        double rough = (hi - lo) / maxTicks;
        int exponent = (int) Math.floor(Math.log10(rough));
        List<Double> ticks = new ArrayList<>();
        for (int e = exponent; e <= exponent + 2; e++) {
            for (double m : ONE_TWO_FIVE) {
                BigDecimal step = new BigDecimal(m + "e" + e);
                if (step.doubleValue() < rough) {
                    continue;
                }
                ticks.clear();
                for (long i = (long) Math.ceil(lo / step.doubleValue()); ; i++) {
                    double v = step.multiply(BigDecimal.valueOf(i)).doubleValue(); // exact decimal steps
                    if (v > hi) {
                        break;
                    }
                    if (v >= lo) {
                        ticks.add(v);
                    }
                }
                if (ticks.size() <= maxTicks) {
                    return ticks;
                }
            }
        }
        return ticks;
    }

    private static List<Double> minusAll(List<Double> all, List<Double> remove) {
        TreeSet<Double> left = new TreeSet<>(all);
        left.removeAll(remove);
        return new ArrayList<>(left);
    }

    private static double[] toArray(List<Double> values) {
        return values.stream().mapToDouble(Double::doubleValue).toArray();
    }
}
