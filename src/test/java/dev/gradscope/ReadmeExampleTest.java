package dev.gradscope;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.data.Mnist;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.nn.Adam;
import dev.gradscope.nn.Dense;
import dev.gradscope.nn.Loss;
import dev.gradscope.nn.Sequential;
import dev.gradscope.train.History;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Java example of the README, line for line but on the committed MNIST subset and for one epoch,
 * so that the example a reader copies compiles and runs.
 */
class ReadmeExampleTest {
    @TempDir
    Path out;

    @Test
    void theChaptersKerasModelInJava() {
        Mnist mnist = MnistSubset.load();
        try (CpuBackend backend = new CpuBackend();
             Sequential model = new Sequential(backend, 42)) {
            model.input(784)
                 .add(new Dense(512, "relu"))
                 .add(new Dense(256, "relu"))
                 .add(new Dense(128, "relu"))
                 .add(new Dense(64, "relu"))
                 .add(new Dense(10, "softmax"))
                 .compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY, "accuracy");
            model.build(784);
            assertTrue(model.summary().contains("Total params: 575,050"));
            History history = model.fit(mnist.train(), 256, 1, mnist.test());
            assertEquals(1, history.get("val_accuracy").size());
            float[][] probabilities = model.predict(new float[][] {new float[784]}, 256);
            assertEquals(10, probabilities[0].length);
            model.saveWeights(out.resolve("model.safetensors"));
            float[] trained = model.parameters().toFloatArray();
            backend.fill(model.parameters(), 0f);
            model.loadWeights(out.resolve("model.safetensors"));
            assertArrayEquals(trained, model.parameters().toFloatArray());
        }
    }
}
