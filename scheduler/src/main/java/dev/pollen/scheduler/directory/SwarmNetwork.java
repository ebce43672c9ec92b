package dev.pollen.scheduler.directory;

import com.hazelcast.config.Config;
import com.hazelcast.config.JoinConfig;
import com.hazelcast.config.NetworkConfig;

import java.util.List;

/**
 * Hazelcast's network settings for a Pollen swarm: TCP/IP join to the given members only (never
 * multicast, never auto-detection), bound to one interface, no phoning home. In Kubernetes, a
 * single member {@code k8s:SERVICE_DNS} joins through Hazelcast's Kubernetes discovery instead: the
 * members are the pods behind that headless service.
 */
public final class SwarmNetwork {
    /** The prefix of a --join value that names a Kubernetes headless service. */
    public static final String KUBERNETES_PREFIX = "k8s:";

    private SwarmNetwork() {
    }

    /** The headless service's DNS name when {@code members} is {@code [k8s:NAME]}, else null. */
    public static String kubernetesService(List<String> members) {
        if (members.size() == 1 && members.get(0).startsWith(KUBERNETES_PREFIX)) {
            String service = members.get(0).substring(KUBERNETES_PREFIX.length());
            if (service.isBlank()) {
                throw new IllegalArgumentException("Name the headless service after k8s:, e.g. k8s:pollen-server.pollen.svc.cluster.local");
            }
            return service;
        }
        return null;
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
        String service = kubernetesService(members);
        if (service != null) {
            join.getTcpIpConfig().setEnabled(false);
            join.getKubernetesConfig().setEnabled(true).setProperty("service-dns", service);
        } else {
            join.getTcpIpConfig().setEnabled(true).setMembers(members.isEmpty() ? List.of(host) : members);
        }
        return config;
    }
}
