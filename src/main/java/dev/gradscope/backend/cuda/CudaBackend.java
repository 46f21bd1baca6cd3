package dev.gradscope.backend.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRelease;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRetain;
import static jcuda.driver.JCudaDriver.cuDriverGetVersion;
import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventElapsedTime;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuGraphDestroy;
import static jcuda.driver.JCudaDriver.cuGraphExecDestroy;
import static jcuda.driver.JCudaDriver.cuGraphInstantiate;
import static jcuda.driver.JCudaDriver.cuGraphLaunch;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoDAsync;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuMemsetD8Async;
import static jcuda.driver.JCudaDriver.cuStreamBeginCapture;
import static jcuda.driver.JCudaDriver.cuStreamCreate;
import static jcuda.driver.JCudaDriver.cuStreamDestroy;
import static jcuda.driver.JCudaDriver.cuStreamEndCapture;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;
import static jcuda.driver.JCudaDriver.cuStreamWaitEvent;

import dev.gradscope.tensor.ActivationKind;
import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.DropoutMask;
import dev.gradscope.tensor.GradientNorms;
import dev.gradscope.tensor.OpChecks;
import dev.gradscope.tensor.Shapes;
import dev.gradscope.tensor.StepEnd;
import dev.gradscope.tensor.StepSchedule;
import dev.gradscope.tensor.StepGraph;
import dev.gradscope.tensor.Tensor;
import dev.gradscope.tensor.UpdateNorms;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUfunction;
import jcuda.driver.CUgraph;
import jcuda.driver.CUgraphExec;
import jcuda.driver.CUstream;
import jcuda.driver.CUstreamCaptureMode;
import jcuda.driver.CUstream_flags;

/**
 * The GPU backend: every {@link Backend} op as a CUDA kernel from {@code src/main/cuda} (loaded as PTX
 * through JCuda's driver API) or a cuBLAS call, with the semantics of {@code CpuBackend}, the
 * reference, down to its argument checks and error messages (the shared ones are {@link OpChecks}).
 *
 * <p>One backend owns, and {@link #close()} releases in reverse order: the device's primary context
 * (retained, made current), two streams, a {@link DeviceArena} from which every tensor, the cuBLAS
 * workspaces and the loss scratch rows are cut, the PTX modules ({@link Kernels}) and a cuBLAS handle
 * per stream ({@link Cublas}).
 *
 * <p>Execution. Every kernel, every device-to-device copy and every cuBLAS call goes on the main
 * stream, in program order, and returns at once; except the work queued {@link #aside}, which goes on
 * the side stream after an event of the main stream, and which the main stream waits for at
 * {@link #joinAside} (the layers' weight-gradient GEMMs, which the rest of the backward pass runs beside, and
 * the next batch's fetch, beside the optimizer). Only {@link #toHostFloats}, {@link #toHostInts} and
 * {@link #synchronize()} wait, for both streams. Copies from Java arrays ({@code fromHost},
 * {@code copyFromHost}) are synchronous {@code cuMemcpyHtoD}: the garbage collector may move a Java
 * array, so it cannot be the source of an asynchronous copy; the stream is created as a blocking stream
 * ({@code CU_STREAM_DEFAULT}), which orders those copies with the stream's work on both sides. No op
 * allocates device memory in steady state: the loss's per-row scratch grows only when a larger batch
 * first appears, and tensors come from the arena's free lists.
 *
 * <p>Differences from the CPU reference, all deliberate: the indices of {@link #gatherRows} and the
 * segment starts of {@link #segmentSumOfSquares} and of the optimizer's update norms live on the
 * device and are not read back to be checked
 * (that would stop the stream inside every step); and {@link #copy} refuses partially overlapping views
 * of one storage, which {@code cuMemcpy} does not support.
 *
 * <p>Graphs. {@link #capture} records a step's ops into a CUDA graph by stream capture on the one stream;
 * {@link StepGraph#launch} replays them with one {@code cuGraphLaunch}. While a step is captured, an op
 * that would allocate, copy to or from the host, or wait fails at once with a {@link CudaException}
 * naming it ({@code CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED}), and the capture is ended; the step must be
 * run once before (the loss scratch and the arena's blocks exist then, the cuBLAS workspace from the start).
 *
 * <p>Errors. A failing CUDA or cuBLAS call throws {@link CudaException}, naming the op, its operands'
 * shapes and the CUDA error. Kernel faults surface at the next wait; set the system property
 * {@code gradscope.cuda.syncEachOp=true} to wait after every op and pin such a fault to its op.
 *
 * <p>Not thread-safe, like the other backends: one thread drives a backend at a time (any thread: the
 * context is made current on entry to every op).
 */
public final class CudaBackend implements Backend {
    /** Wait after every op, so that a kernel fault is reported by the op that caused it (slow; debugging). */
    private static final boolean SYNC_EACH_OP = Boolean.getBoolean("gradscope.cuda.syncEachOp");

    /**
     * With {@code gradscope.cuda.aside=false}, {@link #aside} runs its work in line on the main stream: to
     * measure what the side stream saves (the same ops, the same bits).
     */
    private static final boolean SIDE_STREAM = !"false".equals(System.getProperty("gradscope.cuda.aside"));

    private static final CUdeviceptr NULL = new CUdeviceptr();

    private final CUdevice device = new CUdevice();
    private final CUcontext context = new CUcontext();
    private final CUstream stream = new CUstream();
    private boolean contextRetained;
    private boolean streamCreated;

    /**
     * The second stream, for work queued {@link #aside}: it waits for the main stream at each fork
     * ({@link #forked}) and the main stream waits for it at each join ({@link #joined}). Its GEMMs use a
     * cuBLAS handle and workspace of their own: two streams must not share a workspace.
     */
    private final CUstream sideStream = new CUstream();
    private boolean sideStreamCreated;
    private final CUevent forked = new CUevent();
    private final CUevent joined = new CUevent();
    private boolean eventsCreated;
    private DeviceArena.Block sideCublasWorkspace;
    private Cublas sideCublas;

    /** The stream ops are queued on: {@link #stream}, or {@link #sideStream} while work is queued aside. */
    private CUstream current = stream;

    /** Whether work was queued aside since the last join. */
    private boolean asidePending;
    private DeviceInfo info;
    private String driverVersion;
    private DeviceArena arena;
    private Kernels kernels;
    private DeviceArena.Block cublasWorkspace;
    private Cublas cublas;

    /** Per-row loss and correctness of the last fused loss, summed deterministically into the totals. */
    private DeviceArena.Block rowLoss;
    private DeviceArena.Block rowCorrect;
    private int lossRowCapacity;

    /**
     * Per-chunk partial sums of the chunked segmented reductions (each block writes its chunk's, the grid's
     * last block adds them): three tables of chunks x segments doubles ({@link #PARTIAL_TABLES}), grown when a
     * larger reduction arrives.
     */
    private DeviceArena.Block partials;
    private long partialsCapacity;

    /**
     * The counters with which the blocks of a reduction find the last of them to finish (common.cuh,
     * isLastBlockToFinish), one per stream ({@link #ticket()}): 0 between launches, which run one after
     * another on a stream; the two streams' kernels may run at the same time, so they never share one.
     */
    private DeviceArena.Block tickets;

    /**
     * Counts the reallocations of the scratch the kernels write (the loss rows, the partial sums): a graph
     * captured before one writes freed memory, so it refuses to launch.
     */
    private long scratchGeneration;

    /** Whether cuBLAS may use TF32 ({@link #setTf32}). */
    private boolean tf32;

    /** The last op queued on the stream: named when a later wait reports an asynchronous fault. */
    private String lastOp = "none";
    private boolean closed;

    /** Kernel launches, cuBLAS calls and device copies queued so far ({@link #queuedOperations()}). */
    private long queuedOperations;

    /** Whether the stream is capturing a step into a graph: ops that allocate, copy or wait then fail. */
    private boolean capturing;

    /** While ops are timed ({@link #startTimingOps}): each op queued since, with its events; null otherwise. */
    private List<OpTiming> opTimings;

    /** An op being timed: its name, whether it was queued aside, and the events recorded before and after it. */
    private static final class OpTiming {
        final String name;
        final boolean aside;
        final CUevent start;
        CUevent end;

        OpTiming(String name, boolean aside, CUevent start) {
            this.name = name;
            this.aside = aside;
            this.start = start;
        }
    }

    /**
     * One op's time on the device, from {@link #stopTimingOps}.
     *
     * @param name         the kernel's name, {@code gemm MxKxN} (with {@code aT}, {@code bT} for transposes) or
     *                     {@code copy}
     * @param aside        whether it was queued {@link #aside}: it ran beside the main stream's ops, so its time
     *                     overlaps theirs
     * @param milliseconds the time between the events recorded just before and just after it
     */
    public record OpTime(String name, boolean aside, double milliseconds) {
    }

    /** The step graphs not yet closed, destroyed by {@link #close()} if their owner did not. */
    private final Set<CudaStepGraph> liveGraphs = new LinkedHashSet<>();

    /** The backend on the first GPU (device 0). */
    public CudaBackend() {
        this(0);
    }

    /**
     * The backend on GPU {@code ordinal}.
     *
     * @throws CudaUnavailableException when CUDA cannot run here ({@link #unavailableReason()}) or a setup
     *                                  step fails (the message says which and why)
     */
    public CudaBackend(int ordinal) {
        CudaProbe probe = CudaProbe.get();
        if (probe.unavailableReason().isPresent()) {
            throw new CudaUnavailableException(probe.unavailableReason().get());
        }
        if (ordinal < 0 || ordinal >= probe.deviceCount()) {
            throw new CudaUnavailableException("no CUDA device " + ordinal + " (the driver sees "
                    + probe.deviceCount() + ")");
        }
        String step = "retaining the primary context of device " + ordinal;
        try {
            CudaErrors.checkDriver(cuDeviceGet(device, ordinal));
            CudaErrors.checkDriver(cuDevicePrimaryCtxRetain(context, device));
            contextRetained = true;
            CudaErrors.checkDriver(cuCtxSetCurrent(context));
            info = DeviceInfo.query(ordinal);
            int[] version = new int[1];
            CudaErrors.checkDriver(cuDriverGetVersion(version));
            driverVersion = CudaProbe.formatDriverVersion(version[0]);
            step = "creating the stream";
            CudaErrors.checkDriver(cuStreamCreate(stream, CUstream_flags.CU_STREAM_DEFAULT));
            streamCreated = true;
            CudaErrors.checkDriver(cuStreamCreate(sideStream, CUstream_flags.CU_STREAM_DEFAULT));
            sideStreamCreated = true;
            CudaErrors.checkDriver(cuEventCreate(forked, CUevent_flags.CU_EVENT_DISABLE_TIMING));
            CudaErrors.checkDriver(cuEventCreate(joined, CUevent_flags.CU_EVENT_DISABLE_TIMING));
            eventsCreated = true;
            arena = new DeviceArena(DeviceArena.DRIVER, DeviceArena.DEFAULT_CHUNK_BYTES);
            step = "loading the kernels";
            kernels = new Kernels();
            step = "allocating the cuBLAS workspace";
            cublasWorkspace = arena.allocate(Cublas.WORKSPACE_BYTES);
            step = "allocating the reduction ticket";
            tickets = arena.allocate(2 * Integer.BYTES);
            CudaErrors.checkDriver(cuMemsetD8Async(tickets.pointer(0), (byte) 0, 2 * Integer.BYTES, stream));
            step = "creating the cuBLAS handle";
            cublas = new Cublas(stream, cublasWorkspace.pointer(0), Cublas.WORKSPACE_BYTES);
            step = "creating the side stream's cuBLAS handle";
            sideCublasWorkspace = arena.allocate(Cublas.WORKSPACE_BYTES);
            sideCublas = new Cublas(sideStream, sideCublasWorkspace.pointer(0), Cublas.WORKSPACE_BYTES);
        } catch (RuntimeException e) {
            releaseQuietly(e);
            if (e instanceof CudaUnavailableException) {
                throw e;
            }
            String message = e instanceof jcuda.CudaException je ? CudaErrors.wrap(step, "", je).getMessage()
                    : step + ": " + e.getMessage();
            throw new CudaUnavailableException("CUDA setup failed: " + message, e);
        }
    }

    /**
     * Why the CUDA backend cannot run on this machine, in one line (no NVIDIA driver, no device, kernels
     * not built, cuBLAS library missing); empty when it can. Never throws; the answer is computed once
     * per JVM. A backend can still fail to open when this is empty (a PTX the driver cannot compile, out
     * of memory): the constructor then says why.
     */
    public static Optional<String> unavailableReason() {
        return CudaProbe.get().unavailableReason();
    }

    // ---- identity -----------------------------------------------------------------------------

    @Override
    public String name() {
        return "cuda";
    }

    /** {@code "NVIDIA H100 80GB HBM3 (compute capability 9.0, 132 SMs, 79.1 GiB), CUDA driver 13.0, cuBLAS 13.1.0"}. */
    @Override
    public String description() {
        return info.summary() + ", CUDA driver " + driverVersion + ", cuBLAS " + cublas.version();
    }

