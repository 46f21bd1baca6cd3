package dev.gradscope.report;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import javax.xml.parsers.DocumentBuilder;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.parsers.ParserConfigurationException;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;
import org.xml.sax.SAXException;

/** Parses what the report package writes, the way an independent reader would: XML DOM, ImageIO. */
final class Documents {
    private Documents() {
    }

    /** Parses {@code text} as namespace-aware XML without fetching anything; fails the test with the parser's message. */
    static Document parseXml(String text) {
        try {
            DocumentBuilderFactory factory = DocumentBuilderFactory.newInstance();
            factory.setNamespaceAware(true);
            factory.setFeature("http://apache.org/xml/features/nonvalidating/load-external-dtd", false);
            DocumentBuilder builder = factory.newDocumentBuilder();
            builder.setErrorHandler(null);
            return builder.parse(new ByteArrayInputStream(text.getBytes(StandardCharsets.UTF_8)));
        } catch (SAXException e) {
            String start = text.length() > 400 ? text.substring(0, 400) + "..." : text;
            return fail("not well-formed XML: " + e.getMessage() + "\n" + start);
        } catch (ParserConfigurationException | IOException e) {
            throw new IllegalStateException(e);
        }
    }

    static Document parseXml(Path file) throws IOException {
        return parseXml(Files.readString(file, StandardCharsets.UTF_8));
    }

    /** Every element with this local name, in any namespace. */
    static List<Element> elements(Document doc, String localName) {
        NodeList nodes = doc.getElementsByTagNameNS("*", localName);
        List<Element> result = new ArrayList<>();
        for (int i = 0; i < nodes.getLength(); i++) {
            result.add((Element) nodes.item(i));
        }
        return result;
    }

    /** The text of every {@code <text>} element (SVG), in document order. */
    static List<String> svgTexts(Document doc) {
        return elements(doc, "text").stream().map(Element::getTextContent).toList();
    }

    /** Every href and src attribute value in the document. */
    static List<String> links(Document doc) {
        List<String> links = new ArrayList<>();
        NodeList all = doc.getElementsByTagName("*");
        for (int i = 0; i < all.getLength(); i++) {
            Element e = (Element) all.item(i);
            for (String name : List.of("href", "src")) {
                if (e.hasAttribute(name)) {
                    links.add(e.getAttribute(name));
                }
            }
            if (e.hasAttributeNS("http://www.w3.org/1999/xlink", "href")) {
                links.add(e.getAttributeNS("http://www.w3.org/1999/xlink", "href"));
            }
        }
        return links;
    }

    /** Fails unless every link is relative (no scheme, no leading '/') and names an existing file under {@code base}'s view. */
    static void assertLinksResolve(Document doc, Path base) {
        for (String link : links(doc)) {
            if (link.startsWith("#")) {
                continue; // a fragment within the page
            }
            URI uri;
            try {
                uri = new URI(link);
            } catch (URISyntaxException e) {
                fail("link is not a valid URI reference: " + link);
                return;
            }
            if (uri.isAbsolute() || link.startsWith("/")) {
                fail("link is not relative: " + link);
            }
            Path target = base.resolve(uri.getPath()).normalize();
            if (!Files.exists(target)) {
                fail("link " + link + " points to " + target + ", which does not exist");
            }
        }
    }

    static BufferedImage readPng(Path file) throws IOException {
        BufferedImage image = ImageIO.read(file.toFile());
        if (image == null) {
            fail(file + " is not an image ImageIO can read");
        }
        return image;
    }
}
