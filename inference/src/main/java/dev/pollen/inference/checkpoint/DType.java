package dev.pollen.inference.checkpoint;

import java.util.Locale;

/** The element types a Pollen checkpoint may hold, with their names in safetensors headers. */
public enum DType {
    F32("F32", 4),
    F16("F16", 2),
    BF16("BF16", 2);

    private final String safetensorsName;
    private final int bytes;

    DType(String safetensorsName, int bytes) {
        this.safetensorsName = safetensorsName;
        this.bytes = bytes;
    }

    public String safetensorsName() {
        return safetensorsName;
    }

    /** Size of one element in bytes. */
    public int bytes() {
        return bytes;
    }

    /** The dtype of a safetensors header entry, or {@code null} if Pollen cannot read it. */
    public static DType fromSafetensors(String name) {
        for (DType type : values()) {
            if (type.safetensorsName.equals(name)) {
                return type;
            }
        }
        return null;
    }

    /** Parses a user-facing name: fp32/float32, fp16/float16/half, bf16/bfloat16. */
    public static DType parse(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "f32", "fp32", "float32", "float" -> F32;
            case "f16", "fp16", "float16", "half" -> F16;
            case "bf16", "bfloat16" -> BF16;
            default -> throw new IllegalArgumentException(
                    "Unknown dtype '" + name + "'; use one of bf16, fp16, fp32.");
        };
    }

    /** The name Hugging Face writes as {@code torch_dtype} in config.json. */
    public String torchName() {
        return switch (this) {
            case F32 -> "float32";
            case F16 -> "float16";
            case BF16 -> "bfloat16";
        };
    }
}
