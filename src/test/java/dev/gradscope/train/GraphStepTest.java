package dev.gradscope.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.Tolerances;
import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.data.Batches;
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
import dev.gradscope.nn.Sequential;
import dev.gradscope.nn.RmsProp;
import dev.gradscope.nn.Sgd;
import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.StepEnd;
import dev.gradscope.tensor.StepSchedule;
import dev.gradscope.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The trainer's graph mode on the CPU, whose capture gives a graph that reruns the step ({@code emulateGraphs}):
 * the same parameters, bit for bit, as eager steps, also with several steps per graph; the capture schedule
 * (the first step of a batch size eager, the second captured, one graph for the full batches and one for
 * the last, smaller batch; with several steps per graph, graphs of that many, of the leftover full batches
 * and of the last batch); and when the trainer stays eager. The same against a real CUDA graph is in
 * {@code CudaBackendTest}.
 */
class GraphStepTest {
    /** 1000 rows in batches of 128: seven full steps and a last one of 104 rows. */
    private static final Dataset TRAIN = MnistSubset.load().train().take(1000);
    private static final int BATCH = 128;
    private static final int STEPS = 8;
    /** After an activation id: hidden layers of Dense (linear) -> BatchNormalization -> that activation. */
    private static final String BATCH_NORM = "+batch_norm";

    static Stream<Arguments> settings() {
        List<Arguments> settings = new ArrayList<>();
        for (String optimizer : new String[] {"adam", "sgd", "rmsprop"}) {
            for (boolean profiler : new boolean[] {true, false}) {
                settings.add(Arguments.of(optimizer, "relu", profiler, false, 0.0));
            }
        }
        settings.add(Arguments.of("adam", "maxout", true, false, 0.0)); // statistics outside the backward pass
        settings.add(Arguments.of("sgd", "tanh", true, true, 0.0)); // clipping by norm and by value
        settings.add(Arguments.of("adam", "relu", true, false, 0.3)); // masks drawn from the device counters
        settings.add(Arguments.of("sgd", "prelu", true, false, 0.5)); // a dropout after an activation layer
        // Batch normalization: its moving statistics updated inside the replayed step, with weight decay on
        settings.add(Arguments.of("rmsprop", "sigmoid" + BATCH_NORM, true, false, 0.0));
        settings.add(Arguments.of("adam", "relu" + BATCH_NORM, true, true, 0.3));
        // Keras's other optimizers: the step count, Adamax's bias correction, Nadam's schedule product on the device
        for (String optimizer : new String[] {"amsgrad", "nadam", "adamax", "adagrad"}) {
            for (boolean profiler : new boolean[] {true, false}) {
                settings.add(Arguments.of(optimizer, "relu", profiler, false, 0.0));
            }
        }
        return settings.stream();
    }

    @ParameterizedTest(name = "{0}, {1}, profiler {2}, clipping {3}, dropout {4}")
    @MethodSource("settings")
    void graphModeGivesTheEagerParametersBitForBit(String optimizer, String hidden, boolean profiler,
                                                    boolean clipping, double dropout) {
        Run eager = train(optimizer, hidden, profiler, clipping, false, 1, 3, dropout);
        Run graphs = train(optimizer, hidden, profiler, clipping, true, 1, 3, dropout);
        assertFalse(eager.history.graphs());
        assertTrue(graphs.history.graphs());
        assertArrayEquals(eager.parameters, graphs.parameters, "parameters after 3 epochs of " + STEPS + " steps");
        assertArrayEquals(eager.state, graphs.state, "non-trainable state (moving statistics) after 3 epochs");
        assertEquals(eager.history.metrics(), graphs.history.metrics(), "loss and accuracy per epoch");
        assertEquals(eager.iterations, graphs.iterations, "the optimizer's step count");
        assertEquals(eager.scalars, graphs.scalars, "the optimizer's scalar state (Nadam's u_product)");
        if (profiler) {
            List<Profile.StepStatistics> a = eager.history.profile().steps();
            List<Profile.StepStatistics> b = graphs.history.profile().steps();
            assertEquals(3 * STEPS, b.size());
            for (int i = 0; i < a.size(); i++) {
                assertArrayEquals(a.get(i).gradientNorms(), b.get(i).gradientNorms(), "gradient norms, step " + i);
                assertArrayEquals(a.get(i).weightNorms(), b.get(i).weightNorms(), "weight norms, step " + i);
                assertArrayEquals(a.get(i).updateNorms(), b.get(i).updateNorms(), "update norms, step " + i);
                assertTrue(Double.isFinite(b.get(i).updateNorms()[0]), "every replayed step measured its update");
            }
            assertEquals(eager.history.profile().units(), graphs.history.profile().units(), "unit statistics");
        }
    }

