package dev.gradscope.train;

import dev.gradscope.data.Batches;
import dev.gradscope.data.Dataset;
import dev.gradscope.nn.Optimizer;
import dev.gradscope.nn.Sequential;
import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.GradientNorms;
import dev.gradscope.tensor.StepEnd;
import dev.gradscope.tensor.StepGraph;
import dev.gradscope.tensor.StepSchedule;
import dev.gradscope.tensor.Tensor;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.IntStream;

/**
 * The training loop behind {@link Sequential#fit}: data, batch buffers and index list on the device up
 * front; per step a gather of the batch, forward, fused loss, backward and one optimizer op; the host
 * reads the loss and accuracy totals once per epoch (and when a callback asks for them).
 *
 * <p>One step, two ways to run it. The step ({@link Step}) takes nothing from the host that changes from
 * step to step: the batch's place in the epoch's order, the row of the per-step tables and Adam's step
 * count are device counters, advanced by the step itself (the epoch, which dropout's masks depend on with that
 * row, is a device counter too, set at each epoch's start). So it can be captured once as a graph
 * ({@link Backend#capture}) and replayed for every batch of that size: the graph mode, the default where
 * the backend has device graphs ({@link Backend#supportsGraphs}) and every callback is
 * {@linkplain Callback#graphSafe graph-safe}. Otherwise, and with {@link FitOptions#graph()} false, every
 * step queues its ops one by one (eager). Both modes queue the same ops with the same arguments: they give
 * the same parameters, bit for bit.
 *
 * <p>The graphs. A graph may hold several consecutive steps ({@link FitOptions#stepsPerGraph()}, K, at most the
 * epoch's f full batches): captured by running the step K times inside one capture, each copy advancing the device
 * counters, it replays K steps per launch. An epoch is cut into groups from its start: the full batches in groups
 * of K, the last f mod K of them as one group of that many, and the smaller last batch, if any, as a group of one.
 * Each group runs as the graph for its (batch rows, steps), captured when first needed and launched from then on:
 * with K = 1, one graph for the full batches and one for the last batch; with K = 3 and f = 7, graphs of three
 * steps, of one and of the last batch; with K >= f, the epoch's full batches as one graph. The first group of each
 * batch size runs eagerly, step by step (it makes whatever a backend allocates on first use), before any graph of
 * that size is captured: with K = 1 just the first step, with K >= f the first epoch's full batches. A graph lives
 * as long as the {@code fit} call, and is captured again if the model's buffers move or the optimizer's learning
 * rate changes. After a launch the host counts each of its steps and calls {@link Callback#onBatchEnd} once per
 * step, in order; their running metrics are those at the graph's end.
 *
 * <p>Non-finite gradients. Where tensors live in host memory and steps run eagerly (the CPU), the norms are
 * checked after every backward pass and training can stop before the update; otherwise they are read once
 * per epoch, and the updates of the epoch have happened.
 */
public final class Trainer {
    private Trainer() {
    }

    public static History fit(Sequential model, Dataset train, FitOptions options) {
        return fit(model, train, options, false);
    }

