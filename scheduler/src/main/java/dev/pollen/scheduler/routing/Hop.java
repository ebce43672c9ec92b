package dev.pollen.scheduler.routing;

import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ServerInfo;

/** One server of a route and the blocks it computes there. */
public record Hop(ServerInfo server, BlockRange blocks) {
    public Hop {
        if (!server.blocks().contains(blocks)) {
            throw new IllegalArgumentException("Server " + server.serverId() + " hosts " + server.blocks()
                    + ", not " + blocks);
        }
    }
}