    /**
     * Several steps per graph: 3 (graphs of three steps, of the seventh full batch and of the last batch) and
     * 100 (the seven full batches as one graph), with the profiler, over two epochs: the second launches
     * every graph the first captured.
     */
    @ParameterizedTest(name = "{0}, {1} steps per graph")
    @CsvSource({"adam, 3", "sgd, 3", "rmsprop, 3", "adam, 100", "sgd, 100", "nadam, 3", "adamax, 3", "adagrad, 3",
        "amsgrad, 100", "adam-warmup, 2", "nadam-warmup, 2", "adamax-warmup, 2", "sgd-warmup, 2",
        "rmsprop-warmup, 2", "adagrad-warmup, 2"})
    void severalStepsPerGraphGiveTheEagerParametersBitForBit(String optimizer, int stepsPerGraph) {
        Run eager = train(optimizer, "relu", true, false, false, stepsPerGraph, 2, 0);
        Run graphs = train(optimizer, "relu", true, false, true, stepsPerGraph, 2, 0);
        assertEquals(1, eager.history.stepsPerGraph(), "eager steps: one at a time, whatever was asked");
        assertEquals(Math.min(stepsPerGraph, STEPS - 1), graphs.history.stepsPerGraph(), "at most the full batches");
        assertArrayEquals(eager.parameters, graphs.parameters, "parameters after 2 epochs of " + STEPS + " steps");
        assertEquals(eager.history.metrics(), graphs.history.metrics(), "loss and accuracy per epoch");
        assertEquals(eager.iterations, graphs.iterations, "the optimizer's step count");
        assertEquals(eager.scalars, graphs.scalars, "the optimizer's scalar state (Nadam's u_product)");
        List<Profile.StepStatistics> a = eager.history.profile().steps();
        List<Profile.StepStatistics> b = graphs.history.profile().steps();
        assertEquals(2 * STEPS, b.size());
        for (int i = 0; i < a.size(); i++) {
            assertArrayEquals(a.get(i).gradientNorms(), b.get(i).gradientNorms(), "gradient norms, step " + i);
            assertArrayEquals(a.get(i).weightNorms(), b.get(i).weightNorms(), "weight norms, step " + i);
            assertArrayEquals(a.get(i).updateNorms(), b.get(i).updateNorms(), "update norms, step " + i);
        }
        assertEquals(eager.history.profile().units(), graphs.history.profile().units(), "unit statistics");
    }

    /**
     * In-step hooks run only while a step runs eagerly or is captured (the rerunning graph calls them again,
     * but with the captured step's numbers): so the steps they are called for are the capture schedule.
     */
    @Test
    void eachBatchSizeRunsOnceEagerlyThenIsCapturedOnce() {
        StepRecorder recorder = new StepRecorder();
        History h = fit(model(new Adam(), "relu"), builder().callback(recorder), true);
        assertTrue(h.graphs());
        // Epoch 0: step 0 eager (128 rows), step 1 captured and replayed after; step 7 (104 rows) eager.
        // Epoch 1: step 7 captured. Epoch 2: replays only.
        assertEquals(List.of("0/0", "0/1", "0/7", "1/7"), List.copyOf(recorder.inStep));
        assertEquals(3 * STEPS, recorder.batchEnds, "onBatchEnd runs on the host for every step");

        StepRecorder eager = new StepRecorder();
        fit(model(new Adam(), "relu"), builder().callback(eager).graph(false), true);
        assertEquals(3 * STEPS, eager.inStep.size(), "eager: every step calls the in-step hooks");
    }

