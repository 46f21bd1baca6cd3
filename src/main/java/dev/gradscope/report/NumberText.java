package dev.gradscope.report;

import java.math.BigDecimal;
import java.math.MathContext;
import java.util.Locale;

/** Numbers as text: exact and locale-independent for files, short for people (tables, bar labels). */
final class NumberText {
    private NumberText() {
    }

    /**
     * The exact, locale-independent text of a number for a data file: {@link Double#toString} for
     * doubles (shortest text that reads back to the same double, e.g. {@code 0.25}, {@code 1.0E-5},
     * {@code NaN}, {@code Infinity}), {@link Float#toString} for floats, {@code toString} otherwise.
     */
    static String exact(Number value) {
        if (value instanceof Double d) {
            return Double.toString(d);
        }
        if (value instanceof Float f) {
            return Float.toString(f);
        }
        return value.toString();
    }

    /**
     * {@code value} rounded to {@code significantDigits} for reading: plain notation between 0.001
     * and 100000 ({@code 0.9812}, {@code 12.5}), otherwise scientific ({@code 1.23e-5}, {@code 2e6}); trailing
     * zeros dropped; {@code NaN}, {@code ∞}, {@code -∞}.
     */
    static String readable(double value, int significantDigits) {
        if (Double.isNaN(value)) {
            return "NaN";
        }
        if (Double.isInfinite(value)) {
            return value > 0 ? "\u221e" : "-\u221e";
        }
        if (value == 0) {
            return "0";
        }
        double magnitude = Math.abs(value);
        BigDecimal rounded = new BigDecimal(value).round(new MathContext(significantDigits));
        if (magnitude >= 1e-3 && rounded.abs().compareTo(BigDecimal.valueOf(100_000)) < 0) {
            return rounded.stripTrailingZeros().toPlainString();
        }
        String text = String.format(Locale.ROOT, "%." + (significantDigits - 1) + "e", value);
        int e = text.indexOf('e');
        String mantissa = text.substring(0, e);
        if (mantissa.contains(".")) {
            mantissa = mantissa.replaceAll("0+$", "").replaceAll("\\.$", "");
        }
        return mantissa + "e" + Integer.parseInt(text.substring(e + 1));
    }

    /** {@link #readable(double, int)} for floating-point numbers; integers exactly. */
    static String readable(Number value, int significantDigits) {
        if (value instanceof Double || value instanceof Float || value instanceof BigDecimal) {
            return readable(value.doubleValue(), significantDigits);
        }
        return value.toString();
    }
}
