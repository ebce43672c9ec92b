package dev.pollen.deploy;

import dev.pollen.inference.quant.Quantization;
import picocli.CommandLine.Option;

/** {@code --quant} and {@code --quant-group}: how the blocks' weights are stored once loaded. */
public final class QuantOption {
    @Option(names = "--quant", defaultValue = "none", paramLabel = "none|int8|int4",
            description = "Store the blocks' weights as loaded (none), as int8 (a scale per output row: half the bytes of "
                    + "bf16) or as int4 (a scale and zero per --quant-group input columns: under a third) "
                    + "(default: ${DEFAULT-VALUE}).")
    String quant;

    @Option(names = "--quant-group", defaultValue = "32", paramLabel = "32|64|128",
            description = "Input columns per int4 scale and zero (default: ${DEFAULT-VALUE}).")
    int group;

    /** The quantization asked for. @throws IllegalArgumentException for an unknown name or group, in one sentence */
    public Quantization get() {
        return Quantization.parse(quant, group);
    }
}
