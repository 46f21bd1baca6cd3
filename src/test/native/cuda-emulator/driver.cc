// libcuda.so.1 of the GradScope CUDA emulator: the part of the CUDA driver API that JCuda's
// libJCudaDriver calls for GradScope, implemented on the CPU, so that the CUDA backend, its tests and
// the command line run unchanged on a machine without a GPU (scripts/build-cuda-emulator.sh builds it;
// README.md in this directory says what it can and cannot show).
//
// The device is host memory; kernels are the project's own src/main/cuda sources compiled as C++
// (grid.h runs a grid with CUDA's block and warp semantics); the PTX that the backend loads decides
// which kernels a module has, and each kernel's PTX parameter list is checked against the C++
// function's. On a stream being captured, work is recorded, and a graph launch replays it. What CUDA
// refuses during a global-mode capture (an allocation, a free, a synchronous copy, a wait) fails here
// too and invalidates the capture.
//
// Streams. Work queued on a stream does not run when it is queued: it waits in the stream's queue until
// something needs it, and then runs in queue order on the calling thread. A synchronisation runs it (of
// the stream, of the context, of an event; a synchronous copy, a free and the legacy stream wait for every
// stream, first to last created), and so does a stream's wait for an event recorded on another stream:
// that stream's queue runs up to the event. So work runs as late as the ordering the program asked for
// allows, and a missing wait shows: a stream that reads what another writes, without waiting for its
// event, reads it before it is written (a GPU would race). A kernel's failure (a deadlock, an overwritten
// guard) is reported by the next synchronisation of its stream, as CUDA reports asynchronous faults.
//
// Faults a GPU would show: every allocation is framed by guard bytes, checked after each kernel and
// copy (an overwrite fails the op with CUDA_ERROR_ILLEGAL_ADDRESS); new memory is filled with 0xFF
// bytes (NaN as floats), as stale device memory would be anything but zero; copies outside an
// allocation and bad launch shapes fail as CUDA fails them.
//
// Functions JCuda imports but GradScope never calls are generated stubs (see the build script) that
// name themselves and return CUDA_ERROR_NOT_SUPPORTED.

#include "driver.h"

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "grid.h"