    /**
     * {@link #fit(Sequential, Dataset, FitOptions)}; with {@code emulateGraphs}, the graph mode also on a
     * backend without device graphs, whose capture gives a graph that reruns the step: how the graph mode's
     * logic is tested on the CPU.
     */
    static History fit(Sequential model, Dataset train, FitOptions options, boolean emulateGraphs) {
        Backend backend = model.backend();
        requireCompatible(model, train, "training data");
        if (options.validation() != null) {
            requireCompatible(model, options.validation(), "validation data");
        }
        model.build(train.featureCount());
        int n = train.rows();
        int batch = Math.min(options.batchSize(), Math.max(1, n));
        int steps = Batches.batchCount(n, batch);
        int fullBatches = n / batch;
        model.reserveBatch(batch);

        List<Callback> callbacks = new ArrayList<>();
        if (options.verbose() > 0) {
            callbacks.add(new ProgressLogger(options.epochs()));
        }
        if (options.profiler() != null) {
            callbacks.add(options.profiler());
        }
        callbacks.addAll(options.callbacks());
        boolean graphMode = graphMode(backend, options, callbacks, emulateGraphs);
        int stepsPerGraph = graphMode ? stepsPerGraph(options.stepsPerGraph(), n, batch) : 1;
        List<Profile.Segment> segments = segments(model);
        int[] starts = segmentStarts(model);

        TrainingState resumed = options.resumeFrom();
        int initialEpoch = resumed == null ? 0 : resumed.epochs();
        History history = resumed == null ? new History() : resumed.history();
        if (resumed != null && resumed.epochs() > 0) {
            requireSameMetrics(history, options.validation() != null);
        }
        // Both smoothed as the loss says: the reported loss and val_loss are the smoothed loss, as in Keras.
        try (DeviceDataset data = DeviceDataset.upload(backend, train, model.labelSmoothing());
             DeviceDataset validation = options.validation() == null ? null
                     : DeviceDataset.upload(backend, options.validation(), model.labelSmoothing());
             Tensor order = backend.allocate(DType.INT32, n);
             Tensor totals = backend.allocate(DType.FLOAT32, 2);
             Tensor inputs = backend.allocate(DType.FLOAT32, batch, train.featureCount());
             Tensor targets = backend.allocate(DType.FLOAT32, batch, train.classCount());
             Tensor segmentStarts = backend.fromHost(starts, starts.length);
             Tensor squaredGradientNorms = backend.allocate(DType.FLOAT32, steps, segments.size());
             Tensor stepNorms = backend.allocate(DType.FLOAT32, segments.size());
             Tensor counters = backend.allocate(DType.INT32, 3)) {
            // The epoch, the step index (the row of the per-step tables) and the next batch to fetch: set together
            // at each epoch's start, in one copy. The first two are the training step that dropout draws its masks
            // for (Sequential.computeGradients): on the device, so a replayed graph draws afresh every step, and
            // counted from the run's start, so a resumed run draws the masks of the run it resumes.
            Tensor trainingStep = counters.view(0, 2);
            Tensor stepIndex = counters.view(1, 1);
            Tensor nextBatch = counters.view(2, 1);
            List<String> metrics = loggedMetrics(validation != null);
            TrainingRun run = new TrainingRun(model, options.epochs(), initialEpoch, history, metrics, steps,
                    segments, segmentStarts, squaredGradientNorms, stepIndex);
            if (resumed != null) {
                resumed.bestWeights().ifPresent(run::setResumedBestWeights);
            }
            // The CPU, stepping eagerly, reads each step's gradient norms before its update (to stop before
            // a non-finite one); elsewhere the norms are read once per epoch and may be measured by the update.
            boolean checkEveryStep = !graphMode && backend.sharesHostMemory();
            Step step = new Step(model, options, callbacks, run, data, order, trainingStep, nextBatch, totals, inputs,
                    targets, batch, stepNorms, !checkEveryStep);
            callbacks.forEach(c -> c.onTrainBegin(run));
            if (options.profiler() != null) {
                history.setProfile(options.profiler().profile()); // live: a callback may save it after each epoch
            }
            boolean ended = false;
            try {
                int[] identity = IntStream.range(0, n).toArray();
                for (int skipped = 0; skipped < initialEpoch; skipped++) {
                    // A resumed run draws the finished epochs' shuffles again, so that the model's random stream
                    // is where the uninterrupted run's would be: the next epoch gets the same order.
                    epochOrder(options, n, model, identity);
                }
                int[] upcomingOrder = null; // the next epoch's order, once drawn
                long operationsPerStep = -1;
                try (StepGraphs graphs = graphMode ? new StepGraphs(model, step) : null) {
                    for (int epoch = initialEpoch; epoch < options.epochs() && !stopped(history)
                            && !run.stopRequested(); epoch++) {
                        final int e = epoch;
                        long start = System.nanoTime();
                        run.startEpoch();
                        callbacks.forEach(c -> c.onEpochBegin(e));
                        // The rate the epoch trains with: after a scheduler's onEpochBegin, before any end-of-epoch
                        // change (a change within the epoch is not logged).
                        double learningRate = model.optimizer().learningRate();
                        backend.copyFromHost(upcomingOrder != null ? upcomingOrder
                                : epochOrder(options, n, model, identity), order);
                        upcomingOrder = null;
                        backend.copyFromHost(new int[] {e, 0, 0}, counters);
                        step.fetchNextBatch(); // the epoch's first; each step fetches the next one
                        backend.fill(totals, 0f);
                        int seen = 0;
                        steps:
                        for (int s = 0; s < steps; ) {
                            int first = s * batch;
                            int rows = Math.min(batch, n - first);
                            // The steps that run together: a group of full batches in graph mode, else one.
                            int count = s < fullBatches ? Math.min(stepsPerGraph, fullBatches - s) : 1;
                            run.setBatchRows(rows);
                            if (graphs != null && graphs.launch(rows, count, e, s)) {
                                seen = first + count * rows;
                                Callback.RunningMetrics running = runningMetrics(totals, seen);
                                for (int i = 0; i < count; i++) {
                                    run.countStep(rows);
                                    final int stepOfEpoch = s + i;
                                    callbacks.forEach(c -> c.onBatchEnd(e, stepOfEpoch, running));
                                }
                                s += count;
                                continue;
                            }
                            for (int end = s + count; s < end; s++) { // eager, step by step
                                long queuedBefore = backend.queuedOperations();
                                step.computeGradients(rows, e, s);
                                run.countStep(rows);
                                NonFiniteEvent event = checkEveryStep ? firstNonFinite(stepNorms.toFloatArray(), 0,
                                        e, s, segments, options.stopOnNonFinite()) : null;
                                if (event != null && history.nonFinite() == null) {
                                    history.setNonFinite(event);
                                    run.setNonFinite(event);
                                    if (event.stopped()) {
                                        break steps; // before the update: the parameters keep their finite values
                                    }
                                }
                                step.applyUpdate(e, s);
                                if (e == initialEpoch && s == 0 && queuedBefore >= 0) {
                                    operationsPerStep = backend.queuedOperations() - queuedBefore; // an eager step
                                }
                                seen = s * batch + rows;
                                Callback.RunningMetrics running = runningMetrics(totals, seen);
                                final int stepOfEpoch = s;
                                callbacks.forEach(c -> c.onBatchEnd(e, stepOfEpoch, running));
                            }
                        }
                        if (e + 1 < options.epochs() && !stopped(history) && !run.stopRequested()) {
                            // Drawn while the device still runs the steps just queued (the reads below wait for
                            // them), not at the next epoch's start with the device idle. A run that then stops
                            // on a non-finite step has drawn an order it does not use.
                            upcomingOrder = epochOrder(options, n, model, identity);
                        }
                        if (!checkEveryStep && history.nonFinite() == null) {
                            // Read once per epoch: find the first step, if any, that went non-finite.
                            float[] norms = squaredGradientNorms.toFloatArray();
                            for (int s = 0; s < run.stepsThisEpoch() && history.nonFinite() == null; s++) {
                                NonFiniteEvent event = firstNonFinite(norms, s * segments.size(), e, s, segments,
                                        options.stopOnNonFinite());
                                if (event != null) {
                                    history.setNonFinite(event);
                                    run.setNonFinite(event);
                                }
                            }
                        }
                        float[] t = totals.toFloatArray();
                        Map<String, Double> logs = new LinkedHashMap<>();
                        // An epoch stopped before its first update has seen no example: nothing to average.
                        logs.put("loss", seen == 0 ? Double.NaN : (double) t[0] / seen);
                        logs.put("accuracy", seen == 0 ? Double.NaN : (double) t[1] / seen);
                        if (validation != null) {
                            Evaluation v = evaluate(model, validation, batch);
                            logs.put("val_loss", v.loss());
                            logs.put("val_accuracy", v.accuracy());
                        }
                        Optimizer optimizer = model.optimizer();
                        if (optimizer.stepSchedule().isScheduled() && run.stepsThisEpoch() > 0) {
                            // A per-step schedule: the rate of the epoch's last update (the count is on the
                            // device, read once an epoch beside the totals).
                            learningRate = optimizer.rateAt(Math.max(0, optimizer.iterations() - 1));
                        }
                        logs.put("learning_rate", learningRate);
                        double seconds = (System.nanoTime() - start) / 1e9;
                        history.record(logs, seconds);
                        callbacks.forEach(c -> c.onEpochEnd(e, logs));
                    }
                }
                history.setExecution(graphMode, stepsPerGraph, operationsPerStep);
                callbacks.forEach(c -> c.onTrainEnd(history));
                ended = true;
            } finally {
                if (!ended && options.profiler() != null) {
                    // A step threw: onTrainEnd will not run, so the profiler lets go of the layers it watches
                    // (they would go on adding statistics into a closed tensor) and frees its buffers here.
                    options.profiler().release();
                }
            }
        }
        if (options.profiler() != null) {
            history.setProfile(options.profiler().profile());
        }
        return history;
    }

