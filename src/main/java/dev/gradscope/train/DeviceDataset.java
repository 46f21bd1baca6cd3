package dev.gradscope.train;

import dev.gradscope.data.Dataset;
import dev.gradscope.nn.Sequential;
import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.Tensor;

/**
 * A labelled dataset copied once to a backend: the raw uint8 features (scaled to float only when a
 * batch is gathered) and one-hot targets, smoothed here when the model's loss smooths its labels
 * ({@link Sequential#labelSmoothing()}): the loss op takes any target distribution, so smoothing costs no op
 * per step. A training run never copies data to the device again.
 */
final class DeviceDataset implements AutoCloseable {
    final Tensor features;
    final Tensor targets;
    final float featureScale;
    final int rows;

    private DeviceDataset(Tensor features, Tensor targets, float featureScale, int rows) {
        this.features = features;
        this.targets = targets;
        this.featureScale = featureScale;
        this.rows = rows;
    }

    /**
     * {@code data} on {@code backend}, its targets smoothed by {@code labelSmoothing}
     * ({@link Dataset#oneHotLabels(double)}).
     */
    static DeviceDataset upload(Backend backend, Dataset data, double labelSmoothing) {
        float[] targetValues = data.oneHotLabels(labelSmoothing);
        Tensor features = backend.fromHost(data.features(), data.rows(), data.featureCount());
        try {
            Tensor targets = backend.fromHost(targetValues, data.rows(), data.classCount());
            return new DeviceDataset(features, targets, data.featureScale(), data.rows());
        } catch (RuntimeException e) {
            features.close();
            throw e;
        }
    }

    @Override
    public void close() {
        features.close();
        targets.close();
    }
}
