package dev.pollen.scheduler.directory;

import com.hazelcast.config.Config;
import com.hazelcast.config.JoinConfig;
import com.hazelcast.config.NetworkConfig;

import java.util.List;

/**
 * Hazelcast's network settings for a Pollen swarm: TCP/IP join to the given members only (never
 * multicast, never auto-detection), bound to one interface, no phoning home.
 */
public final class SwarmNetwork {
    private SwarmNetwork() {
    }

    /**
     * @param config  a Hazelcast config to adjust (Vert.x's default one keeps the maps Vert.x needs)
     * @param swarm   the cluster name: swarms with other names never merge
     * @param host    the interface to bind and announce, e.g. 127.0.0.1
     * @param port    the first port to try; later ones are tried when it is taken
     * @param members host:port of members to join; empty to start a new swarm
     */
    public static Config apply(Config config, String swarm, String host, int port, List<String> members) {
        config.setClusterName(swarm);
        config.setProperty("hazelcast.phone.home.enabled", "false");
        config.setProperty("hazelcast.wait.seconds.before.join", "0");
        config.setProperty("hazelcast.socket.bind.any", "false");
        config.setProperty("hazelcast.logging.type", "jdk");
        // Pollen stops its directory member itself, after withdrawing the server's record; Hazelcast's
        // own shutdown hook would close the member first and the record would linger until it expires.
        config.setProperty("hazelcast.shutdownhook.enabled", "false");
        NetworkConfig network = config.getNetworkConfig();
        network.setPort(port).setPortAutoIncrement(true).setPortCount(100);
        network.getInterfaces().setEnabled(true).setInterfaces(List.of(host));
        JoinConfig join = network.getJoin();
        join.getMulticastConfig().setEnabled(false);
        join.getAutoDetectionConfig().setEnabled(false);
        join.getTcpIpConfig().setEnabled(true).setMembers(members.isEmpty() ? List.of(host) : members);
        return config;
    }
}