    /**
     * Three steps per graph. A rerunning graph calls the in-step hooks at every launch, with the captured
     * steps' numbers, so the hooks' calls in order show every capture and launch.
     */
    @Test
    void threeStepsPerGraphCaptureAGraphOfThreeOneOfTheLeftoverAndOneOfTheLastBatch() {
        StepRecorder recorder = new StepRecorder();
        History h = fit(model(new Adam(), "relu"), builder().callback(recorder).stepsPerGraph(3), true);
        assertTrue(h.graphs());
        assertEquals(3, h.stepsPerGraph());
        // Epoch 0: steps 0-2, the first group of 128 rows, eager; 3-5 captured as the 3-step graph and launched;
        // 6, the leftover of 7 full batches, captured as a 1-step graph and launched; 7 (104 rows) eager.
        // Epoch 1: the 3-step graph twice, the 1-step graph, the last batch captured: four launches.
        // Epoch 2: the same four launches, nothing captured.
        assertEquals(List.of(
                List.of("0/0", "0/1", "0/2", "0/3", "0/4", "0/5", "0/6", "0/7"),
                List.of("0/3", "0/4", "0/5", "0/3", "0/4", "0/5", "0/6", "1/7"),
                List.of("0/3", "0/4", "0/5", "0/3", "0/4", "0/5", "0/6", "1/7")), recorder.inStepByEpoch);
        List<Integer> everyStep = List.of(0, 1, 2, 3, 4, 5, 6, 7);
        assertEquals(List.of(everyStep, everyStep, everyStep), recorder.batchEndsByEpoch,
                "onBatchEnd once per step, in order, also for the steps of one launch");
        // The steps of one launch read the running metrics at the graph's end: steps 3-5 and 6 of epoch 2.
        List<double[]> running = recorder.runningByEpoch.get(2);
        assertArrayEquals(running.get(5), running.get(3));
        assertArrayEquals(running.get(5), running.get(4));
        assertFalse(Arrays.equals(running.get(5), running.get(6)), "the next launch, one step more");
    }

    /** More steps per graph than full batches: from the second epoch on, the full batches are one launch. */
    @Test
    void moreStepsPerGraphThanFullBatchesMakeTheEpochsFullBatchesOneGraph() {
        StepRecorder recorder = new StepRecorder();
        History h = fit(model(new Adam(), "relu"), builder().callback(recorder).stepsPerGraph(1000), true);
        assertEquals(STEPS - 1, h.stepsPerGraph(), "clamped to the 7 full batches");
        List<String> secondEpoch = List.of("1/0", "1/1", "1/2", "1/3", "1/4", "1/5", "1/6", "1/7");
        assertEquals(List.of(
                List.of("0/0", "0/1", "0/2", "0/3", "0/4", "0/5", "0/6", "0/7"), // the first group: all eager
                secondEpoch, // the 7-step graph and the last batch's, both captured here
                secondEpoch), recorder.inStepByEpoch); // both launched
        assertEquals(3 * STEPS, recorder.batchEnds);
    }

    @Test
    void stepsPerGraphAreAtMostTheFullBatches() {
        assertEquals(3, Trainer.stepsPerGraph(3, 1000, 128));
        assertEquals(7, Trainer.stepsPerGraph(1000, 1000, 128));
        assertEquals(1, Trainer.stepsPerGraph(8, 100, 128), "fewer rows than a batch: one batch of them");
    }

