package dev.pollen.inference.train;

import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.checkpoint.SafetensorsWriter;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.model.Architecture;
import dev.pollen.inference.model.BlockSpan;
import dev.pollen.inference.model.ModelHead;
import dev.pollen.inference.tensor.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.AdamW;
import org.bytedeco.pytorch.AdamWOptions;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Trains a whole Llama-family model from scratch in this process, every weight, with the
 * next-token loss and AdamW (linear warm-up, cosine decay, gradients clipped to norm 1), on the
 * same blocks and head the rest of Pollen runs: what {@code pollen train} uses to make the default
 * model. Reproducible from its seed on one machine (LibTorch's CPU kernels are deterministic for a
 * fixed thread count).
 */
public final class LanguageModelTrainer {
    /** Standard deviation of the initial weights (GPT-2's); norms start at one. */
    static final double INIT_STD = 0.02;
    static final double CLIP_NORM = 1.0;

    /**
     * @param steps        optimizer steps
     * @param batch        sequences per step
     * @param length       tokens per sequence
     * @param learningRate peak learning rate
     * @param weightDecay  AdamW weight decay
     * @param warmupSteps  steps of linear warm-up before the cosine decay to a tenth of the peak
     * @param seed         seeds the initial weights and the batches
     */
    public record Settings(int steps, int batch, int length, double learningRate, double weightDecay, int warmupSteps,
                           long seed) {
        public Settings {
            if (steps < 1 || batch < 1 || length < 2 || !(learningRate > 0) || weightDecay < 0 || warmupSteps < 0) {
                throw new IllegalArgumentException("Training needs steps, batch >= 1, length >= 2, a positive learning rate,"
                        + " and non-negative weight decay and warm-up");
            }
        }
    }

    /** Hears each step's loss. */
    public interface Listener {
        void step(int step, double loss);
    }

    /** What training reached: the last steps' mean loss and the held-out loss (nats per token) and perplexity. */
    public record Result(double trainLoss, double heldOutLoss, double heldOutPerplexity, long parameters, double seconds) {
    }

    private LanguageModelTrainer() {
    }

    /**
     * Re-initializes the checkpoint in {@code dir} (its config.json, shapes and tokenizer stay),
     * trains it on {@code tokens}, measures {@code heldOut}, and writes the weights back in {@code saveAs}.
     */
    public static Result train(Path dir, long[] tokens, long[] heldOut, Settings settings, DType saveAs, Listener listener)
            throws IOException {
        return train(dir, tokens, heldOut, settings, saveAs, listener, true);
    }

