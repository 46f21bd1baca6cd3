package dev.gradscope.backend.cpu;

import static dev.gradscope.Tolerances.CLOSED_FORM_F64;
import static dev.gradscope.Tolerances.GRADIENT_CHECK_EPSILON;
import static dev.gradscope.Tolerances.GRADIENT_CHECK_KINK_CLEARANCE;
import static dev.gradscope.Tolerances.GRADIENT_CHECK_MAX_RELATIVE_ERROR;
import static dev.gradscope.Tolerances.GRADIENT_CHECK_MIN_ABSOLUTE_ERROR;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.gradscope.tensor.ActivationKind;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.function.DoubleBinaryOperator;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The CPU activations against values computed independently: forward values against a 50-digit
 * reference, derivatives against central differences of the forward (deeplearning4j's rule, in
 * double), parameter derivatives against central differences in the parameter. Also the behaviour at
 * extreme inputs, the conventions at kinks, the table of kinds and the lookup of kinds by id.
 */
class CpuActivationsTest {

    /**
     * The parameter given to kinds without one. They must ignore it; if one used it by mistake, its
     * result would be NaN and every check would fail.
     */
    private static final double NO_PARAMETER = Double.NaN;

    /** Where each kind's derivative jumps; gradient checks keep {@code GRADIENT_CHECK_KINK_CLEARANCE} away. */
    private static final Map<ActivationKind, double[]> KINKS = new EnumMap<>(ActivationKind.class);

    /** The parameter values tried by the gradient checks (kinds without a parameter: NO_PARAMETER). */
    private static final Map<ActivationKind, double[]> PARAMETER_VALUES = new EnumMap<>(ActivationKind.class);

    static {
        KINKS.put(ActivationKind.STEP, new double[] {0});
        KINKS.put(ActivationKind.HARD_TANH, new double[] {-1, 1});
        KINKS.put(ActivationKind.RELU, new double[] {0});
        KINKS.put(ActivationKind.LEAKY_RELU, new double[] {0});
        KINKS.put(ActivationKind.ELU, new double[] {0});
        KINKS.put(ActivationKind.PRELU, new double[] {0});
        KINKS.put(ActivationKind.SELU, new double[] {0});
        // CELU's first derivative is continuous, but its second jumps at 0; keep clear all the same.
        KINKS.put(ActivationKind.CELU, new double[] {0});
        KINKS.put(ActivationKind.RELU6, new double[] {0, 6});
        KINKS.put(ActivationKind.HARD_SIGMOID, new double[] {-3, 3});
        KINKS.put(ActivationKind.HARD_SWISH, new double[] {-3, 3});

        PARAMETER_VALUES.put(ActivationKind.LEAKY_RELU, new double[] {0.01, 0.2, 0.5});
        PARAMETER_VALUES.put(ActivationKind.ELU, new double[] {1.0, 0.5, 2.0});
        PARAMETER_VALUES.put(ActivationKind.PRELU, new double[] {0.25, -0.5, 1.5});
        // beta = 0 makes swish x/2; the checks must hold there too.
        PARAMETER_VALUES.put(ActivationKind.SWISH, new double[] {1.0, 0.0, 0.5, 2.0});
        PARAMETER_VALUES.put(ActivationKind.CELU, new double[] {1.0, 0.5, 2.0});
    }

    static Stream<ActivationKind> elementWiseKinds() {
        return Arrays.stream(ActivationKind.values()).filter(ActivationKind::isElementWise);
    }

    static Stream<ActivationKind> kindsWithParameter() {
        return elementWiseKinds().filter(ActivationKind::hasParameter);
    }

    private static double[] parameterValues(ActivationKind kind) {
        if (!kind.hasParameter()) {
            return new double[] {NO_PARAMETER};
        }
        double[] values = PARAMETER_VALUES.get(kind);
        assertNotNull(values, () -> "the test gives no parameter values for " + kind.id());
        return values;
    }

    // ---- forward against the high-precision reference ---------------------------------------------

    /** One reference value: f(x; parameter) = expected. */
    private record ReferencePoint(double parameter, double x, double expected) {
    }

    private static final Map<ActivationKind, List<ReferencePoint>> REFERENCE = new EnumMap<>(ActivationKind.class);

    private static void reference(ActivationKind kind, double parameter, double... xThenExpected) {
        List<ReferencePoint> points = REFERENCE.computeIfAbsent(kind, k -> new ArrayList<>());
        for (int i = 0; i < xThenExpected.length; i += 2) {
            points.add(new ReferencePoint(parameter, xThenExpected[i], xThenExpected[i + 1]));
        }
    }