    /**
     * A resumed history must log what this {@code fit} logs, every metric once per epoch: a history whose
     * lists differ in length could not be saved and resumed again.
     */
    private static void requireSameMetrics(History history, boolean validation) {
        Set<String> logged = new java.util.LinkedHashSet<>(loggedMetrics(validation));
        if (!history.metrics().keySet().equals(logged)) {
            throw new IllegalArgumentException("the resumed run logged " + history.metrics().keySet() + ", this fit"
                    + " logs " + logged + (validation ? " (it has validation data)" : " (it has no validation data)")
                    + ": resume with the validation data the run had, or without");
        }
    }

    /**
     * What every epoch logs, in order: {@code loss}, {@code accuracy}, with validation data {@code val_loss} and
     * {@code val_accuracy}, and {@code learning_rate}, the optimizer's during the epoch (Keras logs it when a
     * callback changes it; here it is always there, so a history says which rate every epoch trained with); under a
     * per-step schedule ({@link Optimizer#stepSchedule}) the rate of the epoch's last update.
     */
    static List<String> loggedMetrics(boolean validation) {
        List<String> metrics = new ArrayList<>(List.of("loss", "accuracy"));
        if (validation) {
            metrics.addAll(List.of("val_loss", "val_accuracy"));
        }
        metrics.add("learning_rate");
        return metrics;
    }

