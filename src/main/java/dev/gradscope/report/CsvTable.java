package dev.gradscope.report;

import dev.gradscope.data.AtomicFiles;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * A table of named columns and rows of mixed values, written as CSV (RFC 4180).
 *
 * <p>Cells are strings, numbers, booleans or {@code null} (an empty cell); anything else is written
 * as its {@code toString}. Numbers are written exactly and independently of the locale:
 * {@link Double#toString} for doubles ({@code 0.25}, {@code 1.0E-5}, {@code NaN}, {@code Infinity};
 * each reads back to the same double), {@link Float#toString} for floats, digits for integers.
 * A field is quoted when it holds a comma, a double quote, a CR or an LF, or starts or ends with a
 * space; quotes inside are doubled. Records end with CRLF, as RFC 4180 says; the file is UTF-8
 * without a byte-order mark and is written through a temporary file and one move.
 *
 * <pre>{@code
 * CsvTable losses = new CsvTable("epoch", "activation", "loss");
 * losses.addRow(1, "relu", 0.2714);
 * losses.write(out.resolve("losses.csv"));
 * }</pre>
 */
public final class CsvTable {
    private static final String RECORD_END = "\r\n";

    private final List<String> header;
    private final List<List<Object>> rows = new ArrayList<>();

    /** A table with these column names (at least one, no two alike) and no rows. */
    public CsvTable(String... header) {
        this(Arrays.asList(header));
    }

    /** A table with these column names (at least one, no two alike) and no rows. */
    public CsvTable(List<String> header) {
        if (header.isEmpty()) {
            throw new IllegalArgumentException("a CSV table needs at least one column");
        }
        Set<String> seen = new HashSet<>();
        for (String name : header) {
            if (name == null) {
                throw new IllegalArgumentException("column names must not be null: " + header);
            }
            if (!seen.add(name)) {
                throw new IllegalArgumentException("column '" + name + "' appears twice in " + header);
            }
        }
        this.header = List.copyOf(header);
    }

    /** Appends a row with one value per column; returns this table. */
    public CsvTable addRow(Object... values) {
        return addRow(Arrays.asList(values));
    }

    /** Appends a row with one value per column; returns this table. */
    public CsvTable addRow(List<?> values) {
        if (values.size() != header.size()) {
            throw new IllegalArgumentException("row has " + values.size() + " values but the table has "
                    + header.size() + " columns " + header + ": " + values);
        }
        rows.add(Collections.unmodifiableList(new ArrayList<>(values)));
        return this;
    }

    public List<String> header() {
        return header;
    }

    public int columnCount() {
        return header.size();
    }

    public int rowCount() {
        return rows.size();
    }

    /** Row {@code index}'s values, as added (or as strings, for a parsed table). */
    public List<Object> row(int index) {
        return rows.get(index);
    }

    /** Every row, in the order added. */
    public List<List<Object>> rows() {
        return Collections.unmodifiableList(rows);
    }

    /** The values of column {@code name}, one per row; the error names the columns there are. */
    public List<Object> column(String name) {
        int index = header.indexOf(name);
        if (index < 0) {
            throw new IllegalArgumentException("no column '" + name + "' in " + header);
        }
        List<Object> values = new ArrayList<>(rows.size());
        for (List<Object> row : rows) {
            values.add(row.get(index));
        }
        return values;
    }

    /** The text of one cell as written to the file, before quoting. */
    public static String cellText(Object value) {
        if (value == null) {
            return "";
        }
        if (value instanceof Number number) {
            return NumberText.exact(number);
        }
        return value.toString();
    }

    /** The whole table as CSV text: the header record, then one record per row, each ending in CRLF. */
    public String toCsv() {
        StringBuilder out = new StringBuilder();
        appendRecord(out, header);
        for (List<Object> row : rows) {
            appendRecord(out, row);
        }
        return out.toString();
    }

    /** Writes {@link #toCsv()} to {@code file} as UTF-8, atomically; creates missing parent directories. */
    public void write(Path file) {
        AtomicFiles.writeString(file, toCsv());
    }

    /** Reads a CSV file written by {@link #write} (or any RFC 4180 file); every cell is a string. */
    public static CsvTable read(Path file) {
        try {
            return parse(Files.readString(file, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file + ": " + e, e);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
    }

    /**
     * Parses RFC 4180 text (records ending in CRLF or LF; quoted fields may hold commas, doubled
     * quotes and line breaks); the first record is the header and every cell is a string.
     */
    public static CsvTable parse(String text) {
        List<List<String>> records = new ArrayList<>();
        List<String> record = new ArrayList<>();
        StringBuilder field = new StringBuilder();
        int i = 0;
        int n = text.length();
        int line = 1;
        boolean atRecordStart = true;
        while (i < n) {
            char c = text.charAt(i);
            if (c == '"' && field.length() == 0) {
                int start = line;
                i++;
                while (true) {
                    if (i >= n) {
                        throw new IllegalArgumentException("quoted field opened on line " + start + " is never closed");
                    }
                    char q = text.charAt(i);
                    if (q == '"') {
                        if (i + 1 < n && text.charAt(i + 1) == '"') {
                            field.append('"');
                            i += 2;
                            continue;
                        }
                        i++;
                        break;
                    }
                    if (q == '\n') {
                        line++;
                    }
                    field.append(q);
                    i++;
                }
                if (i < n && text.charAt(i) != ',' && text.charAt(i) != '\r' && text.charAt(i) != '\n') {
                    throw new IllegalArgumentException("line " + line + ": text after the closing quote of a field");
                }
                atRecordStart = false;
                continue;
            }
            if (c == ',') {
                record.add(field.toString());
                field.setLength(0);
                atRecordStart = false;
                i++;
            } else if (c == '\r' || c == '\n') {
                i += (c == '\r' && i + 1 < n && text.charAt(i + 1) == '\n') ? 2 : 1;
                line++;
                if (!atRecordStart) {
                    record.add(field.toString());
                    records.add(record);
                }
                record = new ArrayList<>();
                field.setLength(0);
                atRecordStart = true;
            } else {
                field.append(c);
                atRecordStart = false;
                i++;
            }
        }
        if (!atRecordStart) {
            record.add(field.toString());
            records.add(record);
        }
        if (records.isEmpty()) {
            throw new IllegalArgumentException("no header record in the CSV text");
        }
        CsvTable table = new CsvTable(records.get(0));
        for (int r = 1; r < records.size(); r++) {
            List<String> values = records.get(r);
            if (values.size() != table.columnCount()) {
                throw new IllegalArgumentException("record " + (r + 1) + " has " + values.size()
                        + " fields but the header has " + table.columnCount());
            }
            table.addRow(values);
        }
        return table;
    }

    private static void appendRecord(StringBuilder out, List<?> values) {
        if (values.size() == 1 && cellText(values.get(0)).isEmpty()) {
            out.append("\"\"").append(RECORD_END); // an empty line would read as no record at all
            return;
        }
        for (int i = 0; i < values.size(); i++) {
            if (i > 0) {
                out.append(',');
            }
            appendField(out, cellText(values.get(i)));
        }
        out.append(RECORD_END);
    }

    private static void appendField(StringBuilder out, String text) {
        boolean quote = text.isEmpty() ? false
                : text.indexOf(',') >= 0 || text.indexOf('"') >= 0 || text.indexOf('\r') >= 0
                        || text.indexOf('\n') >= 0 || text.charAt(0) == ' '
                        || text.charAt(text.length() - 1) == ' ';
        if (!quote) {
            out.append(text);
            return;
        }
        out.append('"').append(text.replace("\"", "\"\"")).append('"');
    }
}