    /*
     * Pairs (x, f(x)) computed with mpmath 1.3 at 120 significant digits (enough that 1 + erf(...)
     * does not cancel at x = -20) from the definitions below, not from the code under test; each input
     * is the exact double written, each result is rounded to the nearest double. Points: 0, +-1e-7,
     * +-0.5, +-1, +-2.5, +-20, and every kink or breakpoint.
     *   sigmoid 1/(1+exp(-x)); tanh; hardtanh min(max(x,-1),1); arctan atan; softsign x/(1+|x|);
     *   bent_identity (sqrt(x^2+1)-1)/2+x; relu max(x,0); leaky_relu, prelu x if x>0 else p x;
     *   elu x if x>0 else p (exp(x)-1); swish x/(1+exp(-p x)); gelu x (1+erf(x/sqrt 2))/2;
     *   selu scale (x if x>0 else alpha (exp(x)-1)) with the 32-digit constants of Klambauer et al.;
     *   celu max(0,x)+min(0,p (exp(x/p)-1)); silu x/(1+exp(-x)); mish x tanh(log(1+exp(x)));
     *   softplus log(1+exp(x)); relu6 min(max(x,0),6); hard_sigmoid min(max(x+3,0),6)/6;
     *   hard_swish x min(max(x+3,0),6)/6; log_sigmoid -log(1+exp(-x)).
     */
    static {
        reference(ActivationKind.STEP, NO_PARAMETER,
                0.0, 0.0,   1e-07, 1.0,   -1e-07, 0.0,
                0.5, 1.0,   -0.5, 0.0,   1.0, 1.0,
                -1.0, 0.0,   2.5, 1.0,   -2.5, 0.0,
                20.0, 1.0,   -20.0, 0.0);
        reference(ActivationKind.LINEAR, NO_PARAMETER,
                0.0, 0.0,   1e-07, 1e-07,   -1e-07, -1e-07,
                0.5, 0.5,   -0.5, -0.5,   1.0, 1.0,
                -1.0, -1.0,   2.5, 2.5,   -2.5, -2.5,
                20.0, 20.0,   -20.0, -20.0);
        reference(ActivationKind.SIGMOID, NO_PARAMETER,
                0.0, 0.5,   1e-07, 0.500000025,   -1e-07, 0.499999975,
                0.5, 0.6224593312018546,   -0.5, 0.37754066879814546,   1.0, 0.7310585786300049,
                -1.0, 0.2689414213699951,   2.5, 0.9241418199787564,   -2.5, 0.07585818002124355,
                20.0, 0.9999999979388464,   -20.0, 2.0611536181902037e-09);
        reference(ActivationKind.TANH, NO_PARAMETER,
                0.0, 0.0,   1e-07, 9.999999999999966e-08,   -1e-07, -9.999999999999966e-08,
                0.5, 0.46211715726000974,   -0.5, -0.46211715726000974,   1.0, 0.7615941559557649,
                -1.0, -0.7615941559557649,   2.5, 0.9866142981514303,   -2.5, -0.9866142981514303,
                20.0, 1.0,   -20.0, -1.0);
        reference(ActivationKind.HARD_TANH, NO_PARAMETER,
                0.0, 0.0,   1e-07, 1e-07,   -1e-07, -1e-07,
                0.5, 0.5,   -0.5, -0.5,   1.0, 1.0,
                -1.0, -1.0,   2.5, 1.0,   -2.5, -1.0,
                20.0, 1.0,   -20.0, -1.0,   1.5, 1.0,
                -1.5, -1.0);
        reference(ActivationKind.ARCTAN, NO_PARAMETER,
                0.0, 0.0,   1e-07, 9.999999999999966e-08,   -1e-07, -9.999999999999966e-08,
                0.5, 0.4636476090008061,   -0.5, -0.4636476090008061,   1.0, 0.7853981633974483,
                -1.0, -0.7853981633974483,   2.5, 1.1902899496825317,   -2.5, -1.1902899496825317,
                20.0, 1.5208379310729538,   -20.0, -1.5208379310729538);
        reference(ActivationKind.SOFTSIGN, NO_PARAMETER,
                0.0, 0.0,   1e-07, 9.999999000000099e-08,   -1e-07, -9.999999000000099e-08,
                0.5, 0.3333333333333333,   -0.5, -0.3333333333333333,   1.0, 0.5,
                -1.0, -0.5,   2.5, 0.7142857142857143,   -2.5, -0.7142857142857143,
                20.0, 0.9523809523809523,   -20.0, -0.9523809523809523);
        reference(ActivationKind.BENT_IDENTITY, NO_PARAMETER,
                0.0, 0.0,   1e-07, 1.0000000249999999e-07,   -1e-07, -9.99999975e-08,
                0.5, 0.5590169943749475,   -0.5, -0.44098300562505255,   1.0, 1.2071067811865475,
                -1.0, -0.7928932188134524,   2.5, 3.346291201783626,   -2.5, -1.653708798216374,
                20.0, 29.512492197250392,   -20.0, -10.487507802749606);
        reference(ActivationKind.RELU, NO_PARAMETER,
                0.0, 0.0,   1e-07, 1e-07,   -1e-07, 0.0,
                0.5, 0.5,   -0.5, 0.0,   1.0, 1.0,
                -1.0, 0.0,   2.5, 2.5,   -2.5, 0.0,
                20.0, 20.0,   -20.0, 0.0);
        reference(ActivationKind.LEAKY_RELU, 0.01,
                0.0, 0.0,   1e-07, 1e-07,   -1e-07, -1e-09,
                0.5, 0.5,   -0.5, -0.005,   1.0, 1.0,
                -1.0, -0.01,   2.5, 2.5,   -2.5, -0.025,
                20.0, 20.0,   -20.0, -0.2);
        reference(ActivationKind.LEAKY_RELU, 0.2,
                0.0, 0.0,   1e-07, 1e-07,   -1e-07, -2e-08,
                0.5, 0.5,   -0.5, -0.1,   1.0, 1.0,
                -1.0, -0.2,   2.5, 2.5,   -2.5, -0.5,
                20.0, 20.0,   -20.0, -4.0);
        reference(ActivationKind.ELU, 1.0,
                0.0, 0.0,   1e-07, 1e-07,   -1e-07, -9.999999500000016e-08,
                0.5, 0.5,   -0.5, -0.3934693402873666,   1.0, 1.0,
                -1.0, -0.6321205588285577,   2.5, 2.5,   -2.5, -0.9179150013761012,
                20.0, 20.0,   -20.0, -0.9999999979388464);
        reference(ActivationKind.ELU, 0.5,
                0.0, 0.0,   1e-07, 1e-07,   -1e-07, -4.999999750000008e-08,
                0.5, 0.5,   -0.5, -0.1967346701436833,   1.0, 1.0,
                -1.0, -0.31606027941427883,   2.5, 2.5,   -2.5, -0.4589575006880506,
                20.0, 20.0,   -20.0, -0.4999999989694232);
        reference(ActivationKind.PRELU, 0.25,
                0.0, 0.0,   1e-07, 1e-07,   -1e-07, -2.5e-08,
                0.5, 0.5,   -0.5, -0.125,   1.0, 1.0,
                -1.0, -0.25,   2.5, 2.5,   -2.5, -0.625,
                20.0, 20.0,   -20.0, -5.0);
        reference(ActivationKind.PRELU, -0.5,
                0.0, 0.0,   1e-07, 1e-07,   -1e-07, 5e-08,
                0.5, 0.5,   -0.5, 0.25,   1.0, 1.0,
                -1.0, 0.5,   2.5, 2.5,   -2.5, 1.25,
                20.0, 20.0,   -20.0, 10.0);
        reference(ActivationKind.SWISH, 1.0,
                0.0, 0.0,   1e-07, 5.00000025e-08,   -1e-07, -4.9999997499999995e-08,
                0.5, 0.3112296656009273,   -0.5, -0.18877033439907273,   1.0, 0.7310585786300049,
                -1.0, -0.2689414213699951,   2.5, 2.310354549946891,   -2.5, -0.18964545005310887,
                20.0, 19.99999995877693,   -20.0, -4.122307236380407e-08);
        reference(ActivationKind.SWISH, 0.5,
                0.0, 0.0,   1e-07, 5.0000001249999996e-08,   -1e-07, -4.999999875e-08,
                0.5, 0.28108825044289903,   -0.5, -0.21891174955710094,   1.0, 0.6224593312018546,
                -1.0, -0.37754066879814546,   2.5, 1.9432496529367278,   -2.5, -0.5567503470632721,
                20.0, 19.99909204262595,   -20.0, -0.0009079573740486879);
        reference(ActivationKind.SWISH, 2.0,
                0.0, 0.0,   1e-07, 5.0000004999999996e-08,   -1e-07, -4.9999995e-08,
                0.5, 0.36552928931500245,   -0.5, -0.13447071068499755,   1.0, 0.8807970779778824,
                -1.0, -0.11920292202211756,   2.5, 2.483267872689288,   -2.5, -0.01673212731071214,
                20.0, 20.0,   -20.0, -8.496708510583178e-17);
        reference(ActivationKind.GELU, NO_PARAMETER,
                0.0, 0.0,   1e-07, 5.00000039894228e-08,   -1e-07, -4.9999996010577195e-08,
                0.5, 0.34573123063700656,   -0.5, -0.15426876936299344,   1.0, 0.8413447460685429,
                -1.0, -0.15865525393145705,   2.5, 2.4844758366855597,   -2.5, -0.015524163314440337,
                20.0, 20.0,   -20.0, -5.507248237212468e-88);
        reference(ActivationKind.SELU, NO_PARAMETER,
                0.0, 0.0,   1e-07, 1.0507009873554804e-07,   -1e-07, -1.7580992529424128e-07,
                0.5, 0.5253504936777402,   -0.5, -0.6917581878028713,   1.0, 1.0507009873554805,
                -1.0, -1.1113307378125628,   2.5, 2.6267524683887014,   -2.5, -1.6137857588732425,
                20.0, 21.01401974710961,   -20.0, -1.758099337223664);
        reference(ActivationKind.CELU, 1.0,
                0.0, 0.0,   1e-07, 1e-07,   -1e-07, -9.999999500000016e-08,
                0.5, 0.5,   -0.5, -0.3934693402873666,   1.0, 1.0,
                -1.0, -0.6321205588285577,   2.5, 2.5,   -2.5, -0.9179150013761012,
                20.0, 20.0,   -20.0, -0.9999999979388464);
        reference(ActivationKind.CELU, 0.5,
                0.0, 0.0,   1e-07, 1e-07,   -1e-07, -9.999999000000066e-08,
                0.5, 0.5,   -0.5, -0.31606027941427883,   1.0, 1.0,
                -1.0, -0.43233235838169365,   2.5, 2.5,   -2.5, -0.49663102650045726,
                20.0, 20.0,   -20.0, -0.5);
        reference(ActivationKind.CELU, 2.0,
                0.0, 0.0,   1e-07, 1e-07,   -1e-07, -9.999999750000004e-08,
                0.5, 0.5,   -0.5, -0.44239843385719024,   1.0, 1.0,
                -1.0, -0.7869386805747332,   2.5, 2.5,   -2.5, -1.4269904062796197,
                20.0, 20.0,   -20.0, -1.999909200140475);
        reference(ActivationKind.SILU, NO_PARAMETER,
                0.0, 0.0,   1e-07, 5.00000025e-08,   -1e-07, -4.9999997499999995e-08,
                0.5, 0.3112296656009273,   -0.5, -0.18877033439907273,   1.0, 0.7310585786300049,
                -1.0, -0.2689414213699951,   2.5, 2.310354549946891,   -2.5, -0.18964545005310887,
                20.0, 19.99999995877693,   -20.0, -4.122307236380407e-08);
        reference(ActivationKind.MISH, NO_PARAMETER,
                0.0, 0.0,   1e-07, 6.000000319999998e-08,   -1e-07, -5.999999679999998e-08,
                0.5, 0.37524521130489513,   -0.5, -0.22074377465173,   1.0, 0.8650983882673103,
                -1.0, -0.3034014613741089,   2.5, 2.471392304557881,   -2.5, -0.19681620390653334,
                20.0, 20.0,   -20.0, -4.122307240628761e-08);
        reference(ActivationKind.SOFTPLUS, NO_PARAMETER,
                0.0, 0.6931471805599453,   1e-07, 0.6931472305599465,   -1e-07, 0.6931471305599466,
                0.5, 0.9740769841801067,   -0.5, 0.4740769841801067,   1.0, 1.3132616875182228,
                -1.0, 0.3132616875182228,   2.5, 2.5788897342925496,   -2.5, 0.07888973429254963,
                20.0, 20.000000002061153,   -20.0, 2.061153620314381e-09);
        reference(ActivationKind.RELU6, NO_PARAMETER,
                0.0, 0.0,   1e-07, 1e-07,   -1e-07, 0.0,
                0.5, 0.5,   -0.5, 0.0,   1.0, 1.0,
                -1.0, 0.0,   2.5, 2.5,   -2.5, 0.0,
                20.0, 6.0,   -20.0, 0.0,   3.0, 3.0,
                6.0, 6.0,   7.0, 6.0);
        reference(ActivationKind.HARD_SIGMOID, NO_PARAMETER,
                0.0, 0.5,   1e-07, 0.5000000166666667,   -1e-07, 0.49999998333333334,
                0.5, 0.5833333333333334,   -0.5, 0.4166666666666667,   1.0, 0.6666666666666666,
                -1.0, 0.3333333333333333,   2.5, 0.9166666666666666,   -2.5, 0.08333333333333333,
                20.0, 1.0,   -20.0, 0.0,   3.0, 1.0,
                -3.0, 0.0,   4.0, 1.0,   -4.0, 0.0);
        reference(ActivationKind.HARD_SWISH, NO_PARAMETER,
                0.0, 0.0,   1e-07, 5.0000001666666666e-08,   -1e-07, -4.999999833333333e-08,
                0.5, 0.2916666666666667,   -0.5, -0.20833333333333334,   1.0, 0.6666666666666666,
                -1.0, -0.3333333333333333,   2.5, 2.2916666666666665,   -2.5, -0.20833333333333334,
                20.0, 20.0,   -20.0, 0.0,   3.0, 3.0,
                -3.0, 0.0,   4.0, 4.0,   -4.0, 0.0,
                -1.5, -0.375);
        reference(ActivationKind.LOG_SIGMOID, NO_PARAMETER,
                0.0, -0.6931471805599453,   1e-07, -0.6931471305599466,   -1e-07, -0.6931472305599465,
                0.5, -0.4740769841801067,   -0.5, -0.9740769841801067,   1.0, -0.3132616875182228,
                -1.0, -1.3132616875182228,   2.5, -0.07888973429254963,   -2.5, -2.5788897342925496,
                20.0, -2.061153620314381e-09,   -20.0, -20.000000002061153);
    }

