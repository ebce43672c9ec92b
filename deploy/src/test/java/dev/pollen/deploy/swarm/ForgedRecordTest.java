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
import dev.pollen.protocol.trust.RecordSeal;
import dev.pollen.protocol.trust.ServerIdentity;
import dev.pollen.scheduler.directory.HazelcastDirectory;
import dev.pollen.scheduler.routing.BanList;
import dev.pollen.scheduler.routing.Route;
import dev.pollen.scheduler.routing.RoutePlanner;
import dev.pollen.scheduler.routing.RouteRequest;
import dev.pollen.scheduler.routing.RoutingCosts;
import dev.pollen.scheduler.routing.ServerFilter;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Anyone who reaches a directory port and knows the swarm's name can write records: here a
 * Hazelcast client in the test writes, beside the records of two honest server processes, a
 * copy of one honest record moved to its own port and widened to every block, an unsigned record
 * of every block, and a record it signed itself that claims the other honest server's id, all
 * far faster than the honest servers. Without checks a route would go through it; clients, which
 * read the directory through signature checks, never contact it, and generate what the model run
 * locally generates.
 */
@DisplayName("Forged directory records")
class ForgedRecordTest {
    private static final long[][] PROMPT = {{1, 40, 200, 37, 9, 120}};
    private static final int TOKENS = 12;
    private static final int HAZELCAST_PORT = 6411;

    @Test
    @DisplayName("a moved, widened, unsigned or misattributed record is ignored: no client contacts it, and the text is unchanged")
    void forgedRecordsAreIgnored() throws Exception {
        Path model = TestSwarm.WORK.resolve("forged-llama");
        ModelMaker.write(model, ModelSpec.preset("tiny", "llama", DType.F32, 29), i -> { });
        String swarm = "forged-" + ProcessHandle.current().pid();
        List<ServerProcess> servers = new ArrayList<>();
        try (RogueListener rogue = new RogueListener()) {

            String member = null;
            int n = 0;
            for (String span : List.of("0:2", "2:4")) {
                ServerProcess server = TestServers.start(TestSwarm.WORK.resolve("logs"), swarm + "-" + n, model, swarm,
                        HAZELCAST_PORT + n, member == null ? List.of() : List.of(member), List.of("--blocks", span));
                member = member == null ? server.directoryAddress() : member;
                servers.add(server);
                n++;
            }
            HazelcastInstance attacker = SwarmCluster.client(swarm, List.of(member));
            try {
                IMap<String, ServerInfo> records = attacker.getMap(HazelcastDirectory.SERVERS);
                List<ServerInfo> honest = records.values().stream()
                        .sorted(Comparator.comparingInt((ServerInfo s) -> s.blocks().start())).toList();
                assertEquals(2, honest.size(), "both honest servers announced");
                ServerInfo first = honest.get(0);
                BlockRange all = BlockRange.of(0, 4);
                int port = rogue.port();
                ServerInfo moved = new ServerInfo(first.serverId(), first.model(), first.modelFingerprint(), all, first.state(),
                        "127.0.0.1", port, 1e6, 1e6, 1e6, 1 << 30, first.dtype(), first.quant(), first.adapters(),
                        first.version(), first.publicName(), Map.of(), first.load(), first.memory(), first.seal());
                ServerInfo unsigned = new ServerInfo("rogue-unsigned", first.model(), first.modelFingerprint(), all,
                        first.state(), "127.0.0.1", port, 1e6, 1e6, 1e6, 1 << 30, first.dtype(), first.quant(), List.of(),
                        first.version(), "", Map.of(), first.load(), first.memory(), RecordSeal.NONE);
                ServerIdentity own = ServerIdentity.generate();
                RecordSeal ownSeal = own.seal(new ServerInfo(own.serverId(), first.model(), first.modelFingerprint(), all,
                        first.state(), "127.0.0.1", port, 1e6, 1e6, 1e6, 1 << 30, first.dtype(), first.quant(), List.of(),
                        first.version(), "", Map.of(), first.load(), first.memory()), Duration.ofSeconds(60)).seal();
                ServerInfo misattributed = new ServerInfo(honest.get(1).serverId(), first.model(), first.modelFingerprint(), all,
                        first.state(), "127.0.0.1", port, 1e6, 1e6, 1e6, 1 << 30, first.dtype(), first.quant(), List.of(),
                        first.version(), "", Map.of(), first.load(), first.memory(), ownSeal);
                for (ServerInfo forged : List.of(moved, unsigned, misattributed)) {
                    records.put("forged-" + forged.serverId() + "-" + forged.seal().sequence(), forged, 10, TimeUnit.MINUTES);
                }
                // Without the checks, the planner would send every token through the rogue.
                Route tempting = new RoutePlanner(RoutingCosts.DEFAULT).planInference(records.values(), new RouteRequest(
                        first.model(), all, 64, Map.of(), ServerFilter.ALL, BanList.withDefaults(Clock.systemUTC())));
                assertTrue(tempting.hops().stream().allMatch(h -> h.server().port() == port),
                        "the forged records must be what an unchecked client would choose: " + tempting);

                long[][] expected = TestSwarm.generateLocally(model, PROMPT, TOKENS);
                try (TestSwarm client = new TestSwarm(swarm, member)) {
                    DistributedModel remote = client.model(model, model.getFileName().toString());
                    assertArrayEquals(expected[0], TestSwarm.generate(remote, PROMPT, TOKENS, SessionOptions.defaults())[0],
                            "the text through the swarm");
                    assertArrayEquals(expected[0], TestSwarm.generate(remote, PROMPT, TOKENS,
                            SessionOptions.defaults().withPush(false))[0], "the text without push");
                }
                assertEquals(0, rogue.contacts(), "no client may contact the address of a forged record");
                assertEquals(5, records.size(), "the forged records stayed in the directory all along");
            } finally {
                attacker.shutdown();
            }
        } finally {
            for (ServerProcess server : servers) {
                server.close();
            }
        }
    }
}
