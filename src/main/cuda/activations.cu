// Activation functions on the GPU: forward, backward, the dense layer's fused bias + activation in
// both directions (with the per-unit statistics), and parameter gradient of every element-wise
// ActivationKind, then maxout and softmax.
//
// Each kind is a __device__ function pair named as its CPU twin in
// src/main/java/dev/gradscope/backend/cpu/CpuActivations.java (elu / eluDerivative, and
// eluAlphaDerivative where the kind has a parameter), directly followed by its kernels, which one
// macro emits: ID_forward, ID_backward, ID_bias_forward, ID_bias_backward (and ID_parameter_gradient).
// The formulas, kinks and references are documented once, on dev.gradscope.tensor.ActivationKind; the
// math here is CpuActivations' (the reference), in float, with the same numerically stable forms and
// the same derivative at every kink. Comments say only where float needs something the double code
// does not.
//
// Element-wise kernels:
//   ID_forward (const float* z, float* y, const float* param, int paramCount, int cols, int n)
//   ID_backward(const float* z, const float* dy, float* dz, const float* param, int paramCount,
//               int cols, int n)
// y[i] = f(z[i]; p(i)), dz[i] = dy[i] * f'(z[i]; p(i)), with p(i) = 0 when paramCount is 0, param[0]
// when it is 1, param[i % cols] otherwise. In place (y == z, dz == dy or dz == z) is allowed: every
// element is read and then written by one thread only.
//   ID_bias_forward(float* z, const float* bias, float* y, const float* param, int paramCount, int cols,
//                   int n)
// z[i] += bias[i % cols], then y[i] = f(z[i]; p(i)): a dense layer after its GEMM (y == z allowed).
// Column tiles (block 1024: 32 columns x 32 row groups, see reduceColumnTiles in common.cuh):
//   ID_bias_backward(const float* z, const float* y, const float* dy, float* dz, float* biasGradient,
//                    const float* param, int paramCount, int rows, int cols, float saturationThreshold,
//                    float* statistics)
// one evaluation of f' per element for: dz = dy * f'(z) as ID_backward computes it (unless dy and dz
// are NULL); biasGradient[j] = sum_i dz[i][j] as column_sums adds it (unless biasGradient is NULL);
// statistics [4, cols] += per column: rows with f' != 0, rows with |f'| < saturationThreshold, sum of y,
// sum of y^2 (unless statistics is NULL; y is read only for them). A dense layer's backward pass, with
// or without the profiler, and the profiler's statistics alone.
#include "common.cuh"

