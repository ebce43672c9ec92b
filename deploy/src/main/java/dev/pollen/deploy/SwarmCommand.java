package dev.pollen.deploy;

import com.hazelcast.core.HazelcastInstance;
import dev.pollen.node.cluster.SwarmCluster;
import dev.pollen.protocol.ModelInfo;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.protocol.SessionLoad;
import dev.pollen.protocol.trust.RecordVerifier;
import dev.pollen.scheduler.directory.HazelcastDirectory;
import dev.pollen.scheduler.selection.BlockSelection;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

@Command(name = "swarm", mixinStandardHelpOptions = true,
        description = "Show what the swarm serves: every model with its block coverage, every server with its span.")
final class SwarmCommand implements Callable<Integer> {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Mixin
    SwarmAddress address;

    @Override
    public Integer call() throws Exception {
        address.require(spec.commandLine());
        PrintWriter out = spec.commandLine().getOut();
        String swarm = address.name();
        HazelcastInstance client = SwarmCluster.client(swarm, address.members());
        var executor = Executors.newSingleThreadExecutor();
        try {
            HazelcastDirectory directory = new HazelcastDirectory(client, executor);
            List<ModelInfo> models = directory.models().toCompletableFuture().get(10, TimeUnit.SECONDS);
            // Anyone who reaches the directory can write a record: list only those their servers signed.
            RecordVerifier verifier = new RecordVerifier();
            List<ServerInfo> servers = new ArrayList<>();
            Map<RecordVerifier.Verdict, Integer> ignored = new EnumMap<>(RecordVerifier.Verdict.class);
            for (ServerInfo record : directory.allServers().toCompletableFuture().get(10, TimeUnit.SECONDS)) {
                RecordVerifier.Verdict verdict = verifier.check(record);
                if (verdict == RecordVerifier.Verdict.VALID) {
                    servers.add(record);
                } else {
                    ignored.merge(verdict, 1, Integer::sum);
                }
            }
            if (models.isEmpty()) {
                out.println("The swarm '" + swarm + "' serves no model yet.");
            }
            for (ModelInfo model : models) {
                List<ServerInfo> mine = servers.stream().filter(s -> s.model().equals(model.name())).toList();
                double[] throughputs = BlockSelection.blockThroughputs(mine, model.numBlocks());
                StringBuilder coverage = new StringBuilder();
                int covered = 0;
                for (double t : throughputs) {
                    coverage.append(t > 0 ? '#' : '.');
                    covered += t > 0 ? 1 : 0;
                }
                out.printf("model %s: %d blocks, %d covered [%s], weakest block %.2f req/s, fingerprint %s%n", model.name(),
                        model.numBlocks(), covered, coverage, BlockSelection.minimum(throughputs), model.fingerprint());
                out.printf("  %-38s %-10s %-9s %-15s %12s %14s %-16s  %s%n", "server", "blocks", "state", "weights", "throughput",
                        "cache left", "sessions", "address (memory)");
                for (ServerInfo s : mine.stream().sorted(Comparator.comparingInt((ServerInfo s) -> s.blocks().start())).toList()) {
                    out.printf("  %-38s %-10s %-9s %-15s %12.2f %14d %-16s  %s%s%n", s.serverId(), s.blocks(), s.state(),
                            s.dtype() + (s.quant().equals("none") ? "" : " " + s.quant()), s.throughput(),
                            s.cacheTokensLeft(), sessions(s.load()), s.address(),
                            (s.publicName().isEmpty() ? "" : " (" + s.publicName() + ")")
                                    + (s.memory().resident() == 0 ? "" : "  [" + s.memory().describe() + "]"));
                }
                long kinds = mine.stream().map(s -> s.dtype() + " " + s.quant()).distinct().count();
                if (kinds > 1) {
                    out.println("  (servers store the same checkpoint's weights in " + kinds + " ways: a route may mix them,"
                            + " and its outputs differ from any one of them by the rounding of each)");
                }
            }
            ignored.forEach((verdict, count) -> out.printf("ignored %d record%s of the directory: %s%n", count,
                    count == 1 ? "" : "s", verdict.reason()));
        } finally {
            executor.shutdown();
            client.shutdown();
        }
        return 0;
    }

    /** Open sessions of the most, and those waiting: "3/64", "64/64 +5 queued". */
    static String sessions(SessionLoad load) {
        if (load.equals(SessionLoad.UNKNOWN)) {
            return "-";
        }
        String held = load.open() + "/" + (load.open() + load.left());
        return load.queued() > 0 ? held + " +" + load.queued() + " queued" : held;
    }
}
