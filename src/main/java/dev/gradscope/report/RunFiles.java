package dev.gradscope.report;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.gradscope.data.InvalidDataException;
import dev.gradscope.train.GradientProfiler;
import dev.gradscope.train.Evaluation;
import dev.gradscope.train.History;
import dev.gradscope.train.NonFiniteEvent;
import dev.gradscope.train.Profile;
import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.commons.csv.CSVFormat;
import org.apache.commons.csv.CSVParser;
import org.apache.commons.csv.CSVRecord;

/**
 * Reads back what {@link RunReport#write} left in a run's folder: {@value RunReport#HISTORY_FILE} (the logs,
 * seconds, non-finite event, restored epoch and config) and, when the profiler was on,
 * {@value RunReport#GRADIENTS_FILE} and {@value RunReport#LAYERS_FILE} (the profile). Numbers come back exactly: the files write doubles in full.
 *
 * <p>What the files do not hold comes back as the command line sets it: the saturation threshold is
 * {@link GradientProfiler#DEFAULT_SATURATION_THRESHOLD}, and a parameter tensor's layer type is empty. The
 * tables of a run whose config says the profiler was off are not read (they can only be an earlier run's).
 * Anything malformed fails with an {@link InvalidDataException} naming the file and the line: a value that is
 * not a number, a step whose rows disagree or name other tensors than the first step's, steps or epochs out of
 * order or beyond the run's epochs, a negative norm, a fraction outside [0, 1], a layer without units.
 */
public final class RunFiles {
    /**
     * A finished run, read back: its folder, the config it was given, its history (with the profile) and its one
     * test-set evaluation after training ({@code --validation-split} runs; null for the others, whose
     * {@code val_} metrics are on the test set).
     */
    public record Run(Path dir, Map<String, Object> config, History history, Evaluation test, Restored restored) {
        /** A run that ended with its last epoch's weights. */
        public Run(Path dir, Map<String, Object> config, History history, Evaluation test) {
            this(dir, config, history, test, null);
        }

        /**
         * The epoch (from 1) whose weights the run ended with, which its test figures are of: the restored one, else
         * the last.
         */
        public int modelEpoch() {
            return restored != null ? restored.epoch() : history.epochs();
        }
    }

    /**
     * The model a run ended with when early stopping restored an earlier epoch's weights ({@code
     * --restore-best-weights}): {@value HistoryJson#RESTORED_KEY} in the history. Runs written before the history
     * recorded it have none, and read as having ended with their last epoch.
     *
     * @param epoch   from 1
     * @param monitor the metric that found it best, e.g. {@code val_loss}
     */
    public record Restored(int epoch, String monitor) {
    }

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> NOT_METRICS = List.of("epoch_seconds", "non_finite", "diagnosis",
            RunReport.TEST_KEY, HistoryJson.RESTORED_KEY, "config");

    private RunFiles() {
    }

