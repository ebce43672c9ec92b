package dev.pollen.node.cluster;

import com.hazelcast.client.HazelcastClient;
import com.hazelcast.client.config.ClientConfig;
import com.hazelcast.config.Config;
import com.hazelcast.core.HazelcastInstance;
import dev.pollen.scheduler.directory.SwarmNetwork;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.eventbus.EventBusOptions;
import io.vertx.spi.cluster.hazelcast.ConfigUtil;
import io.vertx.spi.cluster.hazelcast.HazelcastClusterManager;

import java.util.List;
import io.vertx.core.internal.VertxInternal;

/**
 * How Pollen processes join a swarm. Servers run a clustered Vert.x whose Hazelcast member holds
 * the directory; clients and the gateway connect as Hazelcast clients, so their comings and goings
 * move no data.
 */
public final class SwarmCluster {
    public static final String DEFAULT_SWARM = "pollen";
    public static final int DEFAULT_HAZELCAST_PORT = 5701;

    private SwarmCluster() {
    }

    /**
     * A clustered Vert.x for a server.
     *
     * @param lite a lite member holds no partitions: its departure moves no data (volunteer servers)
     */
    public static Future<Vertx> server(String swarm, String host, int hazelcastPort, List<String> join, boolean lite) {
        Config config = SwarmNetwork.apply(ConfigUtil.loadConfig(), swarm, host, hazelcastPort, join);
        config.setLiteMember(lite);
        HazelcastClusterManager manager = new HazelcastClusterManager(config);
        VertxOptions options = new VertxOptions().setEventBusOptions(new EventBusOptions().setHost(host).setPort(0));
        return Vertx.builder().with(options).withClusterManager(manager).buildClustered();
    }

    /** The Hazelcast member inside a clustered Vert.x built by {@link #server}. */
    public static HazelcastInstance hazelcast(Vertx vertx) {
        return ((HazelcastClusterManager) ((VertxInternal) vertx).clusterManager()).getHazelcastInstance();
    }

    /** A Hazelcast client of the swarm (blocking: call it off the event loop). */
    public static HazelcastInstance client(String swarm, List<String> members) {
        ClientConfig config = new ClientConfig();
        config.setClusterName(swarm);
        config.setProperty("hazelcast.phone.home.enabled", "false");   // the swarm's machines talk to each other only
        config.setProperty("hazelcast.logging.type", "jdk");
        config.setProperty("hazelcast.shutdownhook.enabled", "false");
        String service = SwarmNetwork.kubernetesService(members);
        if (service != null) {
            config.getNetworkConfig().getKubernetesConfig().setEnabled(true).setProperty("service-dns", service);
        } else {
            config.getNetworkConfig().setAddresses(members);
        }
        config.getNetworkConfig().setSmartRouting(true);
        config.getConnectionStrategyConfig().getConnectionRetryConfig().setClusterConnectTimeoutMillis(15_000);
        return HazelcastClient.newHazelcastClient(config);
    }
}