namespace gsemu {

/**
 * A stream. While a capture is on, `origin` is the stream the capture began on (itself, or the one whose
 * event this stream waited for: it joined the capture), and its work goes into the origin's `recorded`.
 * `queued` counts the work a joined stream recorded, `joinedUpTo` how much of it the origin has waited
 * for: a capture cannot end while a joined stream has work the origin did not wait for.
 */
struct Event;

/** A stream's queued item: work, or a wait until `event` has completed its record number `sequence`. */
struct Pending {
    Work work;
    Event* event = nullptr;
    std::uint64_t sequence = 0;
    Stream* recordedOn = nullptr;
};

struct Stream {
    bool capturing = false;
    bool invalidated = false;
    Stream* origin = nullptr;
    std::vector<Work> recorded;
    std::size_t queued = 0;
    std::size_t joinedUpTo = 0;
    /** Outside a capture: what was queued and has not run (see "Streams" above). */
    std::deque<Pending> pending;
    /** The first failure of queued work since the stream was last synchronised. */
    CUresult asyncError = CUDA_SUCCESS;
    /** Whether its queue is running: a wait that needs it again is a cycle of waits. */
    bool running = false;
};

struct Context {
    int retained = 0;
};

struct Event {
    bool recorded = false;
    bool timing = true;
    std::chrono::steady_clock::time_point time;
    /** Records queued and records run (each cuEventRecord outside a capture queues the next number). */
    std::uint64_t issued = 0;
    std::uint64_t completed = 0;
    Stream* issuedOn = nullptr;
    /** When recorded on a capturing stream: that stream, its capture's origin, and its work count then. */
    Stream* capturedBy = nullptr;
    Stream* captureOrigin = nullptr;
    std::size_t capturedQueued = 0;
};

struct Module {
    /** The kernel names the PTX declares (.entry), with the byte size of each parameter. */
    std::map<std::string, std::vector<std::size_t>> entries;
};

struct Function {
    const KernelEntry* kernel;
};

struct Graph {
    std::vector<Work> work;
};

struct GraphExec {
    std::vector<Work> work;
};

namespace {

/** The emulated device: what cuDeviceGetName and cuDeviceGetAttribute answer. */
constexpr const char* DEVICE_NAME = "GradScope CUDA emulator (CPU)";
/** Compute capability 9.0, as the H100 the project targets: TF32 is available. */
constexpr int COMPUTE_MAJOR = 9;
constexpr int COMPUTE_MINOR = 0;
/** Few multiprocessors: element-wise grids are capped at 32 blocks each, so grid-stride loops run many rounds. */
constexpr int MULTIPROCESSORS = 2;
constexpr std::size_t TOTAL_MEMORY = std::size_t{8} << 30;
constexpr int DRIVER_VERSION = 13000;

/** Guard bytes before and after each allocation; their pattern; the fill of new memory. */
constexpr std::size_t GUARD_BYTES = 256;
constexpr unsigned char GUARD_PATTERN = 0xA5;
constexpr unsigned char FRESH_FILL = 0xFF;

struct Allocation {
    unsigned char* base; // GUARD_BYTES before the user's first byte
    std::size_t bytes;   // the user's size
};

/** One lock around the emulated device: JCuda may call from any thread. */
std::recursive_mutex deviceLock;
bool initialized = false;
Context primaryContext;
thread_local Context* currentContext = nullptr;
std::map<std::uintptr_t, Allocation> allocations; // by the user's first byte
std::size_t allocatedBytes = 0;
std::set<Stream*> capturingStreams;
std::vector<Stream*> liveStreams; // in creation order

using Lock = std::lock_guard<std::recursive_mutex>;

const char* errorName(CUresult r) {
    switch (r) {
    case CUDA_SUCCESS: return "CUDA_SUCCESS";
    case CUDA_ERROR_INVALID_VALUE: return "CUDA_ERROR_INVALID_VALUE";
    case CUDA_ERROR_OUT_OF_MEMORY: return "CUDA_ERROR_OUT_OF_MEMORY";
    case CUDA_ERROR_NOT_INITIALIZED: return "CUDA_ERROR_NOT_INITIALIZED";
    case CUDA_ERROR_NO_DEVICE: return "CUDA_ERROR_NO_DEVICE";
    case CUDA_ERROR_INVALID_DEVICE: return "CUDA_ERROR_INVALID_DEVICE";
    case CUDA_ERROR_INVALID_IMAGE: return "CUDA_ERROR_INVALID_IMAGE";
    case CUDA_ERROR_INVALID_CONTEXT: return "CUDA_ERROR_INVALID_CONTEXT";
    case CUDA_ERROR_INVALID_PTX: return "CUDA_ERROR_INVALID_PTX";
    case CUDA_ERROR_INVALID_HANDLE: return "CUDA_ERROR_INVALID_HANDLE";
    case CUDA_ERROR_ILLEGAL_STATE: return "CUDA_ERROR_ILLEGAL_STATE";
    case CUDA_ERROR_NOT_FOUND: return "CUDA_ERROR_NOT_FOUND";
    case CUDA_ERROR_NOT_READY: return "CUDA_ERROR_NOT_READY";
    case CUDA_ERROR_ILLEGAL_ADDRESS: return "CUDA_ERROR_ILLEGAL_ADDRESS";
    case CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES: return "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES";
    case CUDA_ERROR_LAUNCH_FAILED: return "CUDA_ERROR_LAUNCH_FAILED";
    case CUDA_ERROR_NOT_SUPPORTED: return "CUDA_ERROR_NOT_SUPPORTED";
    case CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED: return "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED";
    case CUDA_ERROR_STREAM_CAPTURE_INVALIDATED: return "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED";
    case CUDA_ERROR_STREAM_CAPTURE_UNJOINED: return "CUDA_ERROR_STREAM_CAPTURE_UNJOINED";
    case CUDA_ERROR_STREAM_CAPTURE_ISOLATION: return "CUDA_ERROR_STREAM_CAPTURE_ISOLATION";
    case CUDA_ERROR_STREAM_CAPTURE_IMPLICIT: return "CUDA_ERROR_STREAM_CAPTURE_IMPLICIT";
    default: return nullptr;
    }
}

/** What CUDA does to a call that may not happen while a stream captures (global mode): fail it, invalidate the capture. */
CUresult refuseDuringCapture(const char* call) {
    if (capturingStreams.empty()) {
        return CUDA_SUCCESS;
    }
    for (Stream* s : capturingStreams) {
        s->invalidated = true;
    }
    report("%s while a stream is being captured: CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, the capture is invalidated", call);
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
}

CUresult requireInitialized() {
    return initialized ? CUDA_SUCCESS : CUDA_ERROR_NOT_INITIALIZED;
}

/** The allocation holding [p, p + bytes), or null. */
const Allocation* allocationOf(const void* p, std::size_t bytes) {
    const auto address = reinterpret_cast<std::uintptr_t>(p);
    auto it = allocations.upper_bound(address);
    if (it == allocations.begin()) {
        return nullptr;
    }
    --it;
    const std::uintptr_t begin = it->first;
    const std::uintptr_t end = begin + it->second.bytes;
    return address >= begin && address <= end && bytes <= end - address ? &it->second : nullptr;
}

bool guardIntact(const Allocation& a) {
    const unsigned char* before = a.base;
    const unsigned char* after = a.base + GUARD_BYTES + a.bytes;
    for (std::size_t i = 0; i < GUARD_BYTES; i++) {
        if (before[i] != GUARD_PATTERN || after[i] != GUARD_PATTERN) {
            return false;
        }
    }
    return true;
}

void resetGuard(const Allocation& a) {
    std::memset(a.base, GUARD_PATTERN, GUARD_BYTES);
    std::memset(a.base + GUARD_BYTES + a.bytes, GUARD_PATTERN, GUARD_BYTES);
}

/**
 * The byte size of each parameter of `.entry name(...)` in PTX text: .u64/.s64/.f64/.b64 are 8 bytes,
 * .u32/.s32/.f32/.b32 4, and so on. Kernels taking structs or arrays by value (.align N .b8 x[M]) count M.
 */
std::map<std::string, std::vector<std::size_t>> ptxEntries(const std::string& ptx) {
    std::map<std::string, std::vector<std::size_t>> entries;
    std::size_t at = 0;
    while ((at = ptx.find(".entry ", at)) != std::string::npos) {
        at += 7;
        const std::size_t open = ptx.find('(', at);
        if (open == std::string::npos) {
            break;
        }
        std::string name = ptx.substr(at, open - at);
        name.erase(std::remove_if(name.begin(), name.end(), [](char c) { return c == ' ' || c == '\t' || c == '\n'; }),
                   name.end());
        const std::size_t close = ptx.find(')', open);
        std::vector<std::size_t> sizes;
        std::size_t p = open;
        while ((p = ptx.find(".param", p)) != std::string::npos && p < close) {
            p += 6;
            const std::size_t lineEnd = std::min(ptx.find_first_of(",)", p), close);
            const std::string decl = ptx.substr(p, lineEnd - p);
            std::size_t size = 0;
            const std::size_t bracket = decl.find('[');
            if (bracket != std::string::npos) {
                size = std::strtoul(decl.c_str() + bracket + 1, nullptr, 10);
            } else if (decl.find("64") != std::string::npos) {
                size = 8;
            } else if (decl.find("32") != std::string::npos) {
                size = 4;
            } else if (decl.find("16") != std::string::npos) {
                size = 2;
            } else if (decl.find("8") != std::string::npos) {
                size = 1;
            }
            sizes.push_back(size);
        }
        entries[name] = sizes;
        at = close == std::string::npos ? ptx.size() : close;
    }
    return entries;
}

/** A launch as recorded: the kernel, its shape and a copy of every argument's bytes. */
Work launchWork(const KernelEntry* kernel, Dim3 grid, Dim3 block, void** params) {
    std::vector<std::size_t> offsets;
    std::size_t size = 0;
    for (int i = 0; i < kernel->arity; i++) {
        const std::size_t bytes = kernel->argSizes[i];
        const std::size_t align = std::min<std::size_t>(bytes == 0 ? 1 : bytes, 16);
        size = (size + align - 1) / align * align;
        offsets.push_back(size);
        size += bytes;
    }
    auto storage = std::make_shared<std::vector<std::max_align_t>>((size + sizeof(std::max_align_t) - 1)
                                                                  / sizeof(std::max_align_t) + 1);
    auto* bytes = reinterpret_cast<unsigned char*>(storage->data());
    for (int i = 0; i < kernel->arity; i++) {
        std::memcpy(bytes + offsets[i], params[i], kernel->argSizes[i]);
    }
    return [kernel, grid, block, storage, offsets]() -> CUresult {
        auto* base = reinterpret_cast<unsigned char*>(storage->data());
        std::vector<void*> args(offsets.size());
        for (std::size_t i = 0; i < offsets.size(); i++) {
            args[i] = base + offsets[i];
        }
        const std::string failure = runKernel(*kernel, grid, block, 0, args.data());
        if (!failure.empty()) {
            report("%s", failure.c_str());
            return CUDA_ERROR_LAUNCH_FAILED;
        }
        return checkGuards(kernel->name);
    };
}

} // namespace

void report(const char* format, ...) {
    std::fprintf(stderr, "gradscope CUDA emulator: ");
    va_list args;
    va_start(args, format);
    std::vfprintf(stderr, format, args);
    va_end(args);
    std::fputc('\n', stderr);
    std::fflush(stderr);
}

namespace {

/** Until when a stream's queue runs: until `event` has completed record `sequence`, or (no event) to its end. */
struct RunUntil {
    Event* event = nullptr;
    std::uint64_t sequence = 0;

