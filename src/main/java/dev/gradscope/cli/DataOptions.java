package dev.gradscope.cli;

import dev.gradscope.data.Dataset;
import dev.gradscope.data.DatasetKind;
import dev.gradscope.data.Mnist;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Iterator;
import java.util.function.Function;
import picocli.CommandLine.Option;

/**
 * Which data set a command reads and from where: {@code --dataset} and {@code --data-dir}, the options of every
 * command that reads images ({@link DeviceOptions} carries them for the commands that train or evaluate).
 */
final class DataOptions {
    /**
     * Null when not given: evaluate and predict then take the weights file's own, the others
     * {@link DatasetKind#DEFAULT}.
     */
    @Option(names = "--dataset", paramLabel = "NAME", completionCandidates = Ids.class,
            description = "The images: ${COMPLETION-CANDIDATES} (default: mnist; for evaluate and predict, the one the"
                    + " weights were trained on).")
    String dataset;

    /** Null when not given: the data set's own folder. */
    @Option(names = "--data-dir", paramLabel = "DIR",
            description = "Folder with the data set's four IDX files, plain or .gz (default: its own folder,"
                    + " data/mnist or data/fashion-mnist).")
    Path dataDir;

    /** Checks {@code --dataset}; an unknown one becomes {@code usage}'s exception, listing the valid ones. */
    void validate(Function<String, RuntimeException> usage) {
        if (dataset != null) {
            try {
                DatasetKind.fromId(dataset);
            } catch (IllegalArgumentException e) {
                throw usage.apply("--dataset: " + e.getMessage());
            }
        }
    }

    /** The data set {@code --dataset} names, {@link DatasetKind#DEFAULT} when not given. */
    DatasetKind dataset() {
        return dataset == null ? DatasetKind.DEFAULT : DatasetKind.fromId(dataset);
    }

    /** {@code --data-dir}, or the data set's own folder when not given. */
    Path dataDir() {
        return dataDir != null ? dataDir : Path.of(dataset().defaultDir());
    }

    /** The four files of the data set, from {@link #dataDir()}. */
    Mnist load() {
        return Mnist.load(dataset(), dataDir());
    }

    /** Only the test split of the data set, from {@link #dataDir()}: the training files need not be there. */
    Dataset loadTest() {
        return Mnist.loadTest(dataset(), dataDir());
    }

    /** The data sets' ids, for the help's {@code ${COMPLETION-CANDIDATES}}: the list is {@link DatasetKind}'s. */
    static final class Ids implements Iterable<String> {
        @Override
        public Iterator<String> iterator() {
            return Arrays.stream(DatasetKind.values()).map(DatasetKind::id).iterator();
        }
    }
}
