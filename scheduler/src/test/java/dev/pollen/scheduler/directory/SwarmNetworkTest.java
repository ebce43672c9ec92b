package dev.pollen.scheduler.directory;

import com.hazelcast.config.Config;
import com.hazelcast.config.JoinConfig;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@DisplayName("The swarm's Hazelcast network settings")
class SwarmNetworkTest {
    @Test
    @DisplayName("members join by TCP/IP to the listed addresses, never by multicast")
    void tcpIp() {
        JoinConfig join = SwarmNetwork.apply(new Config(), "s", "127.0.0.1", 5701, List.of("127.0.0.1:5702"))
                .getNetworkConfig().getJoin();
        assertTrue(join.getTcpIpConfig().isEnabled());
        assertEquals(List.of("127.0.0.1:5702"), join.getTcpIpConfig().getMembers());
        assertFalse(join.getMulticastConfig().isEnabled());
        assertFalse(join.getKubernetesConfig().isEnabled());
    }

    @Test
    @DisplayName("k8s:SERVICE joins through Kubernetes discovery of that headless service")
    void kubernetes() {
        JoinConfig join = SwarmNetwork.apply(new Config(), "s", "10.1.2.3", 5701,
                List.of("k8s:pollen-server.pollen.svc.cluster.local")).getNetworkConfig().getJoin();
        assertFalse(join.getTcpIpConfig().isEnabled());
        assertTrue(join.getKubernetesConfig().isEnabled());
        assertEquals("pollen-server.pollen.svc.cluster.local", join.getKubernetesConfig().getProperty("service-dns"));
        assertThrows(IllegalArgumentException.class, () -> SwarmNetwork.kubernetesService(List.of("k8s:")));
    }
}