    @ParameterizedTest
    @MethodSource("elementWiseKinds")
    void forwardMatchesHighPrecisionReference(ActivationKind kind) {
        List<ReferencePoint> points = REFERENCE.get(kind);
        assertNotNull(points, () -> "no reference values for " + kind.id() + "; add them to this test");
        Failures failures = new Failures(kind.id() + " forward");
        for (ReferencePoint point : points) {
            double actual = CpuActivations.forward(kind, point.x(), point.parameter());
            if (!(Math.abs(actual - point.expected()) <= CLOSED_FORM_F64 * Math.abs(point.expected()))) {
                failures.add(point.x(), point.parameter(), actual, point.expected());
            }
        }
        failures.assertNone();
    }

    // ---- derivatives against central differences --------------------------------------------------

    /** A grid from -6 to 6 in steps of 1/4, plus tiny and large inputs and points just beside each kink. */
    private static double[] gradientCheckPoints(ActivationKind kind) {
        List<Double> points = new ArrayList<>();
        for (int i = -24; i <= 24; i++) {
            points.add(i * 0.25);
        }
        points.addAll(List.of(1e-7, -1e-7, 20.0, -20.0, 0.1, -0.1, 2.7, -2.7));
        for (double kink : KINKS.getOrDefault(kind, new double[0])) {
            points.add(kink - 1e-3);
            points.add(kink + 1e-3);
        }
        return points.stream().filter(x -> isClearOfKinks(kind, x)).mapToDouble(Double::doubleValue).toArray();
    }

