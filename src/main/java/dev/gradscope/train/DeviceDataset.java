package dev.gradscope.train;

import dev.gradscope.data.Dataset;
import dev.gradscope.tensor.Backend;
import dev.gradscope.tensor.Tensor;

/**
 * A labelled dataset copied once to a backend: the raw uint8 features (scaled to float only when a
 * batch is gathered) and one-hot targets. A training run never copies data to the device again.
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

    static DeviceDataset upload(Backend backend, Dataset data) {
        Tensor features = backend.fromHost(data.features(), data.rows(), data.featureCount());
        try {
            Tensor targets = backend.fromHost(data.oneHotLabels(), data.rows(), data.classCount());
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
