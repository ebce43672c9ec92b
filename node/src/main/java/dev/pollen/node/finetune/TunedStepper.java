package dev.pollen.node.finetune;

import dev.pollen.inference.generate.BlockStepper;
import dev.pollen.node.client.InferenceSession;
import dev.pollen.node.client.SessionOptions;
import dev.pollen.node.client.SwarmClient;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ModelInfo;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import java.util.List;
import dev.pollen.node.wire.TensorBridge;
import dev.pollen.protocol.grpc.WireDType;

/**
 * Generation through the swarm with tuned parameters: trained prefix embeddings go before the
 * prompt (the servers' caches hold them at positions 0 to prefix - 1), with deep prompts sent to
 * each server with the first step (and with any replay after a failover), or the adapter runs
 * between two inference sessions, one per side of it.
 */
public final class TunedStepper implements BlockStepper, AutoCloseable {
    private final TunedParameters params;
    private final List<InferenceSession> sessions;

    private TunedStepper(TunedParameters params, List<InferenceSession> sessions) {
        this.params = params;
        this.sessions = sessions;
    }

    /** Sessions for {@code batch} sequences of up to {@code maxLength} tokens (the prefix comes on top). */
    public static TunedStepper open(SwarmClient swarm, ModelInfo model, TunedParameters params, int maxLength, int batch,
                                    SessionOptions options) {
        return switch (params.mode()) {
            case PTUNE -> new TunedStepper(params, List.of(new InferenceSession(swarm, model,
                    maxLength + params.prefixLength(), batch, options)));
            case ADAPTER -> new TunedStepper(params, List.of(
                    new InferenceSession(swarm, model, BlockRange.of(0, params.adapterAfter()), maxLength, batch, options),
                    new InferenceSession(swarm, model, BlockRange.of(params.adapterAfter(), model.numBlocks()), maxLength, batch,
                            options)));
            case DEEP_PTUNE -> {
                InferenceSession session = new InferenceSession(swarm, model, maxLength + params.prefixLength(), batch, options);
                WireDType wire = options.wireDtype();
                session.deepPrompts(range -> {
                    Tensor deep = params.deep().detach().narrow(0, range.start(), range.length());
                    Tensor expanded = deep.unsqueeze(1).expand(deep.size(0), batch, deep.size(1), deep.size(2)).contiguous();
                    return TensorBridge.toMessage(expanded, wire);
                });
                yield new TunedStepper(params, List.of(session));
            }
        };
    }

    @Override
    public Tensor step(Tensor hidden, int position) {
        if (params.mode() == TuningMode.ADAPTER) {
            Tensor middle = sessions.get(0).step(hidden, position);
            return sessions.get(1).step(params.adapt(middle).detach().to(hidden.scalar_type()), position);
        }
        int prefix = params.prefixLength();
        if (position > 0) {
            return sessions.get(0).step(hidden, position + prefix);
        }
        long batch = hidden.size(0);
        Tensor prompt = params.prefix().detach().to(hidden.scalar_type()).unsqueeze(0)
                .expand(batch, prefix, hidden.size(2));
        Tensor out = sessions.get(0).step(torch.cat(new TensorVector(prompt, hidden), 1), 0);
        return out.narrow(1, prefix, hidden.size(1));
    }

    /** Servers that failed under these sessions and were replaced. */
    public int failovers() {
        return sessions.stream().mapToInt(InferenceSession::failovers).sum();
    }

    @Override
    public void close() {
        sessions.forEach(InferenceSession::close);
    }
}