namespace gs {

// ---- the one element-wise loop --------------------------------------------------------------------

/** How element i finds its parameter; chosen once per launch, so the loop has no per-element test. */
enum class ParameterMode { NONE, SHARED, PER_COLUMN };

/**
 * out[i] = Kind::forward(z[i], p(i)), or, when BACKWARD, out[i] = dy[i] * Kind::derivative(z[i], p(i)),
 * for i in [0, n): 16-byte groups when z, dy and out are all 16-byte aligned, scalars otherwise.
 */
template <class Kind, bool BACKWARD, ParameterMode MODE>
__device__ __forceinline__ void activationLoop(const float* __restrict__ z, const float* __restrict__ dy,
                                               float* __restrict__ out, const float* __restrict__ param,
                                               unsigned cols, unsigned n) {
    const float sharedParameter = MODE == ParameterMode::SHARED ? __ldg(param) : 0.0f;
    auto parameterAt = [&](unsigned column) {
        return MODE == ParameterMode::PER_COLUMN ? __ldg(param + column) : sharedParameter;
    };
    auto apply = [](float zi, float dyi, float p) {
        if constexpr (BACKWARD) {
            return dyi * Kind::derivative(zi, p);
        } else {
            return Kind::forward(zi, p);
        }
    };
    forEachElement(
        n, allAligned16(z, dy, out),
        [&](unsigned k) {
            const float4 zv = load4ReadOnly(z, k);
            const float4 dyv = BACKWARD ? load4ReadOnly(dy, k) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            float4 result;
            // Without per-column parameters cols is 1: every column is 0, and the compiler drops the counting.
            forEachColumnOfGroup(k, cols, [&](int l, unsigned column) {
                lane(result, l) = apply(lane(zv, l), lane(dyv, l), parameterAt(column));
            });
            store4(out, k, result);
        },
        [&](unsigned i) {
            const float dyi = BACKWARD ? dy[i] : 0.0f;
            out[i] = apply(z[i], dyi, parameterAt(MODE == ParameterMode::PER_COLUMN ? i % cols : 0u));
        });
}

template <class Kind, bool BACKWARD>
__device__ __forceinline__ void activation(const float* z, const float* dy, float* out, const float* param,
                                           int paramCount, int cols, int n) {
    if (n <= 0) {
        return;
    }
    if (!Kind::HAS_PARAMETER || paramCount <= 0 || param == nullptr) {
        // Kinds without a parameter ignore it; a kind with one given none computes with p = 0.
        activationLoop<Kind, BACKWARD, ParameterMode::NONE>(z, dy, out, param, 1u, countOf(n));
    } else if (paramCount == 1) {
        activationLoop<Kind, BACKWARD, ParameterMode::SHARED>(z, dy, out, param, 1u, countOf(n));
    } else if (cols > 0) {
        activationLoop<Kind, BACKWARD, ParameterMode::PER_COLUMN>(z, dy, out, param, countOf(cols), countOf(n));
    }
}

/**
 * dParam[j] = sum over rows i of dy[i][j] * Kind::parameterDerivative(z[i][j], param[j]) when each
 * column has its parameter (one thread per column, rows added in order); when paramCount is 1,
 * dParam[0] = the same sum over every element, by block 0 alone (fixed 1024-slot tree). Sums in
 * double, as on the CPU.
 */
template <class Kind>
__device__ __forceinline__ void activationParameterGradient(const float* __restrict__ z, const float* __restrict__ dy,
                                                            const float* __restrict__ param, int paramCount, int rows,
                                                            int cols, float* __restrict__ dParam) {
    if (paramCount == 1) {
        if (blockIdx.x != 0) {
            return;
        }
        const float p = param[0];
        const unsigned n = countOf(rows) * countOf(cols);
        const double total = blockSumOfSlots([&](unsigned slot) {
            double sum = 0.0;
            for (unsigned e = slot; e < n; e += REDUCTION_SLOTS) {
                sum += static_cast<double>(dy[e]) * static_cast<double>(Kind::parameterDerivative(z[e], p));
            }
            return sum;
        });
        if (threadIdx.x == 0) {
            dParam[0] = static_cast<float>(total);
        }
        return;
    }
    if (paramCount <= 0) {
        return;
    }
    const unsigned columns = countOf(cols);
    for (unsigned j = threadIndex(); j < columns; j += threadCount()) {
        const float p = param[j];
        double sum = 0.0;
#pragma unroll 8 // issues 8 rows' loads together; the additions stay in row order
        for (unsigned i = 0, e = j; i < countOf(rows); i++, e += columns) {
            sum += static_cast<double>(dy[e]) * static_cast<double>(Kind::parameterDerivative(z[e], p));
        }
        dParam[j] = static_cast<float>(sum);
    }
}

/**
 * y[i] = Kind::forward(z[i] + bias[i % cols], p(i)), storing z[i] + bias[i % cols] back into z, for i in
 * [0, n): 16-byte groups when z, bias and y are 16-byte aligned and cols is a multiple of 4 (so a group
 * stays in one row and its bias is one aligned group), scalars otherwise. The addition is the one float
 * addition of add_row_vector and the activation that of ID_forward: the same bits as the two kernels.
 * z and y are not __restrict__: y may be z.
 */
template <class Kind, ParameterMode MODE>
__device__ __forceinline__ void biasActivationLoop(float* z, const float* __restrict__ bias, float* y,
                                                   const float* __restrict__ param, unsigned cols, unsigned n) {
    const float sharedParameter = MODE == ParameterMode::SHARED ? __ldg(param) : 0.0f;
    auto parameterAt = [&](unsigned column) {
        return MODE == ParameterMode::PER_COLUMN ? __ldg(param + column) : sharedParameter;
    };
    const unsigned columnGroups = cols / 4;
    forEachElement(
        n, allAligned16(z, bias, y) && cols % 4 == 0,
        [&](unsigned k) {
            const unsigned group = k % columnGroups;
            float4 zv = load4(z, k);
            const float4 bv = load4ReadOnly(bias, group);
            float4 yv;
#pragma unroll
            for (int l = 0; l < 4; l++) {
                lane(zv, l) = lane(zv, l) + lane(bv, l);
                lane(yv, l) = Kind::forward(lane(zv, l), parameterAt(4u * group + l));
            }
            store4(z, k, zv);
            store4(y, k, yv);
        },
        [&](unsigned i) {
            const unsigned column = i % cols;
            const float biased = z[i] + __ldg(bias + column);
            z[i] = biased;
            y[i] = Kind::forward(biased, parameterAt(column));
        });
}

template <class Kind>
__device__ __forceinline__ void biasActivation(float* z, const float* bias, float* y, const float* param,
                                               int paramCount, int cols, int n) {
    if (n <= 0 || cols <= 0) {
        return;
    }
    if (!Kind::HAS_PARAMETER || paramCount <= 0 || param == nullptr) {
        biasActivationLoop<Kind, ParameterMode::NONE>(z, bias, y, param, countOf(cols), countOf(n));
    } else if (paramCount == 1) {
        biasActivationLoop<Kind, ParameterMode::SHARED>(z, bias, y, param, countOf(cols), countOf(n));
    } else {
        biasActivationLoop<Kind, ParameterMode::PER_COLUMN>(z, bias, y, param, countOf(cols), countOf(n));
    }
}

/** What one thread adds up for one column of ID_bias_backward, then the tree (reduceColumnTiles). */
struct BackwardPartial {
    double biasGradient; // sum of dz
    double sum;          // sum of y
    double sumOfSquares; // sum of y^2
    unsigned active;     // rows with f' != 0
    unsigned saturated;  // rows with |f'| < saturationThreshold

