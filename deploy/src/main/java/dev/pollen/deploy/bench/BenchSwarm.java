package dev.pollen.deploy.bench;

import dev.pollen.deploy.process.ServerProcess;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.node.client.DistributedModel;
import dev.pollen.node.client.SwarmClient;
import dev.pollen.node.client.SwarmConnection;
import dev.pollen.node.server.StepCounters;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.protocol.grpc.InfoResponse;
import dev.pollen.scheduler.routing.ServerFilter;

import java.io.PrintWriter;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The K server processes of a network bench run and the client connected to them: each server
 * either behind its own link emulator (announcing the link's port, so the client's calls and the
 * other servers' pushes all cross it) or reached directly on loopback.
 */
final class BenchSwarm implements AutoCloseable {
    /**
     * What every server of a run serves.
     *
     * @param model     the checkpoint
     * @param spans     one server per span
     * @param serveArgs `serve` options all servers share (compute, cache room, no measurements)
     */
    record Plan(Path model, List<BlockRange> spans, List<String> serveArgs) {
    }

    private final Plan plan;
    private final Path logs;
    /** One swarm name per set of servers, so runs never join each other. */
    private final String swarmName;
    private final List<ServerProcess> processes = new ArrayList<>();
    private final List<LinkEmulator> links = new ArrayList<>();
    private final Map<Integer, ServerProcess> byAnnouncedPort = new HashMap<>();
    private int nextHazelcastPort;
    private String member;
    private SwarmConnection connection;
    private DistributedModel remote;

    private BenchSwarm(Plan plan, Path logs) {
        this.plan = plan;
        this.logs = logs;
        this.swarmName = "bench-" + Integer.toHexString(logs.toAbsolutePath().toString().hashCode());
    }

    /** Starts a server per span (behind a link each, or not), then connects a client; logs go to {@code logs}. */
    static BenchSwarm start(Plan plan, Path logs, boolean behindLinks, DType computeType, PrintWriter err) throws Exception {
        BenchSwarm swarm = new BenchSwarm(plan, logs);
        try {
            List<BlockRange> spans = plan.spans();
            swarm.nextHazelcastPort = ServerProcess.freePort();
            for (int i = 0; i < spans.size(); i++) {
                int grpcPort = ServerProcess.freePort();
                int announced = grpcPort;
                String where = "directly on 127.0.0.1:" + grpcPort;
                if (behindLinks) {
                    LinkEmulator link = LinkEmulator.start(0, new InetSocketAddress("127.0.0.1", grpcPort), LinkProfile.NONE);
                    swarm.links.add(link);
                    announced = link.port();
                    where = "behind " + link;
                }
                NetworkBench.log(err, "Starting server %d of %d on blocks %s %s", i + 1, spans.size(), spans.get(i), where);
                swarm.startServer("server-" + i, spans.get(i), grpcPort, behindLinks ? announced : 0);
            }
            swarm.connection = SwarmConnection.open(swarm.swarmName, List.of(swarm.member), ServerFilter.ALL);
            String name = plan.model().getFileName().toString();
            swarm.remote = DistributedModel.load(plan.model(), name, computeType, swarm.connection.client());
            return swarm;
        } catch (Exception | Error e) {
            swarm.close();
            throw e;
        }
    }

    /** One more server on {@code span}, reached directly: the spare a failover moves to. */
    void startSpare(BlockRange span) throws Exception {
        startServer("spare", span, ServerProcess.freePort(), 0);
    }

    /** Starts `pollen serve`, announcing {@code publicPort} when it is not 0 (the port of its link). */
    private void startServer(String name, BlockRange span, int grpcPort, int publicPort) throws Exception {
        List<String> args = new ArrayList<>(List.of(plan.model().toString(), "--blocks", span.start() + ":" + span.end(),
                "--port", Integer.toString(grpcPort), "--swarm", swarmName, "--hazelcast-port",
                Integer.toString(nextHazelcastPort++)));
        args.addAll(plan.serveArgs());
        if (publicPort > 0) {
            args.addAll(List.of("--public-port", Integer.toString(publicPort)));
        }
        if (member != null) {
            args.addAll(List.of("--join", member));
        }
        // The servers inherit this process's environment (OMP_WAIT_POLICY and the like), so runs can compare settings.
        ServerProcess server = ServerProcess.start(logs.resolve(name + ".log"), List.of(), args, Duration.ofMinutes(5));
        member = member == null ? server.directoryAddress() : member;
        processes.add(server);
        byAnnouncedPort.put(publicPort > 0 ? publicPort : grpcPort, server);
    }

    /** Puts every server behind {@code profile} from now on. */
    void link(LinkProfile profile) {
        links.forEach(l -> l.profile(profile));
    }

    List<BlockRange> spans() {
        return plan.spans();
    }

    /** The client's model: embeddings and LM head here, the blocks on the servers. */
    DistributedModel remote() {
        return remote;
    }

    /** kill -9 of the process that announced {@code server}. */
    void kill(ServerInfo server) throws InterruptedException {
        byAnnouncedPort.get(server.port()).kill();
    }

    /** Each server's step counters, by server id, read from its Info. */
    Map<String, StepCounters.Snapshot> counters() {
        SwarmClient client = connection.client();
        Map<String, StepCounters.Snapshot> counters = new HashMap<>();
        for (ServerInfo server : client.servers(client.model(plan.model().getFileName().toString()))) {
            InfoResponse info = client.info(server);
            counters.put(server.serverId(), new StepCounters.Snapshot(info.getInferenceSteps(),
                    info.getInferenceWaitSeconds(), info.getDecodeCalls(), info.getDecodeComputeSeconds(), info.getWarmUps(),
                    info.getWarmUpSeconds()));
        }
        return counters;
    }

    @Override
    public void close() throws InterruptedException {
        if (remote != null) {
            remote.close();
        }
        if (connection != null) {
            connection.close();
        }
        for (ServerProcess server : processes) {
            server.close();
        }
        links.forEach(LinkEmulator::close);
    }
}
