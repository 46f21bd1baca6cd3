// Data movement: CpuBackend.gatherRows, which builds a batch from the dataset held on the device.
//
// out[r][c] = source[indices[first + r]][c] * scale, from a UINT8 dataset (MNIST's pixels, read as
// 0..255) or a FLOAT32 one. One thread per element of out, grid-stride. The kernel cannot check an
// index against the source's row count (the ABI does not pass it): the host validates indices when
// it uploads them.
#include "common.cuh"

namespace gs {

__device__ __forceinline__ float asFloat(unsigned char v) { return static_cast<float>(v); }

__device__ __forceinline__ float asFloat(float v) { return v; }

template <class T>
__device__ __forceinline__ void gatherRows(const T* __restrict__ source, const int* __restrict__ indices, int first,
                                           float scale, float* __restrict__ out, int rows, int cols) {
    if (cols <= 0) {
        return;
    }
    const unsigned columns = countOf(cols);
    const unsigned n = countOf(rows) * columns;
    for (unsigned e = threadIndex(); e < n; e += threadCount()) {
        const unsigned r = e / columns;
        const unsigned c = e - r * columns;
        const size_t sourceRow = static_cast<size_t>(__ldg(indices + first + r));
        out[e] = asFloat(source[sourceRow * columns + c]) * scale;
    }
}

} // namespace gs

extern "C" __global__ void gather_rows_u8(const unsigned char* __restrict__ source, const int* __restrict__ indices,
                                          int first, float scale, float* __restrict__ out, int rows, int cols) {
    gs::gatherRows(source, indices, first, scale, out, rows, cols);
}

extern "C" __global__ void gather_rows_f32(const float* __restrict__ source, const int* __restrict__ indices,
                                           int first, float scale, float* __restrict__ out, int rows, int cols) {
    gs::gatherRows(source, indices, first, scale, out, rows, cols);
}
