package dev.pollen.web;

import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.generate.GenerationOptions;
import dev.pollen.inference.generate.LocalModel;
import dev.pollen.inference.make.ModelMaker;
import dev.pollen.inference.make.ModelSpec;
import dev.pollen.inference.model.KvCache;
import dev.pollen.inference.tokenizer.Tokenizer;
import dev.pollen.node.client.SessionOptions;
import dev.pollen.node.client.SwarmClient;
import dev.pollen.node.server.BlockServer;
import dev.pollen.node.server.ServerSettings;
import dev.pollen.protocol.BlockRange;
import dev.pollen.scheduler.directory.InMemoryDirectory;
import dev.pollen.scheduler.routing.ServerFilter;
import io.vertx.core.Vertx;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A swarm in this JVM for the gateway's tests: two servers splitting a tiny Llama (real gRPC,
 * LibTorch and sessions on 127.0.0.1; the directory in memory), and a gateway in front of them.
 * The oracle is the same checkpoint run locally.
 */
final class LocalSwarm implements AutoCloseable {
    static final int MAX_SESSIONS_PER_CLIENT = 3;

    final Path model;
    /** Tuned prompts the gateway serves as tiny:steer. */
    final Path tuned;
    final Vertx vertx = Vertx.vertx();
    final List<BlockServer> servers = new ArrayList<>();
    final Gateway gateway;
    final WebGateway web;
    private final SwarmClient client;

    LocalSwarm(String name) throws Exception {
        this(name, 256, settings -> settings);
    }

    /** A swarm whose servers take sessions of up to {@code maxLength} tokens, its gateway's settings changed by {@code tune}. */
    LocalSwarm(String name, int maxLength, java.util.function.UnaryOperator<GatewaySettings> tune) throws Exception {
        this(name, 256, maxLength, tune);
    }

    /** As above, with a model of {@code positions} positions. */
    LocalSwarm(String name, int positions, int maxLength, java.util.function.UnaryOperator<GatewaySettings> tune) throws Exception {
        this(name, positions, maxLength, tune, ApiKeys.OPEN, List.of());
    }

    /** As above, its gateway asking for {@code keys} and letting pages of {@code corsOrigins} call it. */
    LocalSwarm(String name, int positions, int maxLength, java.util.function.UnaryOperator<GatewaySettings> tune, ApiKeys keys,
               List<String> corsOrigins) throws Exception {
        model = Path.of(System.getProperty("pollen.test.workdir", "target/test-work")).resolve(name);
        ModelMaker.write(model, ModelSpec.preset("tiny", "llama", DType.F32, 21).withMaxPositions(positions), i -> { });
        InMemoryDirectory directory = new InMemoryDirectory(Clock.systemUTC());
        for (BlockRange span : List.of(BlockRange.of(0, 2), BlockRange.of(2, 4))) {
            BlockServer server = new BlockServer(ServerSettings.local(model, "tiny", span, new ServerSettings.Limits(8192, maxLength, 4, 16, Duration.ofMinutes(5)), 1 << 20), directory, i -> { });
            vertx.deployVerticle(server).await(2, TimeUnit.MINUTES);
            servers.add(server);
        }
        client = new SwarmClient(vertx, directory, ServerFilter.ALL, Clock.systemUTC(), 64 << 20);
        ServedModel served = ServedModel.load(model, client, DType.F32, 0, SessionOptions.defaults());
        // Random prompts of 3 tokens, as `pollen finetune --mode ptune` would save them, served as tiny:steer.
        tuned = model.resolve("steer.safetensors");
        dev.pollen.node.finetune.TunedParameters.create(dev.pollen.node.finetune.TuningMode.PTUNE,
                dev.pollen.inference.config.ModelConfig.read(model), 3, 0, 1, 17).save(tuned);
        gateway = new Gateway(tune.apply(new GatewaySettings("127.0.0.1", 0, List.of(model), 0, MAX_SESSIONS_PER_CLIENT, 64,
                64 << 10, 64, 0, Duration.ofSeconds(60), GatewaySettings.MAX_UNREAD_BYTES, GatewaySettings.STALLED_READER)),
                List.of(served, served.tuned("steer", tuned)));
        web = new WebGateway(gateway, directory, keys, corsOrigins);
        vertx.deployVerticle(web).await(1, TimeUnit.MINUTES);
    }

    String url(String path) {
        return "http://127.0.0.1:" + web.port() + path;
    }