    /** An epoch's order of the {@code n} training rows: a fresh shuffle, or {@code identity} unshuffled. */
    private static int[] epochOrder(FitOptions options, int n, Sequential model, int[] identity) {
        return options.shuffle() ? Batches.permutation(n, model.random()) : identity;
    }

    /**
     * The steps one graph of full batches holds: {@code requested} ({@link FitOptions#stepsPerGraph()}), at
     * most the full batches of an epoch of {@code rows} rows in batches of {@code batchSize} (at least 1).
     */
    public static int stepsPerGraph(int requested, int rows, int batchSize) {
        int batch = Math.min(batchSize, Math.max(1, rows));
        return Math.max(1, Math.min(requested, rows / batch));
    }

    /** The epoch's running loss and accuracy after {@code seen} examples, read from the device when asked. */
    private static Callback.RunningMetrics runningMetrics(Tensor totals, int seen) {
        return () -> {
            float[] t = totals.toFloatArray();
            return new double[] {t[0] / seen, t[1] / seen};
        };
    }

    /**
     * Whether the steps run as graphs: asked for, the backend has graphs (or they are emulated), and every
     * callback is graph-safe. When a callback is not, says so in one line (with verbose output).
     */
    private static boolean graphMode(Backend backend, FitOptions options, List<Callback> callbacks,
                                     boolean emulateGraphs) {
        if (!options.graph() || !(backend.supportsGraphs() || emulateGraphs)) {
            return false;
        }
        List<String> unsafe = callbacks.stream().filter(c -> !c.graphSafe()).map(c -> c.getClass().getName())
                .toList();
        if (!unsafe.isEmpty() && options.verbose() > 0) {
            System.err.println("gradscope: every step runs eagerly, not as a captured graph: callback "
                    + String.join(", ", unsafe) + " is not graph-safe (see Callback.graphSafe)");
        }
        return unsafe.isEmpty();
    }

