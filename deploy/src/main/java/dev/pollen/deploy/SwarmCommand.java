package dev.pollen.deploy;

import com.hazelcast.core.HazelcastInstance;
import dev.pollen.node.cluster.SwarmCluster;
import dev.pollen.protocol.ModelInfo;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.protocol.SessionLoad;
import dev.pollen.protocol.trust.Admission;
import dev.pollen.protocol.trust.RecordVerifier;
import dev.pollen.protocol.trust.ServerIdentity;
import dev.pollen.protocol.trust.SwarmAuthority;
import dev.pollen.scheduler.directory.HazelcastDirectory;
import dev.pollen.scheduler.selection.BlockSelection;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

@Command(name = "swarm", mixinStandardHelpOptions = true,
        description = {"Show what the swarm serves: every model with its block coverage, every server with its span.",
                "Its subcommands make a private swarm: an admin key (init), server identities (identity) and the admissions "
                        + "of servers (admit); docs/security.md."},
        subcommands = {SwarmCommand.Init.class, SwarmCommand.Identity.class, SwarmCommand.Admit.class})
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
            RecordVerifier verifier = new RecordVerifier(address.swarmKey());
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

    @Command(name = "init", mixinStandardHelpOptions = true,
            description = "Make a private swarm's admin key, and print its public key, which clients and servers are given as "
                    + "--swarm-key.")
    static final class Init implements Callable<Integer> {
        @picocli.CommandLine.Spec
        picocli.CommandLine.Model.CommandSpec spec;

        @Option(names = "--out", required = true, paramLabel = "FILE",
                description = "Where the admin key goes (readable by its owner only); keep it off the servers.")
        Path out;

        @Override
        public Integer call() {
            boolean existed = Files.exists(out);
            SwarmAuthority authority = SwarmAuthority.loadOrCreate(out);
            Path publicFile = Path.of(out + ".pub");
            try {
                Files.writeString(publicFile, authority.publicKeyText() + "\n");
            } catch (IOException e) {
                throw new UncheckedIOException("Could not write " + publicFile + ": " + e.getMessage(), e);
            }
            PrintWriter print = spec.commandLine().getOut();
            print.println("pollen: " + (existed ? "the swarm admin key already in " : "a new swarm admin key in ") + out);
            print.println("swarm key: " + authority.publicKeyText() + " (also in " + publicFile + ")");
            print.println("Start clients and servers with --swarm-key " + publicFile + "; admit each server with"
                    + " `pollen swarm admit --key " + out + " SERVER_PUBLIC_KEY --out FILE`.");
            print.flush();
            return 0;
        }
    }

    @Command(name = "identity", mixinStandardHelpOptions = true,
            description = "Make a server identity (an Ed25519 key pair) in a file, or read the one there, and print the server id "
                    + "and public key that `pollen swarm admit` takes.")
    static final class Identity implements Callable<Integer> {
        @picocli.CommandLine.Spec
        picocli.CommandLine.Model.CommandSpec spec;

        @Parameters(paramLabel = "FILE", description = "The identity file, as `pollen serve --identity` takes it.")
        Path file;

        @Override
        public Integer call() {
            ServerIdentity identity = ServerIdentity.loadOrCreate(file);
            PrintWriter print = spec.commandLine().getOut();
            print.println("server id: " + identity.serverId());
            print.println("public key: " + identity.publicKeyText());
            print.flush();
            return 0;
        }
    }

    @Command(name = "admit", mixinStandardHelpOptions = true,
            description = "Admit a server to a private swarm: sign its public key with the swarm's admin key, for a time.")
    static final class Admit implements Callable<Integer> {
        @picocli.CommandLine.Spec
        picocli.CommandLine.Model.CommandSpec spec;

        @Option(names = "--key", required = true, paramLabel = "FILE", description = "The swarm admin key (`pollen swarm init`).")
        Path key;

        @Parameters(paramLabel = "SERVER_PUBLIC_KEY", description = "The server's public key, as `pollen swarm identity` and "
                + "`pollen serve` print it (Base64, or a file holding it).")
        String server;

        @Option(names = "--expires", defaultValue = "30d", paramLabel = "TIME",
                description = "How long the admission holds: a number of days, hours or minutes, such as 30d, 12h or 90m "
                        + "(default: ${DEFAULT-VALUE}).")
        String expires;

        @Option(names = "--out", paramLabel = "FILE", description = "Write the admission there, for `pollen serve --admission` "
                + "(default: print it).")
        Path out;

        @Override
        public Integer call() throws IOException {
            SwarmAuthority authority = SwarmAuthority.load(key);
            byte[] serverKey = SwarmAuthority.parsePublicKey(server);
            Admission admission = authority.admit(serverKey, duration(expires));
            PrintWriter print = spec.commandLine().getOut();
            if (out != null) {
                Files.writeString(out, admission.encode() + "\n");
                print.println("pollen: admitted server " + ServerIdentity.idOf(serverKey) + " until "
                        + Instant.ofEpochMilli(admission.expiresAtMillis()) + "; start it with --admission " + out);
            } else {
                print.println(admission.encode());
            }
            print.flush();
            return 0;
        }

        static Duration duration(String text) {
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("(\\d+)([dhm])").matcher(text.trim());
            if (!m.matches() || Long.parseLong(m.group(1)) < 1) {
                throw new IllegalArgumentException("--expires takes a positive number of days, hours or minutes such as 30d, 12h"
                        + " or 90m, got '" + text + "'");
            }
            long n = Long.parseLong(m.group(1));
            return switch (m.group(2)) {
                case "d" -> Duration.ofDays(n);
                case "h" -> Duration.ofHours(n);
                default -> Duration.ofMinutes(n);
            };
        }
    }
}
