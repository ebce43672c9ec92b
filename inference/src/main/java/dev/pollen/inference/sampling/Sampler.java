package dev.pollen.inference.sampling;

import dev.pollen.inference.tensor.Torch;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.T_TensorTensor_T;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks next tokens from logits: repetition penalty, then greedy argmax, or temperature, top-k,
 * top-p and a draw. The warping runs in LibTorch; the draw uses a seeded Java generator so the
 * same seed gives the same tokens on any machine. One sampler per generation (it holds the
 * generator's state); not thread-safe.
 */
public final class Sampler {
    private final SamplingOptions options;
    private final SplittableRandom random;

    public Sampler(SamplingOptions options) {
        this.options = options;
        this.random = new SplittableRandom(options.seed());
    }

    public SamplingOptions options() {
        return options;
    }

    /**
     * @param logits  (batch, vocab) float32 logits of the last position
     * @param history per sequence, the tokens so far (prompt and generated), for the repetition penalty
     * @return one token id per sequence
     */
    public long[] sample(Tensor logits, long[][] history) {
        long batch = logits.size(0);
        long[] next = new long[(int) batch];
        for (int b = 0; b < batch; b++) {
            Tensor row = logits.select(0, b);
            if (options.repetitionPenalty() != 1.0 && history[b].length > 0) {
                row = penalize(row, history[b]);
            }
            next[b] = options.greedy() ? row.argmax().item_long() : draw(warp(row));
        }
        return next;
    }

    /** transformers' RepetitionPenaltyLogitsProcessor: negative logits are multiplied, positive divided. */
    private Tensor penalize(Tensor row, long[] tokens) {
        long[] unique = Arrays.stream(tokens).distinct().toArray();
        Tensor ids = Torch.longs(unique, unique.length);
        Tensor scores = row.gather(0, ids, false);
        Scalar p = new Scalar(options.repetitionPenalty());
        Tensor penalized = torch.where(scores.lt(new Scalar(0.0)), scores.mul(p), scores.div(p));
        return row.scatter(0, ids, penalized);
    }

    /** Temperature, top-k, top-p; returns the probabilities (vocab). */
    private Tensor warp(Tensor row) {
        Tensor scores = row.div(new Scalar(options.temperature()));
        long vocab = scores.size(0);
        Scalar minusInf = new Scalar(Double.NEGATIVE_INFINITY);
        if (options.topK() > 0 && options.topK() < vocab) {
            Tensor kth = torch.topk(scores, options.topK(), 0, true, true).get0().select(0, options.topK() - 1);
            scores = scores.masked_fill(scores.lt(kth), minusInf);
        }
        if (options.topP() < 1.0) {
            // Sorted ascending, drop the tokens whose cumulative probability stays within 1 - p;
            // the most likely token always survives.
            T_TensorTensor_T sorted = torch.sort(scores, 0, false);
            Tensor cumulative = sorted.get0().softmax(0).cumsum(0);
            Tensor remove = cumulative.le(new Scalar(1.0 - options.topP()));
            remove.select(0, vocab - 1).fill_(new Scalar(0L));
            Tensor removeInOrder = torch.zeros_like(remove).scatter(0, sorted.get1(), remove);
            scores = scores.masked_fill(removeInOrder, minusInf);
        }
        return scores.softmax(0);
    }

    private long draw(Tensor probabilities) {
        float[] p = Torch.toFloats(probabilities);
        double u = random.nextDouble();
        double cumulative = 0;
        int last = -1;
        for (int i = 0; i < p.length; i++) {
            if (p[i] > 0) {
                cumulative += p[i];
                last = i;
                if (u < cumulative) {
                    return i;
                }
            }
        }
        return last;   // rounding left u above the total: the last possible token
    }
}