    /**
     * The training step, the same ops in both modes. Every argument is fixed for a batch size; what changes
     * from step to step is read on the device: the step index (which row of the per-step tables the step
     * fills), the index of the next batch to fetch (where it starts in the epoch's order) and the optimizer's
     * own step count. A step trains on the batch that was fetched for it, fetches the next one beside its
     * optimizer update ({@link Backend#aside}: off the chain of kernels that a step waits for) and ends by
     * advancing the step index. The in-step hooks get the epoch and step on the host; in graph mode those are
     * the captured step's.
     *
     * <p>Where it can, the step hands its end to the optimizer's op ({@link StepEnd}), which a GPU does in the
     * update's own launch, when the optimizer {@link Optimizer#endsSteps}: measuring the
     * gradient norms (unless they are clipped, which needs the norms first, read on the host before the
     * update, or read by a callback in the step) and advancing the step index (unless a callback's
     * {@link Callback#onParametersUpdated} runs after the update and may read it). The same values either way.
     */
    private static final class Step {
        private final Sequential model;
        private final Backend backend;
        private final FitOptions options;
        private final List<Callback> callbacks;
        private final TrainingRun run;
        private final DeviceDataset data;
        private final Tensor order;
        private final Tensor trainingStep;
        private final Tensor nextBatch;
        private final Tensor totals;
        private final Tensor inputs;
        private final Tensor targets;
        private final int batch;
        private final Tensor stepNorms;
        private final boolean gradientNormsInUpdate;
        private final boolean advanceInUpdate;
        /** The step's squared gradient norms: into {@code stepNorms} and the step's row of the run's table. */
        private final GradientNorms gradientNorms;

        Step(Sequential model, FitOptions options, List<Callback> callbacks, TrainingRun run, DeviceDataset data,
             Tensor order, Tensor trainingStep, Tensor nextBatch, Tensor totals, Tensor inputs, Tensor targets,
             int batch, Tensor stepNorms, boolean normsMayFollowUpdate) {
            this.model = model;
            this.backend = model.backend();
            this.options = options;
            this.callbacks = callbacks;
            this.run = run;
            this.data = data;
            this.order = order;
            this.trainingStep = trainingStep;
            this.nextBatch = nextBatch;
            this.totals = totals;
            this.inputs = inputs;
            this.targets = targets;
            this.batch = batch;
            this.stepNorms = stepNorms;
            boolean optimizerEndsSteps = model.optimizer().endsSteps();
            this.gradientNormsInUpdate = optimizerEndsSteps && normsMayFollowUpdate && !(options.clipGlobalNorm() > 0)
                    && !(options.clipValue() > 0) && callbacks.stream().noneMatch(Callback::readsGradientNormsInStep);
            this.advanceInUpdate = optimizerEndsSteps && callbacks.stream().noneMatch(Callback::hooksParameterUpdates);
            this.gradientNorms = new GradientNorms(run.segmentStarts(), stepNorms, run.squaredGradientNorms(),
                    run.stepIndex());
        }

        /** The whole step, as a graph records it. */
        void run(int rows, int epoch, int step) {
            computeGradients(rows, epoch, step);
            applyUpdate(epoch, step);
        }

        /**
         * The batch at {@code nextBatch * batch} of the epoch's order into the inputs and targets (its rows that
         * exist: none after the epoch's last batch), and {@code nextBatch += 1}.
         */
        void fetchNextBatch() {
            backend.gatherNextBatch(data.features, data.featureScale, data.targets, order, nextBatch, batch, inputs,
                    targets);
        }

