package dev.gradscope.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.report.HistoryJson;
import dev.gradscope.tensor.ActivationKind;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code gradscope bench kernels}: its JSON, its usage errors, and the help the GPU bundle's run script reads. */
class BenchKernelsCommandTest {
    @TempDir
    Path tmp;

    private final StringWriter err = new StringWriter();

    private int run(String... args) {
        return GradScope.run(new PrintWriter(err, true), args);
    }

    @Test
    @SuppressWarnings("unchecked")
    void reportsForwardAndBackwardOfEveryElementWiseKindAndTheCopy() {
        Path out = tmp.resolve("tmp.json");
        // 4099: not a multiple of 4, so vectorised paths have a tail.
        assertEquals(0, run("bench", "kernels", "--device", "cpu", "--elements", "4099", "--repetitions", "2",
                "--out", out.toString()), err.toString());
        Map<String, Object> json = HistoryJson.read(out);
        assertEquals("cpu", json.get("backend"));
        assertEquals(4099, json.get("elements"));
        assertTrue(((Number) json.get("copy_gb_per_s")).doubleValue() > 0, "copy figure: " + json.get("copy"));

        Map<String, Map<String, Object>> byKind = ((List<Map<String, Object>>) json.get("kinds")).stream()
                .collect(Collectors.toMap(k -> (String) k.get("kind"), k -> k));
        List<String> elementWise = Arrays.stream(ActivationKind.values()).filter(ActivationKind::isElementWise)
                .map(ActivationKind::id).toList();
        assertEquals(elementWise.size(), byKind.size(), "one entry per element-wise kind: " + byKind.keySet());
        for (String id : elementWise) {
            Map<String, Object> entry = byKind.get(id);
            assertNotNull(entry, id);
            for (String direction : List.of("forward", "backward")) {
                Map<String, Object> figures = (Map<String, Object>) entry.get(direction);
                assertTrue(((Number) figures.get("gb_per_s")).doubleValue() > 0, id + " " + direction);
                assertTrue(((Number) figures.get("percent_of_copy")).doubleValue() > 0, id + " " + direction);
                assertEquals(2, ((List<?>) figures.get("milliseconds")).size(), id + " " + direction);
                assertEquals("ok", figures.get("check"), id + " " + direction);
            }
        }
        assertFalse(byKind.containsKey(ActivationKind.SOFTMAX.id()), "softmax is not element-wise");
        Map<String, Object> dropout = (Map<String, Object>) json.get("dropout");
        assertEquals(0.5, dropout.get("rate"));
        for (String direction : List.of("forward", "backward")) {
            Map<String, Object> figures = (Map<String, Object>) dropout.get(direction);
            assertTrue(((Number) figures.get("gb_per_s")).doubleValue() > 0, "dropout " + direction);
            assertEquals("ok", figures.get("check"), "dropout " + direction + " against the hash");
        }

        assertBatchNormRow(json, 8, 512);

        List<Map<String, Object>> gemm = (List<Map<String, Object>>) json.get("gemm");
        assertTrue(((Number) gemm.get(0).get("gflop_per_s")).doubleValue() > 0, gemm.toString());
        assertEquals(2, ((List<?>) json.get("thresholds")).size());
        assertEquals(List.of(), json.get("wrong_results"));
    }

    /**
     * The batch-normalization row: the N floats as a [rows x cols] batch, forward and backward checked against the
     * host, bytes the least each pass must move (12N and 20N in two passes, plus the per-column vectors), a
     * positive rate.
     */
    @SuppressWarnings("unchecked")
    static void assertBatchNormRow(Map<String, Object> json, int rows, int cols) {
        Map<String, Object> batchNorm = (Map<String, Object>) json.get("batch_norm");
        assertNotNull(batchNorm, json.keySet().toString());
        assertEquals(List.of(rows, cols, 0.99), List.of(batchNorm.get("rows"), batchNorm.get("cols"),
                batchNorm.get("momentum")));
        long elements = (long) rows * cols;
        Map<String, Long> bytes = Map.of("forward", 12 * elements + 32L * cols, "backward", 20 * elements + 20L * cols);
        for (String direction : List.of("forward", "backward")) {
            Map<String, Object> figures = (Map<String, Object>) batchNorm.get(direction);
            assertEquals("ok", figures.get("check"), "batch_norm " + direction + " against the host");
            assertEquals(bytes.get(direction), ((Number) figures.get("bytes")).longValue(), direction);
            double ms = ((Number) figures.get("median_ms")).doubleValue();
            double rate = ((Number) figures.get("gb_per_s")).doubleValue();
            assertTrue(ms > 0 && rate > 0, "batch_norm " + direction + ": " + figures);
            assertEquals(bytes.get(direction) / ms / 1e6, rate, 1e-9 * rate, "GB/s is bytes over the median");
        }
    }

