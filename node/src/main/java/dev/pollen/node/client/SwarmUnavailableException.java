package dev.pollen.node.client;

/** The swarm could not complete a request within its bounded retries. */
public class SwarmUnavailableException extends RuntimeException {
    public SwarmUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
