package dev.pollen.inference.checkpoint;

import java.nio.file.Path;

/**
 * A checkpoint that cannot be used as it is: a missing or corrupt file, a missing tensor, a shape
 * that does not match the config. The message is one sentence that names the file and tensor.
 */
public class CheckpointException extends RuntimeException {
    private final Path file;

    public CheckpointException(Path file, String message) {
        super(message);
        this.file = file;
    }

    public CheckpointException(Path file, String message, Throwable cause) {
        super(message, cause);
        this.file = file;
    }

    /** The file at fault (a directory when the file itself is missing). */
    public Path file() {
        return file;
    }
}