    bool reached() const { return event != nullptr && event->completed >= sequence; }
};

/**
 * Runs `stream`'s queued items in order until `until` is reached or the queue is empty. A wait runs the
 * queue of the stream its event was recorded on, up to that record. A failure of work is kept as the
 * stream's asynchronous error.
 */
void runQueue(Stream* stream, RunUntil until) {
    if (stream == nullptr || until.reached()) {
        return;
    }
    if (stream->running) {
        report("a cycle of waits between streams: a stream waits, through others, for its own later work");
        if (stream->asyncError == CUDA_SUCCESS) {
            stream->asyncError = CUDA_ERROR_ILLEGAL_STATE;
        }
        return;
    }
    stream->running = true;
    while (!stream->pending.empty() && !until.reached()) {
        Pending item = std::move(stream->pending.front());
        stream->pending.pop_front();
        if (item.event != nullptr) {
            runQueue(item.recordedOn, RunUntil{item.event, item.sequence});
        } else if (const CUresult result = item.work(); result != CUDA_SUCCESS && stream->asyncError == CUDA_SUCCESS) {
            stream->asyncError = result;
        }
    }
    stream->running = false;
}

void runAllQueued(Stream* stream) {
    runQueue(stream, RunUntil{});
}

/** What the legacy stream, a synchronous copy or a free waits for: every stream, first created first. */
void runEveryStream() {
    for (Stream* s : liveStreams) {
        runAllQueued(s);
    }
}

/** The stream's asynchronous error, reported once. */
CUresult takeAsyncError(Stream* stream) {
    const CUresult error = stream->asyncError;
    stream->asyncError = CUDA_SUCCESS;
    return error;
}

} // namespace

CUresult enqueue(CUstream stream, Work work) {
    Lock lock(deviceLock);
    if (stream != nullptr && stream->capturing) {
        if (stream->invalidated || stream->origin->invalidated) {
            return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
        }
        stream->origin->recorded.push_back(std::move(work));
        stream->queued++;
        return CUDA_SUCCESS;
    }
    if (stream == nullptr && !capturingStreams.empty()) {
        // The legacy stream waits for every blocking stream, a capturing one included: CUDA refuses.
        for (Stream* s : capturingStreams) {
            s->invalidated = true;
        }
        report("work on the legacy default stream while a stream is being captured: CUDA_ERROR_STREAM_CAPTURE_IMPLICIT");
        return CUDA_ERROR_STREAM_CAPTURE_IMPLICIT;
    }
    if (stream == nullptr) {
        runEveryStream(); // the legacy stream waits for every blocking stream, then runs the work now
        return work();
    }
    stream->pending.push_back(Pending{std::move(work)});
    return CUDA_SUCCESS;
}

bool isDeviceRange(const void* p, std::size_t bytes) {
    Lock lock(deviceLock);
    return allocationOf(p, bytes) != nullptr;
}

CUresult checkGuards(const char* what) {
    Lock lock(deviceLock);
    CUresult result = CUDA_SUCCESS;
    for (const auto& [address, a] : allocations) {
        if (!guardIntact(a)) {
            report("%s wrote outside an allocation (the guard bytes around the %zu bytes at 0x%llx changed):"
                   " CUDA_ERROR_ILLEGAL_ADDRESS", what, a.bytes, static_cast<unsigned long long>(address));
            resetGuard(a);
            result = CUDA_ERROR_ILLEGAL_ADDRESS;
        }
    }
    return result;
}

} // namespace gsemu