    __device__ __forceinline__ void combine(const BackwardPartial& other) {
        biasGradient += other.biasGradient;
        sum += other.sum;
        sumOfSquares += other.sumOfSquares;
        active += other.active;
        saturated += other.saturated;
    }
};

/**
 * The backward pass of bias + activation, by tiles of 32 columns x 32 row groups (reduceColumnTiles,
 * block 1024), one evaluation of f' per element:
 *   - unless dy and dz are NULL, dz = dy * f'(z), the bits ID_backward gives;
 *   - unless biasGradient is NULL, biasGradient[j] = sum_i dz[i][j], in double by the tiles' fixed order,
 *     the bits column_sums gives for that dz;
 *   - unless statistics is NULL, per-unit activity accumulated into statistics [4, cols] (row-major):
 *     [0][j] += rows with f'(z[i][j]) != 0, [1][j] += rows with |f'| < saturationThreshold,
 *     [2][j] += sum_i y[i][j], [3][j] += sum_i y[i][j]^2; counts exact in integers, sums in double, each
 *     added to its float once, as on the CPU. The derivative is the kind's own, in float, so a NaN
 *     derivative counts as active and not saturated, as in Java.
 */
template <class Kind>
__device__ __forceinline__ void biasBackward(const float* __restrict__ z, const float* __restrict__ y,
                                             const float* __restrict__ dy, float* __restrict__ dz,
                                             float* __restrict__ biasGradient, const float* __restrict__ param,
                                             int paramCount, int rows, int cols, float saturationThreshold,
                                             float* __restrict__ statistics) {
    const bool hasParameter = Kind::HAS_PARAMETER && paramCount > 0 && param != nullptr;
    const bool withGradient = dz != nullptr;
    const bool withBias = withGradient && biasGradient != nullptr;
    const bool withStatistics = statistics != nullptr;
    const unsigned columns = countOf(cols);
    reduceColumnTiles<BackwardPartial>(
        rows, cols,
        [&](BackwardPartial& partial, unsigned e, unsigned j) {
            const float p = !hasParameter ? 0.0f : __ldg(param + (paramCount == 1 ? 0u : j));
            const float derivative = Kind::derivative(z[e], p);
            if (withGradient) {
                const float g = dy[e] * derivative;
                dz[e] = g;
                partial.biasGradient += g;
            }
            if (withStatistics) {
                const float d = fabsf(derivative);
                partial.active += d != 0.0f ? 1u : 0u;
                partial.saturated += d < saturationThreshold ? 1u : 0u;
                const double v = y[e];
                partial.sum += v;
                partial.sumOfSquares += v * v;
            }
        },
        [&](const BackwardPartial& total, unsigned j) {
            if (withBias) {
                biasGradient[j] = static_cast<float>(total.biasGradient);
            }
            if (withStatistics) {
                statistics[j] += static_cast<float>(total.active);
                statistics[columns + j] += static_cast<float>(total.saturated);
                statistics[2 * columns + j] += static_cast<float>(total.sum);
                statistics[3 * columns + j] += static_cast<float>(total.sumOfSquares);
            }
        });
}

} // namespace gs