    /** Fewer floats than a row of 512: one row of them (its variance is 0, so y is beta; still checked). */
    @Test
    void batchNormOfFewerElementsThanItsColumnsIsOneRow() {
        Path out = tmp.resolve("small.json");
        java.io.PrintStream saved = System.out;
        java.io.ByteArrayOutputStream printed = new java.io.ByteArrayOutputStream();
        try (java.io.PrintStream capture = new java.io.PrintStream(printed, true,
                java.nio.charset.StandardCharsets.UTF_8)) {
            System.setOut(capture);
            assertEquals(0, run("bench", "kernels", "--device", "cpu", "--elements", "300", "--repetitions", "1",
                    "--out", out.toString()), err.toString());
        } finally {
            System.setOut(saved);
        }
        assertBatchNormRow(HistoryJson.read(out), 1, 300);
        String table = printed.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(table.lines().anyMatch(line -> line.startsWith("batch_norm ")), table);
        assertTrue(table.contains("batch_norm's over [N/300 x 300] 12N and 20N"), table);
    }

    @Test
    void badCountsAreUsageErrors() {
        assertEquals(2, run("bench", "kernels", "--device", "cpu", "--elements", "0"));
        assertTrue(err.toString().contains("--elements"), err.toString());
        assertEquals(2, run("bench", "kernels", "--device", "cpu", "--elements", "2^31"));
        assertEquals(2, run("bench", "kernels", "--device", "cpu", "--repetitions", "0"));
        assertEquals(2, run("bench", "kernels", "--device", "tpu"));
        assertTrue(err.toString().contains("auto, cpu, cuda"), err.toString());
    }

    /** 2^28 floats (1 GiB per tensor, four tensors) is the GPU's default; the CPU keeps 2^26. */
    @Test
    void defaultElementsAreSmallerOnTheCpu() {
        try (dev.gradscope.backend.cpu.CpuBackend cpu = new dev.gradscope.backend.cpu.CpuBackend()) {
            assertEquals(1 << 26, BenchKernelsCommand.defaultElements(cpu));
        }
        assertEquals(1 << 28, BenchKernelsCommand.CUDA_DEFAULT_ELEMENTS);
        String help = new CommandLine(new GradScope()).getSubcommands().get("bench").getSubcommands().get("kernels")
                .getUsageMessage(CommandLine.Help.Ansi.OFF);
        assertTrue(help.contains("2^28") && help.contains("2^26"), help);
    }

    @Test
    void elementsTakePowersOfTwo() {
        assertEquals(1 << 28, new BenchKernelsCommand.ElementCount().convert("2^28"));
        assertEquals(4099, new BenchKernelsCommand.ElementCount().convert("4099"));
    }

    /**
     * scripts/gpu-bundle-run.sh finds subcommands in the "Commands:" section of {@code bench --help}
     * (lines "  NAME ..."), then passes {@code --device cuda} and {@code --out} because the subcommand's help
     * names them, and {@code --data-dir} only if it does.
     */
    @Test
    void helpListsKernelsTheWayTheBundleScriptReadsIt() {
        CommandLine bench = new CommandLine(new GradScope()).getSubcommands().get("bench");
        String help = bench.getUsageMessage(CommandLine.Help.Ansi.OFF);
        String commands = help.substring(help.indexOf("\nCommands:\n"));
        assertTrue(commands.lines().anyMatch(line -> line.startsWith("  kernels ")), help);
        String kernelsHelp = bench.getSubcommands().get("kernels").getUsageMessage(CommandLine.Help.Ansi.OFF);
        assertTrue(kernelsHelp.contains("--device") && kernelsHelp.contains("--out"), kernelsHelp);
        assertFalse(kernelsHelp.contains("--data-dir"), kernelsHelp);
    }
}
