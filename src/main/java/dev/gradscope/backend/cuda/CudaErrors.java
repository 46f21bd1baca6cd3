package dev.gradscope.backend.cuda;

import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.util.HashMap;
import java.util.Map;
import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;
import jcuda.jcublas.JCublas2;
import jcuda.jcublas.cublasStatus;

/**
 * Turns the result of a CUDA driver or cuBLAS call into a {@link CudaException} that names the op.
 *
 * <p>JCuda runs with exceptions enabled ({@link CudaProbe} switches them on once), so a failing call
 * throws {@code jcuda.CudaException} whose message is only the error's name. Every call site catches
 * that and calls {@link #wrap} to add the op, the operands and the driver's description of the error.
 * The {@code check*} methods make the same happen when some other code in the JVM has switched JCuda's
 * exceptions off again: a non-zero result is never ignored.
 */
final class CudaErrors {
    /** CUresult's constants by name, so that a name from a JCuda exception finds its code again. */
    private static final Map<String, Integer> DRIVER_CODES = constants(CUresult.class);

    /** cublasStatus's constants by name. */
    private static final Map<String, Integer> CUBLAS_CODES = constants(cublasStatus.class);

    private CudaErrors() {
    }

    /** Throws JCuda's exception for a non-zero driver result, as JCuda does with exceptions enabled. */
    static void checkDriver(int result) {
        if (result != CUresult.CUDA_SUCCESS) {
            throw new jcuda.CudaException(CUresult.stringFor(result));
        }
    }

    /** Throws JCuda's exception for a non-zero cuBLAS status. */
    static void checkCublas(int status) {
        if (status != cublasStatus.CUBLAS_STATUS_SUCCESS) {
            throw new jcuda.CudaException(cublasStatus.stringFor(status));
        }
    }

    /** Our exception for a failed call made by {@code op} on {@code operands}. */
    static CudaException wrap(String op, String operands, jcuda.CudaException e) {
        String name = String.valueOf(e.getMessage()).trim();
        return new CudaException(op, operands, name, describe(name), e);
    }

    /** The driver's or cuBLAS's own description of an error name; null when there is none. */
    static String describe(String name) {
        Integer driverCode = DRIVER_CODES.get(name);
        if (driverCode != null) {
            try {
                String[] text = new String[1];
                JCudaDriver.cuGetErrorString(driverCode, text);
                return text[0];
            } catch (RuntimeException | LinkageError e) {
                return null; // the description is a courtesy; the name already identifies the error
            }
        }
        Integer cublasCode = CUBLAS_CODES.get(name);
        if (cublasCode != null) {
            try {
                return JCublas2.cublasGetStatusString(cublasCode);
            } catch (RuntimeException | LinkageError e) {
                return null;
            }
        }
        return null;
    }

    /** The driver's name of a result code, e.g. {@code CUDA_ERROR_NO_DEVICE}. */
    static String driverName(int result) {
        return CUresult.stringFor(result);
    }

    private static Map<String, Integer> constants(Class<?> holder) {
        Map<String, Integer> byName = new HashMap<>();
        for (Field f : holder.getFields()) {
            int mod = f.getModifiers();
            if (Modifier.isStatic(mod) && Modifier.isFinal(mod) && f.getType() == int.class) {
                try {
                    byName.putIfAbsent(f.getName(), f.getInt(null));
                } catch (IllegalAccessException e) {
                    throw new IllegalStateException("cannot read " + holder.getName() + "." + f.getName(), e);
                }
            }
        }
        return Map.copyOf(byName);
    }
}