    /**
     * Trains the checkpoint in {@code dir} on {@code tokens}, from fresh weights ({@code fresh}) or
     * from the weights it has (continued training, e.g. on longer sequences), measures
     * {@code heldOut}, and writes the weights back in {@code saveAs}.
     */
    public static Result train(Path dir, long[] tokens, long[] heldOut, Settings settings, DType saveAs, Listener listener,
                               boolean fresh) throws IOException {
        if (tokens.length < settings.length() + 2) {
            throw new IllegalArgumentException("The corpus has " + tokens.length + " tokens, fewer than one sequence of "
                    + settings.length());
        }
        Torch.ensureThreads();
        torch.manual_seed(settings.seed());
        long start = System.nanoTime();
        ModelHead head;
        BlockSpan blocks;
        ModelConfig config;
        try (Checkpoint checkpoint = Checkpoint.open(dir); Architecture architecture = Architecture.of(checkpoint.config())) {
            config = checkpoint.config();
            head = architecture.loadHead(checkpoint, ScalarType.Float);
            blocks = BlockSpan.load(checkpoint, 0, config.numLayers(), DType.F32);
        }
        try (head; blocks) {
            List<Tensor> parameters = new ArrayList<>(head.parameters());
            parameters.addAll(blocks.parameters());
            long count = 0;
            for (Tensor p : parameters) {
                if (fresh) {
                    initialize(p);
                }
                p.set_requires_grad(true);
                count += p.numel();
            }
            AdamWOptions options = new AdamWOptions(settings.learningRate());
            options.weight_decay().put(settings.weightDecay());
            AdamW optimizer = new AdamW(new TensorVector(parameters.toArray(new Tensor[0])), options);
            SplittableRandom random = new SplittableRandom(settings.seed());
            double recent = 0;
            int recentCount = 0;
            for (int step = 1; step <= settings.steps(); step++) {
                optimizer.param_groups().get(0).options().set_lr(learningRate(settings, step));
                double loss;
                try (PointerScope scope = new PointerScope()) {
                    optimizer.zero_grad();
                    Tensor l = loss(head, blocks, window(tokens, settings.batch(), settings.length(), random));
                    l.backward();
                    torch.clip_grad_norm_(new TensorVector(parameters.toArray(new Tensor[0])), CLIP_NORM);
                    optimizer.step();
                    loss = l.item_double();
                }
                listener.step(step, loss);
                if (step > settings.steps() - Math.max(1, settings.steps() / 20)) {
                    recent += loss;
                    recentCount++;
                }
            }
            double heldOutLoss = evaluate(head, blocks, heldOut, settings.length());
            Map<String, Tensor> weights = new LinkedHashMap<>(head.checkpointTensors());
            weights.putAll(blocks.checkpointTensors());
            Map<String, Tensor> stored = new LinkedHashMap<>();
            try (NoGradGuard guard = new NoGradGuard()) {
                for (Map.Entry<String, Tensor> e : weights.entrySet()) {
                    stored.put(e.getKey(), e.getValue().detach().to(Torch.scalarType(saveAs)).contiguous());
                }
                SafetensorsWriter.write(dir.resolve("model.safetensors"), stored, Map.of("format", "pt"));
            }
            return new Result(recent / recentCount, heldOutLoss, Math.exp(heldOutLoss), count, (System.nanoTime() - start) / 1e9);
        }
    }

    /** Mean next-token loss over consecutive windows of {@code tokens} (no gradients): nats per token. */
    public static double evaluate(ModelHead head, BlockSpan blocks, long[] tokens, int length) {
        int windows = (tokens.length - 1) / length;
        if (windows < 1) {
            throw new IllegalArgumentException("The held-out text has " + tokens.length + " tokens, fewer than one window of "
                    + (length + 1));
        }
        double total = 0;
        try (NoGradGuard guard = new NoGradGuard()) {
            for (int w = 0; w < windows; w++) {
                try (PointerScope scope = new PointerScope()) {
                    long[] ids = java.util.Arrays.copyOfRange(tokens, w * length, w * length + length + 1);
                    total += loss(head, blocks, Torch.longs(ids, 1, length + 1)).item_double();
                }
            }
        }
        return total / windows;
    }

    /** Mean cross-entropy of predicting tokens 1..n from tokens 0..n-1 of each row of {@code ids} (batch, n + 1). */
    static Tensor loss(ModelHead head, BlockSpan blocks, Tensor ids) {
        long n = ids.size(1) - 1;
        Tensor input = ids.narrow(1, 0, n);
        Tensor targets = ids.narrow(1, 1, n);
        Tensor logits = head.logits(blocks.forward(head.embed(input)));
        return logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).mean().neg();
    }

    private static Tensor window(long[] tokens, int batch, int length, SplittableRandom random) {
        long[] ids = new long[batch * (length + 1)];
        for (int b = 0; b < batch; b++) {
            int from = random.nextInt(tokens.length - length - 1);
            System.arraycopy(tokens, from, ids, b * (length + 1), length + 1);
        }
        return Torch.longs(ids, batch, length + 1);
    }

    private static double learningRate(Settings s, int step) {
        if (step <= s.warmupSteps()) {
            return s.learningRate() * step / s.warmupSteps();
        }
        double progress = (double) (step - s.warmupSteps()) / Math.max(1, s.steps() - s.warmupSteps());
        return s.learningRate() * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * progress)));
    }

    private static void initialize(Tensor p) {
        try (PointerScope scope = new PointerScope()) {
            if (p.dim() == 1) {
                p.fill_(Torch.scalar(1));
            } else {
                p.copy_(torch.randn(p.sizes().vec().get()).mul(Torch.scalar(INIT_STD)));
            }
        }
    }
}
