package dev.pollen.scheduler.routing;

import dev.pollen.protocol.ServerInfo;

import java.util.Set;

/**
 * Allow and deny lists of servers, matched by server id, public name or host:port. An empty allow
 * list allows every server; the deny list always wins.
 */
public record ServerFilter(Set<String> allow, Set<String> deny) {
    public static final ServerFilter ALL = new ServerFilter(Set.of(), Set.of());

    public ServerFilter {
        allow = Set.copyOf(allow);
        deny = Set.copyOf(deny);
    }

    public boolean permits(ServerInfo server) {
        if (matches(deny, server)) {
            return false;
        }
        return allow.isEmpty() || matches(allow, server);
    }

    private static boolean matches(Set<String> names, ServerInfo server) {
        return names.contains(server.serverId()) || names.contains(server.address())
                || (!server.publicName().isEmpty() && names.contains(server.publicName()));
    }
}
