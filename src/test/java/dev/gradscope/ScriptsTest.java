package dev.gradscope;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.gradscope.data.DatasetKind;
import dev.gradscope.data.MnistSubset;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The shell scripts around the data sets: the launcher's and the subset script's copies of {@link DatasetKind}'s
 * table, and fetch-fashion-mnist.sh's checks, run without the network: {@code apt-get} and {@code dpkg-deb} are
 * stand-ins on the PATH.
 */
class ScriptsTest {
    private static final String FETCH = "scripts/fetch-fashion-mnist.sh";
    private static final String TEST_LABELS_MD5 = "15d484375f8d13e6eb1aabb0c3f46965";
    private static final String TRAIN_IMAGES_MD5 = "f4a8712d7a061bf5bd6d2ca38dc4d50a";

    @TempDir
    Path tmp;

    private Path bin;

    /** What a script run printed and its exit status. */
    private record Result(int status, String stdout, String stderr) {
    }

    @BeforeEach
    void standIns() throws IOException {
        assumeTrue(Files.isExecutable(Path.of("/bin/bash")) || Files.isExecutable(Path.of("/usr/bin/bash")),
                "no bash here to run the scripts with");
        bin = Files.createDirectories(tmp.resolve("bin"));
        // apt that cannot reach Debian, as on a machine without the network.
        standIn("apt-get", "echo 'E: Failed to fetch http://deb.debian.org/debian/pool/main/d/dataset-fashion-mnist:"
                + " Temporary failure resolving deb.debian.org' >&2\nexit 100");
        // dpkg-deb -x DEB DIR: unpacks, as Debian's package lays them out, the four gzip files of the test subset.
        standIn("dpkg-deb", "[ \"$1\" = -x ] || exit 2\nmkdir -p \"$3/usr/share/datasets/fashion-mnist\"\n"
                + "cp '" + MnistSubset.fashionDir() + "'/*.gz \"$3/usr/share/datasets/fashion-mnist/\"");
    }

    private void standIn(String name, String body) throws IOException {
        Path file = bin.resolve(name);
        Files.writeString(file, "#!/bin/sh\n" + body + "\n");
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    private Result fetch(Map<String, String> env, String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of("bash", FETCH));
        command.addAll(List.of(args));
        ProcessBuilder builder = new ProcessBuilder(command).redirectOutput(tmp.resolve("stdout").toFile())
                .redirectError(tmp.resolve("stderr").toFile());
        builder.environment().put("PATH", bin + ":" + System.getenv("PATH"));
        builder.environment().remove("FASHION_MNIST_DEB");
        builder.environment().putAll(env);
        Process process = builder.start();
        assertTrue(process.waitFor(60, TimeUnit.SECONDS), "the script finished");
        return new Result(process.exitValue(), Files.readString(tmp.resolve("stdout")),
                Files.readString(tmp.resolve("stderr")));
    }

    private static String md5(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("MD5").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void theLauncherAndTheSubsetScriptKnowEveryDatasetOfTheTable() throws IOException {
        String launcher = Files.readString(Path.of("scripts/gradscope"));
        String subset = Files.readString(Path.of("scripts/make-mnist-subset.sh"));
        for (DatasetKind kind : DatasetKind.values()) {
            assertTrue(launcher.contains(kind.id() + ") echo " + kind.defaultDir() + " ;;"), "launcher: " + kind);
            assertTrue(launcher.contains(kind.id() + ") echo " + kind.fetchScript() + " ;;"), "launcher: " + kind);
            assertTrue(subset.contains(kind.id() + ") title=" + kind.title() + " "), "subset script: " + kind);
            assertTrue(subset.contains(Path.of(kind.fetchScript()).getFileName().toString()), "subset script: " + kind);
        }
    }

    @Test
    void aDamagedFileIsReportedAndAnUnreachableDebianIsExplained() throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("fashion"));
        for (String name : List.of("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte")) {
            Files.writeString(dir.resolve(name), "not " + name);
        }
        byte[] damaged = "a damaged label file".getBytes(StandardCharsets.US_ASCII);
        Files.write(dir.resolve("t10k-labels-idx1-ubyte"), damaged);

        Result result = fetch(Map.of(), dir.toString());
        assertEquals(1, result.status(), result.stderr());
        assertTrue(result.stderr().contains("fetch-fashion-mnist: " + dir.resolve("t10k-labels-idx1-ubyte")
                + " has MD5 " + md5(damaged) + ", expected " + TEST_LABELS_MD5 + "; fetching it again"),
                result.stderr());
        assertTrue(result.stderr().contains("Temporary failure resolving deb.debian.org"), "apt's own words");
        assertTrue(result.stderr().contains("apt-get download dataset-fashion-mnist=0.0~git20200523.55506a9-1"
                + " failed (output above): apt could not reach Debian"), result.stderr());
        assertEquals("a damaged label file", Files.readString(dir.resolve("t10k-labels-idx1-ubyte")),
                "nothing in DIR changed");
    }

    @Test
    void aPackageWhoseFilesHaveOtherSumsIsNotInstalled() throws Exception {
        Path deb = Files.writeString(tmp.resolve("other.deb"), "stands in for a package");
        Path dir = tmp.resolve("fashion");

        Result result = fetch(Map.of("FASHION_MNIST_DEB", deb.toString()), dir.toString());
        assertEquals(1, result.status(), result.stderr());
        // The subset's training images are the first 2000 of the real ones, not the 60000 the sum is of.
        assertTrue(result.stderr().contains("fetch-fashion-mnist: train-images-idx3-ubyte from " + deb + " has MD5 "),
                result.stderr());
        assertTrue(result.stderr().contains(", expected " + TRAIN_IMAGES_MD5 + "; not installing it"),
                result.stderr());
        assertFalse(Files.exists(dir), "only verified files reach DIR");

        Result missing = fetch(Map.of("FASHION_MNIST_DEB", tmp.resolve("absent.deb").toString()), dir.toString());
        assertEquals(1, missing.status());
        assertTrue(missing.stderr().contains("FASHION_MNIST_DEB=" + tmp.resolve("absent.deb") + ": no such file"),
                missing.stderr());
    }

    @Test
    void intactFilesAreKeptWithoutAsking() throws Exception {
        Path fetched = Path.of(DatasetKind.FASHION_MNIST.defaultDir());
        assumeTrue(Files.isDirectory(fetched),
                "full Fashion-MNIST not fetched: run scripts/fetch-fashion-mnist.sh to test the kept copy");
        Result result = fetch(Map.of(), fetched.toString());
        assertEquals(0, result.status(), result.stderr());
        assertEquals("Fashion-MNIST already in " + fetched + " (MD5 verified)\n", result.stdout());
    }
}
