package dev.pollen.protocol;

import java.io.Serializable;
import java.util.Objects;

/**
 * One model of the swarm: its name, how many blocks it has, and the fingerprint of its weights.
 * The first server of a model registers it; a server whose checkpoint has another fingerprint
 * under the same name is refused.
 */
public record ModelInfo(String name, int numBlocks, String fingerprint) implements Serializable {
    public ModelInfo {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(fingerprint, "fingerprint");
        if (name.isBlank()) {
            throw new IllegalArgumentException("A model name must not be blank");
        }
        if (numBlocks <= 0) {
            throw new IllegalArgumentException("A model needs at least one block, got " + numBlocks);
        }
    }
}
