package dev.pollen.deploy.swarm;

import dev.pollen.deploy.DefaultModelAccess;
import dev.pollen.deploy.process.ServerProcess;
import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.generate.GenerationOptions;
import dev.pollen.inference.generate.LocalModel;
import dev.pollen.inference.model.Architecture;
import dev.pollen.inference.model.BlockSpan;
import dev.pollen.inference.model.KvCache;
import dev.pollen.inference.model.ModelHead;
import dev.pollen.inference.tensor.Torch;
import dev.pollen.inference.tokenizer.Tokenizer;
import dev.pollen.inference.train.LanguageModelTrainer;
import dev.pollen.node.client.DistributedModel;
import dev.pollen.node.client.RemoteSequence;
import dev.pollen.node.client.SessionOptions;
import dev.pollen.protocol.BlockRange;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The model the jar carries: it loads, is small, writes the same greedy text every run (locally
 * and through a swarm), and its held-out perplexity through three server processes equals the
 * local one.
 */
@DisplayName("The default model")
class DefaultModelTest {
    private static final String PROMPT = "And God said";
    private static final int LENGTH = 128;
    private static final int HAZELCAST_PORT = 6371;
    private static final int CONTEXT = 2048;
    /** Nats per token a late position may lose against positions 128-511 (measured: see docs/default-model.md). */
    private static final double LATE_MARGIN = 0.1;

    @Test
    @DisplayName("loads, weighs under 20 MB, and its held-out perplexity and greedy text through three servers equal the local ones")
    void throughASwarm() throws Exception {
        Path dir = DefaultModelAccess.directory();
        assertTrue(Files.size(dir.resolve("model.safetensors")) < 20_000_000, "the checkpoint must stay under 20 MB");
        String heldOutText = new String(DefaultModelAccess.heldOut(), java.nio.charset.StandardCharsets.UTF_8);
        long[] heldOut;
        String localText;
        double localLoss;
        try (Tokenizer tokenizer = Tokenizer.load(dir)) {
            heldOut = DefaultModelAccess.encode(tokenizer, heldOutText);
            localText = greedyLocally(dir, tokenizer);
            assertEquals(localText, greedyLocally(dir, tokenizer), "greedy decoding must repeat itself");
        }
        try (Checkpoint checkpoint = Checkpoint.open(dir); Architecture architecture = Architecture.of(checkpoint.config());
             ModelHead head = architecture.loadHead(checkpoint, ScalarType.Float);
             BlockSpan blocks = BlockSpan.load(checkpoint, 0, checkpoint.config().numLayers(), DType.BF16)) {
            localLoss = LanguageModelTrainer.evaluate(head, blocks, heldOut, LENGTH);
        }
        assertTrue(Math.exp(localLoss) < 200, "the shipped model must have learned something: perplexity " + Math.exp(localLoss));

        String swarm = "default-" + ProcessHandle.current().pid();
        List<ServerProcess> servers = new ArrayList<>();
        try {
            String member = null;
            int n = 0;
            for (String span : List.of("0:2", "2:3", "3:4")) {
                ServerProcess server = TestServers.start(TestSwarm.WORK.resolve("logs"), swarm + "-" + n, dir, swarm,
                        HAZELCAST_PORT + n, member == null ? List.of() : List.of(member),
                        List.of("--blocks", span, "--model-name", "pollen-kjv"));
                member = member == null ? server.directoryAddress() : member;
                servers.add(server);
                n++;
            }
            try (TestSwarm client = new TestSwarm(swarm, member);
                 DistributedModel model = client.model(dir, "pollen-kjv");
                 Checkpoint checkpoint = Checkpoint.open(dir); Architecture architecture = Architecture.of(checkpoint.config());
                 ModelHead head = architecture.loadHead(checkpoint, ScalarType.Float);
                 Tokenizer tokenizer = Tokenizer.load(dir)) {
                RemoteSequence remote = new RemoteSequence(client.client(), model.info(), Duration.ofMinutes(1), 3, 8192);
                double remoteLoss = remoteLoss(head, remote, heldOut, checkpoint.config().numLayers());
                assertEquals(Math.exp(localLoss), Math.exp(remoteLoss), 1e-3 * Math.exp(localLoss),
                        "held-out perplexity, local against three servers");
                long[] ids = tokenizer.encode(PROMPT, true);
                try (DistributedModel.Session session = model.session(ids.length + 24, 1, SessionOptions.defaults())) {
                    List<long[]> steps = session.generate(new long[][] {ids}, greedy(tokenizer)).toList().blockingGet();
                    long[] out = steps.stream().mapToLong(t -> t[0]).toArray();
                    assertEquals(localText, decode(tokenizer, out), "greedy text through the swarm");
                }
            }
        } finally {
            for (ServerProcess server : servers) {
                server.close();
            }
        }
    }