    private static boolean isClearOfKinks(ActivationKind kind, double x) {
        for (double kink : KINKS.getOrDefault(kind, new double[0])) {
            if (Math.abs(x - kink) < GRADIENT_CHECK_KINK_CLEARANCE) {
                return false;
            }
        }
        return true;
    }

    @ParameterizedTest
    @MethodSource("elementWiseKinds")
    void derivativeMatchesCentralDifference(ActivationKind kind) {
        CpuActivations.Functions functions = CpuActivations.of(kind);
        Failures failures = new Failures(kind.id() + " derivative against central difference");
        double h = GRADIENT_CHECK_EPSILON;
        for (double parameter : parameterValues(kind)) {
            for (double x : gradientCheckPoints(kind)) {
                DoubleBinaryOperator f = functions.forward();
                double numeric = (f.applyAsDouble(x + h, parameter) - f.applyAsDouble(x - h, parameter)) / (2 * h);
                double analytic = functions.derivative().applyAsDouble(x, parameter);
                if (!passesGradientCheck(analytic, numeric)) {
                    failures.add(x, parameter, analytic, numeric);
                }
            }
        }
        failures.assertNone();
    }

    @ParameterizedTest
    @MethodSource("kindsWithParameter")
    void parameterDerivativeMatchesCentralDifferenceInTheParameter(ActivationKind kind) {
        CpuActivations.Functions functions = CpuActivations.of(kind);
        Failures failures = new Failures(kind.id() + " d/d" + kind.parameterName() + " against central difference");
        double h = GRADIENT_CHECK_EPSILON;
        for (double parameter : parameterValues(kind)) {
            // f is smooth in its parameter even at the kinks in x, so every point is checked.
            for (int i = -24; i <= 24; i++) {
                checkParameterDerivative(functions, i * 0.25, parameter, h, failures);
            }
            for (double x : new double[] {1e-7, -1e-7, 20.0, -20.0, 2.7, -2.7}) {
                checkParameterDerivative(functions, x, parameter, h, failures);
            }
        }
        failures.assertNone();
    }

