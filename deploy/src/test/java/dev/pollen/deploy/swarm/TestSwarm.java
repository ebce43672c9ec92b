package dev.pollen.deploy.swarm;

import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.generate.GenerationOptions;
import dev.pollen.inference.generate.LocalModel;
import dev.pollen.inference.model.KvCache;
import dev.pollen.node.client.DistributedModel;
import dev.pollen.node.client.SessionOptions;
import dev.pollen.node.client.SwarmClient;
import dev.pollen.node.client.SwarmConnection;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** A client of a test swarm: Vert.x, a Hazelcast client, the directory and a distributed model. */
public final class TestSwarm implements AutoCloseable {
    public static final Path WORK = Path.of(System.getProperty("pollen.test.workdir", "target/test-work")).toAbsolutePath();

    private final SwarmConnection connection;
    private final List<DistributedModel> models = new ArrayList<>();

    public TestSwarm(String swarm, String member) {
        connection = SwarmConnection.open(swarm, List.of(member));
    }

    /** A client of a private swarm: it uses only the servers that {@code swarmKey} admitted. */
    public TestSwarm(String swarm, String member, byte[] swarmKey) {
        connection = SwarmConnection.open(swarm, List.of(member), dev.pollen.scheduler.routing.ServerFilter.ALL, swarmKey);
    }

    public SwarmClient client() {
        return connection.client();
    }

    public DistributedModel model(Path dir, String name) {
        DistributedModel model = DistributedModel.load(dir, name, DType.F32, connection.client());
        models.add(model);
        return model;
    }

    /** Greedy generation of {@code tokens} after each prompt through the swarm. */
    public static long[][] generate(DistributedModel model, long[][] prompts, int tokens, SessionOptions options) {
        try (DistributedModel.Session session = model.session(prompts[0].length + tokens, prompts.length, options)) {
            List<long[]> steps = session.generate(prompts, GenerationOptions.greedy(tokens))
                    .timeout(3, TimeUnit.MINUTES).toList().blockingGet();
            return transpose(steps, prompts.length);
        }
    }

    static long[][] transpose(List<long[]> steps, int batch) {
        long[][] out = new long[batch][steps.size()];
        for (int s = 0; s < steps.size(); s++) {
            for (int b = 0; b < batch; b++) {
                out[b][s] = steps.get(s)[b];
            }
        }
        return out;
    }

    /** The same generation with the whole model in this process: the oracle. */
    public static long[][] generateLocally(Path dir, long[][] prompts, int tokens) {
        try (LocalModel model = LocalModel.load(dir, DType.F32);
             KvCache cache = model.blocks().newCache(prompts.length, prompts[0].length + tokens)) {
            return model.generator(cache).generate(prompts, 0, GenerationOptions.greedy(tokens), (s, t) -> true);
        }
    }

    @Override
    public void close() throws Exception {
        models.forEach(DistributedModel::close);
        connection.close();
    }
}
