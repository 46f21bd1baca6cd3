package dev.gradscope.report;

import static dev.gradscope.report.Documents.assertLinksResolve;
import static dev.gradscope.report.Documents.elements;
import static dev.gradscope.report.Documents.links;
import static dev.gradscope.report.Documents.parseXml;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.w3c.dom.Document;
import org.w3c.dom.Element;

class HtmlReportTest {
    @TempDir
    Path dir;

    private static final String NASTY = "<script>alert('x')</script> & \"quoted\" > <b>not bold</b>";

    private static LineChart chart() {
        return LineChart.builder().title("loss").series("relu", new double[] {0.5, 0.25, 0.125}).build();
    }

    private Document writeAndParse(HtmlReport report) throws IOException {
        Path page = dir.resolve("report.html");
        report.write(page);
        return parseXml(page);
    }

    @Test
    void aPageWithEveryBlockIsWellFormedXhtml() throws IOException {
        List<Path> files = chart().writeFiles(dir.resolve("charts"), "loss", 400, 300);
        HtmlReport report = new HtmlReport("Gradient flow")
                .heading("Losses").subheading("per epoch").paragraph("text")
                .verdict(HtmlReport.Tone.SUCCESS, "Confirmed", "detail")
                .verdict("note")
                .preformatted("a\n  b")
                .table(new CsvTable("activation", "accuracy").addRow("relu", 0.98123456))
                .table(List.of("n"), List.of(List.of(1), List.of(2)))
                .chart(chart(), files.toArray(Path[]::new))
                .chart(chart(), 300, 200)
                .links(files.get(2))
                .link("the CSV", files.get(2));
        Document doc = writeAndParse(report);
        Element html = doc.getDocumentElement();
        assertEquals("html", html.getLocalName());
        assertEquals("http://www.w3.org/1999/xhtml", html.getNamespaceURI());
        assertEquals("Gradient flow", elements(doc, "title").get(0).getTextContent());
        assertEquals("Gradient flow", elements(doc, "h1").get(0).getTextContent());
        assertEquals(2, elements(doc, "svg").size(), "each chart is inlined as one SVG");
        assertEquals(2, elements(doc, "table").size());
        assertEquals(List.of("verdict tone-success", "verdict tone-info"), elements(doc, "div").stream()
                .map(d -> d.getAttribute("class")).filter(c -> c.startsWith("verdict")).toList());
        assertEquals(2, elements(doc, "figure").size());
        assertEquals(1, elements(doc, "figcaption").size(), "a chart without files has no caption");
        assertEquals("a\n  b", elements(doc, "pre").get(0).getTextContent());
    }

    @Test
    void escapesMarkupInEveryKindOfText() throws IOException {
        HtmlReport report = new HtmlReport(NASTY)
                .heading(NASTY).subheading(NASTY).paragraph(NASTY)
                .verdict(HtmlReport.Tone.FAILURE, NASTY, NASTY)
                .preformatted(NASTY)
                .table(NASTY, new CsvTable(NASTY).addRow(NASTY));
        String html = report.render(dir.resolve("report.html"));
        assertFalse(html.contains("<script"), "raw <script> in the page");
        assertFalse(html.contains("<b>"), "raw <b> in the page");
        Document doc = writeAndParse(report);
        assertTrue(elements(doc, "script").isEmpty());
        assertTrue(elements(doc, "b").isEmpty());
        for (String tag : List.of("title", "h1", "h2", "h3", "pre", "caption", "th", "td")) {
            assertEquals(NASTY, elements(doc, tag).get(0).getTextContent(), tag);
        }
        List<String> paragraphs = elements(doc, "p").stream().map(Element::getTextContent).toList();
        assertEquals(3, paragraphs.stream().filter(NASTY::equals).count(), paragraphs::toString);
    }

