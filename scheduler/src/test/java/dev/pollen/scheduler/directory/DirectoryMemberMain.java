package dev.pollen.scheduler.directory;

import com.hazelcast.config.Config;
import com.hazelcast.core.Hazelcast;
import com.hazelcast.core.HazelcastInstance;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ServerInfo;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;

/**
 * A stand-in for a Pollen server in its own JVM: it joins the test's swarm as a Hazelcast member,
 * announces {@code servers} records and refreshes them every period. It prints {@value #READY}
 * once they are written; on a line {@value #STOP} (or the end of its input, when the test JVM
 * is gone) it removes them, shuts Hazelcast down and prints {@value #STOPPED}.
 */
public final class DirectoryMemberMain {
    static final String READY = "READY";
    static final String STOP = "stop";
    static final String STOPPED = "STOPPED";

    /** A data member owns partitions (and so moves data when it leaves); a lite member owns none. */
    enum Kind { DATA, LITE }

    /**
     * @param cluster        the swarm's cluster name
     * @param join           host:port of the member to join
     * @param kind           data or lite member
     * @param servers        how many records it announces
     * @param model          the model of its records
     * @param timeToLive     each record's time-to-live
     * @param announcePeriod how often it refreshes them
     */
    record Spec(String cluster, String join, Kind kind, int servers, String model, Duration timeToLive,
                Duration announcePeriod) {
        Spec {
            if (servers <= 0) {
                throw new IllegalArgumentException("servers must be > 0, got " + servers);
            }
            if (announcePeriod.compareTo(timeToLive) >= 0) {
                throw new IllegalArgumentException("The announce period " + announcePeriod
                        + " must be shorter than the time-to-live " + timeToLive);
            }
        }

        /** Record ids are the cluster name and an index: unique across tests. */
        List<String> serverIds() {
            return IntStream.range(0, servers).mapToObj(i -> cluster + "-server-" + i).toList();
        }

        List<String> toArgs() {
            return List.of("cluster=" + cluster, "join=" + join, "kind=" + kind, "servers=" + servers, "model=" + model,
                    "ttl-ms=" + timeToLive.toMillis(), "period-ms=" + announcePeriod.toMillis());
        }

        static Spec parse(String[] args) {
            Map<String, String> values = new HashMap<>();
            for (String arg : args) {
                int eq = arg.indexOf('=');
                if (eq < 0) {
                    throw new IllegalArgumentException("Arguments are key=value, got '" + arg + "'");
                }
                values.put(arg.substring(0, eq), arg.substring(eq + 1));
            }
            return new Spec(values.get("cluster"), values.get("join"), Kind.valueOf(values.get("kind")),
                    Integer.parseInt(values.get("servers")), values.get("model"),
                    Duration.ofMillis(Long.parseLong(values.get("ttl-ms"))),
                    Duration.ofMillis(Long.parseLong(values.get("period-ms"))));
        }
    }

    private DirectoryMemberMain() {
    }

    public static void main(String[] args) throws Exception {
        Spec spec = Spec.parse(args);
        LoopbackSwarm.quietHazelcastLogging();
        String[] joinHostPort = spec.join().split(":");
        Config config = SwarmNetwork.apply(new Config(), spec.cluster(), LoopbackSwarm.HOST,
                Integer.parseInt(joinHostPort[1]) + 1, List.of(spec.join()));
        config.setLiteMember(spec.kind() == Kind.LITE);
        HazelcastInstance hazelcast = Hazelcast.newHazelcastInstance(config);
        ScheduledExecutorService announcer = Executors.newSingleThreadScheduledExecutor();
        HazelcastDirectory directory = new HazelcastDirectory(hazelcast, announcer);

        List<ServerInfo> records = new ArrayList<>();
        for (String id : spec.serverIds()) {
            records.add(ServerInfo.of(id, spec.model(), BlockRange.of(0, 8), 1));
        }
        announceAll(directory, records, spec.timeToLive());
        announcer.scheduleAtFixedRate(() -> {
            try {
                announceAll(directory, records, spec.timeToLive());
            } catch (RuntimeException e) {
                // A refresh that fails is the test's business: it shows as a record expiring early.
                System.err.println("Refresh failed: " + e);
            }
        }, spec.announcePeriod().toMillis(), spec.announcePeriod().toMillis(), TimeUnit.MILLISECONDS);
        System.out.println(READY);
        System.out.flush();

        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        do {
            line = in.readLine();
        } while (line != null && !line.trim().equals(STOP));

        announcer.shutdown();
        if (!announcer.awaitTermination(5, TimeUnit.SECONDS)) {
            throw new IllegalStateException("The announcer did not stop within 5 s");
        }
        CompletableFuture.allOf(records.stream()
                .map(r -> directory.remove(r.serverId()).toCompletableFuture())
                .toArray(CompletableFuture[]::new)).get(10, TimeUnit.SECONDS);
        directory.close();
        hazelcast.shutdown();
        System.out.println(STOPPED);
        System.out.flush();
    }

    private static void announceAll(HazelcastDirectory directory, List<ServerInfo> records, Duration timeToLive) {
        CompletableFuture.allOf(records.stream()
                .map(r -> directory.announce(r, timeToLive).toCompletableFuture())
                .toArray(CompletableFuture[]::new)).join();
    }
}