    @Test
    void movedModelBuffersAreCapturedAgain() {
        StepRecorder recorder = new StepRecorder();
        Sequential model = model(new Adam(), "relu");
        Callback grow = new Callback() {
            @Override
            public void onEpochEnd(int epoch, Map<String, Double> logs) {
                if (epoch == 0) {
                    model.reserveBatch(2 * BATCH); // the layers' buffers move
                }
            }
        };
        fit(model, builder().callback(recorder).callback(grow), true);
        assertEquals(List.of("0/0", "0/1", "0/7", "1/0", "1/1", "1/7", "2/7"), List.copyOf(recorder.inStep));
    }

    @Test
    void aCallbackThatIsNotGraphSafeKeepsEveryStepEager() {
        Callback unsafe = new Callback() {
            @Override
            public void onGradientsComputed(int epoch, int step) {
            }
        };
        Callback hostOnly = new Callback() {
            @Override
            public void onBatchEnd(int epoch, int step, RunningMetrics progress) {
            }
        };
        assertFalse(unsafe.graphSafe(), "overrides an in-step hook without saying it is graph-safe");
        assertTrue(hostOnly.graphSafe(), "does nothing inside the step");
        assertTrue(new GradientProfiler().graphSafe());
        assertFalse(fit(model(new Adam(), "relu"), builder().callback(unsafe), true).graphs());
        assertTrue(fit(model(new Adam(), "relu"), builder().callback(hostOnly), true).graphs());
        assertFalse(fit(model(new Adam(), "relu"), builder(), false).graphs(), "the CPU has no device graphs");
    }

    /**
     * fit, eager and in graphs, trains each epoch on a fresh shuffle drawn from the model's generator in epoch
     * order (the next epoch's is drawn while the device still runs this one's steps), batch after batch: the
     * parameters of a loop written out by hand with the same draws, the same gathers and the same ops, bit
     * for bit. The last batch is smaller (1000 rows in batches of 128). With dropout, each step's masks are those
     * of its (epoch, step of the epoch). With label smoothing, the batches' targets are the smoothed one-hot rows.
     */
    @ParameterizedTest(name = "dropout {0}, label smoothing {1}")
    @CsvSource({"0, 0", "0.3, 0", "0, 0.1"})
    void eachEpochTrainsOnTheNextShuffleOfTheModelsGenerator(double dropout, double labelSmoothing) {
        float[] byHand;
        try (Sequential model = model(new Adam(), "relu", dropout, labelSmoothing)) {
            Backend cpu = model.backend();
            model.build(TRAIN.featureCount());
            model.reserveBatch(BATCH);
            int n = TRAIN.rows();
            try (Tensor features = cpu.fromHost(TRAIN.features(), n, TRAIN.featureCount());
                 Tensor labels = cpu.fromHost(TRAIN.oneHotLabels(labelSmoothing), n, TRAIN.classCount());
                 Tensor totals = cpu.allocate(DType.FLOAT32, 2)) {
                for (int epoch = 0; epoch < 3; epoch++) {
                    try (Tensor order = cpu.fromHost(Batches.permutation(n, model.random()), n)) {
                        for (int first = 0; first < n; first += BATCH) {
                            int rows = Math.min(BATCH, n - first);
                            try (Tensor x = cpu.allocate(DType.FLOAT32, rows, TRAIN.featureCount());
                                 Tensor y = cpu.allocate(DType.FLOAT32, rows, TRAIN.classCount())) {
                                cpu.gatherRows(features, order, first, TRAIN.featureScale(), x);
                                cpu.gatherRows(labels, order, first, 1f, y);
                                try (Tensor step = cpu.fromHost(new int[] {epoch, first / BATCH}, 2)) {
                                    model.computeGradients(x, y, totals, step);
                                }
                                model.applyGradients();
                            }
                        }
                    }
                }
            }
            byHand = model.parameters().toFloatArray();
        }
        for (boolean graphs : new boolean[] {false, true}) {
            try (Sequential model = model(new Adam(), "relu", dropout, labelSmoothing)) {
                assertEquals(graphs, fit(model, builder(), graphs).graphs());
                assertArrayEquals(byHand, model.parameters().toFloatArray(), "graphs " + graphs);
            }
        }
    }