    /** The GPU this backend runs on. */
    public DeviceInfo device() {
        return info;
    }

    /** The CUDA version the driver supports, e.g. {@code "13.0"}. */
    public String driverVersion() {
        return driverVersion;
    }

    /** The version of the cuBLAS library in use, e.g. {@code "12.6.4"}. */
    public String cublasVersion() {
        return cublas.version();
    }

    /** {@code "65 kernels from 5 PTX modules"}: what was loaded, for {@code gradscope info}. */
    public String kernelsDescription() {
        return kernels.functionCount() + " kernels from " + Kernels.FAMILIES.size() + " PTX modules";
    }

    /** Device memory taken from the driver so far, in bytes (the arena's chunks). */
    public long reservedBytes() {
        return arena.reservedBytes();
    }

    /** Device memory held by live tensors and the backend's own buffers, in bytes. */
    public long liveBytes() {
        return arena.liveBytes();
    }

    // ---- settings -----------------------------------------------------------------------------

    /** Empty from compute capability 8.0 (Ampere) on, whose tensor cores do TF32. */
    @Override
    public Optional<String> tf32Unavailable() {
        return info.major() >= 8 ? Optional.empty() : Optional.of(info.name() + " (compute capability "
                + info.computeCapability() + ") has no TF32 tensor cores; its GEMMs stay FP32");
    }

    /** Switches cuBLAS between {@code CUBLAS_TF32_TENSOR_OP_MATH} and {@code CUBLAS_DEFAULT_MATH}. */
    @Override
    public void setTf32(boolean enabled) {
        if (enabled && tf32Unavailable().isPresent()) {
            throw new UnsupportedOperationException("setTf32: " + tf32Unavailable().get());
        }
        enter();
        try {
            cublas.setTf32(enabled);
            sideCublas.setTf32(enabled);
        } catch (jcuda.CudaException e) {
            throw CudaErrors.wrap("setTf32 (cublasSetMathMode)", "", e);
        }
        tf32 = enabled;
    }

    @Override
    public boolean tf32() {
        return tf32;
    }

    // ---- memory -------------------------------------------------------------------------------

    @Override
    public Tensor allocate(DType dtype, int... shape) {
        Tensor t = allocateUninitialized(dtype, shape);
        long bytes = t.size() * dtype.bytes();
        if (bytes > 0) {
            try {
                CudaErrors.checkDriver(cuMemsetD8Async(pointer(t), (byte) 0, bytes, current));
            } catch (jcuda.CudaException e) {
                t.close();
                throw failed("allocate", e, t);
            }
        }
        return t;
    }

    /** A tensor whose contents are whatever the block held before (for ops that overwrite it whole). */
    private Tensor allocateUninitialized(DType dtype, int... shape) {
        enter();
        requireNotCapturing("allocate");
        long size = Shapes.size(shape);
        requireIndexable("allocate", size);
        DeviceArena.Block block;
        try {
            block = arena.allocate(size * dtype.bytes());
        } catch (jcuda.CudaException e) {
            throw CudaErrors.wrap("allocate", Shapes.describe(shape) + " " + dtype + " ("
                    + arena.liveBytes() + " bytes live, " + arena.reservedBytes() + " reserved)", e);
        }
        return Tensor.owning(new CudaStorage(this, dtype, size, block), shape);
    }

    @Override
    public Tensor fromHost(float[] data, int... shape) {
        Tensor t = allocateUninitialized(DType.FLOAT32, shape);
        return filledOrClosed(t, () -> copyFromHost(data, t));
    }

    @Override
    public Tensor fromHost(int[] data, int... shape) {
        Tensor t = allocateUninitialized(DType.INT32, shape);
        return filledOrClosed(t, () -> copyFromHost(data, t));
    }

    @Override
    public Tensor fromHost(byte[] data, int... shape) {
        Tensor t = allocateUninitialized(DType.UINT8, shape);
        return filledOrClosed(t, () -> {
            OpChecks.requireLength("fromHost", data.length, t);
            copyIn("fromHost", Pointer.to(data), data.length, t);
        });
    }

    /** Runs {@code copy} into the new tensor {@code t}; closes {@code t} if it fails. */
    private static Tensor filledOrClosed(Tensor t, Runnable copy) {
        try {
            copy.run();
            return t;
        } catch (RuntimeException e) {
            t.close();
            throw e;
        }
    }

    @Override
    public void copyFromHost(float[] data, Tensor dst) {
        OpChecks.requireLength("copyFromHost", data.length, dst);
        OpChecks.requireDType(dst, DType.FLOAT32);
        copyIn("copyFromHost", Pointer.to(data), (long) data.length * Float.BYTES, dst);
    }

    @Override
    public void copyFromHost(int[] data, Tensor dst) {
        OpChecks.requireLength("copyFromHost", data.length, dst);
        OpChecks.requireDType(dst, DType.INT32);
        copyIn("copyFromHost", Pointer.to(data), (long) data.length * Integer.BYTES, dst);
    }

    /**
     * Host array to device, synchronously: a Java array can move during garbage collection, so it is
     * never the source of an asynchronous copy. The copy runs on the legacy default stream, which waits
     * for the work already queued on this backend's (blocking) stream, and that stream's later work
     * waits for it.
     */
    private void copyIn(String op, Pointer host, long bytes, Tensor dst) {
        enter();
        requireNotCapturing(op);
        CUdeviceptr target = pointer(dst);
        if (bytes == 0) {
            return;
        }
        try {
            CudaErrors.checkDriver(cuMemcpyHtoD(target, host, bytes));
        } catch (jcuda.CudaException e) {
            throw failed(op, e, dst);
        }
    }

    @Override
    public float[] toHostFloats(Tensor t) {
        OpChecks.requireDType(t, DType.FLOAT32);
        float[] out = new float[(int) t.size()];
        copyOut("toHostFloats", Pointer.to(out), (long) out.length * Float.BYTES, t);
        return out;
    }

    @Override
    public int[] toHostInts(Tensor t) {
        OpChecks.requireDType(t, DType.INT32);
        int[] out = new int[(int) t.size()];
        copyOut("toHostInts", Pointer.to(out), (long) out.length * Integer.BYTES, t);
        return out;
    }

    /** Waits for the stream, then copies device to host synchronously. */
    private void copyOut(String op, Pointer host, long bytes, Tensor src) {
        enter();
        CUdeviceptr source = pointer(src);
        waitForStream(op, src);
        if (bytes == 0) {
            return;
        }
        try {
            CudaErrors.checkDriver(cuMemcpyDtoH(host, source, bytes));
        } catch (jcuda.CudaException e) {
            throw failed(op, e, src);
        }
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        OpChecks.copy(src, dst);
        enter();
        CUdeviceptr from = pointer(src);
        CUdeviceptr to = pointer(dst);
        long bytes = src.size() * src.dtype().bytes();
        if (src.storage() == dst.storage()) {
            long a = src.offset();
            long b = dst.offset();
            if (a == b) {
                return; // copying a view onto itself
            }
            if (Math.abs(a - b) < src.size()) {
                throw new IllegalArgumentException("copy: source " + src + " at " + a + " and destination " + dst
                        + " at " + b + " overlap in one storage; the CUDA backend cannot copy overlapping views");
            }
        }
        if (bytes == 0) {
            return;
        }
        opQueued("copy");
        try {
            CudaErrors.checkDriver(cuMemcpyDtoDAsync(to, from, bytes, current));
            afterOp();
        } catch (jcuda.CudaException e) {
            throw failed("copy", e, src, dst);
        }
    }

    @Override
    public void fill(Tensor t, float value) {
        requireFloats(t);
        enter();
        int n = (int) t.size();
        launch("fill_f32", kernels.fill, Launch.elementWise(n, info.multiprocessors()),
                Pointer.to(arg(t), arg(value), arg(n)), t);
    }

    @Override
    public void synchronize() {
        enter();
        waitForStream("synchronize");
    }

    // ---- timing -------------------------------------------------------------------------------

    /**
     * Runs {@code work} {@code repetitions} times back to back and returns each run's device time in
     * milliseconds, measured with CUDA events on this backend's stream: one event before the first run
     * and one after each, so run {@code r} is the time between events {@code r} and {@code r + 1}
     * ({@code cuEventElapsedTime}, resolution about half a microsecond). Nothing waits between runs, so
     * the host's cost of queueing a run hides behind the device's work as long as a run takes longer to
     * execute than to queue (about 7 us per kernel launch through JCuda); shorter runs measure the gaps
     * too. Waits for the stream at the end, reporting an asynchronous fault as {@link #synchronize()}
     * does. The {@code repetitions + 1} events are created here, once, and destroyed before returning.
     *
     * @param work        queues ops of this backend; it should not wait for the stream (a wait would
     *                    leave the device idle while the next run is queued)
     * @param repetitions runs to time, at least 1
     */
    public double[] time(Runnable work, int repetitions) {
        if (repetitions < 1) {
            throw new IllegalArgumentException("time: repetitions must be >= 1, got " + repetitions);
        }
        enter();
        requireNotCapturing("time");
        CUevent[] events = new CUevent[repetitions + 1];
        int created = 0;
        double[] milliseconds = new double[repetitions];
        RuntimeException failure = null;
        try {
            for (; created < events.length; created++) {
                CUevent event = new CUevent();
                CudaErrors.checkDriver(cuEventCreate(event, CUevent_flags.CU_EVENT_DEFAULT));
                events[created] = event;
            }
            joinAside(); // earlier work queued aside stays out of the first run
            CudaErrors.checkDriver(cuEventRecord(events[0], stream));
            for (int r = 0; r < repetitions; r++) {
                work.run();
                enter(); // the work's ops leave the context current; this makes sure of it
                joinAside(); // the run ends when its work queued aside ends too
                CudaErrors.checkDriver(cuEventRecord(events[r + 1], stream));
            }
            waitForStream("time (" + repetitions + " runs)");
            float[] elapsed = new float[1];
            for (int r = 0; r < repetitions; r++) {
                CudaErrors.checkDriver(cuEventElapsedTime(elapsed, events[r], events[r + 1]));
                milliseconds[r] = elapsed[0];
            }
        } catch (jcuda.CudaException e) {
            failure = CudaErrors.wrap("time (" + repetitions + " runs, CUDA events)", "", e);
        } catch (RuntimeException e) {
            failure = e;
        }
        failure = destroyEvents(Arrays.asList(events).subList(0, created), "time", failure);
        if (failure != null) {
            throw failure;
        }
        return milliseconds;
    }

    /** The events of ops being timed, start and end (null for an op whose queueing failed) of each. */
    private static List<CUevent> eventsOf(List<OpTiming> timings) {
        List<CUevent> events = new ArrayList<>();
        for (OpTiming t : timings) {
            events.add(t.start);
            events.add(t.end);
        }
        return events;
    }

    /**
     * Destroys every event (nulls skipped), each tried even if one fails; returns {@code failure}, or the first
     * destroy failure when there was none, the others added to it as suppressed.
     */
    private static RuntimeException destroyEvents(List<CUevent> events, String op, RuntimeException failure) {
        for (CUevent event : events) {
            if (event == null) {
                continue;
            }
            try {
                CudaErrors.checkDriver(cuEventDestroy(event));
            } catch (jcuda.CudaException e) {
                CudaException destroyFailed = CudaErrors.wrap(op + ": destroying its events", "", e);
                if (failure == null) {
                    failure = destroyFailed;
                } else {
                    failure.addSuppressed(destroyFailed);
                }
            }
        }
        return failure;
    }

    /**
     * Starts timing every op queued from now on: each kernel launch, cuBLAS call and device copy gets a CUDA
     * event just before and one just after it on the stream, until {@link #stopTimingOps}. An event pair
     * measures the op's time on the device only when the device reaches the first event after the op is
     * queued, that is while the device is still busy with earlier work; otherwise the time includes the
     * host's queueing. So give the device a head start (work that outlasts the queueing of the timed ops).
     * Not while a step is captured, and not twice.
     */
    public void startTimingOps() {
        enter();
        requireNotCapturing("startTimingOps");
        if (opTimings != null) {
            throw new IllegalStateException("startTimingOps: ops are being timed already");
        }
        opTimings = new ArrayList<>();
    }

    /**
     * Waits for the stream and returns the ops queued since {@link #startTimingOps}, in queue order, with
     * their device times; destroys the events. Ends the timing also when it fails.
     */
    public List<OpTime> stopTimingOps() {
        if (opTimings == null) {
            throw new IllegalStateException("stopTimingOps: ops are not being timed (call startTimingOps first)");
        }
        List<OpTiming> timings = opTimings;
        opTimings = null;
        List<OpTime> times = new ArrayList<>();
        RuntimeException failure = null;
        try {
            enter();
            waitForStream("stopTimingOps");
            float[] elapsed = new float[1];
            for (OpTiming t : timings) {
                if (t.end != null) { // an op whose queueing failed has no end event
                    CudaErrors.checkDriver(cuEventElapsedTime(elapsed, t.start, t.end));
                    times.add(new OpTime(t.name, t.aside, elapsed[0]));
                }
            }
        } catch (jcuda.CudaException e) {
            failure = CudaErrors.wrap("stopTimingOps (" + timings.size() + " ops, CUDA events)", "", e);
        } catch (RuntimeException e) {
            failure = e;
        }
        failure = destroyEvents(eventsOf(timings), "stopTimingOps", failure);
        if (failure != null) {
            throw failure;
        }
        return times;
    }

