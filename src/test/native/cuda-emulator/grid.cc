// The kernel runner of grid.h: each block's threads as fibers on the calling OS thread, switched by a
// few instructions of x86-64 assembly (swapcontext would make a system call per switch, and a block of
// 1024 threads switches tens of thousands of times per launch).
#include "grid.h"

// device.h declares what the kernels call (syncThreads, exchangeInWarp, current), defined here. It also
// defines the macros threadIdx, blockIdx, blockDim and gridDim, so this file does not use those names.
#include "device.h"

#include <sys/mman.h>

#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

// Where a new fiber starts (see switchContext below), its stack holding the runner and fiberMain's
// address: calls fiberMain(runner), with the ABI's 16-byte stack alignment at the call. fiberMain never
// returns.
asm(R"(
    .pushsection .text
    .p2align 4
    .type gsemu_fiber_start, @function
gsemu_fiber_start:
    movq (%rsp), %rdi
    callq *8(%rsp)
    ud2
    .size gsemu_fiber_start, .-gsemu_fiber_start
    .popsection
)");

extern "C" void gsemu_fiber_start();

namespace gsemu {

namespace device {
__thread ThreadCoordinates current;
} // namespace device

namespace {

// ---- the context switch ----------------------------------------------------------------------------
//
// A suspended fiber, or the scheduler while a fiber runs, is a Context: where its stack, frame and code
// stand. switchContext saves the running one and jumps to another with inline assembly, not a call: a
// call into a switch function returns somewhere other than where the processor's return-address
// predictor expects, and that misprediction then cascades through every return that follows on both
// sides (it made up most of the cost of a switch). Inlined, the scheduler's loop makes no unmatched call,
// and fibers suspend and resume from the same few call sites, so their returns stay predicted.
//
// The registers a call may clobber are declared clobbered; the callee-saved rbx and r12-r15 are declared
// clobbered too, so the compiler saves what it needs of them around the switch. rbp (possibly the frame
// pointer, which cannot be clobbered) travels in the Context. The SSE and x87 control words (rounding
// mode, exception masks) are not switched: every fiber runs with the caller's, which no kernel can change
// (CUDA has no way to), and saving them (stmxcsr, fnstcw) was the slowest part of a switch.

/** Where a suspended context resumes. */
struct Context {
    void* stackPointer;
    void* framePointer;
    const void* resumeAt;
};

__attribute__((always_inline)) inline void switchContext(Context* save, const Context* load) {
    asm volatile(
        "leaq 1f(%%rip), %%rax\n\t"
        "movq %%rax, 16(%0)\n\t"
        "movq %%rsp, 0(%0)\n\t"
        "movq %%rbp, 8(%0)\n\t"
        "movq 0(%1), %%rsp\n\t"
        "movq 8(%1), %%rbp\n\t"
        "jmpq *16(%1)\n"
        "1:"
        : "+D"(save), "+S"(load)
        :
        : "rax", "rbx", "rcx", "rdx", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "xmm0", "xmm1", "xmm2",
          "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",
          "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)", "cc", "memory");
}

constexpr unsigned WARP_LANES = 32;
constexpr unsigned MAX_BLOCK_THREADS = 1024;
constexpr std::size_t STACK_BYTES = 64 * 1024;
/** An inaccessible page below each stack: an overflow faults instead of writing into the next fiber's stack. */
constexpr std::size_t GUARD_BYTES = 4096;

/**
 * Stack tops are staggered in STACK_COLOURS steps of COLOUR_BYTES: at a 68 KiB stride alone, every fiber's
 * top frame would fall in the same few cache sets, and a barrier touches all of them in turn (staggering
 * made a shuffle-heavy launch about 12% faster).
 */
constexpr std::size_t STACK_COLOURS = 16;
constexpr std::size_t COLOUR_BYTES = 256;

/** What a fiber is doing when it is not running. */
enum class Wait : unsigned char {
    NOTHING,       // runnable
    BLOCK_BARRIER, // at __syncthreads
    WARP_EXCHANGE, // at a shuffle, until every lane of the mask has arrived
    EXITED,        // returned from the kernel
};

struct Fiber {
    Context context; // saved while suspended
    Wait wait;
    uint3 index; // threadIdx
    // The shuffle it waits at: the lane it reads, and the value it published, replaced by the value
    // received when the exchange completes.
    unsigned sourceLane;
    std::uint64_t exchangeValue;
};

/** The shuffle a warp is gathering: the mask the first lane passed, how many lanes it names and have arrived. */
struct WarpExchange {
    unsigned mask;
    unsigned lanes;
    unsigned arrivals;
};

std::string describe(uint3 v, Dim3 extent) {
    if (extent.y == 1 && extent.z == 1) {
        return std::to_string(v.x);
    }
    return "(" + std::to_string(v.x) + ", " + std::to_string(v.y) + ", " + std::to_string(v.z) + ")";
}

std::string hex(unsigned v) {
    char text[16];
    std::snprintf(text, sizeof text, "0x%08x", v);
    return text;
}

/** The fibers of one OS thread and the launch they run. */
class BlockRunner {
public:
    BlockRunner() = default;
    BlockRunner(const BlockRunner&) = delete;
    BlockRunner& operator=(const BlockRunner&) = delete;

