package dev.gradscope.backend.cuda;

import static jcuda.driver.JCudaDriver.cuDeviceGetCount;
import static jcuda.driver.JCudaDriver.cuDriverGetVersion;
import static jcuda.driver.JCudaDriver.cuInit;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;
import jcuda.jcublas.JCublas2;
import jcuda.libraryPropertyType;

/**
 * What this machine offers the CUDA backend, found without throwing: whether JCuda's native library
 * loads (it needs the NVIDIA driver's {@code libcuda.so.1}), whether {@code cuInit} succeeds, how many
 * devices the driver sees, whether the build put the PTX kernels into the jar, and whether JCublas2's
 * native library loads (it needs {@code libcublas.so.12}).
 *
 * <p>The probe runs once per JVM ({@link #get()}): a native library that failed to load cannot be
 * loaded again, and the driver's answer does not change. It is also where JCuda's exceptions are
 * switched on, once, before any other JCuda call of GradScope.
 *
 * @param driverVersion     the CUDA version the driver supports ({@code "13.0"}), null when unknown
 * @param deviceCount       devices the driver sees (0 when it could not be asked)
 * @param firstDevice       device 0, null when there is none
 * @param cublasVersion     the cuBLAS library's version ({@code "12.6.4"}), null when it did not load
 * @param missingKernels    PTX resources the build did not produce ({@code "/ptx/loss.ptx"})
 * @param unavailableReason why the CUDA backend cannot run here, in one line; empty when it can
 */
public record CudaProbe(String driverVersion, int deviceCount, DeviceInfo firstDevice, String cublasVersion,
                        List<String> missingKernels, Optional<String> unavailableReason) {

    public CudaProbe {
        missingKernels = List.copyOf(missingKernels);
    }

    /** The probe of this JVM, run on first use. Never throws. */
    public static CudaProbe get() {
        return Holder.PROBE;
    }

    /** Whether the driver, a device, the kernels and cuBLAS are all there. */
    public boolean available() {
        return unavailableReason.isEmpty();
    }

    /** Lazy holder: the probe runs when first asked for, once. */
    private static final class Holder {
        static final CudaProbe PROBE = run();
    }

    private static CudaProbe run() {
        List<String> problems = new ArrayList<>();
        String driverVersion = null;
        int deviceCount = 0;
        DeviceInfo firstDevice = null;
        try {
            // Loading JCudaDriver loads libJCudaDriver, which needs libcuda.so.1: the NVIDIA driver.
            JCudaDriver.setExceptionsEnabled(true);
            try {
                cuInit(0);
                int[] value = new int[1];
                cuDriverGetVersion(value);
                driverVersion = formatDriverVersion(value[0]);
                cuDeviceGetCount(value);
                deviceCount = value[0];
                if (deviceCount == 0) {
                    problems.add("no CUDA device (the NVIDIA driver sees none)");
                } else {
                    firstDevice = DeviceInfo.query(0);
                }
            } catch (jcuda.CudaException e) {
                problems.add(driverProblem(e));
            }
        } catch (LinkageError | RuntimeException e) {
            problems.add(nativeLibraryProblem("no NVIDIA driver", "libcuda.so", e, null));
        }

        List<String> missing = Kernels.missingResources();
        if (!missing.isEmpty()) {
            problems.add(Kernels.NOT_BUILT + ": " + String.join(", ", missing) + " not in the jar");
        }

        String cublasVersion = null;
        try {
            // Loading JCublas2 loads libJCublas2, which needs libcublas.so.12.
            JCublas2.setExceptionsEnabled(true);
            int[] part = new int[3];
            JCublas2.cublasGetProperty(libraryPropertyType.MAJOR_VERSION, part);
            int major = part[0];
            JCublas2.cublasGetProperty(libraryPropertyType.MINOR_VERSION, part);
            int minor = part[0];
            JCublas2.cublasGetProperty(libraryPropertyType.PATCH_LEVEL, part);
            cublasVersion = major + "." + minor + "." + part[0];
        } catch (jcuda.CudaException e) {
            // The library loaded but answered with an error status.
            String name = String.valueOf(e.getMessage()).trim();
            problems.add("cuBLAS does not work (cublasGetProperty: " + name + ")");
        } catch (LinkageError | RuntimeException e) {
            problems.add(nativeLibraryProblem("cuBLAS library missing", "libcublas.so", e,
                    "CUDA 12's, or on CUDA 13 the forwarding one of scripts/build-cublas-compat.sh,"
                            + " must be on LD_LIBRARY_PATH"));
        }
        Optional<String> reason = problems.isEmpty() ? Optional.empty() : Optional.of(String.join("; ", problems));
        return new CudaProbe(driverVersion, deviceCount, firstDevice, cublasVersion, missing, reason);
    }

    /** 13000 -> {@code "13.0"}: the driver encodes its CUDA version as 1000 major + 10 minor. */
    static String formatDriverVersion(int encoded) {
        return (encoded / 1000) + "." + (encoded % 1000) / 10;
    }

    private static String driverProblem(jcuda.CudaException e) {
        String name = String.valueOf(e.getMessage()).trim();
        String description = CudaErrors.describe(name);
        String detail = name + (description == null ? "" : " (" + description + ")");
        if (name.equals(CUresult.stringFor(CUresult.CUDA_ERROR_NO_DEVICE))) {
            return "no CUDA device (cuInit: " + detail + ")";
        }
        return "the NVIDIA driver does not work (" + detail + ")";
    }

    /**
     * One line for a native library that did not load: {@code what}, plus the missing system library
     * when the loader's message names {@code systemLibrary}, else the loader's first line, then the
     * {@code hint} (or null).
     */
    private static String nativeLibraryProblem(String what, String systemLibrary, Throwable e, String hint) {
        String tail = hint == null ? ")" : "; " + hint + ")";
        for (Throwable t = e; t != null; t = t.getCause()) {
            String message = t.getMessage();
            if (message == null) {
                continue;
            }
            int at = message.indexOf(systemLibrary);
            if (at >= 0) {
                int end = at;
                while (end < message.length() && !Character.isWhitespace(message.charAt(end))
                        && message.charAt(end) != ':' && message.charAt(end) != ',') {
                    end++;
                }
                return what + " (" + message.substring(at, end) + " not found" + tail;
            }
        }
        Throwable root = e;
        while (root.getCause() != null) {
            root = root.getCause();
        }
        String message = root.getMessage() == null ? root.getClass().getSimpleName() : root.getMessage();
        int newline = message.indexOf('\n');
        return what + " (" + (newline < 0 ? message : message.substring(0, newline)).trim() + tail;
    }

    /** The lines {@code gradscope info} prints about CUDA. */
    public List<String> describe() {
        List<String> lines = new ArrayList<>();
        lines.add("driver:  " + (driverVersion == null ? "not loaded" : "CUDA " + driverVersion + ", "
                + deviceCount + " device" + (deviceCount == 1 ? "" : "s")));
        lines.add("gpu:     " + (firstDevice == null ? "none" : firstDevice.summary()));
        lines.add("cublas:  " + (cublasVersion == null ? "not loaded" : cublasVersion));
        lines.add("kernels: " + (missingKernels.isEmpty() ? "built (" + Kernels.FAMILIES.size() + " PTX modules in the jar)"
                : String.format(Locale.ROOT, "not built (%d of %d PTX modules missing)", missingKernels.size(),
                        Kernels.FAMILIES.size())));
        return lines;
    }
}
