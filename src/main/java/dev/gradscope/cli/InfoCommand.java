package dev.gradscope.cli;

import dev.gradscope.backend.Devices;
import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.backend.cuda.CudaBackend;
import dev.gradscope.backend.cuda.CudaException;
import dev.gradscope.backend.cuda.CudaProbe;
import dev.gradscope.backend.cuda.CudaUnavailableException;
import dev.gradscope.data.DatasetKind;
import dev.gradscope.data.Mnist;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Spec;

/** {@code gradscope info}: what this machine offers GradScope. */
@Command(name = "info", mixinStandardHelpOptions = true, versionProvider = GradScope.Version.class,
        description = "Show the Java runtime, the backends that work here, and which data sets are present (each in"
                + " its own folder; --data-dir says where to look for --dataset's).")
final class InfoCommand implements Callable<Integer> {
    @Spec
    CommandLine.Model.CommandSpec spec;

    @Mixin
    DataOptions data = new DataOptions.AllFiles();

    @Override
    public Integer call() {
        data.validate(message -> new CommandLine.ParameterException(spec.commandLine(), message));
        System.out.println(new GradScope.Version().getVersion()[0]);
        System.out.println("java:  " + System.getProperty("java.vm.name") + " " + Runtime.version() + " ("
                + System.getProperty("os.name") + " " + System.getProperty("os.arch") + ")");
        try (CpuBackend cpu = new CpuBackend()) {
            System.out.println("cpu:   available - " + cpu.description());
        }
        describeCuda().forEach(System.out::println);
        for (DatasetKind kind : DatasetKind.values()) {
            Path dir = kind == data.dataset() ? data.dataDir() : Path.of(kind.defaultDir());
            System.out.println(kind.id() + ": " + describeData(kind, dir));
        }
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

    private static String describeData(DatasetKind kind, Path dir) {
        if (!Files.isDirectory(dir)) {
            return "not found in " + dir + " (run " + kind.fetchScript() + ")";
        }
        try {
            Mnist m = Mnist.load(kind, dir);
            return m.train().rows() + " training and " + m.test().rows() + " test images in " + dir;
        } catch (RuntimeException e) {
            return "unusable: " + e.getMessage();
        }
    }
}
