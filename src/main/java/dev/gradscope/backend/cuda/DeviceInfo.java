package dev.gradscope.backend.cuda;

import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetAttribute;
import static jcuda.driver.JCudaDriver.cuDeviceGetName;
import static jcuda.driver.JCudaDriver.cuDeviceTotalMem;

import java.nio.charset.StandardCharsets;
import java.util.Locale;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;

/**
 * What a CUDA device is: its name, compute capability, multiprocessor count and memory, as the driver
 * reports them. The launch configuration needs the multiprocessor count (grids of element-wise kernels
 * are capped at 32 blocks per multiprocessor), {@code gradscope info} the rest.
 *
 * @param ordinal          the device's index for the driver (0 for the first GPU)
 * @param name             e.g. {@code "NVIDIA H100 80GB HBM3"}
 * @param major            compute capability, major (9 on Hopper)
 * @param minor            compute capability, minor
 * @param multiprocessors  streaming multiprocessors (132 on an H100 SXM)
 * @param totalMemoryBytes device memory in bytes
 */
public record DeviceInfo(int ordinal, String name, int major, int minor, int multiprocessors,
                         long totalMemoryBytes) {

    /** Asks the driver about device {@code ordinal}; cuInit must have succeeded. */
    static DeviceInfo query(int ordinal) {
        CUdevice device = new CUdevice();
        CudaErrors.checkDriver(cuDeviceGet(device, ordinal));
        byte[] raw = new byte[256];
        CudaErrors.checkDriver(cuDeviceGetName(raw, raw.length, device));
        int end = 0;
        while (end < raw.length && raw[end] != 0) {
            end++;
        }
        long[] memory = new long[1];
        CudaErrors.checkDriver(cuDeviceTotalMem(memory, device));
        return new DeviceInfo(ordinal, new String(raw, 0, end, StandardCharsets.US_ASCII).trim(),
                attribute(device, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
                attribute(device, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR),
                attribute(device, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT), memory[0]);
    }

    private static int attribute(CUdevice device, int attribute) {
        int[] value = new int[1];
        CudaErrors.checkDriver(cuDeviceGetAttribute(value, attribute, device));
        return value[0];
    }

    /** {@code "9.0"}. */
    public String computeCapability() {
        return major + "." + minor;
    }

    /** {@code "NVIDIA H100 80GB HBM3 (compute capability 9.0, 132 SMs, 79.1 GiB)"}. */
    public String summary() {
        return String.format(Locale.ROOT, "%s (compute capability %s, %d SMs, %.1f GiB)", name, computeCapability(),
                multiprocessors, totalMemoryBytes / (double) (1L << 30));
    }
}
