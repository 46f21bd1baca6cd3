package dev.gradscope.train;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.data.Mnist;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.nn.Adam;
import dev.gradscope.nn.Initializer;
import dev.gradscope.nn.Loss;
import dev.gradscope.nn.Mlp;
import dev.gradscope.nn.Sequential;
import org.junit.jupiter.api.Test;

/**
 * The chapter's 784-512-256-128-64-10 MLP, Adam, batch 256, trained on the committed MNIST subset
 * (4000 training images) and scored on its 1000 test images. The thresholds sit a few points below what
 * these seeds reach, so they catch a broken engine without flaking.
 */
class ChapterTrainingTest {
    private static final Mnist MNIST = MnistSubset.load();
    private static final int EPOCHS = 8;

    private static History train(String activation, Loss loss) {
        try (CpuBackend backend = new CpuBackend();
             Sequential model = Mlp.build(backend, 42, 784, Mlp.CHAPTER_HIDDEN, 10, Mlp.HiddenUnits.of(activation),
                     Initializer.glorotUniform()).compile(new Adam(), loss, "accuracy")) {
            return model.fit(MNIST.train(), FitOptions.builder().batchSize(256).epochs(EPOCHS)
                    .validation(MNIST.test()).verbose(0).build());
        }
    }

    @Test
    void reluWithCrossEntropyReaches90PercentIn8Epochs() {
        History h = train("relu", Loss.CATEGORICAL_CROSSENTROPY);
        assertTrue(h.last("val_accuracy") >= 0.90, "val_accuracy " + h.get("val_accuracy"));
        assertTrue(h.get("loss").get(EPOCHS - 1) < h.get("loss").get(0) / 3, "loss falls: " + h.get("loss"));
    }

    @Test
    void sigmoidWithCrossEntropyReaches75PercentIn8Epochs() {
        History h = train("sigmoid", Loss.CATEGORICAL_CROSSENTROPY);
        assertTrue(h.last("val_accuracy") >= 0.75, "val_accuracy " + h.get("val_accuracy"));
    }

    @Test
    void sigmoidWithMseLearnsSlowerThanWithCrossEntropy() {
        History mse = train("sigmoid", Loss.MEAN_SQUARED_ERROR);
        History ce = train("sigmoid", Loss.CATEGORICAL_CROSSENTROPY);
        assertTrue(mse.last("val_accuracy") >= 0.5, "MSE still learns: " + mse.get("val_accuracy"));
        assertTrue(mse.get("val_accuracy").get(1) < ce.get("val_accuracy").get(1),
                "after 2 epochs MSE " + mse.get("val_accuracy") + " trails cross-entropy " + ce.get("val_accuracy"));
    }
}