// One kind's kernels from its __device__ functions: the struct adapts them to (x, parameter), the
// kernels run the loops above.
#define GS_ACTIVATION_KERNELS(ID)                                                                          \
    extern "C" __global__ void ID##_forward(const float* z, float* y, const float* param, int paramCount,  \
                                            int cols, int n) {                                             \
        gs::activation<gs::ID##_kind, false>(z, nullptr, y, param, paramCount, cols, n);                   \
    }                                                                                                      \
    extern "C" __global__ void ID##_backward(const float* z, const float* dy, float* dz, const float* param, \
                                             int paramCount, int cols, int n) {                            \
        gs::activation<gs::ID##_kind, true>(z, dy, dz, param, paramCount, cols, n);                        \
    }                                                                                                      \
    extern "C" __global__ void ID##_bias_forward(float* z, const float* bias, float* y, const float* param, \
                                                 int paramCount, int cols, int n) {                        \
        gs::biasActivation<gs::ID##_kind>(z, bias, y, param, paramCount, cols, n);                         \
    }                                                                                                      \
    extern "C" __global__ void GS_BLOCKS_OF_1024 ID##_bias_backward(                                       \
        const float* z, const float* y, const float* dy, float* dz, float* biasGradient,                   \
        const float* param, int paramCount, int rows, int cols, float saturationThreshold,                 \
        float* statistics) {                                                                               \
        gs::biasBackward<gs::ID##_kind>(z, y, dy, dz, biasGradient, param, paramCount, rows, cols,         \
                                        saturationThreshold, statistics);                                  \
    }

/** A kind without a parameter: ID_forward, ID_backward, ID_bias_forward and ID_bias_backward. */
#define DEFINE_ACTIVATION(ID, forwardFunction, derivativeFunction)                                         \
    namespace gs {                                                                                         \
    struct ID##_kind {                                                                                     \
        static constexpr bool HAS_PARAMETER = false;                                                       \
        __device__ static float forward(float x, float) { return forwardFunction(x); }                     \
        __device__ static float derivative(float x, float) { return derivativeFunction(x); }               \
    };                                                                                                     \
    }                                                                                                      \
    GS_ACTIVATION_KERNELS(ID)

/** A kind with a parameter (alpha or beta): the four kernels of any kind and ID_parameter_gradient. */
#define DEFINE_ACTIVATION_WITH_PARAMETER(ID, forwardFunction, derivativeFunction, parameterDerivativeFunction) \
    namespace gs {                                                                                         \
    struct ID##_kind {                                                                                     \
        static constexpr bool HAS_PARAMETER = true;                                                        \
        __device__ static float forward(float x, float p) { return forwardFunction(x, p); }                \
        __device__ static float derivative(float x, float p) { return derivativeFunction(x, p); }          \
        __device__ static float parameterDerivative(float x, float p) { return parameterDerivativeFunction(x, p); } \
    };                                                                                                     \
    }                                                                                                      \
    GS_ACTIVATION_KERNELS(ID)                                                                              \
    extern "C" __global__ void GS_BLOCKS_OF_1024 ID##_parameter_gradient(                                  \
        const float* z, const float* dy, const float* param, int paramCount, int rows, int cols,           \
        float* dParam) {                                                                                   \
        gs::activationParameterGradient<gs::ID##_kind>(z, dy, param, paramCount, rows, cols, dParam);      \
    }

