// libcublas.so.12 of the GradScope CUDA emulator: the cuBLAS calls GradScope makes (handle, stream,
// workspace, math mode, SGEMM, SSCAL), on the emulated device of driver.cc. Exported under the version
// node libcublas.so.12, as JCublas2 12.6.0 binds them (src/main/native/cublas-compat/libcublas.so.12.map).
//
// SGEMM follows cuBLAS's contract: column-major, op(A) m x k, op(B) k x n, leading dimensions checked
// as cuBLAS checks them, C not read when beta is 0 (so NaN there does not leak), alpha and beta read at
// the call in host pointer mode (also when the call is captured into a graph) and at run time in device
// pointer mode. Each element of C is one float sum over p in increasing order: the CPU reference adds in
// its own order, so the results differ by float rounding, as a GPU's do. In TF32 math mode the inputs
// are rounded to TF32 (10 mantissa bits, to nearest with ties away, as cvt.rna.tf32.f32) first, as
// tensor cores do: the effect of --tf32 on accuracy shows here too.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "driver.h"

namespace {

using Status = int;

/** cublasStatus_t values (cublas_api.h's numbering). */
enum : int {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_EXECUTION_FAILED = 13,
    CUBLAS_STATUS_NOT_SUPPORTED = 15,
};

enum : int { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 };
enum : int { CUBLAS_POINTER_MODE_HOST = 0, CUBLAS_POINTER_MODE_DEVICE = 1 };
enum : int { CUBLAS_DEFAULT_MATH = 0, CUBLAS_TF32_TENSOR_OP_MATH = 3 };
enum : int { MAJOR_VERSION = 0, MINOR_VERSION = 1, PATCH_LEVEL = 2 };

/** The cuBLAS version the emulator stands in for: the one JCublas2 12.6.0 was built against. */
constexpr int VERSION_MAJOR = 12;
constexpr int VERSION_MINOR = 6;
constexpr int VERSION_PATCH = 0;

struct Handle {
    CUstream stream = nullptr;
    int mathMode = CUBLAS_DEFAULT_MATH;
    int pointerMode = CUBLAS_POINTER_MODE_HOST;
};

/** Round to TF32 (sign, 8 exponent bits, 10 mantissa bits) to nearest, ties away from zero; NaN and infinity kept. */
float roundToTf32(float x) {
    if (!std::isfinite(x)) {
        return x;
    }
    std::uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    bits = (bits + 0x1000u) & 0xFFFFE000u;
    float rounded;
    std::memcpy(&rounded, &bits, sizeof rounded);
    return rounded;
}

Status statusOf(CUresult r) {
    return r == CUDA_SUCCESS ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

/** op(X) of a column-major matrix with leading dimension ld, as a dense column-major rows x cols copy. */
std::vector<float> denseOp(int op, const float* x, int rows, int cols, int ld, bool tf32) {
    std::vector<float> out(static_cast<std::size_t>(rows) * cols);
    for (int j = 0; j < cols; j++) {
        for (int i = 0; i < rows; i++) {
            const float v = op == CUBLAS_OP_N ? x[i + static_cast<std::size_t>(j) * ld]
                                              : x[j + static_cast<std::size_t>(i) * ld];
            out[i + static_cast<std::size_t>(j) * rows] = tf32 ? roundToTf32(v) : v;
        }
    }
    return out;
}

} // namespace

using cublasHandle_t = Handle*;

extern "C" {

Status cublasCreate_v2(cublasHandle_t* handle) {
    if (handle == nullptr) {
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    *handle = new Handle();
    return CUBLAS_STATUS_SUCCESS;
}

Status cublasDestroy_v2(cublasHandle_t handle) {
    if (handle == nullptr) {
        return CUBLAS_STATUS_NOT_INITIALIZED;
    }
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

Status cublasGetVersion_v2(cublasHandle_t handle, int* version) {
    if (handle == nullptr) {
        return CUBLAS_STATUS_NOT_INITIALIZED;
    }
    if (version == nullptr) {
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    *version = VERSION_MAJOR * 10000 + VERSION_MINOR * 100 + VERSION_PATCH;
    return CUBLAS_STATUS_SUCCESS;
}

Status cublasGetProperty(int type, int* value) {
    if (value == nullptr) {
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    switch (type) {
    case MAJOR_VERSION: *value = VERSION_MAJOR; return CUBLAS_STATUS_SUCCESS;
    case MINOR_VERSION: *value = VERSION_MINOR; return CUBLAS_STATUS_SUCCESS;
    case PATCH_LEVEL: *value = VERSION_PATCH; return CUBLAS_STATUS_SUCCESS;
    default: return CUBLAS_STATUS_INVALID_VALUE;
    }
}

Status cublasSetStream_v2(cublasHandle_t handle, CUstream stream) {
    if (handle == nullptr) {
        return CUBLAS_STATUS_NOT_INITIALIZED;
    }
    handle->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}

Status cublasGetStream_v2(cublasHandle_t handle, CUstream* stream) {
    if (handle == nullptr) {
        return CUBLAS_STATUS_NOT_INITIALIZED;
    }
    if (stream == nullptr) {
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    *stream = handle->stream;
    return CUBLAS_STATUS_SUCCESS;
}

Status cublasSetWorkspace_v2(cublasHandle_t handle, void* workspace, std::size_t bytes) {
    if (handle == nullptr) {
        return CUBLAS_STATUS_NOT_INITIALIZED;
    }
    if (bytes > 0 && (workspace == nullptr || !gsemu::isDeviceRange(workspace, bytes))) {
        gsemu::report("cublasSetWorkspace: %zu bytes at %p are not device memory", bytes, workspace);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    return CUBLAS_STATUS_SUCCESS;
}

Status cublasSetMathMode(cublasHandle_t handle, int mode) {
    if (handle == nullptr) {
        return CUBLAS_STATUS_NOT_INITIALIZED;
    }
    if (mode != CUBLAS_DEFAULT_MATH && mode != CUBLAS_TF32_TENSOR_OP_MATH) {
        gsemu::report("cublasSetMathMode: mode %d is not emulated", mode);
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    handle->mathMode = mode;
    return CUBLAS_STATUS_SUCCESS;
}

Status cublasGetMathMode(cublasHandle_t handle, int* mode) {
    if (handle == nullptr) {
        return CUBLAS_STATUS_NOT_INITIALIZED;
    }
    if (mode == nullptr) {
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    *mode = handle->mathMode;
    return CUBLAS_STATUS_SUCCESS;
}

Status cublasSetPointerMode_v2(cublasHandle_t handle, int mode) {
    if (handle == nullptr) {
        return CUBLAS_STATUS_NOT_INITIALIZED;
    }
    if (mode != CUBLAS_POINTER_MODE_HOST && mode != CUBLAS_POINTER_MODE_DEVICE) {
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    handle->pointerMode = mode;
    return CUBLAS_STATUS_SUCCESS;
}

Status cublasGetPointerMode_v2(cublasHandle_t handle, int* mode) {
    if (handle == nullptr) {
        return CUBLAS_STATUS_NOT_INITIALIZED;
    }
    if (mode == nullptr) {
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    *mode = handle->pointerMode;
    return CUBLAS_STATUS_SUCCESS;
}

Status cublasSgemm_v2(cublasHandle_t handle, int transa, int transb, int m, int n, int k, const float* alpha,
                      const float* a, int lda, const float* b, int ldb, const float* beta, float* c, int ldc) {
    if (handle == nullptr) {
        return CUBLAS_STATUS_NOT_INITIALIZED;
    }
    const bool aTransposed = transa != CUBLAS_OP_N;
    const bool bTransposed = transb != CUBLAS_OP_N;
    if ((transa != CUBLAS_OP_N && transa != CUBLAS_OP_T && transa != CUBLAS_OP_C)
        || (transb != CUBLAS_OP_N && transb != CUBLAS_OP_T && transb != CUBLAS_OP_C) || m < 0 || n < 0 || k < 0
        || lda < std::max(1, aTransposed ? k : m) || ldb < std::max(1, bTransposed ? n : k) || ldc < std::max(1, m)
        || alpha == nullptr || beta == nullptr) {
        gsemu::report("cublasSgemm: invalid arguments (transa %d, transb %d, m %d, n %d, k %d, lda %d, ldb %d, ldc %d)",
                      transa, transb, m, n, k, lda, ldb, ldc);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (m == 0 || n == 0) {
        return CUBLAS_STATUS_SUCCESS;
    }
    const bool devicePointers = handle->pointerMode == CUBLAS_POINTER_MODE_DEVICE;
    const float alphaAtCall = devicePointers ? 0.0f : *alpha;
    const float betaAtCall = devicePointers ? 0.0f : *beta;
    const bool tf32 = handle->mathMode == CUBLAS_TF32_TENSOR_OP_MATH;
    return statusOf(gsemu::enqueue(handle->stream, [=]() -> CUresult {
        const float alphaValue = devicePointers ? *alpha : alphaAtCall;
        const float betaValue = devicePointers ? *beta : betaAtCall;
        std::vector<float> opA;
        std::vector<float> opB;
        if (k > 0 && alphaValue != 0.0f) {
            opA = denseOp(transa, a, m, k, lda, tf32);
            opB = denseOp(transb, b, k, n, ldb, tf32);
        }
        std::vector<float> column(static_cast<std::size_t>(m));
        float* __restrict__ sum = column.data();
        for (int j = 0; j < n; j++) {
            std::fill(column.begin(), column.end(), 0.0f);
            for (int p = 0; p < k && !opA.empty(); p++) {
                const float bpj = opB[p + static_cast<std::size_t>(j) * k];
                const float* __restrict__ aColumn = &opA[static_cast<std::size_t>(p) * m];
                for (int i = 0; i < m; i++) {
                    sum[i] += aColumn[i] * bpj;
                }
            }
            float* cColumn = c + static_cast<std::size_t>(j) * ldc;
            for (int i = 0; i < m; i++) {
                const float product = alphaValue * sum[i];
                cColumn[i] = betaValue == 0.0f ? product : product + betaValue * cColumn[i];
            }
        }
        return gsemu::checkGuards("cublasSgemm");
    }));
}

Status cublasSscal_v2(cublasHandle_t handle, int n, const float* alpha, float* x, int incx) {
    if (handle == nullptr) {
        return CUBLAS_STATUS_NOT_INITIALIZED;
    }
    if (alpha == nullptr || x == nullptr) {
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (n <= 0 || incx <= 0) {
        return CUBLAS_STATUS_SUCCESS; // cuBLAS returns at once for these
    }
    const bool devicePointers = handle->pointerMode == CUBLAS_POINTER_MODE_DEVICE;
    const float alphaAtCall = devicePointers ? 0.0f : *alpha;
    return statusOf(gsemu::enqueue(handle->stream, [=]() -> CUresult {
        const float alphaValue = devicePointers ? *alpha : alphaAtCall;
        for (int i = 0; i < n; i++) {
            x[static_cast<std::size_t>(i) * incx] *= alphaValue;
        }
        return gsemu::checkGuards("cublasSscal");
    }));
}

} // extern "C"
