package dev.gradscope.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.data.Dataset;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.nn.Adagrad;
import dev.gradscope.nn.Adam;
import dev.gradscope.nn.Adamax;
import dev.gradscope.nn.Initializer;
import dev.gradscope.nn.Loss;
import dev.gradscope.nn.Mlp;
import dev.gradscope.nn.Nadam;
import dev.gradscope.nn.Optimizer;
import dev.gradscope.nn.RmsProp;
import dev.gradscope.nn.Sequential;
import dev.gradscope.nn.Sgd;
import dev.gradscope.tensor.Backend;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * How many device ops one training step of the chapter's MLP (784-512-256-128-64-10, ReLU, softmax
 * cross-entropy, Adam) calls, counted on the CPU backend through a proxy that sees every {@link Backend}
 * call the layers, the loss, the optimizer and the trainer make, and that says it does not share host
 * memory, as a GPU does (the trainer then reads gradient norms once per epoch, not before each update). On
 * the GPU each op is one kernel or one cuBLAS call (the reductions among them finish in their own last
 * block; but batch normalization of a batch of more than 256 rows takes two kernels each way): the GPU's
 * kernels per step are these counts (CudaBackendTest and BenchOnGpuTest count the queued
 * ops there, on smaller models and on this one).
 *
 * <p>Per step: per Dense layer a GEMM and its fused bias + activation
 * (the output layer its GEMM alone: the loss adds its bias and fuses the softmax, and training never reads
 * the probabilities); the loss, which also writes the output layer's bias gradient; per hidden Dense layer
 * backward its fused activation backward + bias gradient; per Dense layer the GEMM for dW and, but for the
 * first layer, the GEMM for dx; the next step's batch fetched (inputs and targets, beside the update);
 * the optimizer op, which also ends the step: it measures the per-layer gradient norms and stores them into
 * the step's row (graph-safe: the row comes from a device counter), counts the update in its device step
 * count and advances the trainer's step counter. The profiler adds no op: the weight and update norms ride on
 * the optimizer too (which also stores them into the step's row), the unit statistics on the backward pass.
 * The CPU stepping eagerly reads the gradient norms before the update, so they are an op of their own there.
 */
class OpsPerStepTest {
    /** Calls that move data between host and device or describe the backend: not device ops of a step. */
    private static final Set<String> NOT_OPS = Set.of("name", "description", "allocate", "fromHost",
            "copyFromHost", "toHostFloats", "toHostInts", "synchronize", "sharesHostMemory", "close",
            "queuedOperations", "supportsGraphs", "aside", "joinAside");

    /** 5 GEMMs + 4 fused bias + activation + the loss (with the output bias and its gradient) + 4 fused
     *  activation backward + bias gradient + 5 dW GEMMs + 4 dx GEMMs + the next batch's fetch + Adam (with the
     *  gradient norms, stored into their row, and the step counter's advance). */
    static final int CHAPTER_MLP_OPS_PER_STEP = 1 + 5 + 4 + 1 + 4 + 5 + 4 + 1;

    /** What the profiler adds: nothing (see the class comment). */
    static final int PROFILER_OPS_PER_STEP = 0;

    /** What a Dropout after each of the 4 hidden layers adds: its forward and its backward, one op each. */
    static final int DROPOUT_OPS_PER_STEP = 4 * 2;

    /**
     * What batch normalization adds to each of the 4 hidden layers, Dense (linear) -> BatchNormalization ->
     * Activation: the Dense layer's bias add and bias gradient take the place of its fused bias + activation ops,
     * and the BatchNormalization and the activation layer each add a forward and a backward op.
     */
    static final int BATCH_NORM_OPS_PER_STEP = 4 * 4;

    /**
     * The same count whichever optimizer ends the step, weight decay and RMSprop's buffers included: each is
     * one op (its weight decay inside the update).
     */
    @ParameterizedTest
    @ValueSource(strings = {"adam", "adamw", "sgd", "rmsprop", "amsgrad", "nadam", "adamax", "adagrad"})
    void oneStepOfTheChapterMlpCallsOneOpPerFusedStage(String optimizer) {
        String update = optimizer.equals("adam") || optimizer.equals("adamw") || optimizer.equals("amsgrad")
                ? "adamUpdate" : optimizer + "Update";
        for (boolean profiled : new boolean[] {false, true}) {
            List<String> step = opsOfTheSecondStep(profiled, false, OPTIMIZERS.get(optimizer), 0);
            assertEquals(CHAPTER_MLP_OPS_PER_STEP + (profiled ? PROFILER_OPS_PER_STEP : 0), step.size(),
                    (profiled ? "profiled" : "unprofiled") + " step: " + step);
            assertEquals("gemm", step.get(0), "the step's batch was fetched by the step before");
            assertEquals(List.of("gatherNextBatch", update), step.subList(step.size() - 2, step.size()),
                    "the next batch is fetched beside the update, which ends the step");
        }
    }

    /**
     * Each optimizer with all it can do: AdamW, SGD with Nesterov momentum and weight decay, RMSprop centered, and
     * Keras's others with a weight decay.
     */
    private static final Map<String, Supplier<Optimizer>> OPTIMIZERS = Map.of(
            "adam", Adam::new,
            "adamw", () -> new Adam(1e-3, 0.9, 0.999, 1e-7, 0.004),
            "sgd", () -> new Sgd(0.01, 0.9, true, 0.004),
            "rmsprop", () -> new RmsProp(1e-3, 0.9, 0.5, 1e-7, true, 0.004),
            "amsgrad", () -> new Adam(1e-3, 0.9, 0.999, 1e-7, 0.004, true),
            "nadam", () -> new Nadam(1e-3, 0.9, 0.999, 1e-7, 0.004),
            "adamax", () -> new Adamax(1e-3, 0.9, 0.999, 1e-7, 0.004),
            "adagrad", () -> new Adagrad(1e-3, 0.1, 1e-7, 0.004));

    @Test
    void dropoutAddsItsForwardAndBackwardAfterEachHiddenLayer() {
        for (boolean profiled : new boolean[] {false, true}) {
            List<String> step = opsOfTheSecondStep(profiled, false, 0.2);
            assertEquals(CHAPTER_MLP_OPS_PER_STEP + DROPOUT_OPS_PER_STEP, step.size(), "step: " + step);
            assertEquals(List.of("gemm", "biasActivationForward", "dropoutForward", "gemm"), step.subList(0, 4),
                    "the first hidden layer's output is dropped before the next layer's GEMM");
            assertEquals(4, step.stream().filter("dropoutBackward"::equals).count());
            int lastBackward = step.lastIndexOf("dropoutBackward");
            assertEquals(List.of("dropoutBackward", "biasActivationBackward", "gemm"),
                    step.subList(lastBackward, lastBackward + 3), "the gradient is masked before the first layer's");
        }
    }

    @Test
    void batchNormalizationAddsTwoLayersOfOneForwardAndOneBackwardOpEach() {
        for (boolean profiled : new boolean[] {false, true}) {
            List<String> step = opsOfTheSecondStep(profiled, false, Adam::new, 0, true);
            assertEquals(CHAPTER_MLP_OPS_PER_STEP + BATCH_NORM_OPS_PER_STEP, step.size(), "step: " + step);
            assertEquals(List.of("gemm", "addRowVectorAccumulate", "batchNormTrainingForward", "activationForward",
                    "gemm"), step.subList(0, 5), "the first hidden layer: product, bias, normalisation, activation");
            assertEquals(4, step.stream().filter("batchNormBackward"::equals).count());
            assertEquals(0, step.stream().filter(op -> op.startsWith("batchNormInference")).count(),
                    "training never normalises with the moving statistics");
            int lastBackward = step.lastIndexOf("batchNormBackward");
            assertEquals(List.of("batchNormBackward", "columnSums", "gemm"), step.subList(lastBackward,
                    lastBackward + 3), "the first layer's bias gradient and dW, no dx");
        }
        // Without it, nothing changes: the chapter MLP keeps its count exactly.
        assertEquals(CHAPTER_MLP_OPS_PER_STEP, opsOfTheSecondStep(false, false, Adam::new, 0, false).size());
        assertEquals(25, CHAPTER_MLP_OPS_PER_STEP);
    }

    @Test
    void theCpuSteppingEagerlyMeasuresTheGradientNormsBeforeTheUpdate() {
        List<String> step = opsOfTheSecondStep(false, true, 0);
        assertEquals(CHAPTER_MLP_OPS_PER_STEP + 1, step.size(), "step: " + step);
        assertEquals(List.of("segmentSumOfSquares", "gatherNextBatch", "adamUpdate"),
                step.subList(step.size() - 3, step.size()));
    }

    /**
     * The op names of the second training step, with or without the profiler, on a backend that says it shares
     * host memory (as the CPU) or not (as a GPU), with a Dropout of {@code dropout} after each hidden layer (none at
     * 0).
     */
    static List<String> opsOfTheSecondStep(boolean profiled, boolean sharesHostMemory) {
        return opsOfTheSecondStep(profiled, sharesHostMemory, Adam::new, 0);
    }

    /** {@link #opsOfTheSecondStep(boolean, boolean)} with Adam and a Dropout of {@code dropout}. */
    static List<String> opsOfTheSecondStep(boolean profiled, boolean sharesHostMemory, double dropout) {
        return opsOfTheSecondStep(profiled, sharesHostMemory, Adam::new, dropout);
    }

    /** {@link #opsOfTheSecondStep(boolean, boolean, double)} with the optimizer that {@code optimizer} makes. */
    static List<String> opsOfTheSecondStep(boolean profiled, boolean sharesHostMemory,
                                           Supplier<Optimizer> optimizer, double dropout) {
        return opsOfTheSecondStep(profiled, sharesHostMemory, optimizer, dropout, false);
    }

    /** {@link #opsOfTheSecondStep(boolean, boolean, Supplier, double)}, with batch normalization when asked. */
    static List<String> opsOfTheSecondStep(boolean profiled, boolean sharesHostMemory,
                                           Supplier<Optimizer> optimizer, double dropout, boolean batchNorm) {
        List<String> calls = new ArrayList<>();
        try (CpuBackend cpu = new CpuBackend()) {
            Backend counting = (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(),
                    new Class<?>[] {Backend.class}, (proxy, method, args) -> {
                        if (method.getName().equals("sharesHostMemory")) {
                            return sharesHostMemory;
                        }
                        if (!NOT_OPS.contains(method.getName())) {
                            calls.add(method.getName());
                        }
                        try {
                            return method.invoke(cpu, args);
                        } catch (InvocationTargetException e) {
                            throw e.getCause();
                        }
                    });
            Dataset train = MnistSubset.load().train().take(512);
            int[] marks = new int[3];
            Callback stepEnds = new Callback() {
                @Override
                public void onBatchEnd(int epoch, int step, RunningMetrics progress) {
                    marks[step + 1] = calls.size();
                }
            };
            try (Sequential model = Mlp.build(counting, 3, 784, Mlp.CHAPTER_HIDDEN, 10, Mlp.HiddenUnits.of("relu"),
                    Initializer.glorotUniform(), dropout, batchNorm)
                    .compile(optimizer.get(), Loss.CATEGORICAL_CROSSENTROPY, "accuracy")) {
                model.fit(train, FitOptions.builder().batchSize(256).epochs(1).verbose(0).shuffle(false)
                        .profiler(profiled ? new GradientProfiler() : null).callback(stepEnds).build());
            }
            return List.copyOf(calls.subList(marks[1], marks[2]));
        }
    }

    /** Prints the ops of one step, for a reader counting kernels by hand. */
    public static void main(String[] args) {
        for (boolean profiled : new boolean[] {false, true}) {
            List<String> step = opsOfTheSecondStep(profiled, false, 0);
            System.out.println((profiled ? "profiled: " : "unprofiled: ") + step.size() + " " + step);
        }
    }
}
