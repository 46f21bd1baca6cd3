package dev.gradscope.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CsvTableTest {
    @TempDir
    Path dir;

    private static final List<String> AWKWARD = List.of(
            "plain", "", "comma, inside", "\"quoted\"", "say \"hi\", then go", "line\nbreak", "crlf\r\nbreak",
            "cr\ronly", " leading space", "trailing space ", "ünïcødé µ ∞ 😀", "tab\there", "\"", ",", "\n");

    @Test
    void roundTripsCommasQuotesAndLineBreaks() throws IOException {
        CsvTable table = new CsvTable("text", "n", "other");
        for (String s : AWKWARD) {
            table.addRow(s, 1, s);
        }
        Path file = dir.resolve("awkward.csv");
        table.write(file);
        CsvTable back = CsvTable.read(file);
        assertEquals(table.header(), back.header());
        assertEquals(AWKWARD.size(), back.rowCount());
        for (int r = 0; r < AWKWARD.size(); r++) {
            assertEquals(List.of(AWKWARD.get(r), "1", AWKWARD.get(r)), back.row(r), "row " + r);
        }
    }

    @Test
    void quotesOnlyWhatNeedsIt() {
        CsvTable table = new CsvTable("a", "b", "c").addRow("x", "y,z", "say \"hi\"");
        assertEquals("a,b,c\r\nx,\"y,z\",\"say \"\"hi\"\"\"\r\n", table.toCsv());
    }

    @Test
    void headerNamesAreQuotedToo() {
        CsvTable table = new CsvTable("loss, train", "n");
        assertEquals("\"loss, train\",n\r\n", table.toCsv());
        assertEquals(List.of("loss, train", "n"), CsvTable.parse(table.toCsv()).header());
    }

    @Test
    void doublesAreWrittenExactlyWhateverTheLocale() {
        Locale saved = Locale.getDefault();
        try {
            Locale.setDefault(Locale.GERMANY); // decimal comma
            CsvTable table = new CsvTable("d", "f", "i", "l", "b", "big", "null");
            table.addRow(0.1, 0.1f, 42, 1L << 40, true, new BigInteger("123456789012345678901234567890"), null);
            table.addRow(1e-5, Float.MIN_VALUE, -1, -0L, false, BigInteger.ZERO, null);
            table.addRow(Double.NaN, Float.POSITIVE_INFINITY, 0, 0L, true, BigInteger.ONE, null);
            assertEquals("d,f,i,l,b,big,null\r\n"
                    + "0.1,0.1,42,1099511627776,true,123456789012345678901234567890,\r\n"
                    + "1.0E-5,1.4E-45,-1,0,false,0,\r\n"
                    + "NaN,Infinity,0,0,true,1,\r\n", table.toCsv());
        } finally {
            Locale.setDefault(saved);
        }
    }

    @Test
    void everyDoubleReadsBackToItself() {
        Random random = new Random(42);
        List<Double> values = new ArrayList<>(Arrays.asList(0.0, -0.0, Double.MIN_VALUE, Double.MAX_VALUE,
                -Double.MAX_VALUE, 1e-300, 1.0 / 3, Math.PI, 0.1 + 0.2, Double.NaN, Double.POSITIVE_INFINITY,
                Double.NEGATIVE_INFINITY));
        for (int i = 0; i < 1000; i++) {
            values.add(Double.longBitsToDouble(random.nextLong()));
        }
        CsvTable table = new CsvTable("value");
        values.forEach(table::addRow);
        CsvTable back = CsvTable.parse(table.toCsv());
        for (int i = 0; i < values.size(); i++) {
            double expected = values.get(i);
            double actual = Double.parseDouble((String) back.row(i).get(0));
            assertEquals(Double.doubleToLongBits(expected), Double.doubleToLongBits(actual), "value " + expected);
        }
    }

    @Test
    void aSingleEmptyCellIsKeptAsARecord() {
        CsvTable table = new CsvTable("only").addRow("").addRow((Object) null).addRow("x");
        String csv = table.toCsv();
        assertEquals("only\r\n\"\"\r\n\"\"\r\nx\r\n", csv);
        assertEquals(3, CsvTable.parse(csv).rowCount());
    }

    @Test
    void parsesLfEndingsAndAMissingFinalLineBreak() {
        CsvTable table = CsvTable.parse("a,b\n1,\"two\nlines\"\n3,4");
        assertEquals(2, table.rowCount());
        assertEquals(List.of("1", "two\nlines"), table.row(0));
        assertEquals(List.of("3", "4"), table.row(1));
    }

    @Test
    void rejectsMalformedTables() {
        IllegalArgumentException width = assertThrows(IllegalArgumentException.class,
                () -> new CsvTable("epoch", "loss").addRow(1));
        assertTrue(width.getMessage().contains("1 values") && width.getMessage().contains("2 columns"), width.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new CsvTable());
        IllegalArgumentException twice = assertThrows(IllegalArgumentException.class, () -> new CsvTable("a", "b", "a"));
        assertTrue(twice.getMessage().contains("'a'"), twice.getMessage());
        assertThrows(IllegalArgumentException.class, () -> CsvTable.parse("a\n\"open"));
        assertThrows(IllegalArgumentException.class, () -> CsvTable.parse("a,b\n1,2,3\n"));
        assertThrows(IllegalArgumentException.class, () -> CsvTable.parse(""));
        assertThrows(IllegalArgumentException.class, () -> CsvTable.parse("a\n\"x\"y\n"));
        IllegalArgumentException column = assertThrows(IllegalArgumentException.class,
                () -> new CsvTable("epoch").column("loss"));
        assertTrue(column.getMessage().contains("[epoch]"), column.getMessage());
    }

    @Test
    void writesUtf8AtomicallyIntoNewDirectories() throws IOException {
        Path file = dir.resolve("a/b/table.csv");
        new CsvTable("name").addRow("µ").write(file);
        new CsvTable("name").addRow("∞").write(file);
        assertEquals("name\r\n∞\r\n", Files.readString(file, StandardCharsets.UTF_8));
        try (Stream<Path> files = Files.list(file.getParent())) {
            assertEquals(List.of(file), files.toList(), "temporary files left behind");
        }
    }

    @Test
    void rowsAreSnapshotsOfWhatWasAdded() {
        List<Object> values = new ArrayList<>(List.of("relu", 0.5));
        CsvTable table = new CsvTable("activation", "loss").addRow(values);
        values.set(0, "elu");
        assertEquals(List.of("relu", 0.5), table.row(0));
        assertEquals(List.of(0.5), table.column("loss"));
        assertThrows(UnsupportedOperationException.class, () -> table.row(0).set(0, "x"));
    }
}
