package dev.gradscope.cli;

import dev.gradscope.backend.Devices;
import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.data.Mnist;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code gradscope info}: what this machine offers GradScope. */
@Command(name = "info", mixinStandardHelpOptions = true,
        description = "Show the Java runtime, the backends that work here, and whether MNIST is present.")
final class InfoCommand implements Callable<Integer> {
    @Option(names = "--data-dir", paramLabel = "DIR", defaultValue = Mnist.DEFAULT_DIR,
            description = "Where to look for MNIST (default: ${DEFAULT-VALUE}).")
    Path dataDir;

    @Override
    public Integer call() {
        System.out.println(new GradScope.Version().getVersion()[0]);
        System.out.println("java:  " + System.getProperty("java.vm.name") + " " + Runtime.version() + " ("
                + System.getProperty("os.name") + " " + System.getProperty("os.arch") + ")");
        try (CpuBackend cpu = new CpuBackend()) {
            System.out.println("cpu:   available - " + cpu.description());
        }
        System.out.println("cuda:  unavailable - " + Devices.cudaUnavailableReason());
        System.out.println("mnist: " + describeData(dataDir));
        return 0;
    }

    private static String describeData(Path dir) {
        if (!Files.isDirectory(dir)) {
            return "not found in " + dir + " (run " + Mnist.FETCH_SCRIPT + ")";
        }
        try {
            Mnist m = Mnist.load(dir);
            return m.train().rows() + " training and " + m.test().rows() + " test images in " + dir;
        } catch (RuntimeException e) {
            return "unusable: " + e.getMessage();
        }
    }
}
