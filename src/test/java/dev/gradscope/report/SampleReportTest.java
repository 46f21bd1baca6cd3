package dev.gradscope.report;

import static dev.gradscope.report.Documents.assertLinksResolve;
import static dev.gradscope.report.Documents.elements;
import static dev.gradscope.report.Documents.links;
import static dev.gradscope.report.Documents.parseXml;
import static dev.gradscope.report.Documents.readPng;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.w3c.dom.Document;

/** The sample report (every block, charts of the chapter's shapes) is well-formed and its links resolve. */
class SampleReportTest {
    @TempDir
    Path dir;

    @Test
    void sampleReportIsWellFormedAndEveryLinkResolves() throws IOException {
        Path page = SampleReport.write(dir);
        Document doc = parseXml(page);
        assertEquals(5, elements(doc, "svg").size());
        assertLinksResolve(doc, page.getParent());
        List<String> links = links(doc);
        for (String base : SampleReport.chartBaseNames()) {
            for (String ext : List.of(".png", ".svg", ".csv")) {
                assertTrue(links.contains("charts/" + base + ext), () -> "no link to charts/" + base + ext + " in " + links);
            }
            assertEquals(960, readPng(dir.resolve("charts/" + base + ".png")).getWidth());
            parseXml(dir.resolve("charts/" + base + ".svg"));
        }
        assertTrue(links.contains("runs/relu/history.json"), links::toString);
        assertTrue(Files.size(page) < 3_000_000, "page of " + Files.size(page) + " bytes");
    }
}
