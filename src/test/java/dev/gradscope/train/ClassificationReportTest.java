package dev.gradscope.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.gradscope.backend.cpu.CpuBackend;
import dev.gradscope.data.DatasetKind;
import dev.gradscope.data.Mnist;
import dev.gradscope.data.MnistSubset;
import dev.gradscope.nn.Adam;
import dev.gradscope.nn.Initializer;
import dev.gradscope.nn.Loss;
import dev.gradscope.nn.Mlp;
import dev.gradscope.nn.Sequential;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Per-class precision, recall, F1 and the confusion matrix, against hand counts and the model's evaluation. */
class ClassificationReportTest {
    private static final List<String> ABC = List.of("a", "b", "c");

    @Test
    void theNumbersAreScikitLearnsForAHandCountedCase() {
        // true:      a a a a b b c c c c
        // predicted: a a b c b b c c c a
        ClassificationReport report = ClassificationReport.of(new int[] {0, 0, 0, 0, 1, 1, 2, 2, 2, 2},
                new int[] {0, 0, 1, 2, 1, 1, 2, 2, 2, 0}, ABC);
        assertEquals(2, report.count(0, 0));
        assertEquals(1, report.count(0, 1));
        assertEquals(1, report.count(2, 0));
        assertEquals(List.of(4L, 2L, 4L), List.of(report.support(0), report.support(1), report.support(2)));
        assertEquals(2.0 / 3, report.precision(0), 1e-15);  // 2 of the 3 predicted a
        assertEquals(0.5, report.recall(0), 1e-15);         // 2 of the 4 a
        assertEquals(2 * (2.0 / 3) * 0.5 / (2.0 / 3 + 0.5), report.f1(0), 1e-15);
        assertEquals(2.0 / 3, report.precision(1), 1e-15);
        assertEquals(1.0, report.recall(1), 1e-15);
        assertEquals(0.75, report.precision(2), 1e-15);
        assertEquals(0.75, report.recall(2), 1e-15);
        assertEquals(0.7, report.accuracy(), 1e-15);
        assertEquals(0, report.weakestClass());
        assertArrayEquals(new int[] {0, 1}, report.mostConfused(), "the first of the largest off-diagonal counts");
        String text = report.describe();
        assertTrue(text.contains("accuracy 0.7000"), text);
        // macro: the plain mean over the classes; weighted: by support (4, 2, 4 of 10)
        double macroRecall = (0.5 + 1.0 + 0.75) / 3;
        double weightedRecall = (0.5 * 4 + 1.0 * 2 + 0.75 * 4) / 10;
        assertTrue(text.contains(String.format(java.util.Locale.ROOT, "%9.4f", macroRecall)), text);
        assertTrue(text.lines().anyMatch(l -> l.startsWith("weighted") && l.contains(String.format(java.util.Locale.ROOT,
                "%9.4f", weightedRecall))), text);
        assertEquals(0, report.nonFiniteRows());
        @SuppressWarnings("unchecked")
        List<Map<String, Object>> perClass = (List<Map<String, Object>>) report.toMap().get("per_class");
        assertEquals("b", perClass.get(1).get("name"));
        assertEquals(List.of(List.of(2L, 1L, 1L), List.of(0L, 2L, 0L), List.of(1L, 0L, 3L)),
                report.toMap().get("confusion_matrix"));
    }

    @Test
    void theMacroAverageIsOverTheClassesPresentAsInScikitLearn() {
        // classification_report([0, 0, 1], [0, 0, 0]) lists the labels 0 and 1 only: macro avg precision 0.3333,
        // recall 0.5000, f1 0.4000 (c, with neither examples nor predictions, is not averaged)
        ClassificationReport report = ClassificationReport.of(new int[] {0, 0, 1}, new int[] {0, 0, 0}, ABC);
        assertFalse(report.present(2));
        assertArrayEquals(new double[] {1.0 / 3, 0.5, 0.4}, report.macroAverage(), 1e-15);
        // weighted by support (2, 1): precision 2/3 * 2/3, recall 2/3, f1 0.8 * 2/3
        assertArrayEquals(new double[] {4.0 / 9, 2.0 / 3, 0.8 * 2 / 3}, report.weightedAverage(), 1e-15);
        assertTrue(report.describe().lines().anyMatch(l -> l.startsWith("macro")
                && l.contains("   0.3333") && l.contains("   0.5000") && l.contains("   0.4000")), report.describe());
        @SuppressWarnings("unchecked")
        Map<String, Object> macro = (Map<String, Object>) report.toMap().get("macro_avg");
        assertEquals(0.5, (double) macro.get("recall"), 1e-15);
        assertEquals(3L, macro.get("support"));

        // a class predicted but without examples is present: [0, 1] predicted as [0, 2] averages a, b and c
        ClassificationReport predictedOnly = ClassificationReport.of(new int[] {0, 1}, new int[] {0, 2}, ABC);
        assertTrue(predictedOnly.present(2));
        assertArrayEquals(new double[] {1.0 / 3, 1.0 / 3, 1.0 / 3}, predictedOnly.macroAverage(), 1e-15);
    }