    private static void checkParameterDerivative(CpuActivations.Functions functions, double x, double parameter,
                                                 double h, Failures failures) {
        DoubleBinaryOperator f = functions.forward();
        double numeric = (f.applyAsDouble(x, parameter + h) - f.applyAsDouble(x, parameter - h)) / (2 * h);
        double analytic = functions.parameterDerivative().applyAsDouble(x, parameter);
        if (!passesGradientCheck(analytic, numeric)) {
            failures.add(x, parameter, analytic, numeric);
        }
    }

    /** deeplearning4j's rule: relError = |a - n| / (|a| + |n|) small enough, or |a - n| tiny. */
    private static boolean passesGradientCheck(double analytic, double numeric) {
        double absoluteError = Math.abs(analytic - numeric);
        if (absoluteError <= GRADIENT_CHECK_MIN_ABSOLUTE_ERROR) {
            return true;
        }
        return absoluteError / (Math.abs(analytic) + Math.abs(numeric)) <= GRADIENT_CHECK_MAX_RELATIVE_ERROR;
    }

    // ---- kinks: the chosen conventions ------------------------------------------------------------

    @Test
    void derivativesAtKinksFollowTheDocumentedConventions() {
        Failures failures = new Failures("derivative at a kink");
        assertDerivative(failures, ActivationKind.STEP, NO_PARAMETER, 0.0, 0.0);
        assertDerivative(failures, ActivationKind.RELU, NO_PARAMETER, 0.0, 0.0);
        assertDerivative(failures, ActivationKind.RELU, NO_PARAMETER, -0.0, 0.0);
        assertDerivative(failures, ActivationKind.HARD_TANH, NO_PARAMETER, -1.0, 0.0);
        assertDerivative(failures, ActivationKind.HARD_TANH, NO_PARAMETER, 1.0, 0.0);
        assertDerivative(failures, ActivationKind.LEAKY_RELU, 0.01, 0.0, 0.01);
        assertDerivative(failures, ActivationKind.PRELU, 0.25, 0.0, 0.25);
        assertDerivative(failures, ActivationKind.ELU, 0.5, 0.0, 0.5);
        assertDerivative(failures, ActivationKind.SELU, NO_PARAMETER, 0.0, 1.7580993408473768); // scale * alpha
        assertDerivative(failures, ActivationKind.CELU, 2.0, 0.0, 1.0);
        assertDerivative(failures, ActivationKind.RELU6, NO_PARAMETER, 0.0, 0.0);
        assertDerivative(failures, ActivationKind.RELU6, NO_PARAMETER, 6.0, 0.0);
        assertDerivative(failures, ActivationKind.HARD_SIGMOID, NO_PARAMETER, -3.0, 0.0);
        assertDerivative(failures, ActivationKind.HARD_SIGMOID, NO_PARAMETER, 3.0, 0.0);
        assertDerivative(failures, ActivationKind.HARD_SWISH, NO_PARAMETER, -3.0, 0.0);
        assertDerivative(failures, ActivationKind.HARD_SWISH, NO_PARAMETER, 3.0, 1.0);
        // The step passes no gradient anywhere, not only at its jump.
        assertDerivative(failures, ActivationKind.STEP, NO_PARAMETER, 5.0, 0.0);
        assertDerivative(failures, ActivationKind.STEP, NO_PARAMETER, -5.0, 0.0);
        failures.assertNone();
    }

