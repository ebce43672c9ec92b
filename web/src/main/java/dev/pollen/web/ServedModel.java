package dev.pollen.web;

import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.tokenizer.Tokenizer;
import dev.pollen.node.client.DistributedModel;
import dev.pollen.node.client.SessionOptions;
import dev.pollen.node.client.SwarmClient;
import dev.pollen.node.finetune.TunedParameters;
import dev.pollen.node.finetune.TunedStepper;
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
    private final SwarmClient swarm;
    private final TunedParameters tuned;   // null for the model as it is

    private ServedModel(String name, DistributedModel model, Tokenizer tokenizer, int maxLength,
                        SessionOptions sessionOptions, SwarmClient swarm, TunedParameters tuned) {
        this.name = name;
        this.model = model;
        this.tokenizer = tokenizer;
        this.maxLength = maxLength;
        this.sessionOptions = sessionOptions;
        this.swarm = swarm;
        this.tuned = tuned;
    }

    /**
     * The same model with prompts or an adapter trained by `pollen finetune`, served as
     * {@code base:suffix}. It shares this model's head and tokenizer; close only the base.
     */
    public ServedModel tuned(String suffix, Path file) {
        if (suffix.isBlank() || suffix.contains(":")) {
            throw new IllegalArgumentException("A tuned model's name must be a non-empty word without ':', got '" + suffix + "'");
        }
        TunedParameters params = TunedParameters.load(file, model.config());
        return new ServedModel(name + ":" + suffix, model, tokenizer, maxLength, sessionOptions, swarm, params);
    }

    /** True for a tuned variant, which shares the base's resources. */
    public boolean isTuned() {
        return tuned != null;
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
        return new ServedModel(info.name(), model, tokenizer, length, options, swarm, null);
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

    /**
     * Opens a session of {@code length} tokens, or of the model's length when that is less (as
     * Petals does, the session then fails at the step that needs more). No servers are contacted
     * until the first step.
     */
    public TextSession open(int length) {
        if (length < 1) {
            throw ApiException.invalid("max_length must be at least 1, got " + length + ".");
        }
        int held = Math.min(length, maxLength);
        if (tuned == null) {
            return new TextSession(this, model.session(held, 1, sessionOptions), held, length);
        }
        TunedStepper stepper = TunedStepper.open(swarm, model.info(), tuned, held, 1, sessionOptions);
        return new TextSession(this, model.session(stepper, stepper::failovers, stepper), held, length);
    }

    @Override
    public void close() {
        if (tuned == null) {
            tokenizer.close();
            model.close();
        }
    }
}
