package dev.gradscope.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.gradscope.tensor.StepSchedule;
import dev.gradscope.tensor.Tensor;
import org.junit.jupiter.api.Test;

/**
 * Which step's rate an update takes. Keras evaluates the schedule at {@code iterations} before the
 * update, so under a warmup from 0 over 2 steps the first update has rate 0 and the second lr / 2. The existing tests
 * compare GPU with CPU, graph with eager, resumed with straight, and the logged rate with {@code rateAt(iterations -
 * 1)}: an off-by-one made the same on both backends (the rate at {@code iterations + 1}) passes them all. Here the
 * scheduled update is compared bit for bit with the unscheduled one at the rate Keras's step gives it, weight decay
 * included.
 */
class ScheduledUpdateStepTest {
    private static final CpuBackend CPU = new CpuBackend();
    private static final float[] P = {1f, -2f, 0.5f, 3f, -0.25f};
    private static final float[][] G = {{0.1f, -0.3f, 0.2f, 0.05f, -1f}, {-0.2f, 0.4f, 0.1f, -0.05f, 0.5f}};
    private static final double LR = 1.0 / 512; // a float: the rates 0, lr / 2 and lr are the same in float and double
    private static final StepSchedule WARMUP = StepSchedule.warmup(0, 2); // rates 0, lr / 2, then lr

    private interface Update {
        void apply(Tensor p, Tensor g, Tensor a, Tensor b, Tensor count, Tensor product, double rate,
                   StepSchedule schedule);
    }

    private static float[][] run(Update update, boolean scheduled) {
        Tensor p = CPU.fromHost(P.clone(), P.length);
        Tensor a = CPU.fromHost(new float[P.length], P.length);
        Tensor b = CPU.fromHost(new float[P.length], P.length);
        Tensor count = CPU.fromHost(new int[] {0}, 1);
        Tensor product = CPU.fromHost(new float[] {1f}, 1);
        for (int step = 0; step < 2; step++) {
            Tensor g = CPU.fromHost(G[step].clone(), P.length);
            if (scheduled) {
                update.apply(p, g, a, b, count, product, LR, WARMUP);
            } else { // Keras: the schedule at iterations = step, before the update counts itself
                update.apply(p, g, a, b, count, product, WARMUP.rate(LR, step), StepSchedule.NONE);
            }
        }
        return new float[][] {p.toFloatArray(), a.toFloatArray(), b.toFloatArray()};
    }

    private static void assertSameUpdates(String what, Update update) {
        float[][] want = run(update, false);
        float[][] got = run(update, true);
        for (int i = 0; i < want.length; i++) {
            assertArrayEquals(want[i], got[i], what + ", buffer " + i + ": the update at step t takes rate(t)");
        }
    }

    @Test
    void adamTakesTheRateOfTheCountBeforeTheUpdateForItsStepAndItsWeightDecay() {
        assertSameUpdates("adam", (p, g, m, v, count, product, rate, schedule) -> CPU.adamUpdate(p, g, m, v, null,
                rate, schedule, 0.9, 0.999, 1e-7f, 0.004f, count, (dev.gradscope.tensor.UpdateNorms) null));
    }

    @Test
    void nadamTakesTheRateOfTheCountBeforeTheUpdate() {
        assertSameUpdates("nadam", (p, g, m, v, count, product, rate, schedule) -> CPU.nadamUpdate(p, g, m, v,
                (float) rate, schedule, 0.9, 0.999, 1e-7f, 0.004f, count, product,
                (dev.gradscope.tensor.UpdateNorms) null));
    }

    @Test
    void adamaxTakesTheRateOfTheCountBeforeTheUpdate() {
        assertSameUpdates("adamax", (p, g, m, u, count, product, rate, schedule) -> CPU.adamaxUpdate(p, g, m, u,
                (float) rate, schedule, 0.9, 0.999, 1e-7f, 0.004f, count, (dev.gradscope.tensor.UpdateNorms) null));
    }
}
