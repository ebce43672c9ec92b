package dev.pollen.node.finetune;

import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.make.ModelMaker;
import dev.pollen.inference.make.ModelSpec;
import dev.pollen.inference.model.Architecture;
import dev.pollen.inference.model.BlockSpan;
import dev.pollen.inference.model.ModelHead;
import dev.pollen.inference.quant.Quantization;
import dev.pollen.inference.tensor.Torch;
import dev.pollen.node.client.RemoteSequence;
import dev.pollen.node.client.SwarmClient;
import dev.pollen.node.server.BlockServer;
import dev.pollen.node.server.ServerSettings;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ModelInfo;
import dev.pollen.scheduler.directory.InMemoryDirectory;
import dev.pollen.scheduler.routing.ServerFilter;
import io.vertx.core.Vertx;
import org.bytedeco.pytorch.AdamW;
import org.bytedeco.pytorch.AdamWOptions;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Gradients of the tuned parameters through two servers equal the gradients of the same model
 * run in this process under one autograd graph, for every mode and both families; and a short
 * training run through the swarm follows the local one step for step.
 */
@DisplayName("Fine-tuning through the swarm")
class RemoteGradientTest {
    /** fp32 everywhere: the two computations differ only in summation order. */
    private static final double GRADIENT_TOLERANCE = 1e-4;
    private static final double LOSS_TOLERANCE = 1e-4;

    @ParameterizedTest(name = "{0}, {1}")
    @CsvSource({"llama, ptune", "llama, deep-ptune", "llama, adapter", "bloom, ptune", "bloom, deep-ptune", "bloom, adapter"})
    @DisplayName("remote gradients equal local autograd gradients")
    void gradientsEqualLocal(String type, String mode) throws Exception {
        try (Swarm swarm = new Swarm(type, Quantization.NONE)) {
            assertGradientsEqualLocal(swarm, mode);
        }
    }

    /**
     * The servers' weights are frozen and quantized; backward multiplies by their dequantized form,
     * and so does local autograd through the same quantized model, so the two agree as closely as in
     * fp32; with int4 the dense model's loss is visibly elsewhere, which shows the servers did
     * quantize (QuantizedSwarmTest shows it for int8 too, on hidden states).
     */
    @ParameterizedTest(name = "{0}, {1}, {2}")
    @CsvSource({"llama, ptune, int8", "llama, deep-ptune, int4", "llama, adapter, int4", "bloom, ptune, int4"})
    @DisplayName("remote gradients through quantized servers equal local autograd through the same quantized model")
    void gradientsThroughQuantizedServers(String type, String mode, String quantization) throws Exception {
        try (Swarm swarm = new Swarm(type, Quantization.parse(quantization, 32))) {
            assertGradientsEqualLocal(swarm, mode);
            if (swarm.quantization.scheme() != Quantization.Scheme.INT4) {
                return;   // int8 moves this tiny model's loss by 1e-4 of itself: within the tolerance, so no evidence
            }
            TunedModel.Batch batch = batch(swarm, 2, 7, 5);
            double quantized = new TunedModel(swarm.head, params(swarm, TuningMode.parse(mode)))
                    .lossAndGradientsLocally(swarm.local, batch);
            double dense;
            try (Checkpoint checkpoint = Checkpoint.open(swarm.model);
                 BlockSpan span = BlockSpan.load(checkpoint, 0, checkpoint.config().numLayers(), DType.F32)) {
                dense = new TunedModel(swarm.head, params(swarm, TuningMode.parse(mode))).lossAndGradientsLocally(span, batch);
            }
            assertTrue(Math.abs(quantized - dense) > 10 * LOSS_TOLERANCE * Math.abs(dense),
                    quantization + " leaves the loss where the dense model has it: " + quantized + " against " + dense);
        }
    }

