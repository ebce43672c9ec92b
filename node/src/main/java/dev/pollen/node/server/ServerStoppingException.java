package dev.pollen.node.server;

/** The server is draining or stopped: the client should fail over. */
public class ServerStoppingException extends RuntimeException {
    public ServerStoppingException(String message) {
        super(message);
    }
}