        /**
         * Runs forward, loss and backward on the fetched batch's first {@code rows} rows, measures the squared
         * gradient norms into {@code stepNorms} and the step's row of the run's table (unless the update will),
         * and calls {@link Callback#onGradientsComputed}.
         */
        void computeGradients(int rows, int epoch, int step) {
            Tensor x = inputs.rows(0, rows);
            Tensor y = targets.rows(0, rows);
            model.computeGradients(x, y, totals, trainingStep);
            if (!gradientNormsInUpdate) {
                backend.segmentSumOfSquares(model.gradients(), gradientNorms.segmentStarts(), gradientNorms.squares(),
                        gradientNorms.table(), gradientNorms.row());
            }
            callbacks.forEach(c -> c.onGradientsComputed(epoch, step));
        }

        /**
         * Clips; updates (measured when a callback asked; with the gradient norms and the advance when they
         * are the update's) while the next batch is fetched beside it (nothing reads this step's batch any
         * more); calls {@link Callback#onParametersUpdated}; advances (unless the update did).
         */
        void applyUpdate(int epoch, int step) {
            if (options.clipGlobalNorm() > 0) {
                backend.clipByGlobalNorm(model.gradients(), stepNorms, (float) options.clipGlobalNorm());
            }
            if (options.clipValue() > 0) {
                backend.clipByValue(model.gradients(), (float) options.clipValue());
            }
            backend.aside(this::fetchNextBatch);
            model.applyGradients(new StepEnd(gradientNormsInUpdate ? gradientNorms : null, run.takeUpdateNorms(),
                    advanceInUpdate ? run.stepIndex() : null));
            backend.joinAside();
            callbacks.forEach(c -> c.onParametersUpdated(epoch, step));
            if (!advanceInUpdate) {
                backend.advanceCounters(run.stepIndex());
            }
        }
    }

    /**
     * The captured graphs of one {@code fit} call, one per (batch rows, steps in the graph): the first group
     * of a batch size runs eagerly (the caller runs it), any later one launches its graph, captured when first
     * needed. Captured again when the model's buffers move.
     */
    private static final class StepGraphs implements AutoCloseable {
        private record Key(int rows, int steps) {
        }

        private final Sequential model;
        private final Step step;
        private final Map<Key, StepGraph> graphs = new HashMap<>();
        private final Set<Integer> warmedUp = new HashSet<>();
        private long layoutVersion;
        /** The learning rate the graphs hold: they are captured again when the optimizer's differs. */
        private double capturedLearningRate;
        /** The per-step schedule the graphs were captured with (its scalars are the update's arguments). */
        private StepSchedule capturedSchedule;

        StepGraphs(Sequential model, Step step) {
            this.model = model;
            this.step = step;
            this.layoutVersion = model.layoutVersion();
            this.capturedLearningRate = model.optimizer().learningRate();
            this.capturedSchedule = model.optimizer().stepSchedule();
        }

        /**
         * Queues {@code count} consecutive steps of {@code rows} rows, the first being step {@code firstStep}
         * of {@code epoch}, as one graph launch, capturing the graph first if needed (the in-step hooks then
         * get these steps' numbers). Returns false, having queued nothing, when no step of {@code rows} rows
         * has run since the buffers last moved: the caller then runs these steps eagerly.
         */
        boolean launch(int rows, int count, int epoch, int firstStep) {
            if (model.layoutVersion() != layoutVersion) {
                close();
                warmedUp.clear();
                layoutVersion = model.layoutVersion();
            }
            if (model.optimizer().learningRate() != capturedLearningRate
                    || !model.optimizer().stepSchedule().equals(capturedSchedule)) {
                // The graphs hold the old learning rate; the buffers stayed put, so no eager warm-up is needed. A
                // change within an epoch reaches the steps at the next launch (see Optimizer.setLearningRate).
                close();
                capturedLearningRate = model.optimizer().learningRate();
                capturedSchedule = model.optimizer().stepSchedule();
            }
            Key key = new Key(rows, count);
            StepGraph graph = graphs.get(key);
            if (graph == null) {
                if (warmedUp.add(rows)) {
                    return false;
                }
                graph = model.backend().capture(() -> {
                    for (int i = 0; i < count; i++) {
                        step.run(rows, epoch, firstStep + i);
                    }
                });
                graphs.put(key, graph);
            }
            graph.launch();
            return true;
        }

