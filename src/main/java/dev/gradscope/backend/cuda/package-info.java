/**
 * The CUDA backend: {@link dev.gradscope.backend.cuda.CudaBackend} runs every
 * {@link dev.gradscope.tensor.Backend} op on an NVIDIA GPU through JCuda's driver API (kernels from
 * {@code src/main/cuda}, loaded as PTX) and JCublas2 (GEMM), with the semantics of the CPU reference.
 *
 * <p>Where things are: {@code CudaBackend} (the ops and their checks), {@code Kernels} (the PTX modules
 * and every kernel function, looked up once), {@code Launch} (grid and block of every launch, the kernel
 * ABI's conventions), {@code RowMajorGemm} and {@code Cublas} (the row-major GEMM as one column-major
 * cublasSgemm), {@code DeviceArena} and {@code CudaStorage} (device memory), {@link
 * dev.gradscope.backend.cuda.CudaProbe} (whether CUDA can run here, and why not), {@link
 * dev.gradscope.backend.cuda.CudaException} (every failed CUDA or cuBLAS call). The kernel ABI, the
 * contract between the {@code .cu} files and this package, is summarised in {@code src/main/cuda/README.md}.
 */
package dev.gradscope.backend.cuda;
