package dev.gradscope.cli;

import dev.gradscope.backend.Devices;
import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.backend.cuda.CudaBackend;
import dev.gradscope.backend.cuda.CudaException;
import dev.gradscope.backend.cuda.CudaProbe;
import dev.gradscope.backend.cuda.CudaUnavailableException;
import dev.gradscope.data.Mnist;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
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
        describeCuda().forEach(System.out::println);
        System.out.println("mnist: " + describeData(dataDir));
        return 0;
    }

    /**
     * The CUDA lines: available or why not, then what the probe found (driver, GPU, cuBLAS, kernels).
     * When nothing stands in the way, the backend is opened, so "kernels: loaded" means the driver
     * really compiled every PTX module for this GPU and found every kernel of the ABI.
     */
    static List<String> describeCuda() {
        List<String> lines = new ArrayList<>();
        CudaProbe probe = CudaProbe.get();
        List<String> details = new ArrayList<>(probe.describe());
        if (probe.available()) {
            try (CudaBackend gpu = new CudaBackend()) {
                lines.add("cuda:  available - " + gpu.description());
                String kernels = "kernels: loaded (" + gpu.kernelsDescription() + ")";
                details.replaceAll(line -> line.startsWith("kernels:") ? kernels : line);
            } catch (CudaUnavailableException | CudaException e) {
                lines.add("cuda:  unavailable - " + e.getMessage());
            }
        } else {
            lines.add("cuda:  unavailable - " + Devices.cudaUnavailableReason());
        }
        details.forEach(line -> lines.add("       " + line));
        return lines;
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
