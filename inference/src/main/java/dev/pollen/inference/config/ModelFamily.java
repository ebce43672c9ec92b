package dev.pollen.inference.config;

import java.util.List;
import java.util.Locale;

/** The architectures Pollen computes, each with the Hugging Face {@code model_type}s it covers. */
public enum ModelFamily {
    /** RMSNorm, rotary positions, grouped-query attention, SwiGLU: Llama 2/3/3.1, Mistral, Qwen2. */
    LLAMA(List.of("llama", "mistral", "qwen2")),
    /** LayerNorm, ALiBi, fused query_key_value, GELU. */
    BLOOM(List.of("bloom"));

    private final List<String> modelTypes;

    ModelFamily(List<String> modelTypes) {
        this.modelTypes = modelTypes;
    }

    public List<String> modelTypes() {
        return modelTypes;
    }

    /** Every supported {@code model_type}, for error messages. */
    public static List<String> supportedModelTypes() {
        return java.util.Arrays.stream(values()).flatMap(f -> f.modelTypes.stream()).toList();
    }

    /** The family of a {@code model_type}, or an {@link IllegalArgumentException} naming the supported ones. */
    public static ModelFamily ofModelType(String modelType) {
        String type = modelType.toLowerCase(Locale.ROOT);
        for (ModelFamily family : values()) {
            if (family.modelTypes.contains(type)) {
                return family;
            }
        }
        throw new IllegalArgumentException("Model type '" + modelType + "' is not supported; Pollen runs "
                + String.join(", ", supportedModelTypes()) + ".");
    }
}