    private static void assertDerivative(Failures failures, ActivationKind kind, double parameter, double x,
                                         double expected) {
        double actual = CpuActivations.derivative(kind, x, parameter);
        if (!(Math.abs(actual - expected) <= CLOSED_FORM_F64 * Math.abs(expected))) {
            failures.add(kind.id() + "'", x, parameter, actual, expected);
        }
    }

    /** The chapter's claim behind vanishing gradients: sigmoid' never exceeds 1/4, reached at 0 only. */
    @Test
    void sigmoidDerivativeIsAtMostAQuarter() {
        assertEquals(0.25, CpuActivations.sigmoidDerivative(0.0));
        for (int i = -6000; i <= 6000; i++) {
            double x = i * 1e-3;
            if (i != 0) {
                assertTrue(CpuActivations.sigmoidDerivative(x) < 0.25, () -> "sigmoid'(" + x + ") >= 1/4");
            }
        }
    }

    // ---- extreme inputs ---------------------------------------------------------------------------

    private static final double[] EXTREME_INPUTS = {1e3, -1e3, 1e4, -1e4, 1e30, -1e30};

    @ParameterizedTest
    @MethodSource("elementWiseKinds")
    void staysFiniteAtExtremeInputs(ActivationKind kind) {
        CpuActivations.Functions functions = CpuActivations.of(kind);
        for (double parameter : parameterValues(kind)) {
            for (double x : EXTREME_INPUTS) {
                String at = kind.id() + " at x = " + x + ", parameter " + parameter + ": ";
                assertTrue(Double.isFinite(functions.forward().applyAsDouble(x, parameter)), at + "forward");
                assertTrue(Double.isFinite(functions.derivative().applyAsDouble(x, parameter)), at + "derivative");
                if (kind.hasParameter()) {
                    assertTrue(Double.isFinite(functions.parameterDerivative().applyAsDouble(x, parameter)),
                            at + "parameter derivative");
                }
            }
        }
    }

    /** Below this a derivative counts as saturated (0 in float, and 1e-60 is what softsign'(1e30) is). */
    private static final double SATURATED_DERIVATIVE = 1e-50;

    @Test
    void boundedKindsReachTheirLimitsWithZeroGradient() {
        assertSaturates(ActivationKind.STEP, 0.0, 1.0);
        assertSaturates(ActivationKind.SIGMOID, 0.0, 1.0);
        assertSaturates(ActivationKind.TANH, -1.0, 1.0);
        assertSaturates(ActivationKind.HARD_TANH, -1.0, 1.0);
        assertSaturates(ActivationKind.ARCTAN, -Math.PI / 2, Math.PI / 2);
        assertSaturates(ActivationKind.SOFTSIGN, -1.0, 1.0);
        assertSaturates(ActivationKind.RELU6, 0.0, 6.0);
        assertSaturates(ActivationKind.HARD_SIGMOID, 0.0, 1.0);
    }

    private static void assertSaturates(ActivationKind kind, double lowerLimit, double upperLimit) {
        assertEquals(lowerLimit, CpuActivations.forward(kind, -1e30, NO_PARAMETER), kind.id() + "(-1e30)");
        assertEquals(upperLimit, CpuActivations.forward(kind, 1e30, NO_PARAMETER), kind.id() + "(1e30)");
        for (double x : new double[] {-1e30, 1e30}) {
            double derivative = CpuActivations.derivative(kind, x, NO_PARAMETER);
            assertTrue(Math.abs(derivative) <= SATURATED_DERIVATIVE, () -> kind.id() + "'(" + x + ") = " + derivative);
        }
    }

    /** The naive 1 / (1 + e^-x) overflows e^-x at x = -1000; the stable form must not. */
    @Test
    void sigmoidDoesNotOverflowAtPlusMinusAThousand() {
        assertEquals(1.0, CpuActivations.sigmoid(1000));
        assertEquals(0.0, CpuActivations.sigmoid(-1000));
        assertEquals(0.0, CpuActivations.sigmoidDerivative(1000));
        assertEquals(0.0, CpuActivations.sigmoidDerivative(-1000));
        assertEquals(1000.0, CpuActivations.softplus(1000));
        assertEquals(-1000.0, CpuActivations.logSigmoid(-1000));
    }

    /** A NaN must come out as NaN: a clean 0 or 1 would hide a diverging run. */
    @ParameterizedTest
    @MethodSource("elementWiseKinds")
    void forwardPropagatesNaN(ActivationKind kind) {
        for (double parameter : parameterValues(kind)) {
            assertTrue(Double.isNaN(CpuActivations.forward(kind, Double.NaN, parameter)),
                    () -> kind.id() + "(NaN) is not NaN");
        }
    }

