package dev.pollen.node.client;

import dev.pollen.protocol.ServerInfo;

/**
 * A server could not push a step on to the next server of the route: the link between them is
 * broken, not either server. The client relays that link itself from then on and bans nobody.
 */
final class PushFailedException extends HopFailedException {
    private final ServerInfo from;

    PushFailedException(ServerInfo from, ServerInfo to, String reason) {
        super(null, to, "Server " + from.address() + " could not push to " + to.address() + ": " + reason);
        this.from = from;
    }

    /** The server that could not push. */
    ServerInfo from() {
        return from;
    }

    /** The server it could not reach. */
    ServerInfo to() {
        return server();
    }
}