    private static void assertGradientsEqualLocal(Swarm swarm, String mode) {
        {
            TunedParameters remoteParams = params(swarm, TuningMode.parse(mode));
            TunedParameters localParams = params(swarm, TuningMode.parse(mode));
            TunedModel.Batch batch = batch(swarm, 2, 7, 5);
            double remoteLoss = new TunedModel(swarm.head, remoteParams).lossAndGradients(swarm.remote, batch);
            double localLoss = new TunedModel(swarm.head, localParams).lossAndGradientsLocally(swarm.local, batch);
            assertEquals(localLoss, remoteLoss, LOSS_TOLERANCE * Math.abs(localLoss));
            List<Tensor> remote = remoteParams.trainable();
            List<Tensor> local = localParams.trainable();
            for (int i = 0; i < local.size(); i++) {
                float[] expected = Torch.toFloats(local.get(i).grad());
                float[] actual = Torch.toFloats(remote.get(i).grad());
                double scale = 0;
                for (float v : expected) {
                    scale = Math.max(scale, Math.abs(v));
                }
                assertTrue(scale > 0, "parameter " + i + " must receive a gradient");
                for (int k = 0; k < expected.length; k++) {
                    assertEquals(expected[k], actual[k], GRADIENT_TOLERANCE * scale, "parameter " + i + " element " + k);
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"ptune", "adapter"})
    @DisplayName("AdamW through the swarm follows the local run step for step and halves the loss of a steerable task")
    void trainingFollowsLocal(String mode) throws Exception {
        try (Swarm swarm = new Swarm("llama", Quantization.NONE)) {
            TunedParameters remoteParams = params(swarm, TuningMode.parse(mode));
            TunedParameters localParams = params(swarm, TuningMode.parse(mode));
            TunedModel remoteModel = new TunedModel(swarm.head, remoteParams);
            TunedModel localModel = new TunedModel(swarm.head, localParams);
            AdamW remoteOptimizer = new AdamW(new TensorVector(remoteParams.trainable().toArray(new Tensor[0])), new AdamWOptions(0.1));
            AdamW localOptimizer = new AdamW(new TensorVector(localParams.trainable().toArray(new Tensor[0])), new AdamWOptions(0.1));
            // The task: after any five tokens comes token 42. Only that last token counts.
            TunedModel.Batch batch = batch(swarm, 4, 6, 1);
            long[] ids = Torch.toLongs(batch.ids());
            for (int b = 0; b < 4; b++) {
                ids[b * 6 + 5] = 42;
            }
            batch = new TunedModel.Batch(Torch.longs(ids, 4, 6), batch.lossMask());
            double first = 0;
            double last = 0;
            for (int step = 0; step < 24; step++) {
                remoteOptimizer.zero_grad();
                localOptimizer.zero_grad();
                double remoteLoss = remoteModel.lossAndGradients(swarm.remote, batch);
                double localLoss = localModel.lossAndGradientsLocally(swarm.local, batch);
                assertEquals(localLoss, remoteLoss, 1e-3 * Math.abs(localLoss) + 1e-4, "step " + step);
                remoteOptimizer.step();
                localOptimizer.step();
                first = step == 0 ? remoteLoss : first;
                last = remoteLoss;
            }
            assertTrue(last < first / 2, "24 AdamW steps must halve the loss: " + first + " -> " + last);
        }
    }

    private static TunedParameters params(Swarm swarm, TuningMode mode) {
        TunedParameters params = TunedParameters.create(mode, swarm.head.config(), 3, 1, 4, 5);
        if (mode == TuningMode.ADAPTER) {
            // Up starts at zero (training starts from the model); make it non-zero so down gets a gradient too.
            SplittableRandom random = new SplittableRandom(9);
            long n = params.up().numel();
            float[] values = new float[(int) n];
            for (int i = 0; i < values.length; i++) {
                values[i] = (float) (random.nextGaussian() * 0.1);
            }
            params.up().detach().copy_(Torch.floats(values, params.up().size(0), params.up().size(1)));
        }
        return params;
    }

    /** Random ids with the loss counted on the last {@code counted} tokens of each sequence. */
    private static TunedModel.Batch batch(Swarm swarm, int batch, int seq, int counted) {
        SplittableRandom random = new SplittableRandom(3);
        long[] ids = new long[batch * seq];
        float[] mask = new float[batch * seq];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = 3 + random.nextInt(swarm.head.config().vocabSize() - 3);
            mask[i] = i % seq >= seq - counted ? 1 : 0;
        }
        return new TunedModel.Batch(Torch.longs(ids, batch, seq), Torch.floats(mask, batch, seq));
    }

    /** Two in-process servers splitting a tiny model, the head and the whole span locally for the oracle. */
    private static final class Swarm implements AutoCloseable {
        final Vertx vertx = Vertx.vertx();
        final Path model;
        final Quantization quantization;
        final ModelHead head;
        final BlockSpan local;
        final RemoteSequence remote;
        private final SwarmClient client;

        /** Servers and the local span store their weights as {@code quantization} says. */
        Swarm(String type, Quantization quantization) throws Exception {
            this.quantization = quantization;
            model = Path.of(System.getProperty("pollen.test.workdir", "target/test-work")).resolve("finetune-" + type);
            ModelMaker.write(model, ModelSpec.preset("tiny", type, DType.F32, 41), i -> { });
            InMemoryDirectory directory = new InMemoryDirectory(Clock.systemUTC());
            for (BlockRange span : List.of(BlockRange.of(0, 2), BlockRange.of(2, 4))) {
                ServerSettings settings = ServerSettings.local(model, "tiny", span,
                        new ServerSettings.Limits(4096, 64, 8, 8, Duration.ofMinutes(5)), 16 << 20).withQuantization(quantization);
                vertx.deployVerticle(new BlockServer(settings, directory, i -> { })).await(2, TimeUnit.MINUTES);
            }
            client = new SwarmClient(vertx, directory, ServerFilter.ALL, Clock.systemUTC(), 64 << 20);
            ModelInfo info = client.model("tiny");
            remote = new RemoteSequence(client, info, Duration.ofSeconds(30), 4, 4096);
            try (Checkpoint checkpoint = Checkpoint.open(model); Architecture architecture = Architecture.of(checkpoint.config())) {
                head = architecture.loadHead(checkpoint, ScalarType.Float);
                local = BlockSpan.load(checkpoint, 0, checkpoint.config().numLayers(), DType.F32, quantization, i -> { });
            }
        }

        @Override
        public void close() throws Exception {
            client.close();
            local.close();
            head.close();
            vertx.close().await(30, TimeUnit.SECONDS);
        }
    }
}
