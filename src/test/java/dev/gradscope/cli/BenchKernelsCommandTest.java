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

        List<Map<String, Object>> gemm = (List<Map<String, Object>>) json.get("gemm");
        assertTrue(((Number) gemm.get(0).get("gflop_per_s")).doubleValue() > 0, gemm.toString());
        assertEquals(2, ((List<?>) json.get("thresholds")).size());
        assertEquals(List.of(), json.get("wrong_results"));
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
