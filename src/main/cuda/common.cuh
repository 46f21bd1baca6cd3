// Helpers shared by every kernel file: grid-stride loops, 16-byte vector access, and the two
// deterministic reductions (a warp's 32 lanes, and one block's fixed 1024 slots).
//
// Everything here is in namespace gs. Kernels are extern "C" (their PTX names are the ABI of
// /work/stage/cuda-abi.md, condensed in src/main/cuda/README.md).
#pragma once

#include <cstdint>

namespace gs {

/**
 * On every kernel launched with blocks of 1024 threads (block reductions, measured optimizer steps, column
 * tiles, the losses): at most 64 registers per thread, as 1024 threads on a multiprocessor's 65536 allow,
 * whatever the driver's JIT would choose for the GPU at hand (build-ptx checks sm_90 as well). One resident
 * block per multiprocessor is asked for: with the bound alone, ptxas for sm_90 aimed at two, cut these
 * kernels to 32 registers and spilled.
 */
#define GS_BLOCKS_OF_1024 __launch_bounds__(1024, 1)

constexpr unsigned FULL_WARP = 0xffffffffu;
constexpr unsigned WARP_SIZE = 32;

// ---- grid-stride loops ------------------------------------------------------------------------
//
// Indices are unsigned 32-bit: counts are ints below 2^31, so i + stride never wraps (a signed int
// could overflow on the last step of a tensor close to 2^31 elements).

__device__ __forceinline__ unsigned threadIndex() { return blockIdx.x * blockDim.x + threadIdx.x; }

__device__ __forceinline__ unsigned threadCount() { return gridDim.x * blockDim.x; }

/** An int count as a loop bound: a negative count means no elements. */
__device__ __forceinline__ unsigned countOf(int n) { return n > 0 ? static_cast<unsigned>(n) : 0u; }

/** The warp of this thread among all warps of the grid (the block size must be a multiple of 32). */
__device__ __forceinline__ unsigned warpIndex() { return threadIndex() / WARP_SIZE; }

__device__ __forceinline__ unsigned warpCount() { return threadCount() / WARP_SIZE; }

__device__ __forceinline__ unsigned laneIndex() { return threadIdx.x % WARP_SIZE; }

// ---- 16-byte vector access --------------------------------------------------------------------

/** Whether every pointer is 16-byte aligned (a null pointer counts as aligned). */
template <class... T>
__device__ __forceinline__ bool allAligned16(const T*... pointers) {
    return ((reinterpret_cast<std::uintptr_t>(pointers) | ... | std::uintptr_t{0}) & 15u) == 0;
}

/** Group k (elements 4k .. 4k+3) of an array that this kernel only reads: the read-only cache. */
__device__ __forceinline__ float4 load4ReadOnly(const float* p, unsigned k) {
    return __ldg(reinterpret_cast<const float4*>(p) + k);
}

/** Group k of an array that this kernel also writes (so not through the non-coherent cache). */
__device__ __forceinline__ float4 load4(const float* p, unsigned k) {
    return reinterpret_cast<const float4*>(p)[k];
}

__device__ __forceinline__ void store4(float* p, unsigned k, float4 v) {
    reinterpret_cast<float4*>(p)[k] = v;
}

/** Lane l (0..3) of a float4; used in fully unrolled loops, so l is a constant and this a register. */
__device__ __forceinline__ float& lane(float4& v, int l) {
    return l == 0 ? v.x : l == 1 ? v.y : l == 2 ? v.z : v.w;
}

__device__ __forceinline__ float lane(const float4& v, int l) {
    return l == 0 ? v.x : l == 1 ? v.y : l == 2 ? v.z : v.w;
}

/**
 * body(l, j) for the four lanes l of float4 group k (elements 4k .. 4k+3) of a row-major matrix of `columns`
 * columns, j being lane l's column: the group's first column, 4k % columns, and the next ones, wrapping at columns
 * (which may be below 4). For element-wise kernels with per-column parameters: a group may straddle rows.
 */
template <class Body>
__device__ __forceinline__ void forEachColumnOfGroup(unsigned k, unsigned columns, Body body) {
    unsigned j = (4u * k) % columns; // 4k < n < 2^31: no wrap
#pragma unroll
    for (int l = 0; l < 4; l++) {
        body(l, j);
        j = j + 1 == columns ? 0u : j + 1;
    }
}

/**
 * Runs an element-wise body over [0, n) with a grid-stride loop: vectorBody(k) for every 4-element
 * group k when `aligned` (the caller checked that all its pointers are 16-byte aligned), then
 * scalarBody(i) for the n % 4 elements left; scalarBody(i) for every element otherwise. `aligned`
 * must be the same in every thread, so the branch does not diverge.
 */
template <class VectorBody, class ScalarBody>
__device__ __forceinline__ void forEachElement(unsigned n, bool aligned, VectorBody vectorBody,
                                               ScalarBody scalarBody) {
    const unsigned start = threadIndex();
    const unsigned stride = threadCount();
    if (aligned) {
        const unsigned groups = n / 4;
        for (unsigned k = start; k < groups; k += stride) {
            vectorBody(k);
        }
        const unsigned tail = 4 * groups + start; // at most 3 elements, one per thread
        if (tail < n) {
            scalarBody(tail);
        }
    } else {
        for (unsigned i = start; i < n; i += stride) {
            scalarBody(i);
        }
    }
}

/** t[i] = f(t[i]) for every element of t, in place; float4 groups when t is 16-byte aligned. */
template <class F>
__device__ __forceinline__ void transformInPlace(float* __restrict__ t, unsigned n, F f) {
    forEachElement(
        n, allAligned16(t),
        [&](unsigned k) {
            float4 v = load4(t, k);
#pragma unroll
            for (int l = 0; l < 4; l++) {
                lane(v, l) = f(lane(v, l));
            }
            store4(t, k, v);
        },
        [&](unsigned i) { t[i] = f(t[i]); });
}

// ---- warp reductions (deterministic: fixed xor butterfly, every lane gets the same bits) ----------
//
// Every double addition of the reductions here is __dadd_rn (PTX add.rn.f64): a plain addition after a
// multiplication (a caller's term, inlined) may be fused into one FMA, by nvcc or at the driver's JIT's choice,
// which would make a sum's bits depend on the compiler and driver at hand; add.rn is never fused.

__device__ __forceinline__ double warpSum(double v) {
    for (unsigned offset = WARP_SIZE / 2; offset > 0; offset /= 2) {
        v = __dadd_rn(v, __shfl_xor_sync(FULL_WARP, v, offset));
    }
    return v;
}

/** max that propagates NaN, as Java's Math.max (CUDA's fmaxf returns the other operand instead). */
__device__ __forceinline__ float maxPropagatingNaN(float a, float b) {
    return (b > a || isnan(b)) && !isnan(a) ? b : a;
}

__device__ __forceinline__ float warpMaxPropagatingNaN(float v) {
    for (unsigned offset = WARP_SIZE / 2; offset > 0; offset /= 2) {
        v = maxPropagatingNaN(v, __shfl_xor_sync(FULL_WARP, v, offset));
    }
    return v;
}

/**
 * The index of the first largest element of row[0, cols), exactly as the CPU's sequential
 * `best = 0; for c: if (row[c] > row[best]) best = c`: NaN elements never win, ties go to the
 * lower index, and when row[0] is NaN (nothing compares greater than it) or every element is NaN
 * the answer is 0. Called by all 32 lanes of a warp; every lane gets the answer.
 */
__device__ __forceinline__ int warpFirstArgMax(const float* row, int cols, unsigned lane) {
    float bestValue = 0.0f;
    int best = -1; // -1: this lane has seen no non-NaN element yet
    for (int c = static_cast<int>(lane); c < cols; c += WARP_SIZE) {
        const float v = row[c];
        if (!isnan(v) && (best < 0 || v > bestValue)) {
            bestValue = v;
            best = c;
        }
    }
    for (unsigned offset = WARP_SIZE / 2; offset > 0; offset /= 2) {
        const float otherValue = __shfl_xor_sync(FULL_WARP, bestValue, offset);
        const int other = __shfl_xor_sync(FULL_WARP, best, offset);
        // Symmetric in its two operands, so both lanes of a pair keep the same winner.
        if (other >= 0 && (best < 0 || otherValue > bestValue || (otherValue == bestValue && other < best))) {
            bestValue = otherValue;
            best = other;
        }
    }
    return (best < 0 || isnan(row[0])) ? 0 : best;
}

/** Max and sum of exponentials of one row, as the CPU's softmaxRow computes them (in double). */
struct RowSoftmax {
    double max; // the row's max, NaN when any element is NaN (as Java's Math.max)
    double sum; // sum_c exp(row[c] - max)

