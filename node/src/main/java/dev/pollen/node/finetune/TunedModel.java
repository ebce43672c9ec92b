package dev.pollen.node.finetune;

import dev.pollen.inference.model.BlockSpan;
import dev.pollen.inference.model.ModelHead;
import dev.pollen.inference.tensor.Torch;
import dev.pollen.node.client.RemoteSequence;
import dev.pollen.protocol.BlockRange;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.ArrayList;
import java.util.List;
import org.bytedeco.pytorch.LongOptional;

/**
 * The model with a client's tuned parameters: the embeddings and LM head here (frozen), the
 * blocks in the swarm or, for the oracle, in this process. It computes the language-model loss of
 * a batch and the gradients of the tuned parameters, which stay in their tensors' {@code grad()}.
 *
 * <p>Through the swarm the chain is joined by hand: each remote span's output becomes a fresh
 * leaf, the local parts (prefix, adapter, head) run under LibTorch autograd, and backward walks
 * the chain in reverse, asking each span for the gradient of its input from that of its output.
 * Run locally, the same computation is one autograd graph: that is what the remote gradients are
 * compared with.
 */
public final class TunedModel {
    /** Token ids of a batch and which of them the loss counts. */
    public record Batch(Tensor ids, Tensor lossMask) {
        /**
         * @param ids      (batch, seq) long
         * @param lossMask (batch, seq) float: 1 where the token at that position is predicted and counted
         */
        public Batch {
            if (ids.dim() != 2 || lossMask.dim() != 2 || ids.size(0) != lossMask.size(0) || ids.size(1) != lossMask.size(1)) {
                throw new IllegalArgumentException("Token ids and loss mask must both be (batch, seq)");
            }
        }
    }

    private final ModelHead head;
    private final int numBlocks;
    private final TunedParameters params;

    public TunedModel(ModelHead head, TunedParameters params) {
        this.head = head;
        this.numBlocks = head.config().numLayers();
        this.params = params;
    }

    public TunedParameters parameters() {
        return params;
    }

    /** The loss through the swarm, with the tuned parameters' gradients accumulated (backward included). */
    public double lossAndGradients(RemoteSequence remote, Batch batch) {
        Tensor input = input(batch.ids());
        Tensor deep = deepPrompts(batch.ids().size(0));
        List<BlockRange> spans = spans();
        List<RemoteSequence.Pass> passes = new ArrayList<>();
        List<Tensor> adapterInputs = new ArrayList<>();
        List<Tensor> adapterOutputs = new ArrayList<>();
        Tensor h = input.detach();
        for (int s = 0; s < spans.size(); s++) {
            BlockRange span = spans.get(s);
            RemoteSequence.Pass pass = remote.forward(h, deep == null ? null : deep.detach().narrow(0, span.start(), span.length()),
                    span);
            passes.add(pass);
            Tensor leaf = pass.output().to(ScalarType.Float).detach().set_requires_grad(true);
            if (s < spans.size() - 1) {
                Tensor adapted = params.adapt(leaf);
                adapterInputs.add(leaf);
                adapterOutputs.add(adapted);
                h = adapted.detach();
            } else {
                h = leaf;
            }
        }
        Tensor loss = loss(h, batch);
        loss.backward();
        Tensor grad = h.grad();
        for (int s = spans.size() - 1; s >= 0; s--) {
            if (s < spans.size() - 1) {
                // Through the adapter after span s: its parameters take their gradient, and so does its input.
                Torch.backward(adapterOutputs.get(s), grad);
                grad = adapterInputs.get(s).grad();
            }
            BlockRange span = spans.get(s);
            RemoteSequence.Gradients g = remote.backward(passes.get(s), grad.to(passes.get(s).output().scalar_type()),
                    deep == null ? null : deep.detach().narrow(0, span.start(), span.length()), span);
            grad = g.input().to(ScalarType.Float);
            if (g.deepPrompts() != null) {
                Torch.backward(deep.narrow(0, span.start(), span.length()), g.deepPrompts().to(ScalarType.Float));
            }
        }
        if (input.requires_grad()) {
            Torch.backward(input, grad);
        }
        return loss.item_double();
    }

    /** The same loss and gradients with the blocks in this process, as one autograd graph: the oracle. */
    public double lossAndGradientsLocally(BlockSpan blocks, Batch batch) {
        Tensor h = input(batch.ids());
        Tensor deep = deepPrompts(batch.ids().size(0));
        List<BlockRange> spans = spans();
        for (int s = 0; s < spans.size(); s++) {
            BlockRange span = spans.get(s);
            h = blocks.slice(span.start(), span.end())
                    .forward(h, deep == null ? null : deep.narrow(0, span.start(), span.length())).to(ScalarType.Float);
            if (s < spans.size() - 1) {
                h = params.adapt(h);
            }
        }
        Tensor loss = loss(h, batch);
        loss.backward();
        return loss.item_double();
    }