using namespace gsemu;

using CUcontext = Context*;
using CUevent = Event*;
using CUmodule = Module*;
using CUfunction = Function*;
using CUgraph = Graph*;
using CUgraphExec = GraphExec*;

/** cuda.h's CUdevice_attribute values the backend asks for. */
enum : int {
    CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 1,
    CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X = 2,
    CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X = 5,
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK = 8,
    CU_DEVICE_ATTRIBUTE_WARP_SIZE = 10,
    CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
};

extern "C" {

// ---- initialisation and the device ----------------------------------------------------------------

CUresult cuInit(unsigned flags) {
    Lock lock(deviceLock);
    if (flags != 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    initialized = true;
    return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int* version) {
    if (version == nullptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *version = DRIVER_VERSION;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int* count) {
    Lock lock(deviceLock);
    if (CUresult r = requireInitialized()) {
        return r;
    }
    if (count == nullptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *count = 1;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice* device, int ordinal) {
    Lock lock(deviceLock);
    if (CUresult r = requireInitialized()) {
        return r;
    }
    if (device == nullptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (ordinal != 0) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    *device = 0;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char* name, int length, CUdevice device) {
    if (device != 0) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    if (name == nullptr || length <= 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    std::snprintf(name, static_cast<std::size_t>(length), "%s", DEVICE_NAME);
    return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem_v2(std::size_t* bytes, CUdevice device) {
    if (device != 0) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    if (bytes == nullptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *bytes = TOTAL_MEMORY;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int* value, int attribute, CUdevice device) {
    if (device != 0) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    if (value == nullptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    switch (attribute) {
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *value = 1024; break;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X: *value = 1024; break;
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X: *value = 2147483647; break;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK: *value = 48 * 1024; break;
    case CU_DEVICE_ATTRIBUTE_WARP_SIZE: *value = 32; break;
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *value = MULTIPROCESSORS; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *value = COMPUTE_MAJOR; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *value = COMPUTE_MINOR; break;
    default:
        report("cuDeviceGetAttribute: attribute %d is not emulated", attribute);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    return CUDA_SUCCESS;
}

CUresult cuGetErrorName(CUresult error, const char** name) {
    const char* n = errorName(error);
    if (name == nullptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *name = n;
    return n == nullptr ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
}

CUresult cuGetErrorString(CUresult error, const char** text) {
    return cuGetErrorName(error, text);
}

// ---- contexts -----------------------------------------------------------------------------------

CUresult cuDevicePrimaryCtxRetain(CUcontext* context, CUdevice device) {
    Lock lock(deviceLock);
    if (CUresult r = requireInitialized()) {
        return r;
    }
    if (device != 0) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    if (context == nullptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    primaryContext.retained++;
    *context = &primaryContext;
    return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice device) {
    Lock lock(deviceLock);
    if (device != 0) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    if (primaryContext.retained == 0) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    primaryContext.retained--;
    return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext context) {
    if (context != nullptr && context != &primaryContext) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    currentContext = context;
    return CUDA_SUCCESS;
}

CUresult cuCtxGetCurrent(CUcontext* context) {
    if (context == nullptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *context = currentContext;
    return CUDA_SUCCESS;
}

CUresult cuCtxSynchronize() {
    Lock lock(deviceLock);
    if (CUresult r = refuseDuringCapture("cuCtxSynchronize")) {
        return r;
    }
    runEveryStream();
    CUresult first = CUDA_SUCCESS;
    for (Stream* s : liveStreams) {
        const CUresult error = takeAsyncError(s);
        first = first == CUDA_SUCCESS ? error : first;
    }
    return first;
}

// ---- memory -------------------------------------------------------------------------------------

CUresult cuMemAlloc_v2(CUdeviceptr* pointer, std::size_t bytes) {
    Lock lock(deviceLock);
    if (CUresult r = requireInitialized()) {
        return r;
    }
    if (pointer == nullptr || bytes == 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (CUresult r = refuseDuringCapture("cuMemAlloc")) {
        return r;
    }
    if (bytes > TOTAL_MEMORY - allocatedBytes) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    const std::size_t rounded = (bytes + GUARD_BYTES - 1) / GUARD_BYTES * GUARD_BYTES;
    auto* base = static_cast<unsigned char*>(std::aligned_alloc(GUARD_BYTES, rounded + 2 * GUARD_BYTES));
    if (base == nullptr) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    Allocation a{base, bytes};
    std::memset(base + GUARD_BYTES, FRESH_FILL, bytes);
    resetGuard(a);
    const auto address = reinterpret_cast<std::uintptr_t>(base + GUARD_BYTES);
    allocations[address] = a;
    allocatedBytes += bytes;
    *pointer = address;
    return CUDA_SUCCESS;
}

CUresult cuMemFree_v2(CUdeviceptr pointer) {
    Lock lock(deviceLock);
    if (CUresult r = refuseDuringCapture("cuMemFree")) {
        return r;
    }
    auto it = allocations.find(static_cast<std::uintptr_t>(pointer));
    if (it == allocations.end()) {
        report("cuMemFree of 0x%llx, which is not the start of an allocation", pointer);
        return CUDA_ERROR_INVALID_VALUE;
    }
    runEveryStream(); // queued work may still use the memory
    CUresult result = CUDA_SUCCESS;
    if (!guardIntact(it->second)) {
        report("cuMemFree: the guard bytes around the %zu bytes at 0x%llx were overwritten", it->second.bytes, pointer);
        result = CUDA_ERROR_ILLEGAL_ADDRESS;
    }
    allocatedBytes -= it->second.bytes;
    std::free(it->second.base);
    allocations.erase(it);
    return result;
}

CUresult cuMemGetInfo_v2(std::size_t* free, std::size_t* total) {
    Lock lock(deviceLock);
    if (free == nullptr || total == nullptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *free = TOTAL_MEMORY - allocatedBytes;
    *total = TOTAL_MEMORY;
    return CUDA_SUCCESS;
}

/** A synchronous copy: waits for all work (none is pending here) and may not happen during a capture. */
static CUresult synchronousCopy(const char* call, void* to, const void* from, std::size_t bytes, bool toDevice) {
    Lock lock(deviceLock);
    if (CUresult r = refuseDuringCapture(call)) {
        return r;
    }
    if (bytes == 0) {
        return CUDA_SUCCESS;
    }
    if (allocationOf(toDevice ? to : from, bytes) == nullptr) {
        report("%s of %zu bytes at %p: not inside one allocation", call, bytes, toDevice ? to : from);
        return CUDA_ERROR_INVALID_VALUE;
    }
    runEveryStream(); // on the legacy stream: after every blocking stream's work
    std::memcpy(to, from, bytes);
    return CUDA_SUCCESS;
}

CUresult cuMemcpyHtoD_v2(CUdeviceptr device, const void* host, std::size_t bytes) {
    return synchronousCopy("cuMemcpyHtoD", reinterpret_cast<void*>(device), host, bytes, true);
}

CUresult cuMemcpyDtoH_v2(void* host, CUdeviceptr device, std::size_t bytes) {
    return synchronousCopy("cuMemcpyDtoH", host, reinterpret_cast<const void*>(device), bytes, false);
}

CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr to, CUdeviceptr from, std::size_t bytes, CUstream stream) {
    Lock lock(deviceLock);
    if (bytes == 0) {
        return CUDA_SUCCESS;
    }
    if (allocationOf(reinterpret_cast<void*>(to), bytes) == nullptr
        || allocationOf(reinterpret_cast<void*>(from), bytes) == nullptr) {
        report("cuMemcpyDtoDAsync of %zu bytes from 0x%llx to 0x%llx: not inside allocations", bytes, from, to);
        return CUDA_ERROR_INVALID_VALUE;
    }
    return enqueue(stream, [to, from, bytes]() {
        std::memmove(reinterpret_cast<void*>(to), reinterpret_cast<const void*>(from), bytes);
        return CUDA_SUCCESS;
    });
}

CUresult cuMemsetD8Async(CUdeviceptr to, unsigned char value, std::size_t count, CUstream stream) {
    Lock lock(deviceLock);
    if (count == 0) {
        return CUDA_SUCCESS;
    }
    if (allocationOf(reinterpret_cast<void*>(to), count) == nullptr) {
        report("cuMemsetD8Async of %zu bytes at 0x%llx: not inside one allocation", count, to);
        return CUDA_ERROR_INVALID_VALUE;
    }
    return enqueue(stream, [to, value, count]() {
        std::memset(reinterpret_cast<void*>(to), value, count);
        return CUDA_SUCCESS;
    });
}

CUresult cuMemsetD8_v2(CUdeviceptr to, unsigned char value, std::size_t count) {
    Lock lock(deviceLock);
    if (CUresult r = refuseDuringCapture("cuMemsetD8")) {
        return r;
    }
    return cuMemsetD8Async(to, value, count, nullptr); // the legacy stream: after every stream's work
}

// ---- streams and events ---------------------------------------------------------------------------

CUresult cuStreamCreate(CUstream* stream, unsigned flags) {
    (void) flags; // blocking or not: everything runs in order here
    if (stream == nullptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *stream = new Stream();
    Lock lock(deviceLock);
    liveStreams.push_back(*stream);
    return CUDA_SUCCESS;
}

CUresult cuStreamDestroy_v2(CUstream stream) {
    Lock lock(deviceLock);
    if (stream == nullptr) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (stream->capturing) {
        report("cuStreamDestroy of a stream that is being captured");
        capturingStreams.erase(stream);
    }
    runAllQueued(stream); // CUDA lets queued work finish
    liveStreams.erase(std::remove(liveStreams.begin(), liveStreams.end(), stream), liveStreams.end());
    delete stream;
    return CUDA_SUCCESS;
}

CUresult cuStreamSynchronize(CUstream stream) {
    Lock lock(deviceLock);
    if (CUresult r = refuseDuringCapture("cuStreamSynchronize")) {
        return r;
    }
    if (stream == nullptr) {
        runEveryStream();
        return CUDA_SUCCESS;
    }
    runAllQueued(stream);
    return takeAsyncError(stream);
}

CUresult cuStreamBeginCapture_v2(CUstream stream, int mode) {
    Lock lock(deviceLock);
    (void) mode; // global, thread-local or relaxed: the emulator refuses the same calls in every mode
    if (stream == nullptr) {
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED; // the legacy stream cannot be captured
    }
    if (stream->capturing) {
        return CUDA_ERROR_ILLEGAL_STATE;
    }
    stream->capturing = true;
    stream->invalidated = false;
    stream->origin = stream;
    stream->recorded.clear();
    capturingStreams.insert(stream);
    return CUDA_SUCCESS;
}

CUresult cuStreamEndCapture(CUstream stream, CUgraph* graph) {
    Lock lock(deviceLock);
    if (stream == nullptr || graph == nullptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!stream->capturing || stream->origin != stream) {
        return CUDA_ERROR_ILLEGAL_STATE; // not capturing, or a stream that joined another's capture
    }
    bool unjoined = false;
    bool invalidated = stream->invalidated;
    for (auto it = capturingStreams.begin(); it != capturingStreams.end();) {
        Stream* joinedStream = *it;
        if (joinedStream->origin == stream && joinedStream != stream) {
            if (joinedStream->queued > joinedStream->joinedUpTo) {
                unjoined = true;
                report("cuStreamEndCapture: a stream that joined the capture has work the capturing stream"
                       " never waited for: CUDA_ERROR_STREAM_CAPTURE_UNJOINED");
            }
            invalidated = invalidated || joinedStream->invalidated;
            joinedStream->capturing = false;
            joinedStream->origin = nullptr;
            it = capturingStreams.erase(it);
        } else {
            ++it;
        }
    }
    stream->capturing = false;
    stream->origin = nullptr;
    capturingStreams.erase(stream);
    std::vector<Work> recorded = std::move(stream->recorded);
    stream->recorded.clear();
    if (unjoined) {
        *graph = nullptr;
        return CUDA_ERROR_STREAM_CAPTURE_UNJOINED;
    }
    if (invalidated) {
        *graph = nullptr;
        return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    }
    *graph = new Graph{std::move(recorded)};
    return CUDA_SUCCESS;
}

CUresult cuStreamIsCapturing(CUstream stream, int* status) {
    Lock lock(deviceLock);
    if (status == nullptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *status = stream == nullptr || !stream->capturing ? 0 : stream->invalidated ? 2 : 1;
    return CUDA_SUCCESS;
}

/** cuEventCreate's flag for an event without timing (cuda.h's CU_EVENT_DISABLE_TIMING). */
constexpr unsigned CU_EVENT_DISABLE_TIMING = 0x2;

/**
 * Outside a capture: the stream's later work runs only after the event's record has run (a wait queued;
 * the legacy stream runs it now). Waiting for an event recorded during a capture makes the stream join
 * that capture (its work goes into the same graph, after the event's); the capturing stream waiting for a
 * joined stream's event joins that stream's work so far.
 */
CUresult cuStreamWaitEvent(CUstream stream, CUevent event, unsigned flags) {
    Lock lock(deviceLock);
    if (event == nullptr) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (flags != 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (event->captureOrigin == nullptr || !event->captureOrigin->capturing) {
        if (stream != nullptr && stream->capturing) {
            // An event from outside the capture: CUDA refuses it in a capture (it cannot be a graph edge).
            stream->origin->invalidated = true;
            report("cuStreamWaitEvent: a capturing stream waits for an event recorded outside the capture:"
                   " CUDA_ERROR_STREAM_CAPTURE_ISOLATION");
            return CUDA_ERROR_STREAM_CAPTURE_ISOLATION;
        }
        const std::uint64_t sequence = event->issued;
        if (event->completed >= sequence) {
            return CUDA_SUCCESS;
        }
        if (stream == nullptr) {
            runQueue(event->issuedOn, RunUntil{event, sequence});
            return CUDA_SUCCESS;
        }
        Pending wait;
        wait.event = event;
        wait.sequence = sequence;
        wait.recordedOn = event->issuedOn;
        stream->pending.push_back(std::move(wait));
        return CUDA_SUCCESS;
    }
    if (stream == nullptr) {
        return enqueue(stream, []() { return CUDA_SUCCESS; }); // the legacy stream: refused during a capture
    }
    if (!stream->capturing) {
        stream->capturing = true;
        stream->invalidated = false;
        stream->origin = event->captureOrigin;
        stream->queued = 0;
        stream->joinedUpTo = 0;
        capturingStreams.insert(stream);
    } else if (stream->origin != event->captureOrigin) {
        report("cuStreamWaitEvent: a stream waits for an event of another capture");
        return CUDA_ERROR_STREAM_CAPTURE_ISOLATION;
    }
    Stream* waitedFor = event->capturedBy;
    if (waitedFor != nullptr && waitedFor != stream && stream == stream->origin) {
        waitedFor->joinedUpTo = std::max(waitedFor->joinedUpTo, event->capturedQueued);
    }
    return CUDA_SUCCESS;
}

CUresult cuEventCreate(CUevent* event, unsigned flags) {
    if (event == nullptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *event = new Event();
    (*event)->timing = (flags & CU_EVENT_DISABLE_TIMING) == 0;
    return CUDA_SUCCESS;
}

CUresult cuEventDestroy_v2(CUevent event) {
    Lock lock(deviceLock);
    if (event == nullptr) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    runEveryStream(); // queued records and waits refer to it: CUDA releases it once they are done
    delete event;
    return CUDA_SUCCESS;
}

CUresult cuEventRecord(CUevent event, CUstream stream) {
    Lock lock(deviceLock);
    if (event == nullptr) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    // What a later cuStreamWaitEvent depends on is decided now, at the call, as CUDA does: the stream's
    // work so far, this record included.
    const bool live = stream != nullptr && !stream->capturing;
    const std::uint64_t sequence = live ? ++event->issued : 0;
    if (live) {
        event->issuedOn = stream;
    }
    const CUresult result = enqueue(stream, [event, sequence]() {
        event->recorded = true;
        event->completed = std::max(event->completed, sequence);
        event->time = std::chrono::steady_clock::now();
        return CUDA_SUCCESS;
    });
    const bool captured = result == CUDA_SUCCESS && stream != nullptr && stream->capturing;
    event->capturedBy = captured ? stream : nullptr;
    event->captureOrigin = captured ? stream->origin : nullptr;
    event->capturedQueued = captured ? stream->queued : 0;
    return result;
}

CUresult cuEventSynchronize(CUevent event) {
    Lock lock(deviceLock);
    if (event == nullptr) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (CUresult r = refuseDuringCapture("cuEventSynchronize")) {
        return r;
    }
    runQueue(event->issuedOn, RunUntil{event, event->issued});
    return CUDA_SUCCESS;
}

CUresult cuEventElapsedTime(float* milliseconds, CUevent start, CUevent end) {
    if (milliseconds == nullptr || start == nullptr || end == nullptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!start->recorded || !end->recorded || !start->timing || !end->timing) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (start->completed < start->issued || end->completed < end->issued) {
        return CUDA_ERROR_NOT_READY; // a record still queued
    }
    *milliseconds = std::chrono::duration<float, std::milli>(end->time - start->time).count();
    return CUDA_SUCCESS;
}

// ---- modules and kernels ----------------------------------------------------------------------------

CUresult cuModuleLoadData(CUmodule* module, const void* image) {
    Lock lock(deviceLock);
    if (CUresult r = requireInitialized()) {
        return r;
    }
    if (module == nullptr || image == nullptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (CUresult r = refuseDuringCapture("cuModuleLoadData")) {
        return r;
    }
    const std::string ptx(static_cast<const char*>(image));
    if (ptx.find(".version") == std::string::npos || ptx.find(".target") == std::string::npos) {
        report("cuModuleLoadData: the image is not PTX text (no .version and .target)");
        return CUDA_ERROR_INVALID_IMAGE;
    }
    auto loaded = std::make_unique<Module>();
    loaded->entries = ptxEntries(ptx);
    for (const auto& [name, sizes] : loaded->entries) {
        const KernelEntry* kernel = findKernel(name.c_str());
        if (kernel == nullptr) {
            report("cuModuleLoadData: the PTX's kernel %s is not in the emulator's build of src/main/cuda"
                   " (rebuild it: scripts/build-cuda-emulator.sh)", name.c_str());
            return CUDA_ERROR_INVALID_PTX;
        }
        bool same = static_cast<int>(sizes.size()) == kernel->arity;
        for (std::size_t i = 0; same && i < sizes.size(); i++) {
            same = sizes[i] == kernel->argSizes[i];
        }
        if (!same) {
            std::string ptxSizes;
            std::string cppSizes;
            for (std::size_t s : sizes) {
                ptxSizes += " " + std::to_string(s);
            }
            for (int i = 0; i < kernel->arity; i++) {
                cppSizes += " " + std::to_string(kernel->argSizes[i]);
            }
            report("cuModuleLoadData: kernel %s takes parameters of bytes%s in the PTX but%s in the C++ build",
                   name.c_str(), ptxSizes.c_str(), cppSizes.c_str());
            return CUDA_ERROR_INVALID_PTX;
        }
    }
    *module = loaded.release();
    return CUDA_SUCCESS;
}

CUresult cuModuleUnload(CUmodule module) {
    Lock lock(deviceLock);
    if (module == nullptr) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    runEveryStream(); // queued launches of its kernels run first
    delete module;
    return CUDA_SUCCESS;
}

CUresult cuModuleGetFunction(CUfunction* function, CUmodule module, const char* name) {
    if (function == nullptr || module == nullptr || name == nullptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (module->entries.count(name) == 0) {
        return CUDA_ERROR_NOT_FOUND;
    }
    // Functions live as long as the process: CUDA's are owned by the module, and JCuda never frees them.
    static std::map<const KernelEntry*, Function> functions;
    Lock lock(deviceLock);
    const KernelEntry* kernel = findKernel(name);
    Function& f = functions[kernel];
    f.kernel = kernel;
    *function = &f;
    return CUDA_SUCCESS;
}

CUresult cuLaunchKernel(CUfunction function, unsigned gridX, unsigned gridY, unsigned gridZ, unsigned blockX,
                        unsigned blockY, unsigned blockZ, unsigned sharedBytes, CUstream stream, void** params,
                        void** extra) {
    Lock lock(deviceLock);
    if (function == nullptr) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    const KernelEntry* kernel = function->kernel;
    if (gridX == 0 || gridY == 0 || gridZ == 0 || blockX == 0 || blockY == 0 || blockZ == 0) {
        report("cuLaunchKernel %s: grid (%u, %u, %u) or block (%u, %u, %u) has a zero dimension", kernel->name, gridX,
               gridY, gridZ, blockX, blockY, blockZ);
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (static_cast<unsigned long long>(blockX) * blockY * blockZ > 1024) {
        report("cuLaunchKernel %s: block (%u, %u, %u) has more than 1024 threads", kernel->name, blockX, blockY, blockZ);
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (extra != nullptr || sharedBytes != 0) {
        report("cuLaunchKernel %s: extra parameters and dynamic shared memory are not emulated", kernel->name);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (kernel->arity > 0 && params == nullptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return enqueue(stream, launchWork(kernel, Dim3{gridX, gridY, gridZ}, Dim3{blockX, blockY, blockZ}, params));
}

// ---- graphs ---------------------------------------------------------------------------------------

CUresult cuGraphInstantiateWithFlags(CUgraphExec* exec, CUgraph graph, unsigned long long flags) {
    (void) flags;
    if (exec == nullptr || graph == nullptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *exec = new GraphExec{graph->work};
    return CUDA_SUCCESS;
}

CUresult cuGraphLaunch(CUgraphExec exec, CUstream stream) {
    if (exec == nullptr) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    // The graph's work as it is now: the instance may be destroyed while the launch is still queued.
    auto graphWork = std::make_shared<const std::vector<Work>>(exec->work);
    return enqueue(stream, [graphWork]() {
        for (const Work& work : *graphWork) {
            if (CUresult r = work()) {
                return r;
            }
        }
        return CUDA_SUCCESS;
    });
}

CUresult cuGraphDestroy(CUgraph graph) {
    if (graph == nullptr) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    delete graph;
    return CUDA_SUCCESS;
}

CUresult cuGraphExecDestroy(CUgraphExec exec) {
    if (exec == nullptr) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    delete exec;
    return CUDA_SUCCESS;
}

} // extern "C"