    /** The run in {@code dir}; see the class comment. */
    public static Run read(Path dir) {
        Path historyFile = dir.resolve(RunReport.HISTORY_FILE);
        JsonNode doc;
        try {
            doc = JSON.readTree(historyFile.toFile());
        } catch (IOException e) {
            throw new InvalidDataException(historyFile + (Files.exists(historyFile) ? ": not valid JSON: "
                    + e.getMessage() : ": file not found; is " + dir + " a folder that train --out wrote?"), e);
        }
        if (doc == null || !doc.isObject()) {
            throw new InvalidDataException(historyFile + ": not a JSON object");
        }
        if (!doc.has("diagnosis")) {
            throw new InvalidDataException(historyFile + ": the run has not finished (no diagnosis yet): the"
                    + " per-step tables and the diagnosis are written when training ends");
        }
        List<Double> seconds = numbers(doc.get("epoch_seconds"), historyFile, "epoch_seconds");
        Map<String, List<Double>> metrics = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = doc.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> field = it.next();
            if (NOT_METRICS.contains(field.getKey())) {
                continue;
            }
            List<Double> values = numbers(field.getValue(), historyFile, field.getKey());
            if (values.isEmpty() && !seconds.isEmpty()) {
                continue; // the history writes the four usual metrics always, empty when not logged
            }
            if (values.size() != seconds.size()) {
                throw new InvalidDataException(historyFile + ": " + field.getKey() + " has " + values.size()
                        + " values for " + seconds.size() + " epochs");
            }
            metrics.put(field.getKey(), values);
        }
        NonFiniteEvent nonFinite = nonFinite(doc.get("non_finite"), historyFile);
        JsonNode config = doc.get("config");
        @SuppressWarnings("unchecked")
        Map<String, Object> configMap = config != null && config.isObject()
                ? JSON.convertValue(config, Map.class) : Map.of();
        // A run with the profiler off has no tables of its own: any there are an earlier run's.
        boolean profiled = !Boolean.FALSE.equals(configMap.get("profile"));
        Profile profile = profiled && Files.exists(dir.resolve(RunReport.GRADIENTS_FILE))
                ? profile(dir.resolve(RunReport.GRADIENTS_FILE), dir.resolve(RunReport.LAYERS_FILE), seconds.size())
                : null;
        return new Run(dir, configMap, History.of(metrics, seconds, profile, nonFinite),
                test(doc.get(RunReport.TEST_KEY), historyFile),
                restored(doc.get(HistoryJson.RESTORED_KEY), historyFile, seconds.size()));
    }

    private static Restored restored(JsonNode node, Path file, int epochs) {
        if (node == null || node.isNull()) {
            return null;
        }
        if (!node.path("epoch").canConvertToInt() || node.path("epoch").intValue() < 1
                || node.path("epoch").intValue() > epochs || !node.path("monitor").isTextual()) {
            throw new InvalidDataException(file + ": " + HistoryJson.RESTORED_KEY + " is not {epoch from 1 to the run's "
                    + epochs + ", monitor, ...}: " + node);
        }
        return new Restored(node.get("epoch").intValue(), node.get("monitor").textValue());
    }

    private static Evaluation test(JsonNode node, Path file) {
        if (node == null || node.isNull()) {
            return null;
        }
        if (!node.path("loss").isNumber() && !node.path("loss").isTextual() || !node.path("accuracy").isNumber()
                || !node.path("examples").canConvertToInt() || node.path("examples").intValue() < 1
                || !(node.path("accuracy").doubleValue() >= 0 && node.path("accuracy").doubleValue() <= 1)) {
            throw new InvalidDataException(file + ": " + RunReport.TEST_KEY + " is not {loss, accuracy in [0, 1],"
                    + " examples}: " + node);
        }
        double loss = numbers(JSON.createArrayNode().add(node.get("loss")), file, RunReport.TEST_KEY + ".loss").get(0);
        return new Evaluation(loss, node.get("accuracy").doubleValue(), node.get("examples").intValue());
    }

    /** An array of numbers; JSON has no NaN, so the history writes a NaN or an infinity as a string. */
    private static List<Double> numbers(JsonNode array, Path file, String key) {
        if (array == null || !array.isArray()) {
            throw new InvalidDataException(file + ": " + key + " is not an array of numbers");
        }
        List<Double> values = new ArrayList<>();
        for (JsonNode v : array) {
            if (v.isNumber()) {
                values.add(v.doubleValue());
            } else if (v.isTextual() && List.of("NaN", "Infinity", "-Infinity").contains(v.textValue())) {
                values.add(Double.parseDouble(v.textValue()));
            } else {
                throw new InvalidDataException(file + ": " + key + " holds " + v + ", not a number");
            }
        }
        return values;
    }

    private static NonFiniteEvent nonFinite(JsonNode node, Path file) {
        if (node == null || node.isNull()) {
            return null;
        }
        if (!node.path("epoch").canConvertToInt() || !node.path("step").canConvertToInt()
                || !node.path("layer").isTextual() || !node.path("stopped").isBoolean()
                || node.path("epoch").intValue() < 1 || node.path("step").intValue() < 1) {
            throw new InvalidDataException(file + ": non_finite is not {epoch, step, layer, stopped}: " + node);
        }
        return new NonFiniteEvent(node.get("epoch").intValue() - 1, node.get("step").intValue() - 1,
                node.get("layer").textValue(), node.get("stopped").booleanValue());
    }

    /**
     * The profile in the two tables of a run of {@code epochs} epochs: every step's rows name the first step's
     * tensors in order and agree on the step; steps and epochs go forward; norms and fractions are in range.
     */
    private static Profile profile(Path gradientsFile, Path layersFile, int epochs) {
        List<Profile.Segment> segments = new ArrayList<>();
        List<Profile.StepStatistics> steps = new ArrayList<>();
        try (CSVParser csv = parser(gradientsFile, RunReport.GRADIENTS_HEADER)) {
            List<CSVRecord> rows = csv.getRecords();
            if (rows.isEmpty()) {
                throw new InvalidDataException(gradientsFile + ": no steps, only the header (a run writes a row for"
                        + " every step and parameter tensor)");
            }
            // The first step's rows name the tensors, in order, up to a row of another step or one that names the
            // first tensor again; every step has one row per tensor, in that order.
            String firstTensor = cell(rows.get(0), "layer", gradientsFile) + "." + rows.get(0).get("parameter");
            for (CSVRecord row : rows) {
                if (!segments.isEmpty() && (!cell(row, "global_step", gradientsFile).equals(rows.get(0)
                        .get("global_step")) || (row.get("layer") + "." + row.get("parameter")).equals(firstTensor))) {
                    break;
                }
                segments.add(new Profile.Segment(integer(row, "layer_index", gradientsFile), row.get("layer"), "",
                        row.get("parameter")));
            }
            int width = segments.size();
            if (rows.size() % Math.max(1, width) != 0) {
                throw new InvalidDataException(gradientsFile + ": " + rows.size() + " rows are not whole steps of "
                        + width + " tensors");
            }
            for (int first = 0; first < rows.size(); first += width) {
                CSVRecord head = rows.get(first);
                int epoch = integer(head, "epoch", gradientsFile);
                int step = integer(head, "step", gradientsFile);
                int globalStep = integer(head, "global_step", gradientsFile);
                Profile.StepStatistics previous = steps.isEmpty() ? null : steps.get(steps.size() - 1);
                boolean inOrder = previous == null || (globalStep - 1 > previous.globalStep()
                        && (epoch - 1 > previous.epoch() || (epoch - 1 == previous.epoch() && step - 1 > previous.step())));
                if (epoch < 1 || epoch > epochs || step < 1 || globalStep < 1 || !inOrder) {
                    throw new InvalidDataException(gradientsFile + ": line " + (head.getRecordNumber() + 1) + ": epoch "
                            + epoch + ", step " + step + ", global step " + globalStep + " is not a step after the last"
                            + " one of a run of " + epochs + " epochs");
                }
                double[][] norms = new double[3][width];
                for (int i = 0; i < width; i++) {
                    CSVRecord row = rows.get(first + i);
                    Profile.Segment expected = segments.get(i);
                    if (!cell(row, "global_step", gradientsFile).equals(head.get("global_step"))
                            || !row.get("epoch").equals(head.get("epoch")) || !row.get("step").equals(head.get("step"))
                            || !row.get("layer").equals(expected.layerName())
                            || !row.get("parameter").equals(expected.parameter())) {
                        throw new InvalidDataException(gradientsFile + ": line " + (row.getRecordNumber() + 1)
                                + " should be step " + head.get("global_step") + "'s "
                                + expected.layerName() + "." + expected.parameter() + ", as in every step");
                    }
                    norms[0][i] = norm(row, "grad_norm", gradientsFile);
                    norms[1][i] = norm(row, "weight_norm", gradientsFile);
                    norms[2][i] = norm(row, "update_norm", gradientsFile);
                }
                steps.add(new Profile.StepStatistics(epoch - 1, step - 1, globalStep - 1, norms[0], norms[1],
                        norms[2]));
            }
        } catch (IOException e) {
            throw new InvalidDataException(gradientsFile + ": cannot read: " + e.getMessage(), e);
        }
        List<Profile.UnitStatistics> units = new ArrayList<>();
        try (CSVParser csv = parser(layersFile, RunReport.LAYERS_HEADER)) {
            for (CSVRecord row : csv) {
                int epoch = integer(row, "epoch", layersFile);
                int layer = integer(row, "layer_index", layersFile);
                int width = integer(row, "units", layersFile);
                if (epoch < 1 || epoch > epochs || layer < 0 || width < 1) {
                    throw new InvalidDataException(layersFile + ": line " + (row.getRecordNumber() + 1) + ": epoch "
                            + epoch + ", layer_index " + layer + ", units " + width + " are not those of a layer in a"
                            + " run of " + epochs + " epochs");
                }
                units.add(new Profile.UnitStatistics(epoch - 1, layer, row.get("layer"), row.get("activation"), width,
                        fraction(row, "dead_fraction", layersFile), fraction(row, "inactive_fraction", layersFile),
                        fraction(row, "saturated_fraction", layersFile), real(row, "mean", layersFile),
                        norm(row, "std", layersFile)));
            }
        } catch (IOException e) {
            throw new InvalidDataException(layersFile + ": cannot read: " + e.getMessage(), e);
        }
        return Profile.of(segments, GradientProfiler.DEFAULT_SATURATION_THRESHOLD, steps, units);
    }

    /** A parser of {@code file}, whose first line must be {@code header}. */
    private static CSVParser parser(Path file, List<String> header) throws IOException {
        Reader reader;
        try {
            reader = Files.newBufferedReader(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new InvalidDataException(file + ": file not found", e);
        }
        CSVParser csv = CSVFormat.RFC4180.builder().setHeader().setSkipHeaderRecord(true).setIgnoreEmptyLines(true)
                .get().parse(reader);
        if (!csv.getHeaderNames().equals(header)) {
            csv.close();
            throw new InvalidDataException(file + ": its columns are " + csv.getHeaderNames() + ", expected " + header);
        }
        return csv;
    }

    private static int integer(CSVRecord row, String column, Path file) {
        try {
            return Integer.parseInt(cell(row, column, file));
        } catch (NumberFormatException e) {
            throw new InvalidDataException(file + ": line " + (row.getRecordNumber() + 1) + ": " + column
                    + " is not a whole number: '" + row.get(column) + "'", e);
        }
    }

    /** A number; an empty cell (not measured) is NaN. */
    private static double real(CSVRecord row, String column, Path file) {
        String text = cell(row, column, file);
        if (text.isEmpty()) {
            return Double.NaN;
        }
        try {
            return Double.parseDouble(text);
        } catch (NumberFormatException e) {
            throw new InvalidDataException(file + ": line " + (row.getRecordNumber() + 1) + ": " + column
                    + " is not a number: '" + text + "'", e);
        }
    }

    /** A norm: >= 0, infinite when it overflowed, NaN or empty when not measured or not finite. */
    private static double norm(CSVRecord row, String column, Path file) {
        double value = real(row, column, file);
        if (value < 0) {
            throw new InvalidDataException(file + ": line " + (row.getRecordNumber() + 1) + ": " + column + " is "
                    + value + "; a norm is >= 0");
        }
        return value;
    }

    /** A fraction in [0, 1], or NaN. */
    private static double fraction(CSVRecord row, String column, Path file) {
        double value = real(row, column, file);
        if (value < 0 || value > 1) {
            throw new InvalidDataException(file + ": line " + (row.getRecordNumber() + 1) + ": " + column + " is "
                    + value + "; a fraction is within [0, 1]");
        }
        return value;
    }

    private static String cell(CSVRecord row, String column, Path file) {
        if (!row.isConsistent()) {
            throw new InvalidDataException(file + ": line " + (row.getRecordNumber() + 1) + " has " + row.size()
                    + " cells, the header " + row.getParser().getHeaderNames().size());
        }
        return row.get(column);
    }
}