    /**
     * A callback's {@link Callback#onParametersUpdated} runs before the step's end: it still sees the step's own
     * row in {@link TrainingRun#stepIndex()}, eager and in graphs (the optimizer then leaves the advance to an
     * op after the hook). A callback without that hook lets the optimizer advance it: the step ends in the update.
     */
    @Test
    void theHookAfterTheUpdateSeesTheStepsOwnRow() {
        for (boolean graphs : new boolean[] {false, true}) {
            RowMarker marker = new RowMarker();
            assertTrue(marker.hooksParameterUpdates());
            assertFalse(new GradientProfiler().hooksParameterUpdates());
            History h = fit(model(new Adam(), "relu"), builder().callback(marker), graphs);
            assertEquals(graphs, h.graphs());
            assertEquals(List.of(8, 8, 8), marker.rowsMarkedPerEpoch, "graphs " + graphs + ": every step's row, once");
        }
    }

    /**
     * An optimizer that does not take over the step end ({@link Optimizer#endsSteps} false, as a user's own
     * might not): the trainer measures the gradient norms and advances the step index in ops of its own, and
     * training gives Sgd's parameters and gradient norms, bit for bit, eager and in graphs.
     */
    @Test
    void anOptimizerThatDoesNotEndStepsLeavesTheStepEndToTheTrainer() {
        for (boolean graphs : new boolean[] {false, true}) {
            History[] histories = new History[2];
            float[][] parameters = new float[2][];
            for (int way = 0; way < 2; way++) {
                Sgd sgd = new Sgd(0.05, 0.9, true);
                Optimizer optimizer = way == 0 ? sgd : new Optimizer() {
                    @Override
                    public void build(Backend backend, int parameterCount) {
                        sgd.build(backend, parameterCount);
                    }

                    @Override
                    public void step(Tensor parameters, Tensor gradients, StepEnd end) {
                        assertTrue(end.gradientNorms() == null && end.counter() == null, "only the update norms");
                        sgd.step(parameters, gradients, end);
                    }

                    @Override
                    public double learningRate() {
                        return sgd.learningRate();
                    }

                    @Override
                    public void setLearningRate(double learningRate) {
                        sgd.setLearningRate(learningRate);
                    }

                    @Override
                    public String id() {
                        return "sgd";
                    }

                    @Override
                    public Map<String, Object> config() {
                        return sgd.config();
                    }

                    @Override
                    public void close() {
                        sgd.close();
                    }
                };
                try (Sequential model = model(optimizer, "relu")) {
                    histories[way] = fit(model, builder().profiler(new GradientProfiler()), graphs);
                    parameters[way] = model.parameters().toFloatArray();
                }
            }
            assertArrayEquals(parameters[0], parameters[1], "graphs " + graphs);
            List<Profile.StepStatistics> a = histories[0].profile().steps();
            List<Profile.StepStatistics> b = histories[1].profile().steps();
            assertEquals(3 * STEPS, b.size());
            for (int i = 0; i < a.size(); i++) {
                assertArrayEquals(a.get(i).gradientNorms(), b.get(i).gradientNorms(), "gradient norms, step " + i);
                assertArrayEquals(a.get(i).updateNorms(), b.get(i).updateNorms(), "update norms, step " + i);
            }
        }
    }

    /**
     * A callback that reads the gradient norms in the step ({@link Callback#readsGradientNormsInStep}, by
     * default any that overrides onGradientsComputed) finds the step's row already measured there; one that
     * says it does not lets the optimizer measure them, after the hook (in graph mode, where the CPU leaves
     * them to the update).
     */
    @Test
    void gradientNormsAreMeasuredBeforeTheHookOfACallbackThatReadsThem() {
        for (boolean reads : new boolean[] {true, false}) {
            NormReader reader = new NormReader(reads);
            assertEquals(reads, reader.readsGradientNormsInStep());
            assertTrue(fit(model(new Adam(), "relu"), builder().callback(reader), true).graphs());
            assertEquals(3 * STEPS, reader.steps);
            assertEquals(reads ? 3 * STEPS : 0, reader.measuredAtTheHook, "reads " + reads);
        }
    }