        @Override
        public void close() {
            for (StepGraph graph : graphs.values()) {
                graph.close();
            }
            graphs.clear();
        }
    }

    private static boolean stopped(History history) {
        return history.nonFinite() != null && history.nonFinite().stopped();
    }

    /** The first segment, in backpropagation order, whose squared norm is not finite; null if all are. */
    private static NonFiniteEvent firstNonFinite(float[] squaredNorms, int from, int epoch, int step,
                                                 List<Profile.Segment> segments, boolean stop) {
        for (int i = segments.size() - 1; i >= 0; i--) {
            if (!Float.isFinite(squaredNorms[from + i])) {
                return new NonFiniteEvent(epoch, step, segments.get(i).layerName(), stop);
            }
        }
        return null;
    }

    /** The model's parameter tensors, in the order of its flat buffers. */
    static List<Profile.Segment> segments(Sequential model) {
        List<Profile.Segment> segments = new ArrayList<>();
        for (Sequential.ParameterGroup g : model.parameterGroups()) {
            segments.add(new Profile.Segment(g.layerIndex(), g.layer().name(), g.layer().typeName(), g.slot().name()));
        }
        return segments;
    }

    private static int[] segmentStarts(Sequential model) {
        List<Sequential.ParameterGroup> groups = model.parameterGroups();
        int[] starts = new int[groups.size() + 1];
        for (int i = 0; i < groups.size(); i++) {
            starts[i] = groups.get(i).offset();
        }
        starts[groups.size()] = (int) model.parameters().size();
        return starts;
    }

    /**
     * Mean loss and accuracy of {@code model} over {@code data}, in batches of {@code batchSize}; the loss is the
     * model's, with its label smoothing, as fit reports val_loss.
     */
    public static Evaluation evaluate(Sequential model, Dataset data, int batchSize) {
        requireCompatible(model, data, "evaluation data");
        model.build(data.featureCount());
        try (DeviceDataset device = DeviceDataset.upload(model.backend(), data, model.labelSmoothing())) {
            return evaluate(model, device, batchSize);
        }
    }

    private static Evaluation evaluate(Sequential model, DeviceDataset data, int batchSize) {
        Backend backend = model.backend();
        int n = data.rows;
        int batch = Math.max(1, Math.min(batchSize, n));
        model.reserveBatch(batch);
        try (Tensor order = backend.fromHost(IntStream.range(0, n).toArray(), n);
             Tensor totals = backend.allocate(DType.FLOAT32, 2);
             Tensor inputs = backend.allocate(DType.FLOAT32, batch, data.features.columnCount());
             Tensor targets = backend.allocate(DType.FLOAT32, batch, data.targets.columnCount())) {
            for (int first = 0; first < n; first += batch) {
                int rows = Math.min(batch, n - first);
                Tensor x = inputs.rows(0, rows);
                Tensor y = targets.rows(0, rows);
                backend.gatherRows(data.features, order, first, data.featureScale, x);
                backend.gatherRows(data.targets, order, first, 1f, y);
                model.accumulateLoss(x, y, totals);
            }
            float[] t = totals.toFloatArray();
            return new Evaluation((double) t[0] / n, (double) t[1] / n, n);
        }
    }

    private static void requireCompatible(Sequential model, Dataset data, String what) {
        if (data.rows() == 0) {
            throw new IllegalArgumentException(what + " '" + data.name() + "' has no rows");
        }
        if (model.isBuilt() && data.featureCount() != model.inputUnits()) {
            throw new IllegalArgumentException(what + " '" + data.name() + "' has " + data.featureCount()
                    + " features per row, the model takes " + model.inputUnits());
        }
        if (!model.layers().isEmpty() && data.classCount() != model.outputUnits()) {
            throw new IllegalArgumentException(what + " '" + data.name() + "' has " + data.classCount()
                    + " classes, the model's output layer has " + model.outputUnits() + " units");
        }
    }
}