    @Test
    void theWeakestClassIsOneWithExamples() {
        // a has no examples (recall 0 by convention): b, all right, is the only class that can be weakest
        ClassificationReport report = ClassificationReport.of(new int[] {1, 1}, new int[] {1, 1}, ABC);
        assertEquals(1, report.weakestClass());
        assertEquals(-1, ClassificationReport.of(new int[] {}, new int[] {}, ABC).weakestClass());
    }

    @Test
    void aClassNeverPredictedOrWithoutExamplesScoresZeroAsScikitLearnsDefaultDoes() {
        ClassificationReport report = ClassificationReport.of(new int[] {0, 0, 1}, new int[] {0, 0, 0}, ABC);
        assertEquals(0, report.precision(1), "b is never predicted");
        assertEquals(0, report.recall(2), "c has no examples");
        assertEquals(0, report.f1(2));
        assertEquals(1, report.weakestClass(), "the first class with the lowest recall");
        assertNull(ClassificationReport.of(new int[] {1}, new int[] {1}, ABC).mostConfused());
        assertThrows(IllegalArgumentException.class, () -> ClassificationReport.of(new int[] {0}, new int[] {}, ABC));
        assertThrows(IllegalArgumentException.class, () -> ClassificationReport.of(new int[] {3}, new int[] {0}, ABC));
        assertThrows(IllegalArgumentException.class, () -> ClassificationReport.of(new int[] {0}, new int[] {-1}, ABC));
    }

    @Test
    void onATrainedModelItsAccuracyIsTheEvaluationsAndDropoutIsOffInIt() {
        Mnist subset = MnistSubset.load();
        try (CpuBackend backend = new CpuBackend();
             Sequential model = Mlp.build(backend, 3, 784, new int[] {32}, 10, Mlp.HiddenUnits.of("relu"),
                     Initializer.glorotUniform(), 0.5).compile(new Adam(), Loss.CATEGORICAL_CROSSENTROPY).build(784)) {
            model.fit(subset.train().take(1000), FitOptions.builder().batchSize(100).epochs(2).verbose(0).build());
            Evaluation evaluation = model.evaluate(subset.test(), 100);
            List<String> names = DatasetKind.MNIST.classNames();
            ClassificationReport report = ClassificationReport.of(model, subset.test(), 100, names);
            assertEquals(subset.test().rows(), report.examples());
            assertEquals(evaluation.accuracy(), report.accuracy(), 1e-12);
            // 20 steps with half the units dropped: well above chance (0.1), far from done (0.46 here)
            assertTrue(report.accuracy() > 0.3, "the model learned: " + report.accuracy());
            for (int c = 0; c < 10; c++) {
                assertEquals(subset.test().labelCounts()[c], report.support(c), "support of " + c);
            }
            assertEquals(report.toMap(), ClassificationReport.of(model, subset.test(), 7, names).toMap(),
                    "inference: the same predictions whatever the batch");
            assertEquals(0, report.nonFiniteRows());
            // A diverged model: every output NaN. The rows are counted, so that no one reads the numbers.
            float[] nan = new float[(int) model.parameters().size()];
            java.util.Arrays.fill(nan, Float.NaN);
            backend.copyFromHost(nan, model.parameters());
            assertEquals(subset.test().rows(), ClassificationReport.of(model, subset.test(), 100, names)
                    .nonFiniteRows());
        }
    }
}
