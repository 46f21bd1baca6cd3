package dev.gradscope.report;

/** Text made safe for XML and XHTML: escaped markup characters, no characters XML 1.0 forbids. */
final class Xml {
    private static final char REPLACEMENT = '\ufffd';

    private Xml() {
    }

    /**
     * {@code text} with {@code & < > " '} escaped, for element content and attribute values alike,
     * and every character XML 1.0 cannot hold (control characters other than tab, CR and LF; lone
     * surrogates; U+FFFE and U+FFFF) replaced by U+FFFD. {@code null} reads as {@code ""}.
     */
    static String escape(String text) {
        if (text == null) {
            return "";
        }
        StringBuilder out = new StringBuilder(text.length() + 16);
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            switch (c) {
                case '&' -> out.append("&amp;");
                case '<' -> out.append("&lt;");
                case '>' -> out.append("&gt;");
                case '"' -> out.append("&quot;");
                case '\'' -> out.append("&#39;");
                default -> i = appendChecked(text, i, out);
            }
        }
        return out.toString();
    }

    /** {@code markup} with only the characters XML 1.0 cannot hold replaced by U+FFFD; markup stays markup. */
    static String sanitize(String markup) {
        StringBuilder out = null;
        for (int i = 0; i < markup.length(); i++) {
            char c = markup.charAt(i);
            boolean simple = c >= 0x20 && c < 0xd800 || c == '\t' || c == '\n' || c == '\r';
            if (simple && out == null) {
                continue;
            }
            if (out == null) {
                out = new StringBuilder(markup.length());
                out.append(markup, 0, i);
            }
            i = appendChecked(markup, i, out);
        }
        return out == null ? markup : out.toString();
    }

    /** Appends the character (or surrogate pair) at {@code i}, or U+FFFD if XML forbids it; returns the last index used. */
    private static int appendChecked(String text, int i, StringBuilder out) {
        char c = text.charAt(i);
        if (Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
            out.append(c).append(text.charAt(i + 1));
            return i + 1;
        }
        boolean allowed = c == '\t' || c == '\n' || c == '\r'
                || (c >= 0x20 && c <= 0xfffd && !Character.isSurrogate(c));
        out.append(allowed ? c : REPLACEMENT);
        return i;
    }
}
