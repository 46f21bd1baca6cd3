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
        callbacks.addAll(options.callbacks());

        History history = new History();
        try (DeviceDataset data = DeviceDataset.upload(backend, train);
             DeviceDataset validation = options.validation() == null ? null
                     : DeviceDataset.upload(backend, options.validation());
             Tensor order = backend.allocate(DType.INT32, n);
             Tensor totals = backend.allocate(DType.FLOAT32, 2);
             Tensor inputs = backend.allocate(DType.FLOAT32, batch, train.featureCount());
             Tensor targets = backend.allocate(DType.FLOAT32, batch, train.classCount())) {
            callbacks.forEach(c -> c.onTrainBegin(options.epochs(), steps));
            int[] identity = IntStream.range(0, n).toArray();
            for (int epoch = 0; epoch < options.epochs(); epoch++) {
                final int e = epoch;
                long start = System.nanoTime();
                callbacks.forEach(c -> c.onEpochBegin(e));
                backend.copyFromHost(options.shuffle() ? Batches.permutation(n, model.random()) : identity, order);
                backend.fill(totals, 0f);
                for (int step = 0; step < steps; step++) {
                    int first = step * batch;
                    int rows = Math.min(batch, n - first);
                    Tensor x = inputs.rows(0, rows);
                    Tensor y = targets.rows(0, rows);
                    backend.gatherRows(data.features, order, first, data.featureScale, x);
                    backend.gatherRows(data.targets, order, first, 1f, y);
                    model.computeGradients(x, y, totals);
                    model.applyGradients();
                    final int s = step;
                    final int seen = first + rows;
                    Callback.RunningMetrics running = () -> {
                        float[] t = totals.toFloatArray();
                        return new double[] {t[0] / seen, t[1] / seen};
                    };
                    callbacks.forEach(c -> c.onBatchEnd(e, s, running));
                }
                float[] t = totals.toFloatArray();
                Map<String, Double> logs = new LinkedHashMap<>();
                logs.put("loss", (double) t[0] / n);
                logs.put("accuracy", (double) t[1] / n);
                if (validation != null) {
                    Evaluation v = evaluate(model, validation, batch);
                    logs.put("val_loss", v.loss());
                    logs.put("val_accuracy", v.accuracy());
                }
                double seconds = (System.nanoTime() - start) / 1e9;
                history.record(logs, seconds);
                callbacks.forEach(c -> c.onEpochEnd(e, logs));
            }
        }
        callbacks.forEach(c -> c.onTrainEnd(history));
        return history;
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
