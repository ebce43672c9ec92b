package dev.pollen.deploy;

import dev.pollen.protocol.grpc.WireDType;
import picocli.CommandLine.Option;

import java.util.Locale;

/** {@code --wire-dtype}: how a client sends hidden states to the servers, and they answer. */
public final class WireDtypeOption {
    @Option(names = "--wire-dtype", defaultValue = "fp32", paramLabel = "fp32|bf16|fp16|int8",
            description = "Hidden states on the wire: fp32 (lossless), bf16 or fp16 (half the bytes), or int8 (a quarter, "
                    + "an fp16 scale per 64 values; servers answer in kind) (default: ${DEFAULT-VALUE}).")
    String wireDtype;

    /** @throws IllegalArgumentException for an unknown name, in one sentence */
    public WireDType get() {
        return parse(wireDtype);
    }

    /** fp32, bf16, fp16 or int8 as a wire dtype. @throws IllegalArgumentException for another name, in one sentence */
    public static WireDType parse(String wireDtype) {
        return switch (wireDtype.trim().toLowerCase(Locale.ROOT)) {
            case "fp32", "float32" -> WireDType.FLOAT32;
            case "bf16", "bfloat16" -> WireDType.BFLOAT16;
            case "fp16", "float16" -> WireDType.FLOAT16;
            case "int8" -> WireDType.INT8_BLOCKWISE;
            default -> throw new IllegalArgumentException("Unknown wire dtype '" + wireDtype + "'; use fp32, bf16, fp16 or int8");
        };
    }
}