    @Test
    @DisplayName("reads 2,048 tokens: its held-out loss late in a 2,048-token window is no worse than early in it")
    void longContext() throws Exception {
        Path dir = DefaultModelAccess.directory();
        long[] heldOut;
        try (Tokenizer tokenizer = Tokenizer.load(dir)) {
            heldOut = DefaultModelAccess.encode(tokenizer,
                    new String(DefaultModelAccess.heldOutLong(), java.nio.charset.StandardCharsets.UTF_8));
        }
        int[] edges = {0, 128, 512, 1024, CONTEXT};
        double[] sums = new double[edges.length - 1];
        int[] counts = new int[edges.length - 1];
        try (Checkpoint checkpoint = Checkpoint.open(dir); Architecture architecture = Architecture.of(checkpoint.config());
             ModelHead head = architecture.loadHead(checkpoint, ScalarType.Float);
             BlockSpan blocks = BlockSpan.load(checkpoint, 0, checkpoint.config().numLayers(), DType.BF16);
             NoGradGuard guard = new NoGradGuard()) {
            assertEquals(CONTEXT, checkpoint.config().maxPositions(), "the default model's context");
            int windows = (heldOut.length - 1) / CONTEXT;
            assertTrue(windows >= 2, "the held-out text must fill two windows of " + CONTEXT + " tokens, has " + heldOut.length);
            for (int w = 0; w < windows; w++) {
                try (PointerScope scope = new PointerScope()) {
                    Tensor ids = Torch.longs(Arrays.copyOfRange(heldOut, w * CONTEXT, (w + 1) * CONTEXT + 1), 1, CONTEXT + 1);
                    Tensor logits = head.logits(blocks.forward(head.embed(ids.narrow(1, 0, CONTEXT))));
                    Tensor losses = logits.log_softmax(-1).gather(-1, ids.narrow(1, 1, CONTEXT).unsqueeze(-1)).neg()
                            .reshape(CONTEXT).to(ScalarType.Float).contiguous();
                    float[] values = new float[CONTEXT];
                    losses.data_ptr_float().get(values);
                    for (int p = 0; p < CONTEXT; p++) {
                        int bucket = 0;
                        while (p >= edges[bucket + 1]) {
                            bucket++;
                        }
                        sums[bucket] += values[p];
                        counts[bucket]++;
                    }
                }
            }
        }
        double[] loss = new double[sums.length];
        StringBuilder table = new StringBuilder();
        for (int b = 0; b < sums.length; b++) {
            loss[b] = sums[b] / counts[b];
            table.append(String.format("positions %d-%d: loss %.3f, perplexity %.1f%n", edges[b], edges[b + 1] - 1, loss[b],
                    Math.exp(loss[b])));
        }
        System.out.print(table);
        // Trained on 128-token sequences only, the model got worse with every position past them
        // (4.71 nats at 1,024-2,047 against 3.92-4.28 at 128-511); trained on 2,048-token
        // sequences it reads them (3.61 against 3.60-3.64).
        assertTrue(loss[3] <= loss[1] + LATE_MARGIN, "late positions must be as good as early ones:\n" + table);
        assertTrue(loss[2] <= loss[1] + LATE_MARGIN, "positions 512-1,023 must be as good as early ones:\n" + table);
    }

    private static String greedyLocally(Path dir, Tokenizer tokenizer) {
        long[] ids = tokenizer.encode(PROMPT, true);
        try (LocalModel local = LocalModel.load(dir, DType.BF16); KvCache cache = local.blocks().newCache(1, ids.length + 25)) {
            return decode(tokenizer, local.generator(cache).generate(new long[][] {ids}, 0, greedy(tokenizer), (s, t) -> true)[0]);
        }
    }

    private static GenerationOptions greedy(Tokenizer tokenizer) {
        return new GenerationOptions(24, dev.pollen.inference.sampling.SamplingOptions.GREEDY,
                new long[] {tokenizer.eosTokenId().orElse(-1)});
    }

    private static String decode(Tokenizer tokenizer, long[] ids) {
        long eos = tokenizer.eosTokenId().orElse(-1);
        return tokenizer.decode(ids.length > 0 && ids[ids.length - 1] == eos ? Arrays.copyOf(ids, ids.length - 1) : ids);
    }

    /** The held-out loss with the blocks in the swarm: the training forward path, window by window. */
    private static double remoteLoss(ModelHead head, RemoteSequence remote, long[] tokens, int blocks) {
        int windows = (tokens.length - 1) / LENGTH;
        double total = 0;
        for (int w = 0; w < windows; w++) {
            try (PointerScope scope = new PointerScope()) {
                long[] ids = Arrays.copyOfRange(tokens, w * LENGTH, w * LENGTH + LENGTH + 1);
                Tensor input = Torch.longs(Arrays.copyOf(ids, LENGTH), 1, LENGTH);
                Tensor targets = Torch.longs(Arrays.copyOfRange(ids, 1, LENGTH + 1), 1, LENGTH);
                Tensor hidden = remote.forward(head.embed(input).to(ScalarType.Float), null, BlockRange.of(0, blocks)).output();
                Tensor logits = head.logits(hidden);
                total += logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).mean().neg().item_double();
            }
        }
        return total / windows;
    }
}