namespace gs {

// SELU's fixed constants (Klambauer et al. 2017), rounded to float; SELU_SCALE_ALPHA is their
// product rounded once (the CPU multiplies the double constants).
constexpr float SELU_ALPHA = 1.6732632423543772848170429916717f;
constexpr float SELU_SCALE = 1.0507009873554804934193349852946f;
constexpr float SELU_SCALE_ALPHA = static_cast<float>(1.6732632423543772848170429916717 * 1.0507009873554804934193349852946);

constexpr float INV_SQRT_2 = 0.70710678118654752440f;   // 1/sqrt(2)
constexpr float INV_SQRT_2PI = 0.39894228040143267794f; // 1/sqrt(2 pi)
constexpr float ONE_SIXTH = 1.0f / 6.0f;

// ---- the chapter's kinds ------------------------------------------------------------------------

__device__ __forceinline__ float step(float x) {
    return isnan(x) ? x : (x > 0.0f ? 1.0f : 0.0f);
}

__device__ __forceinline__ float stepDerivative(float) {
    return 0.0f;
}

} // namespace gs
DEFINE_ACTIVATION(step, step, stepDerivative)
namespace gs {

__device__ __forceinline__ float linear(float x) {
    return x;
}

__device__ __forceinline__ float linearDerivative(float) {
    return 1.0f;
}

} // namespace gs
DEFINE_ACTIVATION(linear, linear, linearDerivative)
namespace gs {

/**
 * The sigmoid from e = e^-|x|, exponentiating only non-positive numbers as on the CPU:
 * 1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x) otherwise. No branch, so a warp with inputs of both
 * signs runs one path; sigmoid(x) and sigmoid(-x) share e (sigmoidDerivative, swish, mish).
 */
__device__ __forceinline__ float sigmoidOf(float x, float e) {
    return (x >= 0.0f ? 1.0f : e) / (1.0f + e);
}

__device__ __forceinline__ float sigmoid(float x) {
    return sigmoidOf(x, expf(-fabsf(x)));
}

/** sigmoid(x) sigmoid(-x), which equals f(1 - f) but stays accurate where f is close to 1. */
__device__ __forceinline__ float sigmoidDerivative(float x) {
    const float e = expf(-fabsf(x));
    return sigmoidOf(x, e) * sigmoidOf(-x, e);
}

} // namespace gs
DEFINE_ACTIVATION(sigmoid, sigmoid, sigmoidDerivative)
namespace gs {

// gs::tanh hides the math library's tanh(float) inside this namespace; tanhf is the library's.
__device__ __forceinline__ float tanh(float x) {
    return tanhf(x);
}

/** sech^2(x) = 4 e^-2|x| / (1 + e^-2|x|)^2, without the cancellation of 1 - tanh(x)^2. */
__device__ __forceinline__ float tanhDerivative(float x) {
    const float e = expf(-2.0f * fabsf(x));
    return 4.0f * e / ((1.0f + e) * (1.0f + e));
}

} // namespace gs
DEFINE_ACTIVATION(tanh, tanh, tanhDerivative)
namespace gs {

/** Comparisons rather than fminf/fmaxf, which would turn NaN into a clean -1 or 1. */
__device__ __forceinline__ float hardTanh(float x) {
    return x < -1.0f ? -1.0f : (x > 1.0f ? 1.0f : x);
}

__device__ __forceinline__ float hardTanhDerivative(float x) {
    return (x > -1.0f && x < 1.0f) ? 1.0f : 0.0f;
}

} // namespace gs
DEFINE_ACTIVATION(hardtanh, hardTanh, hardTanhDerivative)
namespace gs {

__device__ __forceinline__ float arctan(float x) {
    return atanf(x);
}

__device__ __forceinline__ float arctanDerivative(float x) {
    return 1.0f / (1.0f + x * x);
}

} // namespace gs
DEFINE_ACTIVATION(arctan, arctan, arctanDerivative)
namespace gs {

__device__ __forceinline__ float softsign(float x) {
    return x / (1.0f + fabsf(x));
}

__device__ __forceinline__ float softsignDerivative(float x) {
    const float denominator = 1.0f + fabsf(x);
    return 1.0f / (denominator * denominator);
}

} // namespace gs
DEFINE_ACTIVATION(softsign, softsign, softsignDerivative)
namespace gs {

/** x (x / (h + 1)) / 2 + x with h = hypot(x, 1): no cancellation near 0, no overflow of x^2. */
__device__ __forceinline__ float bentIdentity(float x) {
    const float h = hypotf(x, 1.0f);
    return x * (x / (h + 1.0f)) / 2.0f + x;
}

__device__ __forceinline__ float bentIdentityDerivative(float x) {
    return x / (2.0f * hypotf(x, 1.0f)) + 1.0f;
}

} // namespace gs
DEFINE_ACTIVATION(bent_identity, bentIdentity, bentIdentityDerivative)
namespace gs {

/** As Java's Math.max(0, x): NaN stays NaN (fmaxf would give 0) and -0 gives +0. */
__device__ __forceinline__ float relu(float x) {
    return x > 0.0f ? x : (isnan(x) ? x : 0.0f);
}

__device__ __forceinline__ float reluDerivative(float x) {
    return x > 0.0f ? 1.0f : 0.0f;
}

} // namespace gs
DEFINE_ACTIVATION(relu, relu, reluDerivative)
namespace gs {

__device__ __forceinline__ float leakyRelu(float x, float alpha) {
    return x > 0.0f ? x : alpha * x;
}

__device__ __forceinline__ float leakyReluDerivative(float x, float alpha) {
    return x > 0.0f ? 1.0f : alpha;
}

__device__ __forceinline__ float leakyReluAlphaDerivative(float x, float) {
    return x > 0.0f ? 0.0f : x;
}

} // namespace gs
DEFINE_ACTIVATION_WITH_PARAMETER(leaky_relu, leakyRelu, leakyReluDerivative, leakyReluAlphaDerivative)
namespace gs {

__device__ __forceinline__ float elu(float x, float alpha) {
    return x > 0.0f ? x : alpha * expm1f(x);
}

__device__ __forceinline__ float eluDerivative(float x, float alpha) {
    return x > 0.0f ? 1.0f : alpha * expf(x);
}

__device__ __forceinline__ float eluAlphaDerivative(float x, float) {
    return x > 0.0f ? 0.0f : expm1f(x);
}

} // namespace gs
DEFINE_ACTIVATION_WITH_PARAMETER(elu, elu, eluDerivative, eluAlphaDerivative)
namespace gs {

/** PReLU is LeakyReLU with a learned alpha: the same math, kept once. */
__device__ __forceinline__ float prelu(float x, float alpha) {
    return leakyRelu(x, alpha);
}

__device__ __forceinline__ float preluDerivative(float x, float alpha) {
    return leakyReluDerivative(x, alpha);
}

__device__ __forceinline__ float preluAlphaDerivative(float x, float alpha) {
    return leakyReluAlphaDerivative(x, alpha);
}

} // namespace gs
DEFINE_ACTIVATION_WITH_PARAMETER(prelu, prelu, preluDerivative, preluAlphaDerivative)
namespace gs {

__device__ __forceinline__ float swish(float x, float beta) {
    return x * sigmoid(beta * x);
}

/** s + (beta x) sigmoid'(beta x): a huge |x| meets a zero sigmoid' (0, not infinity times 0). */
__device__ __forceinline__ float swishDerivative(float x, float beta) {
    const float betaX = beta * x;
    return sigmoid(betaX) + betaX * sigmoidDerivative(betaX);
}

/** (x sigmoid'(beta x)) x, so that a huge |x| gives 0 rather than NaN. */
__device__ __forceinline__ float swishBetaDerivative(float x, float beta) {
    return x * sigmoidDerivative(beta * x) * x;
}

} // namespace gs
DEFINE_ACTIVATION_WITH_PARAMETER(swish, swish, swishDerivative, swishBetaDerivative)
namespace gs {

// ---- modern kinds -------------------------------------------------------------------------------

/** Phi(x) = erfc(-x / sqrt 2) / 2: erfc, not 1 + erf, so that the tiny left tail does not cancel to 0. */
__device__ __forceinline__ float standardNormalCdf(float x) {
    return 0.5f * erfcf(-x * INV_SQRT_2);
}

__device__ __forceinline__ float standardNormalPdf(float x) {
    return expf(-0.5f * x * x) * INV_SQRT_2PI;
}

__device__ __forceinline__ float gelu(float x) {
    return x * standardNormalCdf(x);
}

__device__ __forceinline__ float geluDerivative(float x) {
    return standardNormalCdf(x) + x * standardNormalPdf(x);
}

} // namespace gs
DEFINE_ACTIVATION(gelu, gelu, geluDerivative)
namespace gs {

__device__ __forceinline__ float selu(float x) {
    return SELU_SCALE * (x > 0.0f ? x : SELU_ALPHA * expm1f(x));
}

__device__ __forceinline__ float seluDerivative(float x) {
    return x > 0.0f ? SELU_SCALE : SELU_SCALE_ALPHA * expf(x);
}

} // namespace gs
DEFINE_ACTIVATION(selu, selu, seluDerivative)
namespace gs {

__device__ __forceinline__ float celu(float x, float alpha) {
    return x > 0.0f ? x : alpha * expm1f(x / alpha);
}

__device__ __forceinline__ float celuDerivative(float x, float alpha) {
    return x > 0.0f ? 1.0f : expf(x / alpha);
}

/** (e^t - 1) - t e^t with t = x / alpha, for x <= 0. */
__device__ __forceinline__ float celuAlphaDerivative(float x, float alpha) {
    if (x > 0.0f) {
        return 0.0f;
    }
    const float t = x / alpha;
    return expm1f(t) - t * expf(t);
}

} // namespace gs
DEFINE_ACTIVATION_WITH_PARAMETER(celu, celu, celuDerivative, celuAlphaDerivative)
namespace gs {

/** SiLU is swish with beta = 1: the same math, kept once. */
__device__ __forceinline__ float silu(float x) {
    return swish(x, 1.0f);
}

__device__ __forceinline__ float siluDerivative(float x) {
    return swishDerivative(x, 1.0f);
}

} // namespace gs
DEFINE_ACTIVATION(silu, silu, siluDerivative)
namespace gs {

// Mish in p = sigmoid(x) and q = sigmoid(-x), both in [0, 1], as on the CPU (see CpuActivations):
// tanh(softplus(x)) = p (1 + q) / (1 + q^2), sech^2(softplus(x)) = 4 q^2 / (1 + q^2)^2.

__device__ __forceinline__ float mish(float x) {
    const float e = expf(-fabsf(x));
    const float p = sigmoidOf(x, e);
    const float q = sigmoidOf(-x, e);
    return x * (p * (1.0f + q) / (1.0f + q * q));
}

__device__ __forceinline__ float mishDerivative(float x) {
    const float e = expf(-fabsf(x));
    const float p = sigmoidOf(x, e);
    const float q = sigmoidOf(-x, e);
    const float onePlusQSquared = 1.0f + q * q;
    const float tanhSoftplus = p * (1.0f + q) / onePlusQSquared;
    const float sechSquaredSoftplus = 4.0f * q * q / (onePlusQSquared * onePlusQSquared);
    return tanhSoftplus + x * sechSquaredSoftplus * p;
}

} // namespace gs
DEFINE_ACTIVATION(mish, mish, mishDerivative)
namespace gs {

/** max(x, 0) + ln(1 + e^-|x|); a NaN x makes the second term NaN, so fmaxf's NaN rule cannot hide it. */
__device__ __forceinline__ float softplus(float x) {
    return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
}

__device__ __forceinline__ float softplusDerivative(float x) {
    return sigmoid(x);
}

} // namespace gs
DEFINE_ACTIVATION(softplus, softplus, softplusDerivative)
namespace gs {

/** As Java's Math.min(Math.max(0, x), 6): NaN stays NaN, -0 gives +0. */
__device__ __forceinline__ float relu6(float x) {
    return x > 0.0f ? (x < 6.0f ? x : 6.0f) : (isnan(x) ? x : 0.0f);
}

__device__ __forceinline__ float relu6Derivative(float x) {
    return (x > 0.0f && x < 6.0f) ? 1.0f : 0.0f;
}

} // namespace gs
DEFINE_ACTIVATION(relu6, relu6, relu6Derivative)
namespace gs {

__device__ __forceinline__ float hardSigmoid(float x) {
    return relu6(x + 3.0f) / 6.0f;
}

__device__ __forceinline__ float hardSigmoidDerivative(float x) {
    return (x > -3.0f && x < 3.0f) ? ONE_SIXTH : 0.0f;
}

} // namespace gs
DEFINE_ACTIVATION(hard_sigmoid, hardSigmoid, hardSigmoidDerivative)
namespace gs {

__device__ __forceinline__ float hardSwish(float x) {
    return x * hardSigmoid(x);
}

/** The outer piece's slope at the kinks: 0 at -3, 1 at 3; NaN falls through to the middle piece. */
__device__ __forceinline__ float hardSwishDerivative(float x) {
    if (x <= -3.0f) {
        return 0.0f;
    }
    if (x >= 3.0f) {
        return 1.0f;
    }
    return (2.0f * x + 3.0f) / 6.0f;
}

} // namespace gs
DEFINE_ACTIVATION(hard_swish, hardSwish, hardSwishDerivative)
namespace gs {

/** min(x, 0) - ln(1 + e^-|x|); as softplus, a NaN x makes the second term NaN. */
__device__ __forceinline__ float logSigmoid(float x) {
    return fminf(x, 0.0f) - log1pf(expf(-fabsf(x)));
}

__device__ __forceinline__ float logSigmoidDerivative(float x) {
    return sigmoid(-x);
}

} // namespace gs
DEFINE_ACTIVATION(log_sigmoid, logSigmoid, logSigmoidDerivative)

