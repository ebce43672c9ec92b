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
        super("Server " + server.address() + " (" + server.serverId() + ", blocks " + server.blocks() + ") failed: " + reason);
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

    /** The request itself was refused as invalid: retrying it elsewhere cannot help. */
    public boolean isClientError() {
        return status == GrpcStatus.INVALID_ARGUMENT;
    }
}
