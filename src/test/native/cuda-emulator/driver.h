// What the emulator's libcuda.so.1 (driver.cc) shares with its libcublas.so.12 (cublas.cc): the
// driver API types as the emulator defines them, and the stream queue that both put work on.
//
// The emulator runs everything synchronously on the calling thread, except on a stream that is being
// captured into a graph, where work is recorded instead and runs when the graph is launched. So
// "enqueue" means: run now, or record for the capture.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;

namespace gsemu {
struct Stream;
}
using CUstream = gsemu::Stream*;

/** CUresult values the emulator returns (cuda.h's numbering). */
constexpr CUresult CUDA_SUCCESS = 0;
constexpr CUresult CUDA_ERROR_INVALID_VALUE = 1;
constexpr CUresult CUDA_ERROR_OUT_OF_MEMORY = 2;
constexpr CUresult CUDA_ERROR_NOT_INITIALIZED = 3;
constexpr CUresult CUDA_ERROR_NO_DEVICE = 100;
constexpr CUresult CUDA_ERROR_INVALID_DEVICE = 101;
constexpr CUresult CUDA_ERROR_INVALID_IMAGE = 200;
constexpr CUresult CUDA_ERROR_INVALID_CONTEXT = 201;
constexpr CUresult CUDA_ERROR_INVALID_PTX = 218;
constexpr CUresult CUDA_ERROR_INVALID_HANDLE = 400;
constexpr CUresult CUDA_ERROR_ILLEGAL_STATE = 401;
constexpr CUresult CUDA_ERROR_NOT_FOUND = 500;
constexpr CUresult CUDA_ERROR_NOT_READY = 600;
constexpr CUresult CUDA_ERROR_ILLEGAL_ADDRESS = 700;
constexpr CUresult CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES = 701;
constexpr CUresult CUDA_ERROR_LAUNCH_FAILED = 719;
constexpr CUresult CUDA_ERROR_NOT_SUPPORTED = 801;
constexpr CUresult CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED = 900;
constexpr CUresult CUDA_ERROR_STREAM_CAPTURE_INVALIDATED = 901;
constexpr CUresult CUDA_ERROR_STREAM_CAPTURE_UNJOINED = 904;
constexpr CUresult CUDA_ERROR_STREAM_CAPTURE_ISOLATION = 905;
constexpr CUresult CUDA_ERROR_STREAM_CAPTURE_IMPLICIT = 906;


namespace gsemu {

/** Work for a stream: returns CUDA_SUCCESS or the error it met. */
using Work = std::function<CUresult()>;

/** Runs `work` now, or records it when `stream` is being captured; what CUDA returns for the enqueue. */
CUresult enqueue(CUstream stream, Work work);

/** Whether [p, p + bytes) lies inside one live allocation of the emulated device. */
bool isDeviceRange(const void* p, std::size_t bytes);

/** Checks every allocation's guard bytes after `what` ran; CUDA_ERROR_ILLEGAL_ADDRESS (and a message) if one was overwritten. */
CUresult checkGuards(const char* what);

/** Prints one line to stderr, prefixed with the emulator's name. */
void report(const char* format, ...) __attribute__((format(printf, 1, 2)));

} // namespace gsemu
