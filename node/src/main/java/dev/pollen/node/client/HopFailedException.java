package dev.pollen.node.client;

import dev.pollen.protocol.ServerInfo;
import io.vertx.grpc.common.GrpcStatus;

/** A hop of the route failed: the connection, the server, or a deadline. The client fails over. */
public class HopFailedException extends RuntimeException {
    private final ServerInfo server;
    private final GrpcStatus status;

    public HopFailedException(ServerInfo server, String reason) {
        this(server, reason, null);
    }

    public HopFailedException(ServerInfo server, String reason, GrpcStatus status) {
        this(status, server, "Server " + server.address() + " (" + server.serverId() + ", blocks " + server.blocks()
                + ") failed: " + reason);
    }

    /** A failure with its whole message written by the caller. */
    protected HopFailedException(GrpcStatus status, ServerInfo server, String message) {
        super(message);
        this.server = server;
        this.status = status;
    }

    public ServerInfo server() {
        return server;
    }

    /** The gRPC status the server ended with, or null when the connection itself failed. */
    public GrpcStatus status() {
        return status;
    }

    /**
     * The server refused the request as invalid. One server's word is not enough to end an
     * operation (it may be broken, or lie): {@link Failover} tries one other server first.
     */
    public boolean refused() {
        return status == GrpcStatus.INVALID_ARGUMENT;
    }

    /**
     * The server had no room (sessions, cache, its compute queue) within the time it was given:
     * busy, not broken. {@link Failover} routes around it and waits rather than banning it.
     */
    public boolean busy() {
        return status == GrpcStatus.RESOURCE_EXHAUSTED;
    }
}