    ~BlockRunner() {
        if (stacks_ != nullptr) {
            munmap(stacks_, MAX_BLOCK_THREADS * (STACK_BYTES + GUARD_BYTES));
        }
    }

    std::string run(const KernelEntry& kernel, Dim3 grid, Dim3 block, void** params);

    // Called on a fiber, by the kernel (inlined into device::syncThreads and device::exchangeInWarp, so
    // that the fiber suspends in the function the kernel called).
    __attribute__((always_inline)) void syncThreads();
    __attribute__((always_inline)) std::uint64_t exchangeInWarp(unsigned mask, std::uint64_t value,
                                                                unsigned sourceLane);

private:
    [[noreturn]] static void fiberMain(BlockRunner* runner);

    std::string allocateStacks();
    void prepareFiber(unsigned thread);
    void runBlock(uint3 blockIndex);
    void runWarp(unsigned warp);
    bool completeExchange(unsigned warp);
    __attribute__((always_inline)) void resume(unsigned thread);
    __attribute__((always_inline)) void suspend();
    [[noreturn]] void abandonLaunch();
    std::string describeDeadlock() const;
    std::string thread(unsigned linear) const { return "thread " + describe(fibers_[linear].index, block_); }
    /** The start of a failure message about thread `linear` of the block being run. */
    std::string at(unsigned linear) const {
        return "kernel " + std::string(kernel_->name) + ", block " + describe(blockIndex_, grid_) + ", " +
               thread(linear) + ": ";
    }

    char* stacks_ = nullptr;
    Fiber fibers_[MAX_BLOCK_THREADS];
    WarpExchange warps_[MAX_BLOCK_THREADS / WARP_LANES];
    Context scheduler_{};
    // This OS thread's device::current: its address, taken once, spares a TLS lookup at every switch.
    device::ThreadCoordinates* coordinates_ = nullptr;

