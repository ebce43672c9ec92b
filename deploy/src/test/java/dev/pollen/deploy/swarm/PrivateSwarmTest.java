package dev.pollen.deploy.swarm;

import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.map.IMap;
import dev.pollen.deploy.process.ServerProcess;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.make.ModelMaker;
import dev.pollen.inference.make.ModelSpec;
import dev.pollen.node.client.DistributedModel;
import dev.pollen.node.client.SessionOptions;
import dev.pollen.node.cluster.SwarmCluster;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.protocol.trust.Admission;
import dev.pollen.protocol.trust.RecordVerifier;
import dev.pollen.protocol.trust.ServerIdentity;
import dev.pollen.protocol.trust.SwarmAuthority;
import dev.pollen.scheduler.directory.HazelcastDirectory;
import dev.pollen.scheduler.routing.BanList;
import dev.pollen.scheduler.routing.Route;
import dev.pollen.scheduler.routing.RoutePlanner;
import dev.pollen.scheduler.routing.RouteRequest;
import dev.pollen.scheduler.routing.RoutingCosts;
import dev.pollen.scheduler.routing.ServerFilter;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A private swarm: two server processes started with identities and admissions made by the
 * swarm's admin key, a third `pollen serve` process with the right swarm name but no admission
 * announcing every block, and a stranger (a Hazelcast client in the test) announcing every block
 * at its own address in records it signed itself, one carrying an admitted server's admission.
 * The stranger's records are valid in an open swarm, where a route would go through them; clients
 * and servers of the private swarm never contact it, take nothing from the unadmitted process,
 * and generate what the model run locally generates.
 */
@DisplayName("A private swarm")
class PrivateSwarmTest {
    private static final long[][] PROMPT = {{1, 40, 200, 37, 9, 120}};
    private static final int TOKENS = 12;
    private static final int HAZELCAST_PORT = 6431;

    @Test
    @DisplayName("only admitted servers are used: a process without an admission and self-signed records of every block are never routed to")
    void onlyAdmittedServers() throws Exception {
        Path work = Files.createDirectories(TestSwarm.WORK.resolve("private-swarm-" + ProcessHandle.current().pid()));
        Path model = work.resolve("llama");
        ModelMaker.write(model, ModelSpec.preset("tiny", "llama", DType.F32, 31), i -> { });
        SwarmAuthority authority = SwarmAuthority.loadOrCreate(work.resolve("swarm.key"));
        Path swarmKey = work.resolve("swarm.key.pub");
        Files.writeString(swarmKey, authority.publicKeyText() + "\n");
        String swarm = "private-" + ProcessHandle.current().pid();
        List<ServerProcess> servers = new ArrayList<>();
        Admission firstAdmission = null;
        try (RogueListener rogue = new RogueListener()) {

            String member = null;
            int n = 0;
            for (String span : List.of("0:2", "2:4")) {
                Path identity = work.resolve("server-" + n + ".key");
                Path admitted = work.resolve("server-" + n + ".admission");
                Admission admission = authority.admit(ServerIdentity.loadOrCreate(identity).publicKey(), Duration.ofDays(1));
                Files.writeString(admitted, admission.encode() + "\n");
                firstAdmission = firstAdmission == null ? admission : firstAdmission;
                ServerProcess server = TestServers.start(TestSwarm.WORK.resolve("logs"), swarm + "-" + n, model, swarm,
                        HAZELCAST_PORT + n, member == null ? List.of() : List.of(member),
                        List.of("--blocks", span, "--identity", identity.toString(), "--admission", admitted.toString(),
                                "--swarm-key", swarmKey.toString()));
                member = member == null ? server.directoryAddress() : member;
                servers.add(server);
                n++;
            }
            // The right swarm name, every block, no admission.
            servers.add(TestServers.start(TestSwarm.WORK.resolve("logs"), swarm + "-unadmitted", model, swarm,
                    HAZELCAST_PORT + n, List.of(member), List.of("--blocks", "0:4")));

            HazelcastInstance stranger = SwarmCluster.client(swarm, List.of(member));
            try {
                IMap<String, ServerInfo> records = stranger.getMap(HazelcastDirectory.SERVERS);
                ServerInfo template = records.values().iterator().next();
                int port = rogue.port();
                for (Admission carried : java.util.Arrays.asList(null, firstAdmission)) {
                    ServerIdentity own = ServerIdentity.generate();
                    ServerInfo record = own.seal(new ServerInfo(own.serverId(), template.model(), template.modelFingerprint(),
                            BlockRange.of(0, 4), template.state(), "127.0.0.1", port, 1e7, 1e7, 1e7, 1 << 30, template.dtype(),
                            template.quant(), List.of(), template.version(), "", Map.of(), template.load(), template.memory()),
                            Duration.ofMinutes(10), carried);
                    records.put(record.serverId(), record, 10, TimeUnit.MINUTES);
                }
                assertEquals(5, records.size(), "two admitted servers, one unadmitted process, two stranger's records");

                // In an open swarm the stranger's records are valid, and the fastest route goes through them.
                List<ServerInfo> open = new RecordVerifier().filter(List.copyOf(records.values()));
                assertEquals(5, open.size());
                Route tempting = new RoutePlanner(RoutingCosts.DEFAULT).planInference(open, new RouteRequest(template.model(),
                        BlockRange.of(0, 4), 64, Map.of(), ServerFilter.ALL, BanList.withDefaults(Clock.systemUTC())));
                assertTrue(tempting.hops().stream().allMatch(h -> h.server().port() == port), "an open swarm's route: " + tempting);
                // The private swarm's verdicts.
                RecordVerifier members = new RecordVerifier(authority.publicKey());
                Map<RecordVerifier.Verdict, Long> verdicts = records.values().stream()
                        .collect(Collectors.groupingBy(members::check, Collectors.counting()));
                assertEquals(Map.of(RecordVerifier.Verdict.VALID, 2L, RecordVerifier.Verdict.NOT_ADMITTED, 3L), verdicts);

                long[][] expected = TestSwarm.generateLocally(model, PROMPT, TOKENS);
                try (TestSwarm client = new TestSwarm(swarm, member, authority.publicKey())) {
                    DistributedModel remote = client.model(model, model.getFileName().toString());
                    assertArrayEquals(expected[0], TestSwarm.generate(remote, PROMPT, TOKENS, SessionOptions.defaults())[0],
                            "the text through the private swarm");
                    assertArrayEquals(expected[0], TestSwarm.generate(remote, PROMPT, TOKENS,
                            SessionOptions.defaults().withPush(false))[0], "the text without push");
                    // The servers' own step counters: the admitted ones computed, the unadmitted one never did.
                    for (ServerInfo record : records.values()) {
                        if (record.port() == port) {
                            continue;
                        }
                        long steps = client.client().info(record).getInferenceSteps();
                        if (record.port() == servers.get(2).grpcPort()) {
                            assertEquals(0, steps, "the unadmitted server must never be used");
                        } else {
                            assertTrue(steps > 0, "an admitted server computed: " + record.address());
                        }
                    }
                }
                assertEquals(0, rogue.contacts(), "no client or server of the private swarm may contact a stranger");
            } finally {
                stranger.shutdown();
            }
        } finally {
            for (ServerProcess server : servers) {
                server.close();
            }
        }
    }
}