    /**
     * Compares, for every step, the row of the gradient-norm table seen at onGradientsComputed with the row at
     * the epoch's end (the CPU reads both on the host, the graph being a rerun of the step's code).
     */
    private static final class NormReader implements Callback {
        private final boolean reads;
        private final List<float[]> seen = new ArrayList<>();
        private TrainingRun run;
        int steps;
        int measuredAtTheHook;

        NormReader(boolean reads) {
            this.reads = reads;
        }

        @Override
        public void onTrainBegin(TrainingRun run) {
            this.run = run;
        }

        @Override
        public void onGradientsComputed(int epoch, int step) {
            int row = run.stepIndex().toIntArray()[0];
            seen.add(run.squaredGradientNorms().rows(row, 1).toFloatArray());
        }

        @Override
        public void onEpochEnd(int epoch, Map<String, Double> logs) {
            for (int s = 0; s < seen.size(); s++) {
                steps++;
                if (Arrays.equals(seen.get(s), run.squaredGradientNorms().rows(s, 1).toFloatArray())) {
                    measuredAtTheHook++;
                }
            }
            seen.clear();
        }

        @Override
        public boolean readsGradientNormsInStep() {
            return reads;
        }

        @Override
        public boolean graphSafe() {
            return true;
        }
    }

    /** Marks row stepIndex of a per-step table after each update; counts the marked rows per epoch. */
    private static final class RowMarker implements Callback {
        final List<Integer> rowsMarkedPerEpoch = new ArrayList<>();
        private TrainingRun run;
        private Tensor table;
        private Tensor one;

        @Override
        public void onTrainBegin(TrainingRun run) {
            this.run = run;
            Backend backend = run.model().backend();
            table = backend.allocate(DType.FLOAT32, run.stepsPerEpoch(), 1);
            one = backend.fromHost(new float[] {1f}, 1);
        }

        @Override
        public void onEpochBegin(int epoch) {
            run.model().backend().fill(table, 0f);
        }

        @Override
        public void onParametersUpdated(int epoch, int step) {
            run.model().backend().copyToRow(one, table, run.stepIndex());
        }

        @Override
        public void onEpochEnd(int epoch, Map<String, Double> logs) {
            float[] marks = table.toFloatArray();
            int marked = 0;
            for (int s = 0; s < marks.length; s++) {
                assertEquals(s < run.stepsThisEpoch() ? 1f : 0f, marks[s], "row " + s);
                marked += (int) marks[s];
            }
            rowsMarkedPerEpoch.add(marked);
        }

        @Override
        public void onTrainEnd(History history) {
            Tensor.closeAll(table, one);
        }

        @Override
        public boolean graphSafe() {
            return true;
        }
    }

    /**
     * In graph mode the host reads the gradient norms once per epoch (as on a GPU): a non-finite step is found
     * at the epoch's end, named as in eager mode, and training stops there, after that epoch's updates.
     */
    @Test
    void graphModeFindsANonFiniteStepAtTheEndOfItsEpoch() {
        Sequential model = Mlp.build(new CpuBackend(), 11, 784, new int[] {32, 16}, 10, Mlp.HiddenUnits.of("relu"),
                Initializer.parse("random_normal:1e9")).compile(new Sgd(0.01), Loss.CATEGORICAL_CROSSENTROPY);
        History h = fit(model, builder(), true);
        assertTrue(h.graphs());
        NonFiniteEvent event = h.nonFinite();
        assertEquals(0, event.epoch());
        assertEquals(0, event.step());
        assertEquals("dense_2", event.layerName(), "the output layer, first in backpropagation order");
        assertTrue(event.stopped());
        assertEquals(1, h.epochs(), "stopped after the epoch in which it happened");
    }

