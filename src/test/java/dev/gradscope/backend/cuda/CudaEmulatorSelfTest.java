package dev.gradscope.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The CUDA emulator's kernel runner checked on its own ({@code scripts/test-cuda-emulator-kernels.sh}):
 * some of the project's kernels against naive C++ references, and the runner's barriers, warp exchanges
 * and numbering of threads. The GPU tests trust the emulator (run {@code gpu-emulated} in pom.xml); this is
 * what makes that trust earned. Needs g++ on x86-64, as the emulator does; skipped, saying so, without.
 */
class CudaEmulatorSelfTest {
    @Test
    void theKernelRunnerPassesItsSelfTest() throws IOException, InterruptedException {
        assumeTrue(gxxTargetsX86_64(), "no g++ for x86-64: the CUDA emulator cannot be built here");
        Path log = Files.createTempFile("cuda-emulator-selftest", ".log");
        try {
            Process process = new ProcessBuilder("bash", "scripts/test-cuda-emulator-kernels.sh")
                    .redirectErrorStream(true).redirectOutput(log.toFile()).start();
            boolean finished = process.waitFor(5, TimeUnit.MINUTES);
            if (!finished) {
                process.destroyForcibly();
            }
            String output = Files.readString(log, StandardCharsets.UTF_8);
            assertTrue(finished, "the self-test did not finish in 5 minutes:\n" + output);
            assertEquals(0, process.exitValue(), "the self-test failed:\n" + output);
            assertTrue(output.contains(" 0 failed"), "the self-test did not report its checks:\n" + output);
        } finally {
            Files.deleteIfExists(log);
        }
    }

    private static boolean gxxTargetsX86_64() throws InterruptedException {
        try {
            Process p = new ProcessBuilder("g++", "-dumpmachine").redirectErrorStream(true).start();
            String machine = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            return p.waitFor() == 0 && machine.startsWith("x86_64-");
        } catch (IOException e) {
            return false;
        }
    }
}
