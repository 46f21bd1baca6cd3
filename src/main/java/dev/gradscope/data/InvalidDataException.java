package dev.gradscope.data;

/**
 * A data file is missing, unreadable, or not what it claims to be.
 *
 * <p>The message always names the file (a path, or a classpath resource) and says what is wrong
 * with it in numbers (the magic found and expected, the bytes expected and found, ...), so that
 * the user can fix the file without reading our code. Loaders of well-known data sets add how to
 * get a good copy.
 */
public final class InvalidDataException extends RuntimeException {
    public InvalidDataException(String message) {
        super(message);
    }

    public InvalidDataException(String message, Throwable cause) {
        super(message, cause);
    }
}