    /** ReLU's derivative is computed from the bits (no branch): every class of double gets x &gt; 0's answer. */
    @Test
    void reluDerivativeIsTheStepAtEveryKindOfDouble() {
        double[] values = {0.0, -0.0, Double.MIN_VALUE, -Double.MIN_VALUE, Double.MIN_NORMAL, 1e-300, -1e-300,
            1.0, -1.0, Double.MAX_VALUE, -Double.MAX_VALUE, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY,
            Double.NaN, -Double.NaN, Double.longBitsToDouble(0x7FF0000000000001L),
            Double.longBitsToDouble(0xFFF8000000000000L)};
        for (double x : values) {
            assertEquals(x > 0 ? 1.0 : 0.0, CpuActivations.reluDerivative(x), () -> "relu'(" + x + ") bits "
                    + Long.toHexString(Double.doubleToRawLongBits(x)));
        }
        Random random = new Random(7);
        for (int i = 0; i < 100_000; i++) {
            double x = Double.longBitsToDouble(random.nextLong());
            assertEquals(x > 0 ? 1.0 : 0.0, CpuActivations.reluDerivative(x), () -> "relu'(" + x + ")");
        }
    }

    // ---- erf, which Java lacks --------------------------------------------------------------------

    /** Pairs (x, erf(x)) from mpmath at 120 digits, rounded to double; both sides of the method switch at 2. */
    private static final double[] ERF_REFERENCE = {
        0.0, 0.0,   1e-07, 1.1283791670955088e-07,   0.5, 0.5204998778130465,   1.0, 0.8427007929497149,
        1.5, 0.9661051464753108,   1.9999999, 0.9953222629522538,   2.0, 0.9953222650189527,
        2.5, 0.999593047982555,   3.0, 0.9999779095030014,   5.0, 0.9999999999984626,   10.0, 1.0,
        26.0, 1.0,   -0.5, -0.5204998778130465,   -2.0, -0.9953222650189527,   -3.0, -0.9999779095030014,
        -10.0, -1.0,
    };

    /** Pairs (x, erfc(x)), as above; erfc keeps its relative precision far into the tail. */
    private static final double[] ERFC_REFERENCE = {
        0.0, 1.0,   1e-07, 0.9999998871620833,   0.5, 0.4795001221869535,   1.0, 0.15729920705028513,
        1.5, 0.033894853524689274,   1.9999999, 0.004677737047746216,   2.0, 0.004677734981047266,
        2.5, 0.0004069520174449589,   3.0, 2.209049699858544e-05,   5.0, 1.537459794428035e-12,
        10.0, 2.088487583762545e-45,   26.0, 5.663192408856143e-296,   -0.5, 1.5204998778130465,
        -2.0, 1.9953222650189528,   -3.0, 1.9999779095030015,   -10.0, 2.0,
    };

    @Test
    void erfAndErfcMatchHighPrecisionReference() {
        Failures failures = new Failures("erf / erfc");
        for (int i = 0; i < ERF_REFERENCE.length; i += 2) {
            double x = ERF_REFERENCE[i];
            double expected = ERF_REFERENCE[i + 1];
            double actual = CpuActivations.erf(x);
            if (!(Math.abs(actual - expected) <= CLOSED_FORM_F64 * Math.abs(expected))) {
                failures.add(x, NO_PARAMETER, actual, expected);
            }
        }
        for (int i = 0; i < ERFC_REFERENCE.length; i += 2) {
            double x = ERFC_REFERENCE[i];
            double expected = ERFC_REFERENCE[i + 1];
            double actual = CpuActivations.erfc(x);
            if (!(Math.abs(actual - expected) <= CLOSED_FORM_F64 * Math.abs(expected))) {
                failures.add(x, NO_PARAMETER, actual, expected);
            }
        }
        failures.assertNone();
        assertEquals(0.0, CpuActivations.erfc(30.0));
        assertEquals(2.0, CpuActivations.erfc(-30.0));
        assertEquals(1.0, CpuActivations.erf(Double.POSITIVE_INFINITY));
        assertEquals(-1.0, CpuActivations.erf(Double.NEGATIVE_INFINITY));
    }

    // ---- the table of kinds -----------------------------------------------------------------------

    @Test
    void tableHasFunctionsForEveryElementWiseKind() {
        for (ActivationKind kind : ActivationKind.values()) {
            if (!kind.isElementWise()) {
                continue;
            }
            CpuActivations.Functions functions = CpuActivations.of(kind);
            assertNotNull(functions, kind.id());
            assertNotNull(functions.forward(), kind.id() + " forward");
            assertNotNull(functions.derivative(), kind.id() + " derivative");
            if (kind.hasParameter()) {
                assertNotNull(functions.parameterDerivative(), kind.id() + " parameter derivative");
            } else {
                assertNull(functions.parameterDerivative(), kind.id() + " has no parameter");
            }
        }
    }

