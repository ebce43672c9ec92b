package dev.pollen.inference.quant;

import java.util.Locale;
import java.util.Set;

/**
 * How a span stores the weights of its matrix products: as loaded ({@link #NONE}), as int8 with one
 * scale per output row, or as 4-bit integers with a scale and a zero per group of {@code group} input
 * columns. Norms, biases and the client's embeddings and LM head are never quantized here.
 *
 * @param scheme the storage
 * @param group  input columns per 4-bit group; 0 for the other schemes
 */
public record Quantization(Scheme scheme, int group) {
    /** Groups LibTorch's 4-bit CPU kernel takes. */
    public static final Set<Integer> GROUPS = Set.of(32, 64, 128);
    public static final int DEFAULT_GROUP = 32;
    public static final Quantization NONE = new Quantization(Scheme.NONE, 0);
    public static final Quantization INT8 = new Quantization(Scheme.INT8, 0);

    public enum Scheme { NONE, INT8, INT4 }

    public Quantization {
        if (scheme == Scheme.INT4 && !GROUPS.contains(group)) {
            throw new IllegalArgumentException("A 4-bit group must be 32, 64 or 128 input columns, got " + group);
        }
        if (scheme != Scheme.INT4 && group != 0) {
            throw new IllegalArgumentException("Only int4 has groups; " + scheme.name().toLowerCase(Locale.ROOT)
                    + " was given group " + group);
        }
    }

    public static Quantization int4(int group) {
        return new Quantization(Scheme.INT4, group);
    }

    /**
     * From the command line's {@code --quant} and {@code --quant-group}, or from a directory record's
     * {@link #label()}.
     *
     * @param name  none, int8, int4, or a label such as int4-g64 (which carries its group)
     * @param group the group for int4 when the name does not carry one
     */
    public static Quantization parse(String name, int group) {
        String n = name.trim().toLowerCase(Locale.ROOT);
        if (n.startsWith("int4-g")) {
            try {
                return int4(Integer.parseInt(n.substring("int4-g".length())));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("Unknown quantization '" + name + "'; use none, int8 or int4");
            }
        }
        return switch (n) {
            case "", "none" -> NONE;
            case "int8" -> INT8;
            case "int4" -> int4(group);
            default -> throw new IllegalArgumentException("Unknown quantization '" + name + "'; use none, int8 or int4");
        };
    }

    public static Quantization parse(String label) {
        return parse(label, DEFAULT_GROUP);
    }

    public boolean isNone() {
        return scheme == Scheme.NONE;
    }

    /** none, int8, or int4-g32: what the directory record and {@code pollen swarm} show. */
    public String label() {
        return switch (scheme) {
            case NONE -> "none";
            case INT8 -> "int8";
            case INT4 -> "int4-g" + group;
        };
    }

    /**
     * Bytes one weight of an (rows, columns) matrix takes, scales and zeros included, with 2-byte
     * scales: 2 as loaded in bf16, 1 + 2/columns for int8, 1/2 + 4/group for int4.
     */
    public double bytesPerWeight(long columns, int denseBytes) {
        return switch (scheme) {
            case NONE -> denseBytes;
            case INT8 -> 1 + 2.0 / columns;
            case INT4 -> 0.5 + 4.0 / group;
        };
    }

    @Override
    public String toString() {
        return label();
    }
}
