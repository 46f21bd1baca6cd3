package dev.gradscope.train;

/**
 * Where a gradient first stopped being finite (overflowed to infinity or became NaN).
 *
 * @param epoch     epoch (from 0)
 * @param step      step within the epoch (from 0)
 * @param layerName the first layer, in backpropagation order (from the output), whose gradient was not
 *                  finite
 * @param stopped   whether training stopped there
 */
public record NonFiniteEvent(int epoch, int step, String layerName, boolean stopped) {
    @Override
    public String toString() {
        return "non-finite gradient at epoch " + (epoch + 1) + ", step " + (step + 1) + ", first in " + layerName
                + (stopped ? "; training stopped there" : "; training went on");
    }
}
