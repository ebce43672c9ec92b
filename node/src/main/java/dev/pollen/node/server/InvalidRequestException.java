package dev.pollen.node.server;

/** A request that can never succeed as sent: a wrong shape, dtype, position, range or session. */
public class InvalidRequestException extends RuntimeException {
    public InvalidRequestException(String message) {
        super(message);
    }
}