    /** Loss and accuracy (the share of counted tokens the model predicts greedily) without gradients, through the swarm. */
    public Evaluation evaluate(RemoteSequence remote, Batch batch) {
        Tensor h = input(batch.ids()).detach();
        Tensor deep = deepPrompts(batch.ids().size(0));
        List<BlockRange> spans = spans();
        for (int s = 0; s < spans.size(); s++) {
            BlockRange span = spans.get(s);
            h = remote.forward(h, deep == null ? null : deep.detach().narrow(0, span.start(), span.length()), span).output()
                    .to(ScalarType.Float);
            if (s < spans.size() - 1) {
                h = params.adapt(h).detach();
            }
        }
        return evaluation(h, batch);
    }

    /** As {@link #evaluate(RemoteSequence, Batch)} with the blocks in this process. */
    public Evaluation evaluateLocally(BlockSpan blocks, Batch batch) {
        Tensor h = input(batch.ids()).detach();
        Tensor deep = deepPrompts(batch.ids().size(0));
        List<BlockRange> spans = spans();
        for (int s = 0; s < spans.size(); s++) {
            BlockRange span = spans.get(s);
            h = blocks.slice(span.start(), span.end())
                    .forward(h, deep == null ? null : deep.detach().narrow(0, span.start(), span.length())).to(ScalarType.Float);
            if (s < spans.size() - 1) {
                h = params.adapt(h).detach();
            }
        }
        return evaluation(h, batch);
    }

    /** Mean loss and greedy accuracy over the counted tokens of a batch. */
    public record Evaluation(double loss, double accuracy, int tokens) {
    }

    private Evaluation evaluation(Tensor hidden, Batch batch) {
        long prefix = params.prefixLength();
        long seq = batch.ids().size(1);
        Tensor logits = head.logits(hidden.detach().narrow(1, prefix, seq - 1));
        Tensor predicted = logits.argmax(new LongOptional(-1), false);
        Tensor targets = batch.ids().narrow(1, 1, seq - 1);
        Tensor mask = batch.lossMask().narrow(1, 1, seq - 1).to(ScalarType.Float);
        double counted = mask.sum().item_double();
        double correct = predicted.eq(targets).to(ScalarType.Float).mul(mask).sum().item_double();
        return new Evaluation(loss(hidden.detach(), batch).item_double(), correct / counted, (int) counted);
    }

    /** The adapter splits the route after its block; prompts run over all blocks at once. */
    private List<BlockRange> spans() {
        if (params.mode() == TuningMode.ADAPTER) {
            return List.of(BlockRange.of(0, params.adapterAfter()), BlockRange.of(params.adapterAfter(), numBlocks));
        }
        return List.of(BlockRange.of(0, numBlocks));
    }

    /** Embeddings of the ids, after the trainable prefix when there is one: (batch, prefix + seq, hidden) float32. */
    private Tensor input(Tensor ids) {
        Tensor embedded = head.embed(ids).to(ScalarType.Float);
        if (params.prefix() == null) {
            return embedded;
        }
        long batch = ids.size(0);
        Tensor prefix = params.prefix().unsqueeze(0).expand(batch, params.prefix().size(0), params.prefix().size(1));
        return torch.cat(new TensorVector(prefix, embedded), 1);
    }

    /** The deep prompts for each sequence of the batch: (blocks, batch, prefix, hidden), or null. */
    private Tensor deepPrompts(long batch) {
        Tensor deep = params.deep();
        if (deep == null) {
            return null;
        }
        return deep.unsqueeze(1).expand(deep.size(0), batch, deep.size(1), deep.size(2)).contiguous();
    }

    /**
     * Mean cross-entropy of predicting each counted token from the positions before it. The
     * output of the blocks is (batch, prefix + seq, hidden); position prefix + t predicts token t + 1.
     */
    private Tensor loss(Tensor hidden, Batch batch) {
        long prefix = params.prefixLength();
        long seq = batch.ids().size(1);
        Tensor logits = head.logits(hidden.narrow(1, prefix, seq - 1));   // (batch, seq - 1, vocab)
        Tensor logp = logits.log_softmax(-1);
        Tensor targets = batch.ids().narrow(1, 1, seq - 1);
        Tensor picked = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1);   // (batch, seq - 1)
        Tensor mask = batch.lossMask().narrow(1, 1, seq - 1).to(ScalarType.Float);
        double counted = mask.sum().item_double();
        if (counted == 0) {
            throw new IllegalArgumentException("The batch counts no token in its loss");
        }
        return picked.mul(mask).sum().neg().div(Torch.scalar(counted));
    }
}
