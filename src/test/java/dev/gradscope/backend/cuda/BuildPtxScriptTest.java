package dev.gradscope.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * scripts/build-ptx.sh's resource checks, with the real nvcc and ptxas: a kernel declared GS_BLOCKS_OF_1024 never
 * reports more than 64 registers (its launch bounds cap them, and ptxas spills the rest to local memory), so the
 * register check alone cannot catch it; the spill check must. Needs nvcc and the PTX the build made (the project's
 * modules are copied, newer than their sources, so that only the test's kernel is compiled); skips without them.
 */
class BuildPtxScriptTest {
    /** 96 floats live at once in every thread: more than the 64 registers that GS_BLOCKS_OF_1024 leaves. */
    private static final String SPILLING_KERNEL = """
            #include "common.cuh"
            extern "C" __global__ void GS_BLOCKS_OF_1024 spilling_kernel(const float* x, float* y, int n) {
                float v[96];
            #pragma unroll
                for (int i = 0; i < 96; i++) {
                    v[i] = x[threadIdx.x + i * n];
                }
                float s = 0.0f;
            #pragma unroll
                for (int i = 0; i < 96; i++) {
                    s = s * v[95 - i] + v[i];
                }
            #pragma unroll
                for (int i = 0; i < 96; i++) {
                    y[threadIdx.x + i * n] = v[i] * s;
                }
            }
            """;

    @TempDir
    Path tmp;

    @Test
    void aKernelThatSpillsFailsTheBuildByName() throws IOException, InterruptedException {
        List<String> missing = Kernels.missingResources();
        assumeTrue(missing.isEmpty(), () -> Kernels.NOT_BUILT + ": " + missing + " not on the test classpath");
        assumeTrue(Stream.of(System.getenv("PATH").split(":")).anyMatch(dir -> Files.isExecutable(Path.of(dir, "nvcc")))
                || Files.isExecutable(Path.of("/usr/local/cuda/bin/nvcc")), "no nvcc here to compile a kernel with");
        Path sources = Files.createDirectories(tmp.resolve("cuda"));
        try (Stream<Path> files = Files.list(Path.of("src/main/cuda"))) {
            for (Path file : files.filter(f -> f.toString().endsWith(".cu") || f.toString().endsWith(".cuh")).toList()) {
                Files.copy(file, sources.resolve(file.getFileName()));
            }
        }
        Files.writeString(sources.resolve("spill.cu"), SPILLING_KERNEL);
        Path out = Files.createDirectories(tmp.resolve("ptx"));
        FileTime later = FileTime.from(Instant.now().plusSeconds(60)); // newer than every source and the script
        for (String family : Kernels.FAMILIES) {
            Path ptx = out.resolve(family + ".ptx");
            try (InputStream in = BuildPtxScriptTest.class.getResourceAsStream(Kernels.resource(family))) {
                Files.copy(in, ptx);
            }
            Files.setLastModifiedTime(ptx, later);
        }

        Process process = new ProcessBuilder("bash", "scripts/build-ptx.sh", sources.toString(), out.toString())
                .redirectOutput(tmp.resolve("stdout").toFile()).redirectError(tmp.resolve("stderr").toFile()).start();
        assertTrue(process.waitFor(300, TimeUnit.SECONDS), "build-ptx.sh finished");
        String stderr = Files.readString(tmp.resolve("stderr"));
        assertEquals(1, process.exitValue(), stderr);
        List<String> findings = stderr.lines().filter(line -> line.contains(" spills registers (")
                || line.matches(".* uses \\d+ registers")).toList();
        assertEquals(1, findings.size(), "only the test's kernel spills or is over the limit: " + stderr);
        assertTrue(findings.get(0).matches("build-ptx: spill\\.ptx: spilling_kernel spills registers \\([1-9]\\d*"
                + " bytes spill stores, \\d+ bytes spill loads\\)"), findings.get(0));
        assertTrue(stderr.contains("spills (a kernel whose launch bounds cap its registers)"), stderr);
    }
}
