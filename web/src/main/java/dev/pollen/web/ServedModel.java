package dev.pollen.web;

import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.tokenizer.Tokenizer;
import dev.pollen.node.client.DistributedModel;
import dev.pollen.node.client.SessionOptions;
import dev.pollen.node.client.SwarmClient;
import dev.pollen.protocol.ModelInfo;

import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;

/**
 * A model the gateway serves: the client-side parts (embeddings, LM head, tokenizer) from a local
 * checkpoint, under the name the swarm serves those weights as.
 */
public final class ServedModel implements AutoCloseable {
    private final String name;
    private final DistributedModel model;
    private final Tokenizer tokenizer;
    private final int maxLength;
    private final SessionOptions sessionOptions;

    private ServedModel(String name, DistributedModel model, Tokenizer tokenizer, int maxLength,
                        SessionOptions sessionOptions) {
        this.name = name;
        this.model = model;
        this.tokenizer = tokenizer;
        this.maxLength = maxLength;
        this.sessionOptions = sessionOptions;
    }

    /**
     * Loads the checkpoint in {@code dir} and finds the name the swarm serves its weights under
     * (by fingerprint), so the operator never has to repeat it. Blocking.
     *
     * @param maxLength the longest session to allow, capped by the model's positions; 0 for the model's
     */
    public static ServedModel load(Path dir, SwarmClient swarm, DType dtype, int maxLength, SessionOptions options) {
        String fingerprint;
        try (Checkpoint checkpoint = Checkpoint.open(dir)) {
            fingerprint = checkpoint.fingerprint();
        }
        List<ModelInfo> models = swarm.models();
        ModelInfo info = models.stream().filter(m -> m.fingerprint().equals(fingerprint))
                .min(Comparator.comparing(ModelInfo::name))
                .orElseThrow(() -> new IllegalArgumentException("No model in the swarm has the weights in " + dir
                        + " (fingerprint " + fingerprint + "); the swarm serves "
                        + (models.isEmpty() ? "nothing yet" : String.join(", ", models.stream().map(ModelInfo::name).toList()))));
        DistributedModel model = DistributedModel.load(dir, info.name(), dtype, swarm);
        Tokenizer tokenizer = Tokenizer.load(dir);
        int positions = model.config().maxPositions();
        int length = maxLength <= 0 ? positions : Math.min(maxLength, positions);
        return new ServedModel(info.name(), model, tokenizer, length, options);
    }

    public String name() {
        return name;
    }

    public ModelInfo info() {
        return model.info();
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    /** The longest session, prompt and generated tokens together. */
    public int maxLength() {
        return maxLength;
    }

    /** Opens a session of at most {@code length} tokens (no servers are contacted until the first step). */
    public TextSession open(int length) {
        if (length < 1 || length > maxLength) {
            throw ApiException.invalid("max_length must be between 1 and " + maxLength + " for " + name + ", got " + length + ".");
        }
        return new TextSession(this, model.session(length, 1, sessionOptions), length);
    }

    @Override
    public void close() {
        tokenizer.close();
        model.close();
    }
}
