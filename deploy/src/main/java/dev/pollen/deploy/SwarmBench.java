package dev.pollen.deploy;

import com.hazelcast.core.HazelcastInstance;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.generate.GenerationOptions;
import dev.pollen.inference.generate.LocalModel;
import dev.pollen.inference.model.KvCache;
import dev.pollen.node.client.DistributedModel;
import dev.pollen.node.client.SessionOptions;
import dev.pollen.node.client.SwarmClient;
import dev.pollen.node.cluster.SwarmCluster;
import dev.pollen.scheduler.directory.HazelcastDirectory;
import dev.pollen.scheduler.routing.ServerFilter;
import io.vertx.core.Vertx;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

@Command(name = "swarm", mixinStandardHelpOptions = true,
        description = {"Per-token decode latency through a running swarm against the same model in this process,",
                "as overhead per hop, with server-to-server push and with client relay."})
final class SwarmBench implements Callable<Integer> {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--join", split = ",", required = true, paramLabel = "HOST:PORT", description = "Directory members of the swarm.")
    List<String> join;

    @Option(names = "--swarm", defaultValue = SwarmCluster.DEFAULT_SWARM, description = "Swarm name (default: ${DEFAULT-VALUE}).")
    String swarm;

    @Option(names = "--model", required = true, paramLabel = "MODEL_DIR", description = "The checkpoint the swarm serves.")
    Path model;

    @Option(names = "--model-name", description = "The model's name in the swarm (default: the directory's name).")
    String modelName;

    @Option(names = "--tokens", defaultValue = "64", description = "Tokens generated per run (default: ${DEFAULT-VALUE}).")
    int tokens;

    @Option(names = "--repeats", defaultValue = "3", description = "Runs of each; the best is kept (default: ${DEFAULT-VALUE}).")
    int repeats;

    @picocli.CommandLine.Mixin
    ThreadsOption threads;

    @Override
    public Integer call() throws Exception {
        threads.apply();
        PrintWriter out = spec.commandLine().getOut();
        ModelConfig config = ModelConfig.read(model);
        DType dtype = config.torchDtype();
        long[] prompt = new SplittableRandom(3).longs(16, 0, config.vocabSize()).toArray();
        String name = modelName != null ? modelName : model.toAbsolutePath().normalize().getFileName().toString();

        double local = Double.MAX_VALUE;
        try (LocalModel whole = LocalModel.load(model, dtype)) {
            for (int r = 0; r < repeats; r++) {
                try (KvCache cache = whole.blocks().newCache(1, prompt.length + tokens + 1)) {
                    List<Long> stamps = new ArrayList<>();
                    whole.generator(cache).generate(new long[][] {prompt}, 0, GenerationOptions.greedy(tokens),
                            (s, t) -> stamps.add(System.nanoTime()));
                    local = Math.min(local, perToken(stamps));
                }
            }
        }
        Vertx vertx = Vertx.vertx();
        HazelcastInstance hazelcast = SwarmCluster.client(swarm, join);
        var blocking = Executors.newSingleThreadExecutor();
        double pushed = Double.MAX_VALUE;
        double relayed = Double.MAX_VALUE;
        int hops = 0;
        try (SwarmClient client = new SwarmClient(vertx, new HazelcastDirectory(hazelcast, blocking), ServerFilter.ALL,
                Clock.systemUTC(), 64 << 20);
             DistributedModel remote = DistributedModel.load(model, name, dtype, client)) {
            for (int r = 0; r < repeats; r++) {
                for (boolean push : new boolean[] {true, false}) {
                    try (DistributedModel.Session session = remote.session(prompt.length + tokens + 1, 1,
                            SessionOptions.defaults().withPush(push))) {
                        List<Long> stamps = new ArrayList<>();
                        session.generate(new long[][] {prompt}, GenerationOptions.greedy(tokens))
                                .blockingForEach(t -> stamps.add(System.nanoTime()));
                        hops = session.remote().route().size();
                        if (push) {
                            pushed = Math.min(pushed, perToken(stamps));
                        } else {
                            relayed = Math.min(relayed, perToken(stamps));
                        }
                    }
                }
            }
        } finally {
            blocking.shutdown();
            hazelcast.shutdown();
            vertx.close().await(10, TimeUnit.SECONDS);
        }
        out.printf("model %s: %d blocks, hidden %d, %s; route of %d hops; best of %d runs of %d tokens%n", name,
                config.numLayers(), config.hiddenSize(), dtype.torchName(), hops, repeats, tokens);
        out.printf("local, one process      %8.2f ms/token%n", local);
        out.printf("swarm, push             %8.2f ms/token  (overhead %.2f ms per hop)%n", pushed, (pushed - local) / hops);
        out.printf("swarm, client relay     %8.2f ms/token  (overhead %.2f ms per hop)%n", relayed, (relayed - local) / hops);
        return 0;
    }

    /** Milliseconds per decoded token, from the second token on (the first includes the prefill). */
    private static double perToken(List<Long> stamps) {
        return (stamps.get(stamps.size() - 1) - stamps.get(0)) / 1e6 / (stamps.size() - 1);
    }
}
