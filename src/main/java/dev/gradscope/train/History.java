package dev.gradscope.train;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What {@code fit} returns, as Keras's {@code History}: for each metric name ({@code loss},
 * {@code accuracy}, {@code val_loss}, {@code val_accuracy}) one value per epoch, plus each epoch's
 * wall-clock seconds.
 */
public final class History {
    private final Map<String, List<Double>> metrics = new LinkedHashMap<>();
    private final List<Double> epochSeconds = new ArrayList<>();
    private Profile profile;
    private NonFiniteEvent nonFinite;
    private boolean graphs;
    private int stepsPerGraph = 1;
    private long operationsPerStep = -1;

    /**
     * A history with these epochs, profile and non-finite event, as a run's files hold them, for reading a
     * finished run back; {@code metrics} has one value per epoch of {@code epochSeconds}.
     */
    public static History of(Map<String, List<Double>> metrics, List<Double> epochSeconds, Profile profile,
                             NonFiniteEvent nonFinite) {
        History history = new History();
        metrics.forEach((metric, values) -> {
            if (values.size() != epochSeconds.size()) {
                throw new IllegalArgumentException(metric + " has " + values.size() + " values for "
                        + epochSeconds.size() + " epochs");
            }
            history.metrics.put(metric, new ArrayList<>(values));
        });
        history.epochSeconds.addAll(epochSeconds);
        history.profile = profile;
        history.nonFinite = nonFinite;
        return history;
    }

    /**
     * A copy to go on recording into: the metrics, seconds and profile (copied too), not the non-finite event
     * or the execution figures, which describe one {@code fit} call.
     */
    History continued() {
        History copy = new History();
        metrics.forEach((key, values) -> copy.metrics.put(key, new ArrayList<>(values)));
        copy.epochSeconds.addAll(epochSeconds);
        copy.profile = profile == null ? null : profile.copy();
        return copy;
    }

    /** Appends one epoch's logs. */
    public void record(Map<String, Double> logs, double seconds) {
        logs.forEach((key, value) -> metrics.computeIfAbsent(key, k -> new ArrayList<>()).add(value));
        epochSeconds.add(seconds);
    }

    /** One value per epoch for {@code metric}; the error names the metrics recorded. */
    public List<Double> get(String metric) {
        List<Double> values = metrics.get(metric);
        if (values == null) {
            throw new IllegalArgumentException("no metric '" + metric + "' in this history; it has "
                    + metrics.keySet());
        }
        return Collections.unmodifiableList(values);
    }

    /** The last epoch's value of {@code metric}. */
    public double last(String metric) {
        List<Double> values = get(metric);
        return values.get(values.size() - 1);
    }

    /** Every metric, in the order first recorded. */
    public Map<String, List<Double>> metrics() {
        Map<String, List<Double>> copy = new LinkedHashMap<>();
        metrics.forEach((k, v) -> copy.put(k, Collections.unmodifiableList(v)));
        return Collections.unmodifiableMap(copy);
    }

    public List<Double> epochSeconds() {
        return Collections.unmodifiableList(epochSeconds);
    }

    /**
     * What the gradient profiler measured, or null when it was switched off (a run resumed with it off keeps
     * the profile of the earlier epochs that had it on).
     */
    public Profile profile() {
        return profile;
    }

    void setProfile(Profile profile) {
        this.profile = profile;
    }

    /** The first non-finite gradient of the run, or null when every gradient stayed finite. */
    public NonFiniteEvent nonFinite() {
        return nonFinite;
    }

    void setNonFinite(NonFiniteEvent event) {
        this.nonFinite = event;
    }

    public int epochs() {
        return epochSeconds.size();
    }

    /** Whether the training steps ran as replays of a captured graph (else eagerly, op by op). */
    public boolean graphs() {
        return graphs;
    }

    /**
     * The training steps one graph launch ran: {@link FitOptions#stepsPerGraph()}, at most the full batches
     * of an epoch, when the steps ran as graphs (the group of leftover full batches and the smaller last batch
     * of an epoch have graphs of fewer); 1 when they ran eagerly, each step queued on its own.
     */
    public int stepsPerGraph() {
        return stepsPerGraph;
    }

    /**
     * The device operations one training step queues (kernels, cuBLAS calls, device copies), counted on the
     * first step; -1 when the backend does not count them (the CPU) or no step ran.
     */
    public long operationsPerStep() {
        return operationsPerStep;
    }

    void setExecution(boolean graphs, int stepsPerGraph, long operationsPerStep) {
        this.graphs = graphs;
        this.stepsPerGraph = graphs ? stepsPerGraph : 1;
        this.operationsPerStep = operationsPerStep;
    }
}