    // ---- work aside ---------------------------------------------------------------------------

    /**
     * Queues {@code work}'s ops on the side stream, after everything queued so far on the main stream
     * (an event the side stream waits for); they run beside the main stream's later ops until
     * {@link #joinAside}. Inside a capture the side stream joins it, and the graph gets a branch.
     */
    @Override
    public void aside(Runnable work) {
        enter();
        if (current == sideStream) {
            throw new IllegalStateException("aside: work queued aside cannot queue more work aside");
        }
        if (!SIDE_STREAM) {
            work.run();
            return;
        }
        waitFor(sideStream, stream, forked, "aside (forking the side stream)");
        asidePending = true;
        current = sideStream;
        try {
            work.run();
        } finally {
            current = stream;
        }
    }

    /** The main stream waits for the side stream's work so far (nothing is queued when there is none). */
    @Override
    public void joinAside() {
        enter();
        if (!asidePending) {
            return;
        }
        waitFor(stream, sideStream, joined, "joinAside (the main stream waiting for the side stream)");
        asidePending = false;
    }

    /** {@code waiter}'s later work starts after the work queued on {@code waited} so far (through {@code event}). */
    private static void waitFor(CUstream waiter, CUstream waited, CUevent event, String op) {
        try {
            CudaErrors.checkDriver(cuEventRecord(event, waited));
            CudaErrors.checkDriver(cuStreamWaitEvent(waiter, event, 0));
        } catch (jcuda.CudaException e) {
            throw CudaErrors.wrap(op, "", e);
        }
    }

    /**
     * Fails an op that uses the backend's one loss or partial-sums scratch when it is being queued aside: on
     * the side stream it could run at the same time as such an op on the main stream, over the same scratch.
     */
    private void requireMainStream(String op) {
        if (current == sideStream) {
            throw new IllegalStateException(op + " cannot be queued aside: it uses the backend's one scratch for"
                    + " loss rows and partial sums, which the main stream's losses and reductions use too");
        }
    }

    /** A kernel argument: the reduction ticket of the stream ops are queued on. */
    private Pointer ticket() {
        return Pointer.to(tickets.pointer(current == sideStream ? Integer.BYTES : 0));
    }

    /** The cuBLAS handle bound to the stream ops are queued on. */
    private Cublas cublasOfCurrentStream() {
        return current == sideStream ? sideCublas : cublas;
    }

    // ---- dense layers -------------------------------------------------------------------------

    @Override
    public void gemm(boolean transposeA, boolean transposeB, float alpha, Tensor a, Tensor b, float beta, Tensor c) {
        OpChecks.GemmShape shape = OpChecks.gemm(transposeA, transposeB, a, b, c);
        int m = shape.m();
        int n = shape.n();
        int k = shape.k();
        requireFloats(a, b, c);
        enter();
        if (m == 0 || n == 0) {
            return;
        }
        if (k == 0 || alpha == 0f) {
            // c = beta c, without reading a and b (the CPU reference's rule; cuBLAS would do the same, but
            // this keeps "beta == 0 ignores NaN in c" independent of how cuBLAS treats an empty k).
            if (beta == 0f) {
                fill(c, 0f);
            } else if (beta != 1f) {
                opQueued("gemm (c = beta c)");
                try {
                    cublasOfCurrentStream().scale(m * n, beta, pointer(c));
                    afterOp();
                } catch (jcuda.CudaException e) {
                    throw failed("gemm (c = beta c)", e, a, b, c);
                }
            }
            return;
        }
        opQueued(String.format(Locale.ROOT, "gemm %dx%dx%d%s%s", m, k, n, transposeA ? " aT" : "",
                transposeB ? " bT" : ""));
        try {
            cublasOfCurrentStream().gemm(transposeA, transposeB, m, n, k, alpha, pointer(a), a.dim(1), pointer(b),
                    b.dim(1), beta, pointer(c));
            afterOp();
        } catch (jcuda.CudaException e) {
            throw failed("gemm (cublasSgemm, transposeA=" + transposeA + ", transposeB=" + transposeB + ")", e,
                    a, b, c);
        }
    }

    @Override
    public void addRowVectorAccumulate(Tensor y, Tensor bias) {
        int rows = y.rowCount();
        int cols = y.columnCount();
        OpChecks.addRowVector(y, bias);
        requireFloats(y, bias);
        enter();
        launch("add_row_vector", kernels.addRowVector, Launch.elementWise((long) rows * cols, info.multiprocessors()),
                Pointer.to(arg(y), arg(bias), arg(rows), arg(cols)), y, bias);
    }

    @Override
    public void columnSums(Tensor x, Tensor out) {
        int rows = x.rowCount();
        int cols = x.columnCount();
        OpChecks.columnSums(x, out);
        requireFloats(x, out);
        enter();
        launch("column_sums", kernels.columnSums, Launch.columnTiles(cols),
                Pointer.to(arg(x), arg(out), arg(rows), arg(cols)), x, out);
    }

    // ---- activations --------------------------------------------------------------------------

    @Override
    public void activationForward(ActivationKind kind, Tensor z, Tensor param, Tensor y) {
        int paramCount = OpChecks.activationForward(kind, z, param, y);
        requireFloatParameter(param);
        requireFloats(z, y);
        enter();
        int n = (int) z.size();
        launch(kind.id() + "_forward", kernels.forward(kind), Launch.elementWise(n, info.multiprocessors()),
                Pointer.to(arg(z), arg(y), argOrNull(param), arg(paramCount), arg(z.columnCount()), arg(n)),
                z, param, y);
    }

    /** One element-wise kernel, {@code ID_bias_forward}: z += bias, y = f(z). */
    @Override
    public void biasActivationForward(ActivationKind kind, Tensor z, Tensor bias, Tensor param, Tensor y) {
        int paramCount = OpChecks.biasActivationForward(kind, z, bias, param, y);
        requireFloatParameter(param);
        requireFloats(z, bias, y);
        enter();
        int n = (int) z.size();
        launch(kind.id() + "_bias_forward", kernels.biasForward(kind), Launch.elementWise(n, info.multiprocessors()),
                Pointer.to(arg(z), arg(bias), arg(y), argOrNull(param), arg(paramCount), arg(z.columnCount()), arg(n)),
                z, bias, param, y);
    }

    @Override
    public void activationBackward(ActivationKind kind, Tensor z, Tensor param, Tensor dy, Tensor dz) {
        int paramCount = OpChecks.activationBackward(kind, z, param, dy, dz);
        requireFloatParameter(param);
        requireFloats(z, dy, dz);
        enter();
        int n = (int) z.size();
        launch(kind.id() + "_backward", kernels.backward(kind), Launch.elementWise(n, info.multiprocessors()),
                Pointer.to(arg(z), arg(dy), arg(dz), argOrNull(param), arg(paramCount), arg(z.columnCount()), arg(n)),
                z, param, dy, dz);
    }

    @Override
    public void activationParameterGradient(ActivationKind kind, Tensor z, Tensor param, Tensor dy, Tensor dParam) {
        int paramCount = OpChecks.activationParameterGradient(kind, z, param, dy, dParam);
        requireFloatParameter(param);
        requireFloats(z, dy, dParam);
        enter();
        int rows = z.rowCount();
        int cols = z.columnCount();
        // Shared: one block sums every element in a fixed tree. Per column: one thread per column sums
        // its rows in order. Both deterministic (ABI).
        Launch launch = paramCount == 1 ? Launch.singleBlock() : Launch.threadPerColumn(cols);
        launch(kind.id() + "_parameter_gradient", kernels.parameterGradient(kind), launch,
                Pointer.to(arg(z), arg(dy), arg(param), arg(paramCount), arg(rows), arg(cols), arg(dParam)),
                z, param, dy, dParam);
    }

    // ---- dropout (dropout.cu) ---------------------------------------------------------------------

    @Override
    public void dropoutForward(Tensor x, double rate, long streamKey, Tensor step, Tensor y) {
        OpChecks.dropout("dropoutForward", x, rate, step, y);
        launchDropout("dropout_forward", kernels.dropoutForward, x, rate, streamKey, step, y);
    }

    @Override
    public void dropoutBackward(Tensor dy, double rate, long streamKey, Tensor step, Tensor dx) {
        OpChecks.dropout("dropoutBackward", dy, rate, step, dx);
        launchDropout("dropout_backward", kernels.dropoutBackward, dy, rate, streamKey, step, dx);
    }

    /** One element-wise kernel: out = in * scale where DropoutMask keeps the element at the step on the device. */
    private void launchDropout(String kernelName, CUfunction function, Tensor in, double rate, long streamKey,
                               Tensor step, Tensor out) {
        requireFloats(in, out);
        enter();
        int n = (int) in.size();
        launch(kernelName, function, Launch.elementWise(n, info.multiprocessors()),
                Pointer.to(arg(in), arg(out), arg(n), arg(DropoutMask.threshold(rate)), arg(DropoutMask.scale(rate)),
                        arg(streamKey), arg(step)), in, step, out);
    }

    // ---- batch normalization (batch_norm.cu) ----------------------------------------------------------

    /**
     * Blocks per tile of 32 columns and slice of rows ({@link Launch#batchNormSlices}): a batch of up to 256 rows in
     * one kernel, each block adding its whole tile and normalising its slice; a taller one in two, the statistics
     * (each block its slice, the last block the columns' totals, through the partial sums' scratch) and an
     * element-wise normalisation.
     */
    @Override
    public void batchNormTrainingForward(Tensor x, Tensor gamma, Tensor beta, double momentum, float epsilon,
                                         Tensor movingMean, Tensor movingVariance, Tensor batchMean,
                                         Tensor batchInvStd, Tensor y) {
        OpChecks.batchNormTrainingForward(x, gamma, beta, momentum, epsilon, movingMean, movingVariance, batchMean,
                batchInvStd, y);
        requireFloats(x, gamma, beta, movingMean, movingVariance, batchMean, batchInvStd, y);
        int rows = x.rowCount();
        int cols = x.columnCount();
        int rowsPerSlice = Launch.batchNormRowsPerSlice(rows);
        enter();
        if (Launch.batchNormInOneKernel(rows)) {
            launch("batch_norm_training_forward", kernels.batchNormTrainingForward, Launch.batchNormSlices(rows, cols),
                    Pointer.to(arg(x), arg(gamma), arg(beta), arg((float) momentum), arg((float) (1.0 - momentum)),
                            arg(epsilon), arg(movingMean), arg(movingVariance), arg(batchMean), arg(batchInvStd),
                            arg(y), arg(rows), arg(cols), arg(rowsPerSlice)),
                    x, gamma, beta, movingMean, movingVariance, batchMean, batchInvStd, y);
            return;
        }
        if (cols == 0) {
            return;
        }
        ensureBatchNormScratch(rows, cols);
        launch("batch_norm_training_statistics", kernels.batchNormTrainingStatistics,
                Launch.batchNormSlices(rows, cols),
                Pointer.to(arg(x), arg((float) momentum), arg((float) (1.0 - momentum)), arg(epsilon),
                        arg(movingMean), arg(movingVariance), arg(batchMean), arg(batchInvStd), arg(rows), arg(cols),
                        arg(rowsPerSlice), partialsTable(0), ticket()),
                x, movingMean, movingVariance, batchMean, batchInvStd);
        int n = (int) x.size();
        launch("batch_norm_training_normalize", kernels.batchNormTrainingNormalize,
                Launch.elementWise(n, info.multiprocessors()),
                Pointer.to(arg(x), arg(gamma), arg(beta), arg(batchMean), arg(batchInvStd), arg(y), arg(cols), arg(n)),
                x, gamma, beta, batchMean, batchInvStd, y);
    }

    /**
     * The training passes' blocks per tile and slice of rows, for another reason: nothing is summed, but each block
     * takes its 32 columns' inverse standard deviations (a double square root and division each) once for all its
     * rows, not once per element.
     */
    @Override
    public void batchNormInferenceForward(Tensor x, Tensor gamma, Tensor beta, Tensor movingMean,
                                          Tensor movingVariance, float epsilon, Tensor y) {
        OpChecks.batchNormInferenceForward(x, gamma, beta, movingMean, movingVariance, epsilon, y);
        requireFloats(x, gamma, beta, movingMean, movingVariance, y);
        int rows = x.rowCount();
        int cols = x.columnCount();
        enter();
        launch("batch_norm_inference_forward", kernels.batchNormInferenceForward, Launch.batchNormSlices(rows, cols),
                Pointer.to(arg(x), arg(gamma), arg(beta), arg(movingMean), arg(movingVariance), arg(epsilon), arg(y),
                        arg(rows), arg(cols), arg(Launch.batchNormRowsPerSlice(rows))),
                x, gamma, beta, movingMean, movingVariance, y);
    }

