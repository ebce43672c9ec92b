package dev.pollen.scheduler.directory;

import com.hazelcast.cluster.Member;
import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.partition.MigrationListener;
import com.hazelcast.partition.MigrationState;
import com.hazelcast.partition.Partition;
import com.hazelcast.partition.PartitionService;
import com.hazelcast.partition.ReplicaMigrationEvent;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.scheduler.directory.DirectoryMemberMain.Kind;
import dev.pollen.scheduler.directory.DirectoryMemberMain.Spec;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;

import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;

import static dev.pollen.scheduler.directory.LoopbackSwarm.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The directory against real departures: each server is a separate JVM, and killing a server
 * kills its process ({@code kill -9}: no shutdown hook, no goodbye). The test JVM holds the
 * member the test reads through.
 */
@DisplayName("The Hazelcast directory, with servers in their own processes,")
class HazelcastDirectoryProcessTest {
    private static final String MODEL = "llama-3-8b";
    private static final Path LOGS = Path.of(System.getProperty("pollen.test.workdir", "target/test-work"),
            "directory-members");
    /** Past its time-to-live, a record may linger under a second (whole-second expiry) plus one poll. */
    private static final Duration EXPIRY_SLACK = Duration.ofMillis(1500);
    /** Leaves room for one poll and the query between reading the clock and the read landing. */
    private static final Duration EARLY_MARGIN = Duration.ofMillis(300);
    /** Bound on Hazelcast noticing a killed member and on repartitioning after it. */
    private static final Duration CLUSTER_CHANGE_TIMEOUT = Duration.ofSeconds(20);
    private static final Duration PERIOD = Duration.ofMillis(500);

    private final Poll poll = Poll.wall();
    private final List<MemberProcess> children = new ArrayList<>();
    private String cluster;
    private HazelcastInstance hazelcast;
    private ExecutorService blocking;
    private HazelcastDirectory directory;

    @BeforeEach
    void startMember(TestInfo test) {
        cluster = LoopbackSwarm.uniqueClusterName(test.getTestMethod().orElseThrow().getName());
        blocking = Executors.newFixedThreadPool(2);
        hazelcast = LoopbackSwarm.startMember(cluster);
        directory = new HazelcastDirectory(hazelcast, blocking);
    }

    @AfterEach
    void stopEverything() {
        // Children first, each on its own, so that one failure leaves no process behind.
        for (MemberProcess child : children) {
            child.close();
        }
        if (directory != null) {
            directory.close();
        }
        if (hazelcast != null) {
            hazelcast.getLifecycleService().terminate();
        }
        if (blocking != null) {
            blocking.shutdownNow();
        }
    }

    @Test
    @DisplayName("keeps a killed server's records until their time-to-live, then drops them")
    void killedServerExpiresWithinItsTimeToLive() {
        // A data member, so that records whose primary copy dies with it live on as backups here,
        // which must keep their time-to-live. With 16 records, all landing here has odds 2^-16.
        Spec spec = new Spec(cluster, LoopbackSwarm.address(hazelcast), Kind.DATA, 16, MODEL, Duration.ofSeconds(4),
                PERIOD);
        MemberProcess child = launch(spec);
        awaitClusterSafe("after the join");
        UUID childId = otherMember().getUuid();
        long ownedByChild = spec.serverIds().stream()
                .filter(id -> childId.equals(hazelcast.getPartitionService().getPartition(id).getOwner().getUuid()))
                .count();
        assertTrue(ownedByChild > 0, "No record's primary copy was on the killed member");
        Instant killed = child.kill();

        assertListed(spec.serverIds(), "just after the kill");
        // Its last refresh was at most a period before the kill: nothing but the TTL may drop it earlier.
        Instant earliestExpiry = killed.minus(PERIOD).plus(spec.timeToLive());
        awaitDeparture(earliestExpiry);
        poll.holdsUntil("listing the killed server's records", earliestExpiry.minus(EARLY_MARGIN),
                () -> listedIds().containsAll(spec.serverIds()));
        Instant gone = poll.until("dropping the killed server's records",
                killed.plus(spec.timeToLive()).plus(EXPIRY_SLACK), () -> listedIds().isEmpty());
        System.out.printf("Killed server's records (%d of %d primaries on it) gone %d ms after the kill (TTL %d ms)%n",
                ownedByChild, spec.servers(), Duration.between(killed, gone).toMillis(), spec.timeToLive().toMillis());
    }

    @Test
    @DisplayName("drops a cleanly stopped server's records at once, long before their time-to-live")
    void cleanStopRemovesRecordsAtOnce() {
        Spec spec = new Spec(cluster, LoopbackSwarm.address(hazelcast), Kind.LITE, 2, MODEL, Duration.ofSeconds(30),
                Duration.ofSeconds(1));
        MemberProcess child = launch(spec);
        Instant stopped = child.stop();

        Instant gone = poll.until("dropping the stopped server's records", stopped.plus(Duration.ofSeconds(1)),
                () -> listedIds().isEmpty());
        System.out.printf("Stopped server's records gone %d ms after STOPPED (TTL %d s)%n",
                Duration.between(stopped, gone).toMillis(), spec.timeToLive().toSeconds());
    }