    /**
     * Records the (epoch, step) of every in-step hook call, once ({@code inStep}) and per epoch in order
     * ({@code inStepByEpoch}), and the steps of the host's onBatchEnd calls.
     */
    private static final class StepRecorder implements Callback {
        final Set<String> inStep = new LinkedHashSet<>();
        final List<List<String>> inStepByEpoch = new ArrayList<>();
        final List<List<Integer>> batchEndsByEpoch = new ArrayList<>();
        final List<List<double[]>> runningByEpoch = new ArrayList<>();
        int batchEnds;

        @Override
        public void onEpochBegin(int epoch) {
            inStepByEpoch.add(new ArrayList<>());
            batchEndsByEpoch.add(new ArrayList<>());
            runningByEpoch.add(new ArrayList<>());
        }

        @Override
        public void onGradientsComputed(int epoch, int step) {
            inStep.add(epoch + "/" + step);
            inStepByEpoch.get(inStepByEpoch.size() - 1).add(epoch + "/" + step);
        }

        @Override
        public void onBatchEnd(int epoch, int step, RunningMetrics progress) {
            batchEnds++;
            batchEndsByEpoch.get(epoch).add(step);
            runningByEpoch.get(epoch).add(progress.read());
        }

        @Override
        public boolean graphSafe() {
            return true;
        }
    }

    private record Run(History history, float[] parameters, long iterations, float[] state,
                       Map<String, Float> scalars) {
    }

    private static Run train(String optimizer, String hidden, boolean profiler, boolean clipping, boolean graphs,
                             int stepsPerGraph, int epochs, double dropout) {
        // RMSprop with all its buffers and a weight decay; SGD with Nesterov momentum and a weight decay.
        Supplier<Optimizer> make = () -> switch (optimizer) {
            case "adam" -> new Adam(2e-3);
            case "adam-warmup" -> scheduled(new Adam(2e-3), WARMUP_AND_DECAY);
            case "nadam-warmup" -> scheduled(new Nadam(2e-3, 0.9, 0.999, 1e-7, 0.004), WARMUP_AND_DECAY);
            case "adamax-warmup" -> scheduled(new Adamax(2e-3, 0.9, 0.999, 1e-7, 0.004), WARMUP_AND_DECAY);
            case "sgd-warmup" -> scheduled(new Sgd(0.05, 0.9, true, 0.01), WARMUP_AND_DECAY);
            case "rmsprop-warmup" -> scheduled(new RmsProp(1e-3, 0.9, 0.5, 1e-7, true, 0.01), WARMUP_AND_DECAY);
            case "adagrad-warmup" -> scheduled(new Adagrad(1e-2, 0.1, 1e-7, 0.004), WARMUP_AND_DECAY);
            case "rmsprop" -> new RmsProp(1e-3, 0.9, 0.5, 1e-7, true, 0.01);
            // Keras's others, each with a weight decay
            case "amsgrad" -> new Adam(2e-3, 0.9, 0.999, 1e-7, 0.004, true);
            case "nadam" -> new Nadam(2e-3, 0.9, 0.999, 1e-7, 0.004);
            case "adamax" -> new Adamax(2e-3, 0.9, 0.999, 1e-7, 0.004);
            case "adagrad" -> new Adagrad(1e-2, 0.1, 1e-7, 0.004);
            default -> new Sgd(0.05, 0.9, true, 0.01);
        };
        try (Sequential model = model(make.get(), hidden, dropout)) {
            FitOptions.Builder options = builder().profiler(profiler ? new GradientProfiler() : null)
                    .stepsPerGraph(stepsPerGraph).epochs(epochs);
            if (clipping) {
                options.clipGlobalNorm(0.5).clipValue(0.01);
            }
            History h = fit(model, options, graphs);
            return new Run(h, model.parameters().toFloatArray(), model.optimizer().iterations(),
                    model.state() == null ? new float[0] : model.state().toFloatArray(),
                    model.optimizer().stateScalars());
        }
    }

