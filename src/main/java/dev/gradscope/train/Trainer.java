package dev.gradscope.train;

import dev.gradscope.data.Batches;
import dev.gradscope.data.Dataset;
import dev.gradscope.nn.Sequential;
import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.DType;
import dev.gradscope.tensor.Tensor;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * The training loop behind {@link Sequential#fit}: data, batch buffers and index list on the device up
 * front; per step a gather of the batch, forward, fused loss, backward and one optimizer op; the host
 * reads the loss and accuracy totals once per epoch (and when a callback asks for them).
 */
public final class Trainer {
    private Trainer() {
    }

    public static History fit(Sequential model, Dataset train, FitOptions options) {
        Backend backend = model.backend();
        requireCompatible(model, train, "training data");
        if (options.validation() != null) {
            requireCompatible(model, options.validation(), "validation data");
        }
        model.build(train.featureCount());
        int n = train.rows();
        int batch = Math.min(options.batchSize(), Math.max(1, n));
        int steps = Batches.batchCount(n, batch);
        model.reserveBatch(batch);

        List<Callback> callbacks = new ArrayList<>();
        if (options.verbose() > 0) {
            callbacks.add(new ProgressLogger(options.epochs()));
        }
        if (options.profiler() != null) {
            callbacks.add(options.profiler());
        }
        callbacks.addAll(options.callbacks());
        List<Profile.Segment> segments = segments(model);
        int[] starts = segmentStarts(model);

        History history = new History();
        try (DeviceDataset data = DeviceDataset.upload(backend, train);
             DeviceDataset validation = options.validation() == null ? null
                     : DeviceDataset.upload(backend, options.validation());
             Tensor order = backend.allocate(DType.INT32, n);
             Tensor totals = backend.allocate(DType.FLOAT32, 2);
             Tensor inputs = backend.allocate(DType.FLOAT32, batch, train.featureCount());
             Tensor targets = backend.allocate(DType.FLOAT32, batch, train.classCount());
             Tensor segmentStarts = backend.fromHost(starts, starts.length);
             Tensor squaredGradientNorms = backend.allocate(DType.FLOAT32, steps, segments.size())) {
            TrainingRun run = new TrainingRun(model, options.epochs(), steps, segments, segmentStarts,
                    squaredGradientNorms);
            callbacks.forEach(c -> c.onTrainBegin(run));
            int[] identity = IntStream.range(0, n).toArray();
            boolean checkEveryStep = backend.sharesHostMemory();
            for (int epoch = 0; epoch < options.epochs() && !stopped(history); epoch++) {
                final int e = epoch;
                long start = System.nanoTime();
                callbacks.forEach(c -> c.onEpochBegin(e));
                backend.copyFromHost(options.shuffle() ? Batches.permutation(n, model.random()) : identity, order);
                backend.fill(totals, 0f);
                int seen = 0;
                for (int step = 0; step < steps; step++) {
                    final int s = step;
                    int first = step * batch;
                    int rows = Math.min(batch, n - first);
                    Tensor x = inputs.rows(0, rows);
                    Tensor y = targets.rows(0, rows);
                    backend.gatherRows(data.features, order, first, data.featureScale, x);
                    backend.gatherRows(data.targets, order, first, 1f, y);
                    model.computeGradients(x, y, totals);
                    Tensor squaredNorms = squaredGradientNorms.rows(step, 1).reshape(segments.size());
                    backend.segmentSumOfSquares(model.gradients(), segmentStarts, squaredNorms);
                    run.setBatchRows(rows);
                    seen = first + rows;
                    callbacks.forEach(c -> c.onGradientsComputed(e, s));
                    NonFiniteEvent event = checkEveryStep
                            ? firstNonFinite(squaredNorms.toFloatArray(), 0, e, s, segments, options.stopOnNonFinite())
                            : null;
                    if (event != null && history.nonFinite() == null) {
                        history.setNonFinite(event);
                        if (event.stopped()) {
                            break; // before the update: the parameters keep their last finite values
                        }
                    }
                    if (options.clipGlobalNorm() > 0) {
                        backend.clipByGlobalNorm(model.gradients(), squaredNorms, (float) options.clipGlobalNorm());
                    }
                    if (options.clipValue() > 0) {
                        backend.clipByValue(model.gradients(), (float) options.clipValue());
                    }
                    model.applyGradients(run.takeUpdateNorms());
                    callbacks.forEach(c -> c.onParametersUpdated(e, s));
                    final int seenSoFar = seen;
                    Callback.RunningMetrics running = () -> {
                        float[] t = totals.toFloatArray();
                        return new double[] {t[0] / seenSoFar, t[1] / seenSoFar};
                    };
                    callbacks.forEach(c -> c.onBatchEnd(e, s, running));
                }
                if (!checkEveryStep && history.nonFinite() == null) {
                    // Devices are read once per epoch: find the first step, if any, that went non-finite.
                    float[] norms = squaredGradientNorms.toFloatArray();
                    for (int step = 0; step < steps && history.nonFinite() == null; step++) {
                        NonFiniteEvent event = firstNonFinite(norms, step * segments.size(), e, step, segments,
                                options.stopOnNonFinite());
                        if (event != null) {
                            history.setNonFinite(event);
                        }
                    }
                }
                float[] t = totals.toFloatArray();
                Map<String, Double> logs = new LinkedHashMap<>();
                logs.put("loss", (double) t[0] / seen);
                logs.put("accuracy", (double) t[1] / seen);
                if (validation != null) {
                    Evaluation v = evaluate(model, validation, batch);
                    logs.put("val_loss", v.loss());
                    logs.put("val_accuracy", v.accuracy());
                }
                double seconds = (System.nanoTime() - start) / 1e9;
                history.record(logs, seconds);
                callbacks.forEach(c -> c.onEpochEnd(e, logs));
            }
            callbacks.forEach(c -> c.onTrainEnd(history));
        }
        if (options.profiler() != null) {
            history.setProfile(options.profiler().profile());
        }
        return history;
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

    /** Mean loss and accuracy of {@code model} over {@code data}, in batches of {@code batchSize}. */
    public static Evaluation evaluate(Sequential model, Dataset data, int batchSize) {
        requireCompatible(model, data, "evaluation data");
        model.build(data.featureCount());
        try (DeviceDataset device = DeviceDataset.upload(model.backend(), data)) {
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