    /**
     * The launch shapes of {@link #batchNormTrainingForward}: one kernel up to 256 rows; else the sums (the last
     * block also writes dx's per-column coefficients into the scratch, after the partial sums) and an element-wise
     * dx, which a call without dx leaves out.
     */
    @Override
    public void batchNormBackward(Tensor x, Tensor gamma, Tensor batchMean, Tensor batchInvStd, Tensor dy,
                                  Tensor dx, Tensor dGamma, Tensor dBeta) {
        OpChecks.batchNormBackward(x, gamma, batchMean, batchInvStd, dy, dx, dGamma, dBeta);
        requireFloats(x, gamma, batchMean, batchInvStd, dy, dGamma, dBeta);
        if (dx != null) {
            requireFloats(dx);
        }
        int rows = x.rowCount();
        int cols = x.columnCount();
        int rowsPerSlice = Launch.batchNormRowsPerSlice(rows);
        enter();
        if (Launch.batchNormInOneKernel(rows)) {
            // Without dx, the slices' blocks would only add the sums again: one slice of every row.
            int sliceRows = dx == null ? rows : rowsPerSlice;
            launch("batch_norm_backward", kernels.batchNormBackward,
                    dx == null ? Launch.columnTiles(cols) : Launch.batchNormSlices(rows, cols),
                    Pointer.to(arg(x), arg(gamma), arg(batchMean), arg(batchInvStd), arg(dy), argOrNull(dx),
                            arg(dGamma), arg(dBeta), arg(rows), arg(cols), arg(sliceRows)),
                    x, gamma, batchMean, batchInvStd, dy, dx, dGamma, dBeta);
            return;
        }
        if (cols == 0) {
            return;
        }
        ensureBatchNormScratch(rows, cols);
        // dx's coefficients, 3 floats a column, after the partial sums (whole doubles: they stay 8-byte aligned).
        long partialDoubles = 2L * Launch.batchNormSliceCount(rows, rowsPerSlice) * cols;
        Pointer coefficients = Pointer.to(partials.pointer(partialDoubles * Double.BYTES));
        launch("batch_norm_backward_sums", kernels.batchNormBackwardSums, Launch.batchNormSlices(rows, cols),
                Pointer.to(arg(x), arg(gamma), arg(batchMean), arg(batchInvStd), arg(dy), arg(dGamma), arg(dBeta),
                        arg(rows), arg(cols), arg(rowsPerSlice), partialsTable(0),
                        dx == null ? argOrNull(null) : coefficients, ticket()),
                x, gamma, batchMean, batchInvStd, dy, dGamma, dBeta);
        if (dx == null) {
            return;
        }
        int n = (int) x.size();
        launch("batch_norm_backward_dx", kernels.batchNormBackwardDx, Launch.elementWise(n, info.multiprocessors()),
                Pointer.to(arg(x), arg(batchMean), arg(batchInvStd), arg(dy), coefficients, arg(dx), arg(cols),
                        arg(n)),
                x, batchMean, batchInvStd, dy, dx);
    }

    /**
     * The scratch of batch normalization's two-kernel passes over {@code cols} columns: room for the most slices any
     * batch has ({@link Launch#BATCH_NORM_MAX_SLICES}), 3 partial sums each, whatever this batch's rows. A batch can
     * have fewer rows and more slices than a taller one (2048 rows: 64 slices of 32; 2049: 33 of 64), so a scratch
     * sized by the rows could grow at an epoch's last, smaller batch, after the full batches' step was captured, and
     * make that graph stale. The backward pass's 2 sums per slice and dx's 3 floats per column fit in the same room.
     */
    private void ensureBatchNormScratch(int rows, int cols) {
        ensureScratch(3L * Launch.BATCH_NORM_MAX_SLICES * cols, "the partial sums of batch normalization over a ["
                + rows + " x " + cols + "] batch");
    }

    @Override
    public void maxoutForward(Tensor z, int pieces, Tensor y, Tensor winner) {
        int rows = z.rowCount();
        int units = OpChecks.maxoutUnits("maxoutForward", z, pieces, y, winner);
        requireFloats(z, y);
        enter();
        launch("maxout_forward", kernels.maxoutForward,
                Launch.elementWise((long) rows * units, info.multiprocessors()),
                Pointer.to(arg(z), arg(y), arg(winner), arg(rows), arg(units), arg(pieces)), z, y, winner);
    }

    @Override
    public void maxoutBackward(Tensor dy, Tensor winner, int pieces, Tensor dz) {
        int rows = dz.rowCount();
        int units = OpChecks.maxoutUnits("maxoutBackward", dz, pieces, dy, winner);
        requireFloats(dy, dz);
        enter();
        launch("maxout_backward", kernels.maxoutBackward,
                Launch.elementWise((long) rows * units * pieces, info.multiprocessors()),
                Pointer.to(arg(dy), arg(winner), arg(dz), arg(rows), arg(units), arg(pieces)), dy, winner, dz);
    }

    @Override
    public void softmax(Tensor logits, Tensor probabilities) {
        OpChecks.softmax(logits, probabilities);
        requireFloats(logits, probabilities);
        enter();
        int rows = logits.rowCount();
        int cols = logits.columnCount();
        launch("softmax_rows", kernels.softmaxRows, Launch.warpPerRow(rows),
                Pointer.to(arg(logits), arg(probabilities), arg(rows), arg(cols)), logits, probabilities);
    }

    // ---- losses -------------------------------------------------------------------------------

    @Override
    public void softmaxCrossEntropy(Tensor logits, Tensor targets, float gradientScale, Tensor dLogits,
                                    Tensor totals) {
        softmaxLoss("softmaxCrossEntropy", "softmax_cross_entropy_rows", kernels.softmaxCrossEntropyRows, logits,
                null, targets, gradientScale, dLogits, null, totals);
    }

    @Override
    public void softmaxMeanSquaredError(Tensor logits, Tensor targets, float gradientScale, Tensor dLogits,
                                        Tensor totals) {
        softmaxLoss("softmaxMeanSquaredError", "softmax_mse_rows", kernels.softmaxMseRows, logits, null, targets,
                gradientScale, dLogits, null, totals);
    }

    /** One launch: the bias added by each row's warp, the bias gradient by the last block. */
    @Override
    public void softmaxCrossEntropy(Tensor logits, Tensor bias, Tensor targets, float gradientScale, Tensor dLogits,
                                    Tensor biasGradient, Tensor totals) {
        softmaxLoss("softmaxCrossEntropy", "softmax_cross_entropy_rows", kernels.softmaxCrossEntropyRows, logits,
                bias, targets, gradientScale, dLogits, biasGradient, totals);
    }

    /** One launch: the bias added by each row's warp, the bias gradient by the last block. */
    @Override
    public void softmaxMeanSquaredError(Tensor logits, Tensor bias, Tensor targets, float gradientScale,
                                        Tensor dLogits, Tensor biasGradient, Tensor totals) {
        softmaxLoss("softmaxMeanSquaredError", "softmax_mse_rows", kernels.softmaxMseRows, logits, bias, targets,
                gradientScale, dLogits, biasGradient, totals);
    }

    /**
     * A fused softmax loss in one launch: one warp per row writes the row's gradient, loss and correctness
     * (scratch rows kept by the backend), then the grid's last block adds the rows, in a fixed order, to
     * {@code totals}. No float atomics, so the totals are the same run after run.
     */
    private void softmaxLoss(String op, String kernelName, CUfunction rowKernel, Tensor logits, Tensor bias,
                             Tensor targets, float gradientScale, Tensor dLogits, Tensor biasGradient, Tensor totals) {
        if (bias != null) {
            OpChecks.addRowVector(logits, bias);
            OpChecks.columnSums(dLogits, biasGradient);
            requireFloats(bias, biasGradient);
        }
        OpChecks.softmaxLoss(op, logits, targets, dLogits, totals);
        requireFloats(logits, targets, dLogits, totals);
        enter();
        int rows = logits.rowCount();
        int cols = logits.columnCount();
        if (rows == 0) {
            if (biasGradient != null) {
                fill(biasGradient, 0f); // the column sums of no row
            }
            return; // no row: no gradient to write, nothing to add
        }
        ensureLossScratch(rows);
        launch(kernelName, rowKernel, Launch.warpPerRowReduced(rows),
                Pointer.to(arg(logits), argOrNull(bias), arg(targets), arg(gradientScale), arg(dLogits), arg(rowLoss),
                        arg(rowCorrect), argOrNull(biasGradient), arg(rows), arg(cols), arg(totals), ticket()),
                logits, bias, targets, dLogits, biasGradient, totals);
    }

    /** Grows the per-row scratch when a batch larger than any before arrives; never in steady state. */
    private void ensureLossScratch(int rows) {
        requireMainStream("a softmax loss");
        if (rows <= lossRowCapacity) {
            return;
        }
        requireNotCapturing("allocating the loss scratch for " + rows + " rows");
        if (rowLoss != null) {
            rowLoss.free();
            rowCorrect.free();
            rowLoss = null;
            rowCorrect = null;
        }
        try {
            rowLoss = arena.allocate((long) rows * Float.BYTES);
            rowCorrect = arena.allocate((long) rows * Float.BYTES);
        } catch (jcuda.CudaException e) {
            throw CudaErrors.wrap("allocating the loss scratch for " + rows + " rows", "", e);
        }
        lossRowCapacity = rows;
        scratchGeneration++;
    }

    /** Elements per chunk of the chunked segmented reductions: a block of 1024 adds 8 per thread. */
    static final int REDUCTION_CHUNK = 8192;

    /** The most partial tables one chunked reduction writes: a measured step's gradient, weight and update sums. */
    private static final int PARTIAL_TABLES = 3;

    /**
     * The chunk this backend's reductions use: {@link #REDUCTION_CHUNK}, or {@code gradscope.cuda.reductionChunk}
     * (a multiple of 1024) to measure another: a smaller chunk gives the chapter MLP's 575,050 parameters more
     * blocks than a GPU has multiprocessors. The sums' order, so their last bits, depend on it.
     */
    private final int reductionChunk = reductionChunk(System.getProperty("gradscope.cuda.reductionChunk"));

