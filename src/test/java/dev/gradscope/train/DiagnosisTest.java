package dev.gradscope.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Diagnosis's growth rule on profiles written by hand: a gradient that grows to a large size, not one that recovers. */
class DiagnosisTest {
    private static final List<Profile.Segment> TWO_LAYERS = List.of(
            new Profile.Segment(0, "dense", "Dense", "kernel"), new Profile.Segment(1, "dense_1", "Dense", "kernel"));

    /** 40 steps: layer 1's gradient norm goes geometrically from {@code from} to {@code to}; the output's stays 0.5. */
    private static Diagnosis diagnose(double from, double to) {
        List<Profile.StepStatistics> steps = new ArrayList<>();
        int n = 40;
        for (int s = 0; s < n; s++) {
            double first = s < 20 ? from : from * Math.pow(to / from, (s - 19) / 20.0);
            steps.add(new Profile.StepStatistics(0, s, s, new double[] {first, 0.5}, new double[] {1, 1},
                    new double[] {1e-3, 1e-3}));
        }
        Profile profile = Profile.of(TWO_LAYERS, 0.01, steps, List.of());
        return Diagnosis.of(History.of(Map.of("loss", List.of(1.0)), List.of(1.0), profile, null));
    }

    private static List<Diagnosis.Kind> kinds(Diagnosis d) {
        return d.verdicts().stream().map(Diagnosis.Verdict::kind).toList();
    }

    @Test
    void aVanishedGradientThatRecoversToAnOrdinarySizeIsNotExploding() {
        // 1e-6 to 1: a million-fold growth, as a deep sigmoid net's first layer shows when it starts to learn.
        assertEquals(List.of(Diagnosis.Kind.VANISHING), kinds(diagnose(1e-6, 1)));
    }

    @Test
    void aGradientThatGrowsTenThousandFoldToALargeSizeIsExploding() {
        Diagnosis d = diagnose(0.1, 5000);
        assertEquals(List.of(Diagnosis.Kind.EXPLODING), kinds(d), d.describe());
        assertEquals("exploding: dense's gradient norm grew 5.0e+04x during training", d.verdicts().get(0).text());
    }
}