    @Test
    void charactersXmlCannotHoldAreReplaced() throws IOException {
        Document doc = writeAndParse(new HtmlReport("bell \u0007 and nul \u0000 and lone \ud800 surrogate, emoji \ud83d\ude00")
                .paragraph("form feed \f"));
        assertEquals("bell \ufffd and nul \ufffd and lone \ufffd surrogate, emoji \ud83d\ude00",
                elements(doc, "h1").get(0).getTextContent());
    }

    @Test
    void linksAreRelativeEncodedAndPointToFilesThatExist() throws IOException {
        Path reportDir = dir.resolve("report");
        Path sibling = dir.resolve("runs/relu run #1/history & notes.json");
        Files.createDirectories(sibling.getParent());
        Files.writeString(sibling, "{}");
        Path inside = reportDir.resolve("charts/loss.csv");
        chart().dataTable().write(inside);
        HtmlReport report = new HtmlReport("links").links(sibling, inside).link("history", sibling);
        Path page = reportDir.resolve("index.html");
        report.write(page);
        Document doc = parseXml(page);
        List<String> links = links(doc);
        assertEquals(List.of("../runs/relu%20run%20%231/history%20%26%20notes.json", "charts/loss.csv",
                "../runs/relu%20run%20%231/history%20%26%20notes.json"), links);
        assertLinksResolve(doc, reportDir);
    }

    @Test
    void aLinkToAMissingFileIsAnErrorThatNamesIt() {
        Path missing = dir.resolve("nowhere/loss.png");
        HtmlReport report = new HtmlReport("broken").chart(chart(), missing);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> report.write(dir.resolve("r.html")));
        assertTrue(e.getMessage().contains(missing.toString()), e.getMessage());
        assertFalse(Files.exists(dir.resolve("r.html")), "a page with a broken link was written");
    }

    @Test
    void isSelfContained() throws IOException {
        List<Path> files = chart().writeFiles(dir, "loss", 400, 300);
        Document doc = writeAndParse(new HtmlReport("self-contained").chart(chart(), files.toArray(Path[]::new)));
        for (String tag : List.of("script", "link", "img", "iframe", "object", "embed")) {
            assertTrue(elements(doc, tag).isEmpty(), "page has a <" + tag + ">");
        }
        for (String link : links(doc)) {
            assertFalse(link.contains(":"), "link with a scheme: " + link);
        }
        String html = Files.readString(dir.resolve("report.html"), StandardCharsets.UTF_8);
        assertFalse(html.contains("url(http") || html.contains("@import"), "style fetches something");
    }

    @Test
    void tablesShowRoundedNumbersWithTheExactValueAsTooltip() throws IOException {
        CsvTable table = new CsvTable("name", "d", "f", "i", "tiny", "nan", "null")
                .addRow("relu", 0.981234567, 0.5f, 42, 1.23456e-7, Double.NaN, null);
        Document doc = writeAndParse(new HtmlReport("t").table(table));
        List<Element> cells = elements(doc, "td");
        assertEquals(List.of("relu", "0.9812", "0.5", "42", "1.235e-7", "NaN", ""),
                cells.stream().map(Element::getTextContent).toList());
        assertEquals("0.981234567", cells.get(1).getAttribute("title"));
        assertEquals("num", cells.get(1).getAttribute("class"));
        assertEquals("", cells.get(0).getAttribute("class"));
        assertFalse(cells.get(3).hasAttribute("title"), "exact integers need no tooltip");
    }

    @Test
    void tableIsASnapshot() throws IOException {
        CsvTable table = new CsvTable("n").addRow(1);
        HtmlReport report = new HtmlReport("t").table(table);
        table.addRow(2);
        assertEquals(1, elements(writeAndParse(report), "td").size());
    }

    @Test
    void writesAtomicallyAndReplacesTheOldPage() throws IOException {
        Path page = dir.resolve("out/report.html");
        new HtmlReport("first").write(page);
        new HtmlReport("second").write(page);
        assertTrue(Files.readString(page, StandardCharsets.UTF_8).contains("<h1>second</h1>"));
        try (Stream<Path> files = Files.list(page.getParent())) {
            assertEquals(List.of(page), files.toList(), "temporary files left behind");
        }
    }
}