    /** {@link #reductionChunk} from the property's value (null: the default). */
    static int reductionChunk(String property) {
        if (property == null) {
            return REDUCTION_CHUNK;
        }
        try {
            int chunk = Integer.parseInt(property.trim());
            if (chunk >= 1024 && chunk % 1024 == 0) {
                return chunk;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new IllegalArgumentException("gradscope.cuda.reductionChunk: need a multiple of 1024 (elements per"
                + " chunk of a segmented reduction), got '" + property + "'");
    }

    /** Chunks of {@link #reductionChunk} in {@code n} elements. */
    private int chunksOf(int n) {
        return (int) (((long) n + reductionChunk - 1) / reductionChunk);
    }

    /**
     * The partial sums' scratch, room for {@link #PARTIAL_TABLES} tables of {@code chunks x segments} doubles
     * whatever the reduction uses, so that a step that measures more than the last did (the profiler switched
     * on) does not grow it, which would make captured graphs stale; grown (never in steady state) when a
     * larger reduction arrives. Returns one table's length in doubles: table {@code t} starts {@code t} times
     * that into the scratch.
     */
    private long ensurePartials(int chunks, int segments) {
        long table = (long) chunks * segments;
        ensureScratch(PARTIAL_TABLES * table, "the partial sums of a " + chunks + "-chunk, " + segments
                + "-segment reduction");
        return table;
    }

    /**
     * Room for {@code doubles} doubles in the partial sums' scratch, which the chunked reductions and batch
     * normalization's passes over tall batches share (on the main stream alone, one kernel after another): grown,
     * never in steady state, when a larger one arrives; a step captured before then refuses to launch.
     */
    private void ensureScratch(long doubles, String what) {
        requireMainStream(what);
        if (doubles <= partialsCapacity) {
            return;
        }
        requireNotCapturing("allocating " + what);
        if (partials != null) {
            partials.free();
            partials = null;
            partialsCapacity = 0;
        }
        try {
            partials = arena.allocate(doubles * Double.BYTES);
        } catch (jcuda.CudaException e) {
            throw CudaErrors.wrap("allocating " + what, "", e);
        }
        partialsCapacity = doubles;
        scratchGeneration++;
    }

    // ---- reductions ---------------------------------------------------------------------------

    /**
     * {@code out[s] = sum over segment s of x^2}, in one launch (ABI): one block of 1024 per chunk of
     * {@link #reductionChunk} elements writes each segment's part of the chunk, then the grid's last block
     * adds the parts in a fixed order; so a large segment is not left to one block. The reference's checks
     * and messages, except the segment bounds, which stay on the device (see the class comment).
     */
    @Override
    public void segmentSumOfSquares(Tensor x, Tensor segmentStarts, Tensor out) {
        OpChecks.segmentSums("segmentSumOfSquares", segmentStarts, out);
        requireFloats(x, out);
        segmentSumOfSquaresInto(x, segmentStarts, out, null, null);
    }

    /** The same in one launch: its last block also stores {@code out} into the row (copy_to_row_f32's rule). */
    @Override
    public void segmentSumOfSquares(Tensor x, Tensor segmentStarts, Tensor out, Tensor table, Tensor row) {
        OpChecks.segmentSums("segmentSumOfSquares", segmentStarts, out);
        requireFloats(x, out);
        OpChecks.copyToRow(out, table, row);
        segmentSumOfSquaresInto(x, segmentStarts, out, table, row);
    }

    /** segment_sum_of_squares, with {@code table} and {@code row} or both null; the operands are checked. */
    private void segmentSumOfSquaresInto(Tensor x, Tensor segmentStarts, Tensor out, Tensor table, Tensor row) {
        enter();
        int segments = (int) out.size();
        int n = (int) x.size();
        int chunks = chunksOf(n);
        if (segments == 0) {
            return;
        }
        if (chunks == 0) {
            fill(out, 0f);
            if (table != null) {
                copyToRow(out, table, row);
            }
            return;
        }
        ensurePartials(chunks, segments);
        launch("segment_sum_of_squares", kernels.segmentSumOfSquares, Launch.blockPerChunk(chunks),
                Pointer.to(arg(x), arg(segmentStarts), arg(segments), arg(reductionChunk), arg(n),
                        partialsTable(0), arg(out), argOrNull(table), argOrNull(row),
                        arg(table == null ? 0 : table.rowCount()), ticket()),
                x, segmentStarts, out, table, row);
    }

    /**
     * One kernel, {@code ID_bias_backward}: tiles of 32 columns x 32 row groups (ABI) evaluate f' once per
     * element, write dz and add, per column, dz (the bias gradient) and the unit statistics, each by the
     * fixed tree that {@code column_sums} uses, so the bias gradient has the bits of columnSums(dz).
     */
    @Override
    public void biasActivationBackward(ActivationKind kind, Tensor z, Tensor param, Tensor y, Tensor dy, Tensor dz,
                                       Tensor biasGradient, float saturationThreshold, Tensor statistics) {
        int paramCount = OpChecks.biasActivationBackward(kind, z, param, y, dy, dz, biasGradient, statistics);
        requireFloatParameter(param);
        requireFloats(z);
        if (statistics != null) {
            requireFloats(y, statistics);
        }
        if (dy != null) {
            requireFloats(dy, dz);
        }
        if (biasGradient != null) {
            requireFloats(biasGradient);
        }
        Tensor yRead = statistics == null ? null : y;
        int rows = z.rowCount();
        int cols = z.columnCount();
        enter();
        launch(kind.id() + "_bias_backward", kernels.biasBackward(kind), Launch.columnTiles(cols),
                Pointer.to(arg(z), argOrNull(yRead), argOrNull(dy), argOrNull(dz), argOrNull(biasGradient),
                        argOrNull(param), arg(paramCount), arg(rows), arg(cols), arg(saturationThreshold),
                        argOrNull(statistics)),
                z, param, yRead, dy, dz, biasGradient, statistics);
    }

    @Override
    public void clipByValue(Tensor t, float limit) {
        requireFloats(t);
        enter();
        int n = (int) t.size();
        launch("clip_by_value", kernels.clipByValue, Launch.elementWise(n, info.multiprocessors()),
                Pointer.to(arg(t), arg(limit), arg(n)), t);
    }

    /**
     * One launch, no host read: every block of the element-wise grid adds {@code squaredNorms} by the
     * same fixed 1024-slot tree (the same bits in every block), then scales its part of {@code t}, or
     * leaves it alone when the norm is within {@code maxNorm} or NaN, as the reference. Unlike the
     * reference, which reads {@code t} only when it scales it, both tensors are checked to be FLOAT32.
     */
    @Override
    public void clipByGlobalNorm(Tensor t, Tensor squaredNorms, float maxNorm) {
        requireFloats(squaredNorms, t);
        enter();
        int n = (int) t.size();
        int normCount = (int) squaredNorms.size();
        launch("clip_by_global_norm", kernels.clipByGlobalNorm, Launch.elementWise(n, info.multiprocessors()),
                Pointer.to(arg(t), arg(squaredNorms), arg(normCount), arg(maxNorm), arg(n)), t, squaredNorms);
    }

    // ---- optimizers ---------------------------------------------------------------------------

    @Override
    public void adamUpdate(Tensor params, Tensor grads, Tensor m, Tensor v, float beta1, float beta2, float epsilon,
                           float stepSize, UpdateNorms norms) {
        OpChecks.adamUpdate(params, grads, m, v);
        OpChecks.updateNorms("adamUpdate", params, norms);
        requireFloats(params, grads, m, v);
        enter();
        int n = (int) params.size();
        if (!measurable(norms)) {
            launch("adam_update", kernels.adamUpdate, Launch.elementWise(n, info.multiprocessors()),
                    Pointer.to(arg(params), arg(grads), arg(m), arg(v), arg(beta1), arg(beta2), arg(epsilon),
                            arg(stepSize), arg(n)),
                    params, grads, m, v);
            return;
        }
        launchMeasured("adam_update_measured", kernels.adamUpdateMeasured, n,
                new Pointer[] {arg(params), arg(grads), arg(m), arg(v), arg(beta1), arg(beta2), arg(epsilon),
                        arg(stepSize)},
                new Tensor[] {params, grads, m, v}, StepEnd.measuring(norms));
    }

    @Override
    public void sgdUpdate(Tensor params, Tensor grads, Tensor velocity, float learningRate, StepSchedule schedule,
                          float momentum, boolean nesterov, float weightDecay, Tensor iterations,
                          UpdateNorms norms) {
        checkSgdUpdate(params, grads, velocity, momentum, schedule, iterations, norms);
        enter();
        int n = (int) params.size();
        // Without momentum the reference leaves the velocity alone: pass NULL so the kernel cannot touch it.
        Tensor v = momentum == 0 ? null : velocity;
        if (!measurable(norms)) {
            // With a count, at least one block, even over no element: its last block counts the update.
            launch("sgd_update", kernels.sgdUpdate, Launch.elementWise(countedSize(n, iterations),
                            info.multiprocessors()),
                    Pointer.to(arg(params), arg(grads), argOrNull(v), arg(learningRate), arg(schedule.warmupStart()),
                            arg(schedule.warmupSteps()), arg(schedule.decaySteps()), arg(schedule.alpha()),
                            arg(momentum), arg(nesterov ? 1 : 0), arg(weightDecay), argOrNull(iterations), arg(n),
                            ticket()),
                    params, grads, v, iterations);
            return;
        }
        launchSgdMeasured(params, grads, v, learningRate, schedule, momentum, nesterov, weightDecay, iterations,
                StepEnd.measuring(norms));
    }

    /** One launch when the step end is {@link #fusible}; else the ops one by one (Backend's default). */
    @Override
    public void sgdUpdate(Tensor params, Tensor grads, Tensor velocity, float learningRate, StepSchedule schedule,
                          float momentum, boolean nesterov, float weightDecay, Tensor iterations, StepEnd end) {
        if (!fusible(end)) {
            Backend.super.sgdUpdate(params, grads, velocity, learningRate, schedule, momentum, nesterov, weightDecay,
                    iterations, end);
            return;
        }
        checkSgdUpdate(params, grads, velocity, momentum, schedule, iterations, end.updateNorms());
        checkStepEnd("sgdUpdate", end);
        enter();
        launchSgdMeasured(params, grads, momentum == 0 ? null : velocity, learningRate, schedule, momentum, nesterov,
                weightDecay, iterations, end);
    }

    private void checkSgdUpdate(Tensor params, Tensor grads, Tensor velocity, float momentum, StepSchedule schedule,
                                Tensor iterations, UpdateNorms norms) {
        OpChecks.sgdUpdate(params, grads);
        OpChecks.updateNorms("sgdUpdate", params, norms);
        OpChecks.optionalStepCount("sgdUpdate", iterations, schedule);
        if (momentum != 0) {
            OpChecks.sgdVelocity(params, velocity, momentum);
            requireFloats(velocity);
        }
        requireFloats(params, grads);
    }

    /**
     * The elements an update's element-wise grid covers: {@code n}, or at least 1 when the update is counted, so
     * that one block runs to count it.
     */
    private static int countedSize(int n, Tensor iterations) {
        return iterations == null ? n : Math.max(n, 1);
    }

    /** sgd_update_measured; {@code velocity} is null without momentum. Checked by the caller. */
    private void launchSgdMeasured(Tensor params, Tensor grads, Tensor velocity, float learningRate,
                                   StepSchedule schedule, float momentum, boolean nesterov, float weightDecay,
                                   Tensor iterations, StepEnd end) {
        launchMeasured("sgd_update_measured", kernels.sgdUpdateMeasured, (int) params.size(),
                new Pointer[] {arg(params), arg(grads), argOrNull(velocity), arg(learningRate),
                        arg(schedule.warmupStart()), arg(schedule.warmupSteps()), arg(schedule.decaySteps()),
                        arg(schedule.alpha()), arg(momentum), arg(nesterov ? 1 : 0), arg(weightDecay),
                        argOrNull(iterations)},
                new Tensor[] {params, grads, velocity, iterations}, end);
    }

    @Override
    public void rmspropUpdate(Tensor params, Tensor grads, Tensor velocity, Tensor averageGradient,
                              Tensor momentumBuffer, float learningRate, StepSchedule schedule, float rho,
                              float momentum, float epsilon, boolean centered, float weightDecay, Tensor iterations,
                              UpdateNorms norms) {
        checkRmspropUpdate(params, grads, velocity, averageGradient, momentumBuffer, momentum, centered, schedule,
                iterations, norms);
        enter();
        int n = (int) params.size();
        // The buffers the reference leaves alone go as NULL, so the kernel cannot touch them.
        Tensor average = centered ? averageGradient : null;
        Tensor buffer = momentum == 0 ? null : momentumBuffer;
        if (!measurable(norms)) {
            launch("rmsprop_update", kernels.rmspropUpdate, Launch.elementWise(countedSize(n, iterations),
                            info.multiprocessors()),
                    Pointer.to(arg(params), arg(grads), arg(velocity), argOrNull(average), argOrNull(buffer),
                            arg(learningRate), arg(schedule.warmupStart()), arg(schedule.warmupSteps()),
                            arg(schedule.decaySteps()), arg(schedule.alpha()), arg(rho), arg(momentum), arg(epsilon),
                            arg(centered ? 1 : 0), arg(weightDecay), argOrNull(iterations), arg(n), ticket()),
                    params, grads, velocity, average, buffer, iterations);
            return;
        }
        launchRmspropMeasured(params, grads, velocity, average, buffer, learningRate, schedule, rho, momentum, epsilon,
                centered, weightDecay, iterations, StepEnd.measuring(norms));
    }

    /** One launch when the step end is {@link #fusible}; else the ops one by one (Backend's default). */
    @Override
    public void rmspropUpdate(Tensor params, Tensor grads, Tensor velocity, Tensor averageGradient,
                              Tensor momentumBuffer, float learningRate, StepSchedule schedule, float rho,
                              float momentum, float epsilon, boolean centered, float weightDecay, Tensor iterations,
                              StepEnd end) {
        if (!fusible(end)) {
            Backend.super.rmspropUpdate(params, grads, velocity, averageGradient, momentumBuffer, learningRate,
                    schedule, rho, momentum, epsilon, centered, weightDecay, iterations, end);
            return;
        }
        checkRmspropUpdate(params, grads, velocity, averageGradient, momentumBuffer, momentum, centered, schedule,
                iterations, end.updateNorms());
        checkStepEnd("rmspropUpdate", end);
        enter();
        launchRmspropMeasured(params, grads, velocity, centered ? averageGradient : null,
                momentum == 0 ? null : momentumBuffer, learningRate, schedule, rho, momentum, epsilon, centered,
                weightDecay, iterations, end);
    }

    private void checkRmspropUpdate(Tensor params, Tensor grads, Tensor velocity, Tensor averageGradient,
                                    Tensor momentumBuffer, float momentum, boolean centered, StepSchedule schedule,
                                    Tensor iterations, UpdateNorms norms) {
        OpChecks.rmspropUpdate(params, grads, velocity, averageGradient, momentumBuffer, momentum, centered);
        OpChecks.updateNorms("rmspropUpdate", params, norms);
        OpChecks.optionalStepCount("rmspropUpdate", iterations, schedule);
        requireFloats(params, grads, velocity);
        if (centered) {
            requireFloats(averageGradient);
        }
        if (momentum != 0) {
            requireFloats(momentumBuffer);
        }
    }

    /** rmsprop_update_measured; the buffers not used are null. Checked by the caller. */
    private void launchRmspropMeasured(Tensor params, Tensor grads, Tensor velocity, Tensor average, Tensor buffer,
                                       float learningRate, StepSchedule schedule, float rho, float momentum,
                                       float epsilon, boolean centered, float weightDecay, Tensor iterations,
                                       StepEnd end) {
        launchMeasured("rmsprop_update_measured", kernels.rmspropUpdateMeasured, (int) params.size(),
                new Pointer[] {arg(params), arg(grads), arg(velocity), argOrNull(average), argOrNull(buffer),
                        arg(learningRate), arg(schedule.warmupStart()), arg(schedule.warmupSteps()),
                        arg(schedule.decaySteps()), arg(schedule.alpha()), arg(rho), arg(momentum), arg(epsilon),
                        arg(centered ? 1 : 0), arg(weightDecay), argOrNull(iterations)},
                new Tensor[] {params, grads, velocity, average, buffer, iterations}, end);
    }

    /**
     * Whether an optimizer step is to be measured through the chunked kernels: norms asked for, of at least
     * one segment (the norms of segments without elements are 0: the kernels then run one block over no
     * chunk, which writes the zeros and the table's row). Otherwise the plain kernel runs.
     */
    private static boolean measurable(UpdateNorms norms) {
        return norms != null && norms.weightSquares().size() > 0;
    }

    /**
     * Whether a {@link StepEnd} fits one measured launch: something is measured, over at least one segment;
     * the gradient and update norms, when both are asked for, have the same segment starts (the kernel walks
     * one set of segments); and the counter, if any, is one element (the kernel advances counter[0]).
     */
    private static boolean fusible(StepEnd end) {
        GradientNorms gradients = end.gradientNorms();
        UpdateNorms updates = end.updateNorms();
        boolean measuresGradients = gradients != null && gradients.squares().size() > 0;
        if (!measuresGradients && !measurable(updates)) {
            return false;
        }
        if (gradients != null && updates != null && (gradients.segmentStarts() != updates.segmentStarts()
                || gradients.squares().size() != updates.weightSquares().size())) {
            return false;
        }
        return end.counter() == null || end.counter().size() == 1;
    }

    /** The reference's checks of a step end's gradient norms and counter (the update norms are the op's). */
    private void checkStepEnd(String op, StepEnd end) {
        GradientNorms gradients = end.gradientNorms();
        if (gradients != null) {
            OpChecks.segmentSums(op, gradients.segmentStarts(), gradients.squares());
            requireFloats(gradients.squares());
            if (gradients.table() != null) {
                OpChecks.copyToRow(gradients.squares(), gradients.table(), gradients.row());
            }
        }
        if (end.counter() != null) {
            OpChecks.advanceCounters(end.counter());
        }
    }

    /**
     * One of the measured optimizer kernels (ABI: the optimizer's own arguments {@code own}, then the measured
     * tail): one block of 1024 per chunk of {@link #reductionChunk}, at least one block (over no chunk when
     * there is no element: the norms are 0, the rows stored, the counters advanced). The gradient, weight and
     * update partials are the scratch's tables 0, 1 and 2. {@code end} is {@link #fusible} and checked.
     */
    private void launchMeasured(String kernelName, CUfunction function, int n, Pointer[] own, Tensor[] ownOperands,
                                StepEnd end) {
        GradientNorms gradients = end.gradientNorms();
        UpdateNorms updates = end.updateNorms();
        Tensor segmentStarts = gradients != null ? gradients.segmentStarts() : updates.segmentStarts();
        int segments = (int) (gradients != null ? gradients.squares() : updates.weightSquares()).size();
        if (updates != null) {
            requireFloats(updates.weightSquares(), updates.updateSquares());
        }
        int chunks = Math.max(1, chunksOf(n));
        long table = ensurePartials(chunks, segments);
        Tensor gradientTable = gradients == null ? null : gradients.table();
        Tensor updateTable = updates == null ? null : updates.table();
        if (updateTable != null) {
            requireFloats(updateTable);
        }
        Pointer[] tail = {arg(segmentStarts), arg(segments), arg(reductionChunk), arg(n),
                gradients == null ? argOrNull(null) : partialsTable(0),
                argOrNull(gradients == null ? null : gradients.squares()), argOrNull(gradientTable),
                argOrNull(gradientTable == null ? null : gradients.row()),
                arg(gradientTable == null ? 0 : gradientTable.rowCount()),
                updates == null ? argOrNull(null) : partialsTable(table),
                updates == null ? argOrNull(null) : partialsTable(2 * table),
                argOrNull(updates == null ? null : updates.weightSquares()),
                argOrNull(updates == null ? null : updates.updateSquares()), argOrNull(updateTable),
                argOrNull(updateTable == null ? null : updates.row()),
                arg(updateTable == null ? 0 : updateTable.dim(0)), argOrNull(end.counter()), ticket()};
        Pointer[] parameters = Arrays.copyOf(own, own.length + tail.length);
        System.arraycopy(tail, 0, parameters, own.length, tail.length);
        List<Tensor> operands = new ArrayList<>(Arrays.asList(ownOperands));
        operands.addAll(Arrays.asList(segmentStarts, end.counter()));
        if (gradients != null) {
            operands.addAll(Arrays.asList(gradients.squares(), gradientTable, gradients.row()));
        }
        if (updates != null) {
            operands.addAll(Arrays.asList(updates.weightSquares(), updates.updateSquares(), updateTable,
                    updates.row()));
        }
        launch(kernelName, function, Launch.blockPerChunk(chunks), Pointer.to(parameters),
                operands.toArray(Tensor[]::new));
    }

    /** A kernel argument: the partials table that starts {@code offset} doubles into the scratch. */
    private Pointer partialsTable(long offset) {
        return Pointer.to(partials.pointer(offset * Double.BYTES));
    }

    // ---- data ---------------------------------------------------------------------------------

    @Override
    public void gatherRows(Tensor source, Tensor indices, int first, float scale, Tensor out) {
        OpChecks.gatherRows(source, indices, first, out);
        int rows = out.rowCount();
        int cols = out.columnCount();
        boolean bytes = gatherSourceIsBytes(source);
        enter();
        launch(bytes ? "gather_rows_u8" : "gather_rows_f32", bytes ? kernels.gatherRowsU8 : kernels.gatherRowsF32,
                Launch.elementWise((long) rows * cols, info.multiprocessors()),
                Pointer.to(arg(source), arg(indices), arg(first), arg(scale), arg(out), arg(rows), arg(cols)),
                source, indices, out);
    }

    /** Whether a gather's source is UINT8 (else FLOAT32; any other type is refused). */
    private static boolean gatherSourceIsBytes(Tensor source) {
        if (source.dtype() != DType.UINT8 && source.dtype() != DType.FLOAT32) {
            throw new IllegalArgumentException("gatherRows: source must be UINT8 or FLOAT32, got " + source.dtype());
        }
        return source.dtype() == DType.UINT8;
    }

    // ---- the step's changing values on the device ---------------------------------------------

    @Override
    public void gatherRows(Tensor source, Tensor indices, Tensor counter, int rowsPerCount, float scale, Tensor out) {
        OpChecks.gatherRowsAtCounter(source, indices, counter, rowsPerCount, out);
        int rows = out.rowCount();
        int cols = out.columnCount();
        boolean bytes = gatherSourceIsBytes(source);
        enter();
        launch(bytes ? "gather_rows_u8_counter" : "gather_rows_f32_counter",
                bytes ? kernels.gatherRowsU8Counter : kernels.gatherRowsF32Counter,
                Launch.elementWise((long) rows * cols, info.multiprocessors()),
                Pointer.to(arg(source), arg(indices), arg(counter), arg(rowsPerCount), arg(scale), arg(out), arg(rows),
                        arg(cols)),
                source, indices, counter, out);
    }

    /** One launch when the features are UINT8 and the targets FLOAT32 (a DeviceDataset's); else the two gathers. */
    @Override
    public void gatherBatch(Tensor features, float featureScale, Tensor targets, Tensor indices, Tensor counter,
                            int rowsPerCount, Tensor featuresOut, Tensor targetsOut) {
        if (features.dtype() != DType.UINT8 || targets.dtype() != DType.FLOAT32) {
            Backend.super.gatherBatch(features, featureScale, targets, indices, counter, rowsPerCount, featuresOut,
                    targetsOut);
            return;
        }
        OpChecks.gatherBatchAtCounter("gatherBatch", features, targets, indices, counter, rowsPerCount, featuresOut,
                targetsOut);
        int rows = featuresOut.rowCount();
        int featureCols = featuresOut.columnCount();
        int targetCols = targetsOut.columnCount();
        enter();
        launch("gather_batch_counter", kernels.gatherBatchCounter,
                Launch.elementWise((long) rows * Math.max(featureCols, targetCols), info.multiprocessors()),
                Pointer.to(arg(features), arg(featureScale), arg(featuresOut), arg(featureCols), arg(targets),
                        arg(targetsOut), arg(targetCols), arg(indices), arg(counter), arg(rowsPerCount), arg(rows)),
                features, targets, indices, counter, featuresOut, targetsOut);
    }

    /** One launch (gather_next_batch); the batch's rows past the indices are left alone on the device. */
    @Override
    public void gatherNextBatch(Tensor features, float featureScale, Tensor targets, Tensor indices, Tensor counter,
                                int rowsPerCount, Tensor featuresOut, Tensor targetsOut) {
        OpChecks.gatherBatchAtCounter("gatherNextBatch", features, targets, indices, counter, rowsPerCount,
                featuresOut, targetsOut);
        if (features.dtype() != DType.UINT8 || targets.dtype() != DType.FLOAT32) {
            throw new IllegalArgumentException("gatherNextBatch: on CUDA the features must be UINT8 and the targets"
                    + " FLOAT32 (a training run's dataset), got " + features.dtype() + " and " + targets.dtype());
        }
        int rows = featuresOut.rowCount();
        int featureCols = featuresOut.columnCount();
        int targetCols = targetsOut.columnCount();
        enter();
        // At least one block, even over no element: its last block advances the counter.
        launch("gather_next_batch", kernels.gatherNextBatch,
                Launch.elementWise(Math.max(1, (long) rows * Math.max(featureCols, targetCols)),
                        info.multiprocessors()),
                Pointer.to(arg(features), arg(featureScale), arg(featuresOut), arg(featureCols), arg(targets),
                        arg(targetsOut), arg(targetCols), arg(indices), arg((int) indices.size()), arg(counter),
                        arg(rowsPerCount), arg(rows), ticket()),
                features, targets, indices, counter, featuresOut, targetsOut);
    }

    @Override
    public void copyToRow(Tensor src, Tensor table, Tensor row) {
        OpChecks.copyToRow(src, table, row);
        enter();
        int n = (int) src.size();
        launch("copy_to_row_f32", kernels.copyToRow, Launch.elementWise(n, info.multiprocessors()),
                Pointer.to(arg(src), arg(table), arg(row), arg(table.rowCount()), arg(n)), src, table, row);
    }

    @Override
    public void advanceCounters(Tensor counters) {
        OpChecks.advanceCounters(counters);
        enter();
        int n = (int) counters.size();
        launch("advance_counters", kernels.advanceCounters, Launch.elementWise(n, info.multiprocessors()),
                Pointer.to(arg(counters), arg(n)), counters);
    }

    @Override
    public void adamUpdate(Tensor params, Tensor grads, Tensor m, Tensor v, Tensor vHat, double learningRate,
                           StepSchedule schedule, double beta1, double beta2, float epsilon, float weightDecay,
                           Tensor iterations, UpdateNorms norms) {
        checkAdamAtCounter(params, grads, m, v, vHat, iterations, norms);
        enter();
        int n = (int) params.size();
        if (!measurable(norms)) {
            // At least one block, even over no element: its last block counts the update.
            launch("adam_update_counter", kernels.adamUpdateCounter,
                    Launch.elementWise(Math.max(n, 1), info.multiprocessors()),
                    Pointer.to(arg(params), arg(grads), arg(m), arg(v), argOrNull(vHat), arg(learningRate),
                            arg(schedule.warmupStart()), arg(schedule.warmupSteps()), arg(schedule.decaySteps()),
                            arg(schedule.alpha()), arg(beta1), arg(beta2), arg(epsilon), arg(weightDecay),
                            arg(iterations), arg(n), ticket()),
                    params, grads, m, v, vHat, iterations);
            return;
        }
        launchAdamMeasuredAtCounter(params, grads, m, v, vHat, learningRate, schedule, beta1, beta2, epsilon,
                weightDecay, iterations, StepEnd.measuring(norms));
    }

    /** One launch when the step end is {@link #fusible}; else the ops one by one (Backend's default). */
    @Override
    public void adamUpdate(Tensor params, Tensor grads, Tensor m, Tensor v, Tensor vHat, double learningRate,
                           StepSchedule schedule, double beta1, double beta2, float epsilon, float weightDecay,
                           Tensor iterations, StepEnd end) {
        if (!fusible(end)) {
            Backend.super.adamUpdate(params, grads, m, v, vHat, learningRate, schedule, beta1, beta2, epsilon,
                    weightDecay, iterations, end);
            return;
        }
        checkAdamAtCounter(params, grads, m, v, vHat, iterations, end.updateNorms());
        checkStepEnd("adamUpdate", end);
        enter();
        launchAdamMeasuredAtCounter(params, grads, m, v, vHat, learningRate, schedule, beta1, beta2, epsilon,
                weightDecay, iterations, end);
    }

    private void checkAdamAtCounter(Tensor params, Tensor grads, Tensor m, Tensor v, Tensor vHat, Tensor iterations,
                                    UpdateNorms norms) {
        OpChecks.adamUpdateAtCounter(params, grads, m, v, iterations);
        OpChecks.adamVelocityHat(params, vHat);
        OpChecks.updateNorms("adamUpdate", params, norms);
        requireFloats(params, grads, m, v);
        if (vHat != null) {
            requireFloats(vHat);
        }
    }

    /** adam_update_measured_counter (its last block also counts the update). Checked by the caller. */
    private void launchAdamMeasuredAtCounter(Tensor params, Tensor grads, Tensor m, Tensor v, Tensor vHat,
                                             double learningRate, StepSchedule schedule, double beta1,
                                             double beta2, float epsilon, float weightDecay, Tensor iterations,
                                             StepEnd end) {
        launchMeasured("adam_update_measured_counter", kernels.adamUpdateMeasuredCounter, (int) params.size(),
                new Pointer[] {arg(params), arg(grads), arg(m), arg(v), argOrNull(vHat), arg(learningRate),
                        arg(schedule.warmupStart()), arg(schedule.warmupSteps()), arg(schedule.decaySteps()),
                        arg(schedule.alpha()), arg(beta1), arg(beta2), arg(epsilon), arg(weightDecay),
                        arg(iterations)},
                new Tensor[] {params, grads, m, v, vHat, iterations}, end);
    }

    @Override
    public void nadamUpdate(Tensor params, Tensor grads, Tensor m, Tensor v, float learningRate,
                            StepSchedule schedule, double beta1, double beta2, float epsilon, float weightDecay,
                            Tensor iterations, Tensor uProduct, UpdateNorms norms) {
        checkNadam(params, grads, m, v, iterations, uProduct, norms);
        enter();
        int n = (int) params.size();
        if (!measurable(norms)) {
            // At least one block, even over no element: its last block stores the product and counts the update.
            launch("nadam_update_counter", kernels.nadamUpdateCounter,
                    Launch.elementWise(Math.max(n, 1), info.multiprocessors()),
                    Pointer.to(arg(params), arg(grads), arg(m), arg(v), arg(learningRate),
                            arg(schedule.warmupStart()), arg(schedule.warmupSteps()), arg(schedule.decaySteps()),
                            arg(schedule.alpha()), arg(beta1), arg(beta2), arg(epsilon), arg(weightDecay),
                            arg(iterations), arg(uProduct), arg(n), ticket()),
                    params, grads, m, v, iterations, uProduct);
            return;
        }
        launchNadamMeasured(params, grads, m, v, learningRate, schedule, beta1, beta2, epsilon, weightDecay,
                iterations, uProduct, StepEnd.measuring(norms));
    }

    /** One launch when the step end is {@link #fusible}; else the ops one by one (Backend's default). */
    @Override
    public void nadamUpdate(Tensor params, Tensor grads, Tensor m, Tensor v, float learningRate,
                            StepSchedule schedule, double beta1, double beta2, float epsilon, float weightDecay,
                            Tensor iterations, Tensor uProduct, StepEnd end) {
        if (!fusible(end)) {
            Backend.super.nadamUpdate(params, grads, m, v, learningRate, schedule, beta1, beta2, epsilon,
                    weightDecay, iterations, uProduct, end);
            return;
        }
        checkNadam(params, grads, m, v, iterations, uProduct, end.updateNorms());
        checkStepEnd("nadamUpdate", end);
        enter();
        launchNadamMeasured(params, grads, m, v, learningRate, schedule, beta1, beta2, epsilon, weightDecay,
                iterations, uProduct, end);
    }

    private void checkNadam(Tensor params, Tensor grads, Tensor m, Tensor v, Tensor iterations, Tensor uProduct,
                            UpdateNorms norms) {
        OpChecks.nadamUpdate(params, grads, m, v, iterations, uProduct);
        OpChecks.updateNorms("nadamUpdate", params, norms);
        requireFloats(params, grads, m, v, uProduct);
    }

    /** nadam_update_measured_counter. Checked by the caller. */
    private void launchNadamMeasured(Tensor params, Tensor grads, Tensor m, Tensor v, float learningRate,
                                     StepSchedule schedule, double beta1, double beta2, float epsilon,
                                     float weightDecay, Tensor iterations, Tensor uProduct, StepEnd end) {
        launchMeasured("nadam_update_measured_counter", kernels.nadamUpdateMeasuredCounter, (int) params.size(),
                new Pointer[] {arg(params), arg(grads), arg(m), arg(v), arg(learningRate),
                        arg(schedule.warmupStart()), arg(schedule.warmupSteps()), arg(schedule.decaySteps()),
                        arg(schedule.alpha()), arg(beta1), arg(beta2), arg(epsilon), arg(weightDecay),
                        arg(iterations), arg(uProduct)},
                new Tensor[] {params, grads, m, v, iterations, uProduct}, end);
    }

    @Override
    public void adamaxUpdate(Tensor params, Tensor grads, Tensor m, Tensor u, float learningRate,
                             StepSchedule schedule, double beta1, double beta2, float epsilon, float weightDecay,
                             Tensor iterations, UpdateNorms norms) {
        checkAdamax(params, grads, m, u, iterations, norms);
        enter();
        int n = (int) params.size();
        if (!measurable(norms)) {
            launch("adamax_update_counter", kernels.adamaxUpdateCounter,
                    Launch.elementWise(Math.max(n, 1), info.multiprocessors()),
                    Pointer.to(arg(params), arg(grads), arg(m), arg(u), arg(learningRate),
                            arg(schedule.warmupStart()), arg(schedule.warmupSteps()), arg(schedule.decaySteps()),
                            arg(schedule.alpha()), arg(beta1), arg(beta2), arg(epsilon), arg(weightDecay),
                            arg(iterations), arg(n), ticket()),
                    params, grads, m, u, iterations);
            return;
        }
        launchAdamaxMeasured(params, grads, m, u, learningRate, schedule, beta1, beta2, epsilon, weightDecay,
                iterations, StepEnd.measuring(norms));
    }

    /** One launch when the step end is {@link #fusible}; else the ops one by one (Backend's default). */
    @Override
    public void adamaxUpdate(Tensor params, Tensor grads, Tensor m, Tensor u, float learningRate,
                             StepSchedule schedule, double beta1, double beta2, float epsilon, float weightDecay,
                             Tensor iterations, StepEnd end) {
        if (!fusible(end)) {
            Backend.super.adamaxUpdate(params, grads, m, u, learningRate, schedule, beta1, beta2, epsilon,
                    weightDecay, iterations, end);
            return;
        }
        checkAdamax(params, grads, m, u, iterations, end.updateNorms());
        checkStepEnd("adamaxUpdate", end);
        enter();
        launchAdamaxMeasured(params, grads, m, u, learningRate, schedule, beta1, beta2, epsilon, weightDecay,
                iterations, end);
    }

    private void checkAdamax(Tensor params, Tensor grads, Tensor m, Tensor u, Tensor iterations, UpdateNorms norms) {
        OpChecks.adamaxUpdate(params, grads, m, u, iterations);
        OpChecks.updateNorms("adamaxUpdate", params, norms);
        requireFloats(params, grads, m, u);
    }

    /** adamax_update_measured_counter. Checked by the caller. */
    private void launchAdamaxMeasured(Tensor params, Tensor grads, Tensor m, Tensor u, float learningRate,
                                      StepSchedule schedule, double beta1, double beta2, float epsilon,
                                      float weightDecay, Tensor iterations, StepEnd end) {
        launchMeasured("adamax_update_measured_counter", kernels.adamaxUpdateMeasuredCounter, (int) params.size(),
                new Pointer[] {arg(params), arg(grads), arg(m), arg(u), arg(learningRate),
                        arg(schedule.warmupStart()), arg(schedule.warmupSteps()), arg(schedule.decaySteps()),
                        arg(schedule.alpha()), arg(beta1), arg(beta2), arg(epsilon), arg(weightDecay),
                        arg(iterations)},
                new Tensor[] {params, grads, m, u, iterations}, end);
    }

    @Override
    public void adagradUpdate(Tensor params, Tensor grads, Tensor accumulator, float learningRate,
                              StepSchedule schedule, float epsilon, float weightDecay, Tensor iterations,
                              UpdateNorms norms) {
        checkAdagrad(params, grads, accumulator, schedule, iterations, norms);
        enter();
        int n = (int) params.size();
        if (!measurable(norms)) {
            launch("adagrad_update", kernels.adagradUpdate, Launch.elementWise(countedSize(n, iterations),
                            info.multiprocessors()),
                    Pointer.to(arg(params), arg(grads), arg(accumulator), arg(learningRate),
                            arg(schedule.warmupStart()), arg(schedule.warmupSteps()), arg(schedule.decaySteps()),
                            arg(schedule.alpha()), arg(epsilon), arg(weightDecay), argOrNull(iterations), arg(n),
                            ticket()),
                    params, grads, accumulator, iterations);
            return;
        }
        launchAdagradMeasured(params, grads, accumulator, learningRate, schedule, epsilon, weightDecay, iterations,
                StepEnd.measuring(norms));
    }

    /** One launch when the step end is {@link #fusible}; else the ops one by one (Backend's default). */
    @Override
    public void adagradUpdate(Tensor params, Tensor grads, Tensor accumulator, float learningRate,
                              StepSchedule schedule, float epsilon, float weightDecay, Tensor iterations,
                              StepEnd end) {
        if (!fusible(end)) {
            Backend.super.adagradUpdate(params, grads, accumulator, learningRate, schedule, epsilon, weightDecay,
                    iterations, end);
            return;
        }
        checkAdagrad(params, grads, accumulator, schedule, iterations, end.updateNorms());
        checkStepEnd("adagradUpdate", end);
        enter();
        launchAdagradMeasured(params, grads, accumulator, learningRate, schedule, epsilon, weightDecay, iterations,
                end);
    }

    private void checkAdagrad(Tensor params, Tensor grads, Tensor accumulator, StepSchedule schedule,
                              Tensor iterations, UpdateNorms norms) {
        OpChecks.adagradUpdate(params, grads, accumulator);
        OpChecks.updateNorms("adagradUpdate", params, norms);
        OpChecks.optionalStepCount("adagradUpdate", iterations, schedule);
        requireFloats(params, grads, accumulator);
    }

    /** adagrad_update_measured. Checked by the caller. */
    private void launchAdagradMeasured(Tensor params, Tensor grads, Tensor accumulator, float learningRate,
                                       StepSchedule schedule, float epsilon, float weightDecay, Tensor iterations,
                                       StepEnd end) {
        launchMeasured("adagrad_update_measured", kernels.adagradUpdateMeasured, (int) params.size(),
                new Pointer[] {arg(params), arg(grads), arg(accumulator), arg(learningRate),
                        arg(schedule.warmupStart()), arg(schedule.warmupSteps()), arg(schedule.decaySteps()),
                        arg(schedule.alpha()), arg(epsilon), arg(weightDecay), argOrNull(iterations)},
                new Tensor[] {params, grads, accumulator, iterations}, end);
    }

    // ---- graphs -------------------------------------------------------------------------------

    @Override
    public boolean supportsGraphs() {
        return true;
    }

    @Override
    public long queuedOperations() {
        return queuedOperations;
    }

    /**
     * Captures the ops {@code step} queues into a CUDA graph (stream capture on this backend's stream, global
     * mode), then instantiates it. Nothing runs now. If the step throws (an op that may not be captured
     * fails at once, naming itself) or the capture cannot be ended or instantiated, the capture is ended
     * in any case, what was recorded is destroyed, and the failure is thrown: the backend stays usable.
     */
    @Override
    public StepGraph capture(Runnable step) {
        enter();
        if (capturing) {
            throw new IllegalStateException("capture: a step is being captured already (captures do not nest)");
        }
        if (opTimings != null) {
            throw new IllegalStateException("capture: ops are being timed (stopTimingOps first)");
        }
        try {
            CudaErrors.checkDriver(cuStreamBeginCapture(stream, CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_GLOBAL));
        } catch (jcuda.CudaException e) {
            throw CudaErrors.wrap("capture (cuStreamBeginCapture)", "", e);
        }
        capturing = true;
        long operationsBefore = queuedOperations;
        Throwable failure = null;
        try {
            step.run();
            joinAside(); // a capture ends on the stream it began on, every branch joined
        } catch (RuntimeException | Error e) {
            failure = e; // the capture must be ended whatever the step threw
            if (asidePending) {
                try {
                    joinAside();
                } catch (RuntimeException joinFailure) {
                    e.addSuppressed(joinFailure);
                }
            }
        }
        capturing = false;
        int operations = (int) (queuedOperations - operationsBefore);
        String lastCaptured = lastOp;
        CUgraph graph = new CUgraph();
        try {
            enter();
            CudaErrors.checkDriver(cuStreamEndCapture(stream, graph));
        } catch (jcuda.CudaException e) {
            CudaException ended = CudaErrors.wrap("capture (cuStreamEndCapture after " + operations
                    + " ops, the last " + lastCaptured + ")", "", e);
            if (failure == null) {
                throw ended;
            }
            failure.addSuppressed(ended);
            throw rethrow(failure);
        }
        if (failure != null) {
            destroyQuietly(graph, null, failure);
            throw rethrow(failure);
        }
        CUgraphExec exec = new CUgraphExec();
        try {
            CudaErrors.checkDriver(cuGraphInstantiate(exec, graph, 0L));
        } catch (jcuda.CudaException e) {
            CudaException instantiation = CudaErrors.wrap("capture (cuGraphInstantiate of " + operations + " ops)", "",
                    e);
            destroyQuietly(graph, null, instantiation);
            throw instantiation;
        }
        CudaStepGraph captured = new CudaStepGraph(graph, exec, operations, lastCaptured, scratchGeneration);
        liveGraphs.add(captured);
        return captured;
    }

    /** {@code failure}, a RuntimeException or an Error, thrown as it is. */
    private static RuntimeException rethrow(Throwable failure) {
        if (failure instanceof Error error) {
            throw error;
        }
        return (RuntimeException) failure;
    }

    /** Destroys what a failed capture made, adding any failure to {@code cause}. */
    private static void destroyQuietly(CUgraph graph, CUgraphExec exec, Throwable cause) {
        try {
            if (exec != null) {
                CudaErrors.checkDriver(cuGraphExecDestroy(exec));
            }
            CudaErrors.checkDriver(cuGraphDestroy(graph));
        } catch (jcuda.CudaException e) {
            cause.addSuppressed(CudaErrors.wrap("capture: destroying the graph", "", e));
        }
    }

    /** A captured step: launched on the backend's stream, destroyed by its owner or by the backend's close. */
    private final class CudaStepGraph implements StepGraph {
        private final CUgraph graph;
        private final CUgraphExec exec;
        private final String description;
        /** {@link #scratchGeneration} at capture: the graph is stale once a scratch its kernels write has moved. */
        private final long capturedScratch;
        private boolean closed;

        CudaStepGraph(CUgraph graph, CUgraphExec exec, int operations, String lastCaptured,
                      long capturedScratch) {
            this.graph = graph;
            this.exec = exec;
            this.description = "step graph (" + operations + " ops, the last " + lastCaptured + ")";
            this.capturedScratch = capturedScratch;
        }

        @Override
        public void launch() {
            if (closed) {
                throw new IllegalStateException("launch: the " + description + " is closed");
            }
            if (scratchGeneration != capturedScratch) {
                throw new IllegalStateException("launch: a scratch of this backend grew (a loss over a larger batch,"
                        + " a larger reduction, or batch normalization over more columns) since the " + description
                        + " was captured; capture the step again");
            }
            enter();
            requireNotCapturing("launching a " + description);
            lastOp = description;
            try {
                CudaErrors.checkDriver(cuGraphLaunch(exec, stream));
                afterOp();
            } catch (jcuda.CudaException e) {
                throw CudaErrors.wrap("launching a " + description, "", e);
            }
        }

        /** Destroys the graph. Idempotent; after the backend's close (which destroyed it) it does nothing. */
        @Override
        public void close() {
            if (!closed) {
                enter();
                destroy();
            }
        }

        /** Destroys the graph and its instance; the backend's context must be current. */
        void destroy() {
            closed = true;
            liveGraphs.remove(this);
            try {
                CudaErrors.checkDriver(cuGraphExecDestroy(exec));
                CudaErrors.checkDriver(cuGraphDestroy(graph));
            } catch (jcuda.CudaException e) {
                throw CudaErrors.wrap("destroying a " + description, "", e);
            }
        }
    }

    /**
     * Fails an op that a step being captured must not make, before it reaches the driver (which would
     * invalidate the capture, or wait for ever), with the error CUDA gives such an op; the capture then ends
     * (see {@link #capture}).
     */
    private void requireNotCapturing(String op) {
        if (capturing) {
            throw new CudaException(op, "", "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED", "not while a step is being"
                    + " captured into a CUDA graph: a captured step may only queue kernels, cuBLAS calls and device"
                    + " copies on tensors that exist already; no allocation, no copy to or from the host, no wait",
                    null);
        }
    }

    // ---- lifecycle ----------------------------------------------------------------------------

    /**
     * Waits for queued work, then releases, in reverse order of creation: the step graphs not closed yet,
     * the cuBLAS handle, the modules, all device memory (every tensor of this backend becomes invalid), the
     * stream and the primary context. Idempotent; throws the first failure after trying every step.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        RuntimeException first = null;
        try {
            enter();
            waitForStream("close");
        } catch (RuntimeException e) {
            first = e;
        }
        closed = true;
        first = release(first);
        if (first != null) {
            throw first;
        }
    }

    private void releaseQuietly(Throwable cause) {
        closed = true;
        RuntimeException e = release(null);
        if (e != null) {
            cause.addSuppressed(e);
        }
    }

    /** Releases whatever was created, each step tried even if an earlier one failed. */
    private RuntimeException release(RuntimeException first) {
        Runnable[] steps = {
            () -> {
                if (opTimings != null) { // timing never stopped: its events go with the backend
                    List<OpTiming> timings = opTimings;
                    opTimings = null;
                    RuntimeException failure = destroyEvents(eventsOf(timings), "close", null);
                    if (failure != null) {
                        throw failure;
                    }
                }
            },
            () -> {
                for (CudaStepGraph graph : new ArrayList<>(liveGraphs)) {
                    graph.destroy(); // before the memory its kernels point to
                }
            },
            () -> {
                if (sideCublas != null) {
                    sideCublas.close();
                }
            },
            () -> {
                if (cublas != null) {
                    cublas.close();
                }
            },
            () -> {
                if (kernels != null) {
                    kernels.close();
                }
            },
            () -> {
                if (arena != null) {
                    arena.close();
                }
            },
            () -> {
                if (eventsCreated) {
                    eventsCreated = false;
                    CudaErrors.checkDriver(cuEventDestroy(forked));
                    CudaErrors.checkDriver(cuEventDestroy(joined));
                }
            },
            () -> {
                if (sideStreamCreated) {
                    sideStreamCreated = false;
                    CudaErrors.checkDriver(cuStreamDestroy(sideStream));
                }
            },
            () -> {
                if (streamCreated) {
                    streamCreated = false;
                    CudaErrors.checkDriver(cuStreamDestroy(stream));
                }
            },
            () -> {
                if (contextRetained) {
                    contextRetained = false;
                    CudaErrors.checkDriver(cuDevicePrimaryCtxRelease(device));
                }
            },
        };
        for (Runnable step : steps) {
            try {
                step.run();
            } catch (jcuda.CudaException e) {
                first = first != null ? first : CudaErrors.wrap("close", "", e);
            } catch (RuntimeException e) {
                first = first != null ? first : e;
            }
        }
        return first;
    }

    // ---- launching ----------------------------------------------------------------------------

    /**
     * Queues {@code function} on the stream with the given launch shape and kernel parameters (a pointer
     * to one pointer per parameter, JCuda's convention). Nothing is launched for an empty shape. Errors
     * name the kernel and the operands' shapes.
     */
    private void launch(String kernelName, CUfunction function, Launch shape, Pointer parameters, Tensor... operands) {
        if (shape.isEmpty()) {
            return;
        }
        opQueued(kernelName);
        try {
            CudaErrors.checkDriver(cuLaunchKernel(function, shape.grid(), 1, 1, shape.block(), 1, 1, 0, current,
                    parameters, null));
            afterOp();
        } catch (jcuda.CudaException e) {
            throw failed(kernelName + " (grid " + shape.grid() + ", block " + shape.block() + ")", e, operands);
        }
    }

    /**
     * Notes an op about to be queued: its name for error reports, the count, and, while ops are timed
     * ({@link #startTimingOps}), an event before it on the stream.
     */
    private void opQueued(String name) {
        lastOp = name;
        queuedOperations++;
        if (opTimings != null) {
            CUevent start = new CUevent();
            CudaErrors.checkDriver(cuEventCreate(start, CUevent_flags.CU_EVENT_DEFAULT));
            opTimings.add(new OpTiming(name, current == sideStream, start));
            CudaErrors.checkDriver(cuEventRecord(start, current));
        }
    }

    /**
     * After an op was queued: while ops are timed, the event after it; with {@code gradscope.cuda.syncEachOp},
     * a wait, so that a fault is reported by its own op (not while a step is captured, when nothing runs; a
     * graph's launch waits for the whole graph).
     */
    private void afterOp() {
        if (opTimings != null && !opTimings.isEmpty() && opTimings.get(opTimings.size() - 1).end == null) {
            OpTiming timing = opTimings.get(opTimings.size() - 1);
            CUevent end = new CUevent();
            CudaErrors.checkDriver(cuEventCreate(end, CUevent_flags.CU_EVENT_DEFAULT));
            timing.end = end;
            CudaErrors.checkDriver(cuEventRecord(end, current));
        }
        if (SYNC_EACH_OP && !capturing) {
            CudaErrors.checkDriver(cuStreamSynchronize(current));
        }
    }

    /** Waits for the stream; an asynchronous fault is reported with the last op queued. */
    private void waitForStream(String op, Tensor... operands) {
        requireNotCapturing(op);
        try {
            // Main first: on the CUDA emulator, which runs queued work when it is needed, this leaves the side
            // stream's work to run as late as the waits allow, so that a missing join shows (on a GPU the
            // order of the two waits does not matter).
            CudaErrors.checkDriver(cuStreamSynchronize(stream));
            CudaErrors.checkDriver(cuStreamSynchronize(sideStream));
        } catch (jcuda.CudaException e) {
            String name = String.valueOf(e.getMessage()).trim();
            String description = CudaErrors.describe(name);
            throw new CudaException(op, CudaException.describe(operands), name,
                    (description == null ? "" : description + "; ") + "raised by an op queued since the last wait,"
                            + " the last being " + lastOp + " (run with -Dgradscope.cuda.syncEachOp=true to find it)",
                    e);
        }
    }

    private CudaException failed(String op, jcuda.CudaException e, Tensor... operands) {
        return CudaErrors.wrap(op, CudaException.describe(operands), e);
    }

    /** Makes the backend's context current on this thread; every op starts here. */
    private void enter() {
        if (closed) {
            throw new IllegalStateException("the CUDA backend is closed");
        }
        try {
            CudaErrors.checkDriver(cuCtxSetCurrent(context));
        } catch (jcuda.CudaException e) {
            throw CudaErrors.wrap("making the CUDA context current", "", e);
        }
    }

    // ---- kernel parameters --------------------------------------------------------------------

    private static Pointer arg(int value) {
        return Pointer.to(new int[] {value});
    }

    private static Pointer arg(float value) {
        return Pointer.to(new float[] {value});
    }

    private static Pointer arg(long value) {
        return Pointer.to(new long[] {value});
    }

    private static Pointer arg(double value) {
        return Pointer.to(new double[] {value});
    }

    private Pointer arg(Tensor t) {
        return Pointer.to(pointer(t));
    }

    private Pointer arg(DeviceArena.Block block) {
        return Pointer.to(block.pointer(0));
    }

    /** A tensor's address, or NULL for a missing optional tensor. */
    private Pointer argOrNull(Tensor t) {
        return Pointer.to(t == null ? NULL : pointer(t));
    }

    // ---- checks -------------------------------------------------------------------------------

    /** The device address of a tensor's first element; fails for a tensor of another backend. */
    private CUdeviceptr pointer(Tensor t) {
        return storage(t).pointer(t.offset());
    }

    private CudaStorage storage(Tensor t) {
        if (!(t.storage() instanceof CudaStorage s) || s.backend() != this) {
            throw new IllegalArgumentException("tensor " + t + " is not on this CUDA backend");
        }
        return s;
    }

    private static void requireFloats(Tensor... tensors) {
        for (Tensor t : tensors) {
            OpChecks.requireDType(t, DType.FLOAT32);
        }
    }

    /** The activation parameter, when given, is FLOAT32; the reference reads it before the other operands. */
    private static void requireFloatParameter(Tensor param) {
        if (param != null) {
            requireFloats(param);
        }
    }

    private static void requireIndexable(String op, long size) {
        if (size > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(op + ": the CUDA kernels index tensors with int; " + size
                    + " elements is too many");
        }
    }
}
