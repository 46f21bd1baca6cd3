package dev.gradscope.report;

import dev.gradscope.data.AtomicFiles;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * One self-contained HTML page: title, headings, paragraphs, verdict callouts, tables and charts.
 * Charts are inlined as SVG and styles are inline, so the page opens from disk with no network and
 * no JavaScript; links to files (a chart's PNG, SVG and CSV, a run's {@code history.json}) are
 * relative to the page, so the page and its files can move together.
 *
 * <p>The markup is XHTML-compatible (every element closed, only XML's own entities), so it parses
 * as XML as well as HTML. All text given is escaped: it is shown, never interpreted as markup.
 *
 * <pre>{@code
 * HtmlReport report = new HtmlReport("Activations and gradient flow");
 * report.heading("Training loss")
 *       .paragraph("Five runs of the chapter's MLP, one per activation.")
 *       .chart(lossChart, lossChart.writeFiles(out, "loss", 960, 540).toArray(Path[]::new))
 *       .verdict(HtmlReport.Tone.SUCCESS, "Confirmed", "ReLU's loss falls fastest.")
 *       .table(summary);
 * report.write(out.resolve("report.html"));
 * }</pre>
 *
 * <p>Linked files must exist when the page is rendered: a link that would be broken is an error
 * that names the file.
 */
public final class HtmlReport {
    /** A verdict's colour and meaning. */
    public enum Tone {
        /** Neutral information (blue). */
        INFO,
        /** A claim confirmed, a check passed (green). */
        SUCCESS,
        /** Partly confirmed, or needs care (amber). */
        WARNING,
        /** A claim not confirmed, a check failed (red). */
        FAILURE
    }

    /** Inline size of a chart when none is given, in CSS pixels (it shrinks with a narrow window). */
    public static final int DEFAULT_CHART_WIDTH = 960;
    public static final int DEFAULT_CHART_HEIGHT = 540;
    /** Significant digits of floating-point numbers in tables; each cell's tooltip holds the exact value. */
    public static final int TABLE_DIGITS = 4;

    private static final String CSS = """
            :root { color-scheme: light; }
            body { margin: 0; background: #fff; color: #1f2328; line-height: 1.5;
                   font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; }
            main { max-width: 1040px; margin: 0 auto; padding: 24px 32px 48px; }
            h1 { font-size: 1.8em; margin: 0.3em 0 0.8em; padding-bottom: 0.3em; border-bottom: 2px solid #e5e7eb; }
            h2 { font-size: 1.35em; margin: 1.8em 0 0.5em; }
            h3 { font-size: 1.1em; margin: 1.4em 0 0.4em; }
            p { margin: 0.6em 0; }
            a { color: #1d4ed8; }
            .verdict { margin: 16px 0; padding: 10px 16px; border-left: 6px solid; border-radius: 4px; }
            .verdict p { margin: 2px 0; }
            .verdict .headline { font-weight: 600; }
            .tone-info { border-color: #2563eb; background: #eff6ff; }
            .tone-success { border-color: #16a34a; background: #f0fdf4; }
            .tone-warning { border-color: #d97706; background: #fffbeb; }
            .tone-failure { border-color: #dc2626; background: #fef2f2; }
            .table-wrap { overflow-x: auto; margin: 12px 0; }
            table { border-collapse: collapse; font-size: 0.92em; }
            caption { text-align: left; font-weight: 600; padding-bottom: 4px; }
            th, td { border: 1px solid #d0d7de; padding: 4px 10px; vertical-align: top; }
            th { background: #f3f4f6; text-align: left; }
            td.num { text-align: right; font-variant-numeric: tabular-nums; }
            tbody tr:nth-child(even) { background: #fafbfc; }
            figure.chart { margin: 20px 0; }
            figure.chart svg { display: block; max-width: 100%; height: auto; border: 1px solid #e5e7eb; }
            figcaption, p.files { font-size: 0.9em; color: #57606a; margin-top: 6px; }
            pre { background: #f6f8fa; border: 1px solid #e5e7eb; border-radius: 4px; padding: 10px 12px;
                  overflow-x: auto; font-size: 0.88em; }
            """;

    /** One piece of the page; {@code baseDir} is the page's directory, for relative links. */
    @FunctionalInterface
    private interface Block {
        void render(StringBuilder out, Path baseDir);
    }

    private final String title;
    private final List<Block> blocks = new ArrayList<>();

    /** A page whose {@code <title>} and top heading are {@code title}. */
    public HtmlReport(String title) {
        this.title = title == null ? "" : title;
    }

    public String title() {
        return title;
    }

    /** A section heading ({@code <h2>}). */
    public HtmlReport heading(String text) {
        blocks.add((out, base) -> out.append("<h2>").append(Xml.escape(text)).append("</h2>\n"));
        return this;
    }

    /** A subsection heading ({@code <h3>}). */
    public HtmlReport subheading(String text) {
        blocks.add((out, base) -> out.append("<h3>").append(Xml.escape(text)).append("</h3>\n"));
        return this;
    }

    /** A paragraph of plain text. */
    public HtmlReport paragraph(String text) {
        blocks.add((out, base) -> out.append("<p>").append(Xml.escape(text)).append("</p>\n"));
        return this;
    }

    /** Text shown as is, in a monospaced box: a command line, a configuration. */
    public HtmlReport preformatted(String text) {
        blocks.add((out, base) -> out.append("<pre>").append(Xml.escape(text)).append("</pre>\n"));
        return this;
    }

    /**
     * A callout with a coloured bar: a bold {@code headline} ("Confirmed", "Vanishing gradients")
     * and an optional {@code detail} sentence (null or empty for none).
     */
    public HtmlReport verdict(Tone tone, String headline, String detail) {
        String css = "tone-" + tone.name().toLowerCase(Locale.ROOT);
        blocks.add((out, base) -> {
            out.append("<div class=\"verdict ").append(css).append("\">\n");
            out.append("<p class=\"headline\">").append(Xml.escape(headline)).append("</p>\n");
            if (detail != null && !detail.isEmpty()) {
                out.append("<p>").append(Xml.escape(detail)).append("</p>\n");
            }
            out.append("</div>\n");
        });
        return this;
    }

    /** A neutral ({@link Tone#INFO}) callout of one sentence. */
    public HtmlReport verdict(String text) {
        return verdict(Tone.INFO, text, null);
    }

    /**
     * The table as it is now (later rows are not shown): floating-point numbers rounded to
     * {@value #TABLE_DIGITS} significant digits with the exact value as the cell's tooltip, numbers
     * aligned right. Meant for summaries; link the CSV for long tables.
     */
    public HtmlReport table(CsvTable table) {
        return table(null, table);
    }

    /** {@link #table(CsvTable)} with a caption above it (null for none). */
    public HtmlReport table(String caption, CsvTable table) {
        List<String> header = table.header();
        List<List<Object>> rows = List.copyOf(table.rows());
        blocks.add((out, base) -> renderTable(out, caption, header, rows));
        return this;
    }

    /** A table from a header and rows of mixed values, as {@link #table(CsvTable)}. */
    public HtmlReport table(List<String> header, List<? extends List<?>> rows) {
        CsvTable table = new CsvTable(header);
        rows.forEach(table::addRow);
        return table(table);
    }

    /** The chart inlined as SVG at the default size, with links to {@code files} (e.g. from {@link Chart#writeFiles}). */
    public HtmlReport chart(Chart chart, Path... files) {
        return chart(chart, DEFAULT_CHART_WIDTH, DEFAULT_CHART_HEIGHT, files);
    }

    /** The chart inlined as a {@code width} x {@code height} SVG, with links to {@code files} below it. */
    public HtmlReport chart(Chart chart, int width, int height, Path... files) {
        String svg = chart.toSvgString(width, height);
        List<Path> links = List.copyOf(Arrays.asList(files));
        blocks.add((out, base) -> {
            out.append("<figure class=\"chart\">\n").append(svg).append('\n');
            if (!links.isEmpty()) {
                out.append("<figcaption>");
                appendLinks(out, base, links);
                out.append("</figcaption>\n");
            }
            out.append("</figure>\n");
        });
        return this;
    }

    /** A line of links to files (shown by file name), e.g. a run's {@code history.json}. */
    public HtmlReport links(Path... files) {
        List<Path> links = List.copyOf(Arrays.asList(files));
        blocks.add((out, base) -> {
            out.append("<p class=\"files\">");
            appendLinks(out, base, links);
            out.append("</p>\n");
        });
        return this;
    }

    /** A paragraph holding one link, shown as {@code text}, to {@code file}. */
    public HtmlReport link(String text, Path file) {
        blocks.add((out, base) -> out.append("<p><a href=\"").append(Xml.escape(href(base, file))).append("\">")
                .append(Xml.escape(text)).append("</a></p>\n"));
        return this;
    }

    /**
     * The page as it would be written to {@code reportFile}: links relative to its directory.
     *
     * @throws IllegalStateException if a linked file does not exist
     */
    public String render(Path reportFile) {
        Path base = reportFile.toAbsolutePath().normalize().getParent();
        StringBuilder out = new StringBuilder(64 * 1024);
        out.append("<!DOCTYPE html>\n");
        out.append("<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\" xml:lang=\"en\">\n<head>\n");
        out.append("<meta charset=\"utf-8\"/>\n");
        out.append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n");
        out.append("<meta name=\"generator\" content=\"GradScope\"/>\n");
        out.append("<title>").append(Xml.escape(title)).append("</title>\n");
        out.append("<style>\n").append(CSS).append("</style>\n</head>\n<body>\n<main>\n");
        out.append("<h1>").append(Xml.escape(title)).append("</h1>\n");
        for (Block block : blocks) {
            block.render(out, base);
        }
        out.append("</main>\n</body>\n</html>\n");
        return out.toString();
    }

    /** Writes {@link #render(Path)} to {@code reportFile} as UTF-8, atomically; creates missing parent directories. */
    public void write(Path reportFile) {
        AtomicFiles.writeString(reportFile, render(reportFile));
    }

    private static void renderTable(StringBuilder out, String caption, List<String> header, List<List<Object>> rows) {
        out.append("<div class=\"table-wrap\">\n<table>\n");
        if (caption != null && !caption.isEmpty()) {
            out.append("<caption>").append(Xml.escape(caption)).append("</caption>\n");
        }
        out.append("<thead>\n<tr>");
        for (String name : header) {
            out.append("<th>").append(Xml.escape(name)).append("</th>");
        }
        out.append("</tr>\n</thead>\n<tbody>\n");
        for (List<Object> row : rows) {
            out.append("<tr>");
            for (Object value : row) {
                if (value instanceof Number number) {
                    String exact = NumberText.exact(number);
                    String shown = NumberText.readable(number, TABLE_DIGITS);
                    out.append("<td class=\"num\"");
                    if (!exact.equals(shown)) {
                        out.append(" title=\"").append(Xml.escape(exact)).append('"');
                    }
                    out.append('>').append(Xml.escape(shown)).append("</td>");
                } else {
                    out.append("<td>").append(Xml.escape(CsvTable.cellText(value))).append("</td>");
                }
            }
            out.append("</tr>\n");
        }
        out.append("</tbody>\n</table>\n</div>\n");
    }

    private static void appendLinks(StringBuilder out, Path base, List<Path> files) {
        for (int i = 0; i < files.size(); i++) {
            if (i > 0) {
                out.append(" \u00b7 ");
            }
            Path file = files.get(i);
            out.append("<a href=\"").append(Xml.escape(href(base, file))).append("\">")
                    .append(Xml.escape(String.valueOf(file.getFileName()))).append("</a>");
        }
    }

    /** The link from a page in {@code base} to {@code file}: relative, '/'-separated, each segment percent-encoded. */
    static String href(Path base, Path file) {
        Path target = file.toAbsolutePath().normalize();
        if (!Files.exists(target)) {
            throw new IllegalStateException("the report links to " + file + " (" + target
                    + "), which does not exist; write the file before the report");
        }
        Path relative = base.relativize(target);
        StringBuilder href = new StringBuilder();
        for (Path segment : relative) {
            if (href.length() > 0) {
                href.append('/');
            }
            href.append(encodeSegment(segment.toString()));
        }
        return href.length() == 0 ? "." : href.toString();
    }

    /** Percent-encodes every UTF-8 byte outside RFC 3986's unreserved characters. */
    private static String encodeSegment(String segment) {
        StringBuilder out = new StringBuilder();
        for (byte b : segment.getBytes(StandardCharsets.UTF_8)) {
            int c = b & 0xff;
            boolean unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                    || c == '-' || c == '.' || c == '_' || c == '~';
            if (unreserved) {
                out.append((char) c);
            } else {
                out.append('%').append(String.format(Locale.ROOT, "%02X", c));
            }
        }
        return out.toString();
    }
}