    @Test
    @DisplayName("moves no data when a lite member dies, and keeps its records until their time-to-live")
    void liteMemberDepartureMovesNoData() {
        Departure departure = killAndWatch(Kind.LITE);

        assertEquals(0, departure.partitionsOfChild(), "a lite member owns no partitions");
        assertFalse(departure.movedData(), departure.toString());
    }

    @Test
    @DisplayName("moves data when a data member dies (the control that shows the lite check can fail)")
    void dataMemberDepartureMovesData() {
        Departure departure = killAndWatch(Kind.DATA);

        assertTrue(departure.partitionsOfChild() > 0, "the data member owned no partition: " + departure);
        assertTrue(departure.movedData(), departure.toString());
    }

    /**
     * What a member's death did to the partitions: migrations the partition service reported, and
     * whether any partition changed owner.
     */
    private record Departure(int partitionsOfChild, int migrationsStarted, int replicaMigrations,
                             boolean ownersChanged) {
        boolean movedData() {
            return migrationsStarted > 0 || replicaMigrations > 0 || ownersChanged;
        }
    }

    private Departure killAndWatch(Kind kind) {
        Spec spec = new Spec(cluster, LoopbackSwarm.address(hazelcast), kind, 8, MODEL, Duration.ofSeconds(5),
                PERIOD);
        MemberProcess child = launch(spec);
        PartitionService partitions = hazelcast.getPartitionService();
        // A data member's join moves partitions to it; watch only what its death does.
        awaitClusterSafe("after the join");
        UUID childId = otherMember().getUuid();
        Map<Integer, UUID> ownersBefore = owners();
        int partitionsOfChild = (int) ownersBefore.values().stream().filter(childId::equals).count();
        MigrationCounter migrations = new MigrationCounter();
        UUID registration = partitions.addMigrationListener(migrations);
        try {
            Instant killed = child.kill();
            Instant earliestExpiry = killed.minus(PERIOD).plus(spec.timeToLive());
            awaitDeparture(earliestExpiry);
            poll.holdsUntil("listing the dead " + kind + " member's records", earliestExpiry.minus(EARLY_MARGIN),
                    () -> listedIds().containsAll(spec.serverIds()));
            awaitClusterSafe("after the death");
            Departure departure = new Departure(partitionsOfChild, migrations.started.get(), migrations.replicas.get(),
                    !owners().equals(ownersBefore));
            System.out.println("A " + kind + " member died: " + departure);
            return departure;
        } finally {
            partitions.removeMigrationListener(registration);
        }
    }

    private static final class MigrationCounter implements MigrationListener {
        final AtomicInteger started = new AtomicInteger();
        final AtomicInteger replicas = new AtomicInteger();

        @Override
        public void migrationStarted(MigrationState state) {
            started.incrementAndGet();
        }

        @Override
        public void migrationFinished(MigrationState state) {
        }

        @Override
        public void replicaMigrationCompleted(ReplicaMigrationEvent event) {
            replicas.incrementAndGet();
        }

        @Override
        public void replicaMigrationFailed(ReplicaMigrationEvent event) {
            replicas.incrementAndGet();
        }
    }

    private MemberProcess launch(Spec spec) {
        MemberProcess child = MemberProcess.start(spec, LOGS);
        children.add(child);
        poll.within("listing the new member's records", Duration.ofSeconds(10),
                () -> listedIds().containsAll(spec.serverIds()));
        return child;
    }

    private Set<String> listedIds() {
        return await(directory.servers(MODEL)).stream().map(ServerInfo::serverId).collect(Collectors.toSet());
    }

    private void assertListed(List<String> ids, String when) {
        Set<String> listed = listedIds();
        assertTrue(listed.containsAll(ids), "Listed " + when + ": " + listed + ", expected " + ids);
    }

    private void awaitClusterSafe(String when) {
        poll.within("the cluster safe " + when, CLUSTER_CHANGE_TIMEOUT,
                () -> hazelcast.getPartitionService().isClusterSafe());
    }

    /**
     * Waits until Hazelcast has dropped the dead member, and checks it did so before the records
     * could expire: only then does "still listed" show that its departure left them alone.
     */
    private void awaitDeparture(Instant earliestExpiry) {
        Instant alone = poll.within("the dead member gone from the cluster", CLUSTER_CHANGE_TIMEOUT,
                () -> hazelcast.getCluster().getMembers().size() == 1);
        assertTrue(alone.isBefore(earliestExpiry.minus(EARLY_MARGIN)), "Hazelcast noticed the death only at "
                + alone + ", too close to the records' earliest expiry " + earliestExpiry + " to tell anything");
    }

    private Member otherMember() {
        return hazelcast.getCluster().getMembers().stream().filter(m -> !m.localMember()).findFirst()
                .orElseThrow(() -> new AssertionError("The child is not in the cluster"));
    }

    /** Partition id to owner; the test member's view, read while the cluster is safe. */
    private Map<Integer, UUID> owners() {
        Map<Integer, UUID> owners = new HashMap<>();
        for (Partition partition : hazelcast.getPartitionService().getPartitions()) {
            Member owner = partition.getOwner();
            owners.put(partition.getPartitionId(), owner == null ? null : owner.getUuid());
        }
        return owners;
    }
}
