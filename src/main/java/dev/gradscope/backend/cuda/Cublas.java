package dev.gradscope.backend.cuda;

import static jcuda.jcublas.JCublas2.cublasCreate;
import static jcuda.jcublas.JCublas2.cublasDestroy;
import static jcuda.jcublas.JCublas2.cublasGetVersion;
import static jcuda.jcublas.JCublas2.cublasSetMathMode;
import static jcuda.jcublas.JCublas2.cublasSetStream;
import static jcuda.jcublas.JCublas2.cublasSetWorkspace;
import static jcuda.jcublas.JCublas2.cublasSgemm;
import static jcuda.jcublas.JCublas2.cublasSscal;

import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUstream;
import jcuda.jcublas.cublasHandle;
import jcuda.jcublas.cublasMath;
import jcuda.runtime.cudaStream_t;

/**
 * The backend's cuBLAS handle: bound to the backend's stream, given a workspace from the backend's
 * arena, in the default (FP32) math mode. Created and destroyed by {@link CudaBackend}.
 *
 * <p>Why each setting. The stream: every GEMM must be ordered with the kernels around it, and a step
 * must be capturable into a CUDA graph, which records one stream. The workspace: without one, cuBLAS
 * allocates its own on first use of a stream, which cannot happen inside a graph capture; and
 * {@code cublasSetStream} resets the workspace to cuBLAS's default pool, so the workspace is set after
 * the stream, never before. The math mode: {@code CUBLAS_DEFAULT_MATH} is true FP32 (no TF32
 * tensor-core rounding), so that GPU results match the CPU reference to float precision; {@link #setTf32}
 * opts into TF32.
 */
final class Cublas implements AutoCloseable {
    /** cuBLAS's recommended workspace on Hopper (32 MiB; 4 MiB suffices for older GPUs). */
    static final long WORKSPACE_BYTES = 32L << 20;

    private final cublasHandle handle = new cublasHandle();
    private final String version;
    private boolean created;

    Cublas(CUstream stream, CUdeviceptr workspace, long workspaceBytes) {
        try {
            CudaErrors.checkCublas(cublasCreate(handle));
            created = true;
            CudaErrors.checkCublas(cublasSetStream(handle, new cudaStream_t(stream)));
            CudaErrors.checkCublas(cublasSetWorkspace(handle, workspace, workspaceBytes));
            CudaErrors.checkCublas(cublasSetMathMode(handle, cublasMath.CUBLAS_DEFAULT_MATH));
            int[] v = new int[1];
            CudaErrors.checkCublas(cublasGetVersion(handle, v));
            // CUBLAS_VERSION = major * 10000 + minor * 100 + patch (12.6.4 is 120604).
            version = (v[0] / 10000) + "." + (v[0] / 100 % 100) + "." + (v[0] % 100);
        } catch (jcuda.CudaException e) {
            close();
            throw CudaErrors.wrap("creating the cuBLAS handle", "", e);
        }
    }

    /**
     * {@code CUBLAS_TF32_TENSOR_OP_MATH} when {@code tf32}, so that SGEMM may round its inputs to TF32 on
     * tensor cores; {@code CUBLAS_DEFAULT_MATH} (true FP32) otherwise. Later GEMMs use the new mode.
     */
    void setTf32(boolean tf32) {
        CudaErrors.checkCublas(cublasSetMathMode(handle,
                tf32 ? cublasMath.CUBLAS_TF32_TENSOR_OP_MATH : cublasMath.CUBLAS_DEFAULT_MATH));
    }

    /** The version of the cuBLAS library actually loaded, e.g. {@code "12.6.4"}. */
    String version() {
        return version;
    }

    /**
     * Row-major {@code C[m,n] = alpha op(A) · op(B) + beta C} with {@code k >= 1}; see {@link RowMajorGemm}
     * for the mapping onto column-major cuBLAS. Throws JCuda's exception on failure.
     */
    void gemm(boolean transposeA, boolean transposeB, int m, int n, int k, float alpha, CUdeviceptr a,
              int aColumns, CUdeviceptr b, int bColumns, float beta, CUdeviceptr c) {
        RowMajorGemm call = RowMajorGemm.plan(transposeA, transposeB, m, n, k, aColumns, bColumns);
        CudaErrors.checkCublas(cublasSgemm(handle, call.transFirst(), call.transSecond(), call.m(), call.n(),
                call.k(), Pointer.to(new float[] {alpha}), b, call.ldFirst(), a, call.ldSecond(),
                Pointer.to(new float[] {beta}), c, call.ldc()));
    }

    /** {@code x = alpha x} over {@code n} contiguous floats. Throws JCuda's exception on failure. */
    void scale(int n, float alpha, CUdeviceptr x) {
        CudaErrors.checkCublas(cublasSscal(handle, n, Pointer.to(new float[] {alpha}), x, 1));
    }

    /** Destroys the handle. Idempotent. */
    @Override
    public void close() {
        if (created) {
            created = false;
            CudaErrors.checkCublas(cublasDestroy(handle));
        }
    }
}