    // The launch and block being run.
    const KernelEntry* kernel_ = nullptr;
    void** params_ = nullptr;
    Dim3 block_{};
    uint3 blockIndex_{};
    Dim3 grid_{};
    unsigned threadCount_ = 0;
    unsigned current_ = 0;         // the fiber running, or last run
    unsigned exited_ = 0;          // fibers of the block that returned
    unsigned atBlockBarrier_ = 0;  // fibers waiting at __syncthreads
    std::string failure_;          // set by a fiber that misused a barrier; stops the launch
};

thread_local std::unique_ptr<BlockRunner> runnerOfThisThread;

/**
 * The runner of this OS thread while it runs a launch, for the kernels' barrier calls: a plain TLS pointer,
 * read with one lookup (runnerOfThisThread's accesses also check that its destructor is registered).
 */
__thread BlockRunner* runningBlock = nullptr;

std::string BlockRunner::allocateStacks() {
    const std::size_t slot = STACK_BYTES + GUARD_BYTES;
    void* region = mmap(nullptr, MAX_BLOCK_THREADS * slot, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (region == MAP_FAILED) {
        return std::string("cannot map the fiber stacks: ") + std::strerror(errno);
    }
    for (unsigned i = 0; i < MAX_BLOCK_THREADS; i++) {
        if (mprotect(static_cast<char*>(region) + i * slot, GUARD_BYTES, PROT_NONE) != 0) {
            const std::string failure = std::string("cannot protect the fiber stacks' guard pages: ") + std::strerror(errno);
            munmap(region, MAX_BLOCK_THREADS * slot);
            return failure;
        }
    }
    stacks_ = static_cast<char*>(region);
    return "";
}

/** A fresh stack for fiber `thread`, whose Context starts it in gsemu_fiber_start. */
void BlockRunner::prepareFiber(unsigned thread) {
    char* top = stacks_ + (thread + 1) * (STACK_BYTES + GUARD_BYTES) - (thread % STACK_COLOURS) * COLOUR_BYTES;
    // 16-byte aligned, as the top is: gsemu_fiber_start's call then has the ABI's alignment.
    auto* start = reinterpret_cast<std::uint64_t*>(top) - 2;
    start[0] = reinterpret_cast<std::uint64_t>(this);
    start[1] = reinterpret_cast<std::uint64_t>(&fiberMain);
    Fiber& f = fibers_[thread];
    f.context = Context{start, nullptr, reinterpret_cast<const void*>(&gsemu_fiber_start)};
    f.wait = Wait::NOTHING;
}

void BlockRunner::fiberMain(BlockRunner* runner) {
    runner->kernel_->invoke(runner->params_);
    runner->fibers_[runner->current_].wait = Wait::EXITED;
    runner->exited_++;
    runner->suspend();
    std::abort(); // an exited fiber is never resumed
}

inline void BlockRunner::resume(unsigned thread) {
    current_ = thread;
    coordinates_->threadIndex = fibers_[thread].index;
    coordinates_->lane = thread % WARP_LANES;
    switchContext(&scheduler_, &fibers_[thread].context);
}

inline void BlockRunner::suspend() { switchContext(&fibers_[current_].context, &scheduler_); }

/**
 * Called on a fiber that set failure_: back to the scheduler, which ends the launch; the fiber is never
 * resumed. (The message is built before the call, so no string of it is left on the abandoned stack.)
 */
void BlockRunner::abandonLaunch() {
    suspend();
    std::abort();
}

inline void BlockRunner::syncThreads() {
    fibers_[current_].wait = Wait::BLOCK_BARRIER;
    atBlockBarrier_++;
    suspend();
}

inline std::uint64_t BlockRunner::exchangeInWarp(unsigned mask, std::uint64_t value, unsigned sourceLane) {
    const unsigned lane = current_ % WARP_LANES;
    const unsigned warp = current_ / WARP_LANES;
    const unsigned lanes = std::min(WARP_LANES, threadCount_ - warp * WARP_LANES);
    const unsigned existing = lanes == WARP_LANES ? ~0u : (1u << lanes) - 1;
    if ((mask >> lane & 1u) == 0) {
        failure_ = at(current_) + "a warp shuffle's mask " + hex(mask) + " omits the calling lane " +
                   std::to_string(lane);
        abandonLaunch();
    }
    if ((mask & ~existing) != 0) {
        failure_ = at(current_) + "a warp shuffle's mask " + hex(mask) + " names lanes that this warp of " +
                   std::to_string(lanes) + " threads does not have";
        abandonLaunch();
    }
    WarpExchange& exchange = warps_[warp];
    if (exchange.arrivals == 0) {
        exchange.mask = mask;
        exchange.lanes = static_cast<unsigned>(std::popcount(mask));
    } else if (mask != exchange.mask) {
        failure_ = at(current_) + "lanes of one warp shuffle with different masks, " + hex(exchange.mask) +
                   " and " + hex(mask);
        abandonLaunch();
    }
    exchange.arrivals++;
    Fiber& f = fibers_[current_];
    f.sourceLane = sourceLane;
    f.exchangeValue = value;
    f.wait = Wait::WARP_EXCHANGE;
    suspend();
    return f.exchangeValue;
}

/** When every lane of the warp's shuffle has arrived: hands each its source's value and lets them run. */
bool BlockRunner::completeExchange(unsigned warp) {
    WarpExchange& exchange = warps_[warp];
    if (exchange.arrivals == 0 || exchange.arrivals != exchange.lanes) {
        return false;
    }
    Fiber* lanes = fibers_ + warp * WARP_LANES;
    std::uint64_t received[WARP_LANES];
    for (unsigned lane = 0; lane < WARP_LANES; lane++) {
        if ((exchange.mask >> lane & 1u) != 0) {
            const unsigned source = lanes[lane].sourceLane;
            if ((exchange.mask >> source & 1u) == 0) {
                failure_ = at(warp * WARP_LANES + lane) + "a warp shuffle reads lane " + std::to_string(source) +
                           ", which is not in its mask " + hex(exchange.mask);
                return false;
            }
            received[lane] = lanes[source].exchangeValue;
        }
    }
    for (unsigned lane = 0; lane < WARP_LANES; lane++) {
        if ((exchange.mask >> lane & 1u) != 0) {
            lanes[lane].exchangeValue = received[lane];
            lanes[lane].wait = Wait::NOTHING;
        }
    }
    exchange.arrivals = 0;
    return true;
}

/** Runs the warp's runnable lanes in order, again each time they complete a shuffle. */
void BlockRunner::runWarp(unsigned warp) {
    const unsigned first = warp * WARP_LANES;
    const unsigned end = std::min(first + WARP_LANES, threadCount_);
    do {
        for (unsigned t = first; t < end; t++) {
            if (fibers_[t].wait == Wait::NOTHING) {
                resume(t);
                if (!failure_.empty()) {
                    return;
                }
            }
        }
    } while (completeExchange(warp));
}

/** Runs one block to its end, or until failure_ is set (a fault or a deadlock). */
void BlockRunner::runBlock(uint3 blockIndex) {
    blockIndex_ = blockIndex;
    coordinates_->blockIndex = blockIndex;
    for (unsigned t = 0; t < threadCount_; t++) {
        prepareFiber(t);
    }
    const unsigned warpCount = (threadCount_ + WARP_LANES - 1) / WARP_LANES;
    for (unsigned w = 0; w < warpCount; w++) {
        warps_[w] = WarpExchange{};
    }
    exited_ = 0;
    atBlockBarrier_ = 0;
    for (;;) {
        for (unsigned w = 0; w < warpCount && failure_.empty(); w++) {
            runWarp(w);
        }
        if (!failure_.empty() || exited_ == threadCount_) {
            return;
        }
        if (atBlockBarrier_ != threadCount_) {
            failure_ = describeDeadlock();
            return;
        }
        for (unsigned t = 0; t < threadCount_; t++) {
            fibers_[t].wait = Wait::NOTHING;
        }
        atBlockBarrier_ = 0;
    }
}

/** Every fiber waits or has exited, and no barrier can complete: names a waiting thread and one it waits for. */
std::string BlockRunner::describeDeadlock() const {
    const std::string where = "kernel " + std::string(kernel_->name) + ", block " + describe(blockIndex_, grid_) +
                              ": deadlock: ";
    auto state = [&](unsigned t) {
        return fibers_[t].wait == Wait::EXITED ? thread(t) + " has returned"
                                               : thread(t) + " waits at a warp shuffle";
    };
    if (atBlockBarrier_ > 0) {
        unsigned waiting = 0;
        while (fibers_[waiting].wait != Wait::BLOCK_BARRIER) {
            waiting++;
        }
        unsigned missing = 0;
        while (fibers_[missing].wait == Wait::BLOCK_BARRIER) {
            missing++;
        }
        return where + thread(waiting) + " waits at __syncthreads, but " + state(missing) +
               " (every thread of a block must reach each __syncthreads)";
    }
    unsigned waiting = 0;
    while (fibers_[waiting].wait != Wait::WARP_EXCHANGE) {
        waiting++;
    }
    const unsigned first = waiting / WARP_LANES * WARP_LANES;
    const unsigned mask = warps_[waiting / WARP_LANES].mask;
    unsigned missing = first;
    while ((mask >> (missing - first) & 1u) == 0 || fibers_[missing].wait == Wait::WARP_EXCHANGE) {
        missing++;
    }
    return where + thread(waiting) + " waits at a warp shuffle with mask " + hex(mask) + ", but " + state(missing) +
           " (every lane of the mask must reach the shuffle)";
}

/** Runs a valid launch (runKernel checked it): every block in order, until the end or the first failure. */
std::string BlockRunner::run(const KernelEntry& kernel, Dim3 grid, Dim3 block, void** params) {
    if (stacks_ == nullptr) {
        if (std::string failure = allocateStacks(); !failure.empty()) {
            return "kernel " + std::string(kernel.name) + ": " + failure;
        }
    }
    kernel_ = &kernel;
    params_ = params;
    grid_ = grid;
    block_ = block;
    threadCount_ = block.x * block.y * block.z;
    coordinates_ = &device::current;
    coordinates_->blockSize = dim3{block.x, block.y, block.z};
    coordinates_->gridSize = dim3{grid.x, grid.y, grid.z};
    // Threads are numbered x fastest, as CUDA numbers them for warps.
    for (unsigned t = 0; t < threadCount_; t++) {
        fibers_[t].index = uint3{t % block.x, t / block.x % block.y, t / (block.x * block.y)};
    }

    runningBlock = this;
    failure_.clear();
    // Blocks in x-fastest order, but starting from the middle block and wrapping around: a GPU runs them in
    // no given order, and code that assumes the highest block runs (or finishes) last would pass if it did.
    const unsigned long long blocks = static_cast<unsigned long long>(grid.x) * grid.y * grid.z;
    for (unsigned long long k = 0; k < blocks && failure_.empty(); k++) {
        const unsigned long long b = (k + blocks / 2) % blocks;
        runBlock(uint3{static_cast<unsigned>(b % grid.x), static_cast<unsigned>(b / grid.x % grid.y),
                       static_cast<unsigned>(b / (static_cast<unsigned long long>(grid.x) * grid.y))});
    }
    runningBlock = nullptr;
    return failure_;
}

} // namespace

namespace device {

void syncThreads() { runningBlock->syncThreads(); }

std::uint64_t exchangeInWarp(unsigned mask, std::uint64_t value, unsigned sourceLane) {
    return runningBlock->exchangeInWarp(mask, value, sourceLane);
}

} // namespace device

std::string runKernel(const KernelEntry& kernel, Dim3 grid, Dim3 block, unsigned dynamicSharedBytes, void** params) {
    auto refused = [&](const std::string& why) { return "kernel " + std::string(kernel.name) + ": " + why; };
    if (dynamicSharedBytes > 0) {
        return refused("dynamic shared memory (" + std::to_string(dynamicSharedBytes) + " bytes) is not emulated");
    }
    const unsigned long long threads = 1ull * block.x * block.y * block.z;
    if (threads == 0 || threads > MAX_BLOCK_THREADS || block.x > 1024 || block.y > 1024 || block.z > 64) {
        return refused("block (" + std::to_string(block.x) + ", " + std::to_string(block.y) + ", " +
                       std::to_string(block.z) + ") is not a valid CUDA block (1 to 1024 threads, z at most 64)");
    }
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535) {
        return refused("grid (" + std::to_string(grid.x) + ", " + std::to_string(grid.y) + ", " +
                       std::to_string(grid.z) + ") is not a valid CUDA grid (x 1 to 2^31 - 1, y and z 1 to 65535)");
    }
    if (kernel.arity > 0 && params == nullptr) {
        return refused("no parameters given for its " + std::to_string(kernel.arity));
    }
    if (runningBlock != nullptr) {
        return refused("launched from inside a kernel, which the emulator does not support");
    }
    if (!runnerOfThisThread) {
        runnerOfThisThread = std::make_unique<BlockRunner>();
    }
    return runnerOfThisThread->run(kernel, grid, block, params);
}

// ---- the registry's lookups ------------------------------------------------------------------------

const KernelEntry* findKernel(const char* name) {
    for (std::size_t f = 0; f < detail::kernelFamilyCount; f++) {
        const KernelFamily& family = *detail::kernelFamilies[f];
        for (std::size_t k = 0; k < family.count; k++) {
            if (std::strcmp(family.kernels[k].name, name) == 0) {
                return &family.kernels[k];
            }
        }
    }
    return nullptr;
}

std::size_t kernelCount() {
    std::size_t count = 0;
    for (std::size_t f = 0; f < detail::kernelFamilyCount; f++) {
        count += detail::kernelFamilies[f]->count;
    }
    return count;
}

const KernelEntry& kernelAt(std::size_t i) {
    for (std::size_t f = 0; f < detail::kernelFamilyCount; f++) {
        const KernelFamily& family = *detail::kernelFamilies[f];
        if (i < family.count) {
            return family.kernels[i];
        }
        i -= family.count;
    }
    std::abort(); // i >= kernelCount(): a caller's bug, with no entry to return
}

} // namespace gsemu