    /**
     * A per-step schedule whose warmup ends inside the first epoch (step 5 of 8) and whose cosine ends in the
     * second (step 13), each inside a graph of 2 steps.
     */
    private static final StepSchedule WARMUP_AND_DECAY = StepSchedule.cosineDecay(1e-4, 5, 8, 0.1);

    private static Optimizer scheduled(Optimizer optimizer, StepSchedule schedule) {
        optimizer.setStepSchedule(schedule);
        return optimizer;
    }

    /**
     * Under a per-step schedule each epoch logs the rate of its last update (steps 7 and 15 for two epochs of 8:
     * the warmup's rate has gone, the second is past the cosine's end); and the schedule does change the updates:
     * the parameters differ from those of the same run at the constant rate.
     */
    @Test
    void aStepScheduleLogsTheRateOfEachEpochsLastUpdate() {
        Run scheduled = train("adam-warmup", "relu", false, false, true, 2, 2, 0);
        assertEquals(List.of(WARMUP_AND_DECAY.rate(2e-3, 7), WARMUP_AND_DECAY.rate(2e-3, 15)),
                scheduled.history.get("learning_rate"));
        assertEquals(2e-3 * 0.1, WARMUP_AND_DECAY.rate(2e-3, 15), Tolerances.SCHEDULE_RATE_OF_PEAK * 2e-3,
                "past the cosine: alpha times the rate");
        assertEquals(16, scheduled.iterations);
        Run constant = train("adam", "relu", false, false, true, 2, 2, 0);
        assertFalse(Arrays.equals(constant.parameters, scheduled.parameters), "the schedule changed the updates");
        assertEquals(List.of(2e-3, 2e-3), constant.history.get("learning_rate"));
        // SGD (with Nesterov momentum) likewise, which counts its updates on the device as Keras counts them
        Run sgd = train("sgd-warmup", "relu", false, false, true, 2, 2, 0);
        assertEquals(List.of(WARMUP_AND_DECAY.rate(0.05, 7), WARMUP_AND_DECAY.rate(0.05, 15)),
                sgd.history.get("learning_rate"));
        assertEquals(16, sgd.iterations);
        Run plainSgd = train("sgd", "relu", false, false, true, 2, 2, 0);
        assertEquals(16, plainSgd.iterations, "counted without a schedule too");
        assertFalse(Arrays.equals(plainSgd.parameters, sgd.parameters), "the schedule changed SGD's updates");
    }

    private static History fit(Sequential model, FitOptions.Builder options, boolean emulateGraphs) {
        return Trainer.fit(model, TRAIN, options.build(), emulateGraphs);
    }

    private static FitOptions.Builder builder() {
        return FitOptions.builder().batchSize(BATCH).epochs(3).verbose(0).profiler(null);
    }

    private static Sequential model(Optimizer optimizer, String hidden) {
        return model(optimizer, hidden, 0);
    }

    private static Sequential model(Optimizer optimizer, String hidden, double dropout) {
        return model(optimizer, hidden, dropout, 0);
    }

    private static Sequential model(Optimizer optimizer, String hidden, double dropout, double labelSmoothing) {
        boolean batchNorm = hidden.endsWith(BATCH_NORM);
        String activation = batchNorm ? hidden.substring(0, hidden.length() - BATCH_NORM.length()) : hidden;
        Mlp.HiddenUnits units = activation.equals(Mlp.MAXOUT)
                ? new Mlp.HiddenUnits(Mlp.MAXOUT, Double.NaN, false, 2) : Mlp.HiddenUnits.of(activation);
        return Mlp.build(new CpuBackend(), 7, 784, new int[] {32, 16}, 10, units, Initializer.glorotUniform(), dropout,
                batchNorm).compile(optimizer, Loss.CATEGORICAL_CROSSENTROPY, labelSmoothing, "accuracy");
    }
}