// ---- maxout (a layer, not an element-wise kind) --------------------------------------------------

/**
 * y[i][u] = max_p z[i][u*pieces + p] and winner[i][u] = that p, the first one on ties (a NaN never
 * wins unless it is piece 0, as in the CPU's sequential scan). One thread per output.
 */
extern "C" __global__ void maxout_forward(const float* __restrict__ z, float* __restrict__ y, int* __restrict__ winner,
                                          int rows, int units, int pieces) {
    if (pieces <= 0) {
        return;
    }
    const unsigned outputs = gs::countOf(rows) * gs::countOf(units);
    for (unsigned o = gs::threadIndex(); o < outputs; o += gs::threadCount()) {
        const float* piece = z + static_cast<size_t>(o) * pieces;
        int best = 0;
        float bestValue = piece[0];
        for (int p = 1; p < pieces; p++) {
            if (piece[p] > bestValue) {
                bestValue = piece[p];
                best = p;
            }
        }
        y[o] = bestValue;
        winner[o] = best;
    }
}

/** dz[i][u*pieces + p] = p == winner[i][u] ? dy[i][u] : 0. One thread per element of dz. */
extern "C" __global__ void maxout_backward(const float* __restrict__ dy, const int* __restrict__ winner,
                                           float* __restrict__ dz, int rows, int units, int pieces) {
    if (pieces <= 0) {
        return;
    }
    const unsigned p = gs::countOf(pieces);
    const unsigned n = gs::countOf(rows) * gs::countOf(units) * p;
    for (unsigned e = gs::threadIndex(); e < n; e += gs::threadCount()) {
        const unsigned o = e / p;
        dz[e] = static_cast<int>(e - o * p) == winner[o] ? dy[o] : 0.0f;
    }
}

// ---- softmax (the output activation; the losses fuse their own) -----------------------------------

/** probabilities = softmax(logits) row by row, in double as the CPU. One warp per row. */
extern "C" __global__ void softmax_rows(const float* __restrict__ logits, float* __restrict__ probabilities, int rows,
                                        int cols) {
    const unsigned lane = gs::laneIndex();
    for (unsigned r = gs::warpIndex(); r < gs::countOf(rows); r += gs::warpCount()) {
        const float* z = logits + static_cast<size_t>(r) * cols;
        float* p = probabilities + static_cast<size_t>(r) * cols;
        const gs::RowSoftmax s = gs::warpRowSoftmax(z, cols, lane);
        for (int c = static_cast<int>(lane); c < cols; c += gs::WARP_SIZE) {
            p[c] = static_cast<float>(s.probability(z[c]));
        }
    }
}
