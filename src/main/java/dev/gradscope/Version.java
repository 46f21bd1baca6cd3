package dev.gradscope;

/**
 * GradScope's version, as the jar's manifest gives it (Implementation-Version, the pom's version): what {@code
 * gradscope -V} prints and what exported files name as their producer's version.
 */
public final class Version {
    private Version() {
    }

    /** The version of the running jar, e.g. {@code 0.1.0-SNAPSHOT}; "development build" when run from classes. */
    public static String text() {
        String version = Version.class.getPackage().getImplementationVersion();
        return version == null ? "development build" : version;
    }
}
