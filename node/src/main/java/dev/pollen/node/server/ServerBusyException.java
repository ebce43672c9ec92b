package dev.pollen.node.server;

/** The server cannot take the request now (queue full, no cache room in time, too many sessions). */
public class ServerBusyException extends RuntimeException {
    public ServerBusyException(String message) {
        super(message);
    }
}