    /** exp(row[c] - max) / sum: the softmax probability of class c, in double as on the CPU. */
    __device__ __forceinline__ double probability(float x) const {
        return exp(__dsub_rn(static_cast<double>(x), max)) / sum;
    }
};

/** Called by all 32 lanes of a warp for one row; every lane gets the same result. */
__device__ __forceinline__ RowSoftmax warpRowSoftmax(const float* row, int cols, unsigned lane) {
    float max = -INFINITY;
    for (int c = static_cast<int>(lane); c < cols; c += WARP_SIZE) {
        max = maxPropagatingNaN(max, row[c]);
    }
    RowSoftmax s;
    s.max = warpMaxPropagatingNaN(max);
    double sum = 0.0;
    for (int c = static_cast<int>(lane); c < cols; c += WARP_SIZE) {
        sum = __dadd_rn(sum, exp(__dsub_rn(static_cast<double>(row[c]), s.max)));
    }
    s.sum = warpSum(sum);
    return s;
}

// ---- block reduction over a fixed 1024 slots ----------------------------------------------------
//
// A sum over one block is split into REDUCTION_SLOTS slots; slot s holds the sum of elements
// s, s + 1024, s + 2048, ... in order (the caller's slotSum(s)), and the 1024 slot sums are added
// by a fixed binary tree: slot s += slot s + width for width 512, 256, ..., 1. The order of every
// addition is fixed by the data size alone, so the result is the same bits on every run, for any
// block size that is a multiple of 32 (1024 is the launch the ABI fixes: one slot per thread,
// coalesced reads). Accumulation is in double, as on the CPU. Several sums (Sums<N>) can share one
// tree: one barrier per level for all of them.

constexpr unsigned REDUCTION_SLOTS = 1024;

/** N sums carried together through one block reduction. */
template <unsigned N>
struct Sums {
    double value[N];
};

/**
 * The block-wide sums of slotSums(0) .. slotSums(1023) (each a Sums<N>), returned to every thread of the
 * block. The tree's levels down to width 32 add in shared memory, one barrier each; the last five, within
 * warp 0, by warpSum, whose lane 0 makes the same additions in the same order (lane s ^ width is lane
 * s + width for s < width): the bits of the whole tree in shared memory, with 7 barriers instead of 12.
 * All threads of the block must call it (it synchronises the block); it may be called repeatedly.
 */
template <unsigned N, class SlotSums>
__device__ Sums<N> blockSumsOfSlots(SlotSums slotSums) {
    __shared__ double partial[N][REDUCTION_SLOTS];
    __shared__ double total[N]; // apart from partial: a next call can fill partial while this one's is read
    for (unsigned s = threadIdx.x; s < REDUCTION_SLOTS; s += blockDim.x) {
        const Sums<N> sums = slotSums(s);
        for (unsigned i = 0; i < N; i++) {
            partial[i][s] = sums.value[i];
        }
    }
    __syncthreads();
    for (unsigned width = REDUCTION_SLOTS / 2; width >= WARP_SIZE; width /= 2) {
        for (unsigned s = threadIdx.x; s < width; s += blockDim.x) {
            for (unsigned i = 0; i < N; i++) {
                partial[i][s] = __dadd_rn(partial[i][s], partial[i][s + width]);
            }
        }
        __syncthreads();
    }
    if (threadIdx.x < WARP_SIZE) {
        for (unsigned i = 0; i < N; i++) {
            const double sum = warpSum(partial[i][threadIdx.x]);
            if (threadIdx.x == 0) {
                total[i] = sum;
            }
        }
    }
    __syncthreads();
    Sums<N> sums;
    for (unsigned i = 0; i < N; i++) {
        sums.value[i] = total[i];
    }
    return sums;
}

/** The block-wide sum of slotSum(0) .. slotSum(1023): blockSumsOfSlots of one sum. */
template <class SlotSum>
__device__ double blockSumOfSlots(SlotSum slotSum) {
    return blockSumsOfSlots<1>([&](unsigned s) { return Sums<1>{{slotSum(s)}}; }).value[0];
}

// ---- column reductions over tiles of 32 columns x 32 row groups ----------------------------------
//
// A per-column reduction of a [rows, cols] matrix (column sums, the bias gradient, per-unit
// statistics): a block takes a tile of 32 columns; row group g (0 <= g < 32) of column tile * 32 + lane
// adds rows g, g + 32, g + 64, ... in order, so a warp reads 32 consecutive floats of one row (128
// bytes); then the 32 partials of each column are added by a fixed tree in shared memory (group g +=
// g + 16, then + 8, + 4, + 2, + 1). Warp w of the block takes groups w, w + warps, ...: with the launches'
// 1024 threads, one group each, so a 256 x 512 batch gets 16,384 threads, each adding 8 rows; a smaller
// block (the loss's last block, 256 threads) takes several groups per warp and gets the same bits. The
// order is fixed by the shape alone: the same bits on every run, for any block size that is a multiple
// of 32. Blocks stride over tiles when the grid is smaller than the tile count.

constexpr unsigned TILE_COLUMNS = 32;
constexpr unsigned TILE_ROW_GROUPS = 32;

/** Tiles of 32 columns in `cols` columns (the last one partial). */
__device__ __forceinline__ unsigned tileCount(int cols) { return (countOf(cols) + TILE_COLUMNS - 1) / TILE_COLUMNS; }

/**
 * Runs a per-column reduction of one tile of 32 columns over the rows [rowBegin, rowEnd): row group g (0 <= g
 * < 32) adds rows rowBegin + g, rowBegin + g + 32, ... in order, then the 32 partials of each column are added by
 * the fixed tree. Partial is a plain struct (no constructors: it lives in shared memory) whose zero value is the
 * empty reduction, with a member combine(const Partial&) that adds another partial into it. addElement(partial,
 * e, j) adds element e = i * cols + j (row i, column j) to a row group's partial; finish(total, j) consumes column
 * j's reduction (called by warp 0, one lane per column). All threads of the block (a multiple of 32) must call it
 * (it synchronises the block, and once more after finish: finish may write shared memory that every thread reads
 * next). The order depends on the row range and the shape alone.
 */
template <class Partial, class AddElement, class Finish>
__device__ __forceinline__ void reduceColumnTileRows(unsigned rowBegin, unsigned rowEnd, int cols, unsigned tile,
                                                     AddElement addElement, Finish finish) {
    __shared__ Partial partial[TILE_ROW_GROUPS][TILE_COLUMNS];
    const unsigned lane = threadIdx.x % TILE_COLUMNS;
    const unsigned warp = threadIdx.x / TILE_COLUMNS;
    const unsigned warps = blockDim.x / TILE_COLUMNS;
    const unsigned columns = countOf(cols);
    const unsigned j = tile * TILE_COLUMNS + lane;
    for (unsigned group = warp; group < TILE_ROW_GROUPS; group += warps) {
        Partial mine{};
        if (j < columns) {
#pragma unroll 4 // issues several rows' loads together; the additions stay in row order
            for (unsigned i = rowBegin + group; i < rowEnd; i += TILE_ROW_GROUPS) {
                addElement(mine, i * columns + j, j); // rows * cols < 2^31: no wrap
            }
        }
        partial[group][lane] = mine;
    }
    __syncthreads();
    for (unsigned width = TILE_ROW_GROUPS / 2; width > 0; width /= 2) {
        for (unsigned group = warp; group < width; group += warps) {
            partial[group][lane].combine(partial[group + width][lane]);
        }
        __syncthreads();
    }
    if (warp == 0 && j < columns) {
        finish(partial[0][lane], j);
    }
    __syncthreads(); // every total is read, and what finish wrote is visible, before the partials are reused
}

/**
 * Runs a per-column reduction over tiles of 32 columns, each over all rows (reduceColumnTileRows over [0, rows)):
 * the same Partial, addElement and finish. All threads of the block (a multiple of 32) must call it. The blocks
 * of the grid share the tiles (firstTile, tileStride: blockIdx.x, gridDim.x); one block alone takes all of them
 * with 0, 1.
 */
template <class Partial, class AddElement, class Finish>
__device__ __forceinline__ void reduceColumnTiles(int rows, int cols, AddElement addElement, Finish finish,
                                                  unsigned firstTile = blockIdx.x, unsigned tileStride = gridDim.x) {
    const unsigned tiles = tileCount(cols);
    for (unsigned tile = firstTile; tile < tiles; tile += tileStride) {
        reduceColumnTileRows<Partial>(0u, countOf(rows), cols, tile, addElement, finish);
    }
}

/** A sum in double: the Partial of reduceColumnTiles for column sums. */
struct DoubleSum {
    double sum;