    /** Sessions open on the servers now. */
    int serverSessions() {
        return servers.stream().mapToInt(BlockServer::openSessions).sum();
    }

    /** The greedy continuation of {@code prompt} by the model run locally, as text (end token excluded). */
    String localGreedy(String prompt, int maxNewTokens) {
        return localGreedy(prompt, maxNewTokens, true);
    }

    /** As {@link #localGreedy(String, int)}; {@code specialTokens} false for text a chat template rendered. */
    String localGreedy(String prompt, int maxNewTokens, boolean specialTokens) {
        try (Tokenizer tokenizer = Tokenizer.load(model); LocalModel local = LocalModel.load(model, DType.F32)) {
            long[] ids = tokenizer.encode(prompt, specialTokens);
            long eos = tokenizer.eosTokenId().orElse(-1);
            try (KvCache cache = local.blocks().newCache(1, ids.length + maxNewTokens)) {
                long[] out = local.generator(cache).generate(new long[][] {ids}, 0,
                        new GenerationOptions(maxNewTokens, dev.pollen.inference.sampling.SamplingOptions.GREEDY,
                                eos >= 0 ? new long[] {eos} : new long[0]), (step, t) -> true)[0];
                if (out.length > 0 && out[out.length - 1] == eos) {
                    out = java.util.Arrays.copyOf(out, out.length - 1);
                }
                return tokenizer.decode(out);
            }
        }
    }

    /** Encodes as Petals' chat server does: no special tokens. */
    long[] encode(String text) {
        return gateway.model("tiny").tokenizer().encode(text, false);
    }

    /** The greedy continuation of {@code ids} by the model run locally: token ids, the end token included. */
    long[] localGreedyIds(long[] ids, int maxNewTokens) {
        try (Tokenizer tokenizer = Tokenizer.load(model); LocalModel local = LocalModel.load(model, DType.F32);
             KvCache cache = local.blocks().newCache(1, ids.length + maxNewTokens)) {
            long eos = tokenizer.eosTokenId().orElse(-1);
            return local.generator(cache).generate(new long[][] {ids}, 0,
                    new GenerationOptions(maxNewTokens, dev.pollen.inference.sampling.SamplingOptions.GREEDY,
                            eos >= 0 ? new long[] {eos} : new long[0]), (step, t) -> true)[0];
        }
    }

    /** The greedy continuation with the tuned prefix before the prompt, run locally: the oracle for tiny:steer. */
    String localGreedyTuned(String prompt, int maxNewTokens) {
        dev.pollen.node.finetune.TunedParameters params = dev.pollen.node.finetune.TunedParameters.load(tuned,
                dev.pollen.inference.config.ModelConfig.read(model));
        int prefix = params.prefixLength();
        try (Tokenizer tokenizer = Tokenizer.load(model); LocalModel local = LocalModel.load(model, DType.F32)) {
            long[] ids = tokenizer.encode(prompt, true);
            long eos = tokenizer.eosTokenId().orElse(-1);
            try (KvCache cache = local.blocks().newCache(1, prefix + ids.length + maxNewTokens)) {
                dev.pollen.inference.generate.BlockStepper withPrefix = (hidden, position) -> {
                    if (position > 0) {
                        return local.blocks().step(hidden, cache, position + prefix);
                    }
                    org.bytedeco.pytorch.Tensor x = org.bytedeco.pytorch.global.torch.cat(new org.bytedeco.pytorch.TensorVector(
                            params.prefix().detach().unsqueeze(0), hidden), 1);
                    return local.blocks().step(x, cache, 0).narrow(1, prefix, hidden.size(1));
                };
                long[] out = new dev.pollen.inference.generate.Generator(local.head(), withPrefix).generate(new long[][] {ids}, 0,
                        new GenerationOptions(maxNewTokens, dev.pollen.inference.sampling.SamplingOptions.GREEDY,
                                eos >= 0 ? new long[] {eos} : new long[0]), (step, t) -> true)[0];
                if (out.length > 0 && out[out.length - 1] == eos) {
                    out = java.util.Arrays.copyOf(out, out.length - 1);
                }
                return tokenizer.decode(out);
            }
        }
    }

    @Override
    public void close() {
        gateway.close();
        client.close();
        try {
            vertx.close().await(30, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new IllegalStateException("Vert.x did not close: " + e.getMessage(), e);
        }
    }
}