    @Test
    void softmaxIsRejectedBecauseItIsFusedIntoTheLoss() {
        IllegalArgumentException error =
                assertThrows(IllegalArgumentException.class, () -> CpuActivations.of(ActivationKind.SOFTMAX));
        assertEquals("softmax is not element-wise; it is fused into the loss", error.getMessage());
        assertThrows(IllegalArgumentException.class, () -> CpuActivations.forward(ActivationKind.SOFTMAX, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> CpuActivations.derivative(ActivationKind.SOFTMAX, 1, 0));
    }

    @Test
    void parameterDerivativeIsRejectedForKindsWithoutParameter() {
        IllegalArgumentException error = assertThrows(IllegalArgumentException.class,
                () -> CpuActivations.parameterDerivative(ActivationKind.RELU, 1, 0));
        assertTrue(error.getMessage().contains("relu"), error.getMessage());
    }

    // ---- ActivationKind: ids, parameters, lookup ---------------------------------------------------

    /**
     * Ids are written into saved configs and typed on the command line, and parameter names and
     * defaults are part of each kind's definition: a change to any of them must be deliberate.
     */
    @Test
    void idsParametersAndDefaultsAreAsDocumented() {
        assertKind(ActivationKind.STEP, "step", null, 0);
        assertKind(ActivationKind.LINEAR, "linear", null, 0);
        assertKind(ActivationKind.SIGMOID, "sigmoid", null, 0);
        assertKind(ActivationKind.TANH, "tanh", null, 0);
        assertKind(ActivationKind.HARD_TANH, "hardtanh", null, 0);
        assertKind(ActivationKind.ARCTAN, "arctan", null, 0);
        assertKind(ActivationKind.SOFTSIGN, "softsign", null, 0);
        assertKind(ActivationKind.BENT_IDENTITY, "bent_identity", null, 0);
        assertKind(ActivationKind.RELU, "relu", null, 0);
        assertKind(ActivationKind.LEAKY_RELU, "leaky_relu", "alpha", 0.01);
        assertKind(ActivationKind.ELU, "elu", "alpha", 1.0);
        assertKind(ActivationKind.PRELU, "prelu", "alpha", 0.25);
        assertKind(ActivationKind.SWISH, "swish", "beta", 1.0);
        assertKind(ActivationKind.SOFTMAX, "softmax", null, 0);
        assertKind(ActivationKind.GELU, "gelu", null, 0);
        assertKind(ActivationKind.SELU, "selu", null, 0);
        assertKind(ActivationKind.CELU, "celu", "alpha", 1.0);
        assertKind(ActivationKind.SILU, "silu", null, 0);
        assertKind(ActivationKind.MISH, "mish", null, 0);
        assertKind(ActivationKind.SOFTPLUS, "softplus", null, 0);
        assertKind(ActivationKind.RELU6, "relu6", null, 0);
        assertKind(ActivationKind.HARD_SIGMOID, "hard_sigmoid", null, 0);
        assertKind(ActivationKind.HARD_SWISH, "hard_swish", null, 0);
        assertKind(ActivationKind.LOG_SIGMOID, "log_sigmoid", null, 0);
        assertEquals(24, ActivationKind.values().length, "a new kind needs a line above");

        Set<String> ids = new HashSet<>();
        for (ActivationKind kind : ActivationKind.values()) {
            assertTrue(ids.add(kind.id()), "duplicate id " + kind.id());
            assertEquals(kind != ActivationKind.SOFTMAX, kind.isElementWise(), kind.id());
        }
    }

    private static void assertKind(ActivationKind kind, String id, String parameterName, double defaultParameter) {
        assertEquals(id, kind.id());
        assertEquals(parameterName, kind.parameterName(), id);
        assertEquals(parameterName != null, kind.hasParameter(), id);
        assertEquals(defaultParameter, kind.defaultParameter(), id);
    }

    @ParameterizedTest
    @MethodSource("allKinds")
    void fromIdAcceptsEveryIdInAnyCase(ActivationKind kind) {
        assertSame(kind, ActivationKind.fromId(kind.id()));
        assertSame(kind, ActivationKind.fromId(kind.id().toUpperCase(Locale.ROOT)));
        assertSame(kind, ActivationKind.fromId("  " + capitalised(kind.id()) + " "));
    }

    static Stream<ActivationKind> allKinds() {
        return Arrays.stream(ActivationKind.values());
    }

    private static String capitalised(String id) {
        return id.substring(0, 1).toUpperCase(Locale.ROOT) + id.substring(1);
    }

    @Test
    void fromIdErrorNamesTheBadIdAndEveryValidOne() {
        IllegalArgumentException error =
                assertThrows(IllegalArgumentException.class, () -> ActivationKind.fromId("sigmoidd"));
        String message = error.getMessage();
        assertTrue(message.contains("'sigmoidd'"), message);
        for (ActivationKind kind : ActivationKind.values()) {
            assertTrue(message.contains(kind.id()), () -> "'" + kind.id() + "' missing from: " + message);
        }
    }

    // ---- reporting --------------------------------------------------------------------------------

    /** Collects the failing points of one check and reports the count, the first few and the worst one. */
    private static final class Failures {
        private static final int SHOWN = 8;
        private final String check;
        private final List<String> lines = new ArrayList<>();
        private String worstLine;
        private double worstDifference = -1;

        Failures(String check) {
            this.check = check;
        }

        void add(double x, double parameter, double actual, double expected) {
            add("f", x, parameter, actual, expected);
        }

        void add(String function, double x, double parameter, double actual, double expected) {
            double difference = Math.abs(actual - expected);
            String line = String.format(Locale.ROOT, "%s at x = %s, parameter = %s: got %s, expected %s (difference %.3g)",
                    function, x, parameter, actual, expected, actual - expected);
            lines.add(line);
            // A NaN counts as the worst failure, and stays the worst.
            boolean worse = Double.isNaN(difference) ? !Double.isNaN(worstDifference) : difference > worstDifference;
            if (worse) {
                worstDifference = difference;
                worstLine = line;
            }
        }

        void assertNone() {
            if (!lines.isEmpty()) {
                fail(check + ": " + lines.size() + " failing points, first ones:\n  "
                        + String.join("\n  ", lines.subList(0, Math.min(SHOWN, lines.size())))
                        + "\n worst:\n  " + worstLine);
            }
        }
    }
}