    __device__ __forceinline__ void combine(const DoubleSum& other) { sum = __dadd_rn(sum, other.sum); }
};

/**
 * The block-wide sums of terms(k) (a Sums<N>) for k in [begin, end): slot s adds k = begin + s,
 * begin + s + 1024, ... in order, and the slots are added by blockSumsOfSlots' fixed tree. terms(k) returns
 * the k-th terms in double (it may also update element k: each k is visited once, by one thread).
 */
template <unsigned N, class Terms>
__device__ Sums<N> blockSumsOfRange(unsigned begin, unsigned end, Terms terms) {
    return blockSumsOfSlots<N>([&](unsigned slot) {
        Sums<N> sums{};
        for (unsigned k = begin + slot; k < end; k += REDUCTION_SLOTS) { // k < 2^31 + 1024: no wrap
            const Sums<N> t = terms(k);
            for (unsigned i = 0; i < N; i++) {
                sums.value[i] = __dadd_rn(sums.value[i], t.value[i]);
            }
        }
        return sums;
    });
}

/** The block-wide sum of term(k) for k in [begin, end): blockSumsOfRange of one sum. */
template <class Term>
__device__ double blockSumOfRange(unsigned begin, unsigned end, Term term) {
    return blockSumsOfRange<1>(begin, end, [&](unsigned k) { return Sums<1>{{term(k)}}; }).value[0];
}

// ---- the grid's last block ------------------------------------------------------------------------
//
// A reduction whose parts are written by many blocks is finished, in the same launch, by the block
// that finishes last: each block writes its part, makes it visible device-wide (__threadfence) and takes
// a ticket (an atomic add on a counter); the block that takes the last ticket knows every part is written
// and adds them, in a fixed order that does not depend on which block it is. One launch instead of a
// second kernel that waits for the first, and the same bits on every run.

/**
 * Whether this block is the last of the grid to call this (every block calls it once, all its threads,
 * after writing its part; it synchronises the block). ticket is a device counter that is 0 when the launch
 * starts; the last block sets it back to 0 for the next launch. The last block must read the other
 * blocks' parts with loadCoherent.
 */
__device__ __forceinline__ bool isLastBlockToFinish(unsigned* ticket) {
    __shared__ bool last;
    __syncthreads(); // every thread of this block has written its part
    if (threadIdx.x == 0) {
        __threadfence(); // ... and the writes are visible to every block before the ticket is taken
        const unsigned taken = atomicAdd(ticket, 1u);
        last = taken == gridDim.x - 1;
        if (last) {
            __threadfence(); // and the other blocks' parts are read after their tickets (acquire)
            *ticket = 0u;    // every block has taken its ticket
        }
    }
    __syncthreads();
    return last;
}

/** A load of what another block wrote in this launch: from L2, never a stale L1 line. */
template <class T>
__device__ __forceinline__ T loadCoherent(const T* p) {
    return __ldcg(p);
}

/** One table of a chunked segmented reduction: partials [chunks, segments] and the totals [segments]. */
struct PartialTable {
    const double* partials; // NULL: a table not measured this time, skipped
    float* out;
};

/**
 * The end of a chunked segmented reduction, in the last block, for each table at once: out[s] = (float) the
 * sum over chunks c of partials[c * segments + s]. One warp per (table, segment), so that the warps one
 * table's segments leave idle take the next table's: lane l adds chunks l, l + 32, ... in order, then the
 * warp's fixed butterfly adds the lanes; so the order depends on the chunk count alone. Called by every
 * thread of the block (the block size a multiple of 32).
 */
template <unsigned N>
__device__ __forceinline__ void totalSegmentPartials(const PartialTable (&tables)[N], unsigned chunks,
                                                     unsigned segments) {
    const unsigned warp = threadIdx.x / WARP_SIZE;
    const unsigned warps = blockDim.x / WARP_SIZE;
    for (unsigned job = warp; job < N * segments; job += warps) {
        const PartialTable& table = tables[job / segments];
        const unsigned s = job % segments;
        if (table.partials == nullptr) {
            continue; // the same for every lane of the warp
        }
        double sum = 0.0;
        for (unsigned c = laneIndex(); c < chunks; c += WARP_SIZE) {
            sum = __dadd_rn(sum, loadCoherent(table.partials + static_cast<size_t>(c) * segments + s));
        }
        sum = warpSum(sum);
        if (laneIndex() == 0) {
            table.out[s] = static_cast<float>(sum);
        }
    }
}

/** totalSegmentPartials of one table. */
__device__ __forceinline__ void totalSegmentPartials(const double* __restrict__ partials, unsigned chunks,
                                                     unsigned segments, float* __restrict__ out) {
    const PartialTable table[1] = {{partials, out}};
    totalSegmentPartials(table, chunks, segments);
}

/**
 * The chunks of a chunked segmented reduction (totalSegmentPartials, in the grid's last block, adds
 * them up): the flat buffer of n elements is cut into chunks of `chunk` elements, one block per chunk (blocks stride over chunks), so a
 * large segment is reduced by many blocks instead of one. For chunk c and every segment s, visit(c, s,
 * begin, end) gets the segment's overlap [begin, end) with the chunk and writes the partial for (c, s);
 * an empty overlap has begin >= end. The calls are uniform across the block (visit may use
 * blockSumOfRange). The chunk size is fixed by the caller, so the order of every addition is fixed by
 * the shapes: deterministic.
 */
/** Chunks of `chunk` elements in n elements (none when chunk is 0). */
__device__ __forceinline__ unsigned chunkCount(unsigned n, unsigned chunk) {
    return chunk == 0 ? 0u : (n + chunk - 1) / chunk;
}

template <class Visit>
__device__ __forceinline__ void forEachSegmentOfChunk(const int* __restrict__ segmentStarts, int segments,
                                                      unsigned chunk, unsigned n, Visit visit) {
    const unsigned chunks = chunkCount(n, chunk);
    for (unsigned c = blockIdx.x; c < chunks; c += gridDim.x) {
        const unsigned lo = c * chunk;
        const unsigned hi = min(lo + chunk, n);
        for (unsigned s = 0; s < countOf(segments); s++) {
            const unsigned begin = max(lo, countOf(segmentStarts[s]));
            const unsigned end = min(hi, countOf(segmentStarts[s + 1]));
            visit(c, s, begin, end);
        }
    }
}

/** The sum over [begin, end) of term(k) by blockSumOfRange, or 0 without a barrier when the range is empty. */
template <class Term>
__device__ __forceinline__ double blockSumOfOverlap(unsigned begin, unsigned end, Term term) {
    return begin < end ? blockSumOfRange(begin, end, term) : 0.0; // begin, end are the block's own: uniform
}

/** blockSumOfOverlap of N sums at once (blockSumsOfRange), or zeros without a barrier for an empty range. */
template <unsigned N, class Terms>
__device__ __forceinline__ Sums<N> blockSumsOfOverlap(unsigned begin, unsigned end, Terms terms) {
    return begin < end ? blockSumsOfRange<N>(begin, end, terms) : Sums<N>{};
}

} // namespace gs
