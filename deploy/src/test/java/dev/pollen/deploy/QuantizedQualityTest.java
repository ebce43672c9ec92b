package dev.pollen.deploy;

import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.model.Architecture;
import dev.pollen.inference.model.BlockSpan;
import dev.pollen.inference.model.ModelHead;
import dev.pollen.inference.quant.Quantization;
import dev.pollen.inference.tokenizer.Tokenizer;
import dev.pollen.inference.train.LanguageModelTrainer;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What quantization costs a trained model: the default model's held-out perplexity (the held-out
 * text the jar carries, the last verses of Revelation) with its blocks as shipped in bf16, as int8 and as int4 in groups of
 * 32 and 128. The figures are printed for docs/quantization.md.
 */
@DisplayName("Quantized blocks of the default model")
class QuantizedQualityTest {
    private static final int LENGTH = 128;

    @Test
    @DisplayName("keep its held-out perplexity within 1 % (int8) and 5 % (int4, groups of 32) of bf16")
    void perplexityStaysClose() throws Exception {
        Path dir = DefaultModelAccess.directory();
        long[] heldOut;
        try (Tokenizer tokenizer = Tokenizer.load(dir)) {
            heldOut = DefaultModelAccess.encode(tokenizer, new String(DefaultModelAccess.heldOut(), StandardCharsets.UTF_8));
        }
        double bf16 = perplexity(dir, heldOut, Quantization.NONE);
        double int8 = perplexity(dir, heldOut, Quantization.INT8);
        double int4 = perplexity(dir, heldOut, Quantization.int4(32));
        double int4Wide = perplexity(dir, heldOut, Quantization.int4(128));
        System.out.printf("held-out perplexity of the default model over %d tokens: bf16 %.3f, int8 %.3f (%+.2f %%), int4-g32 %.3f (%+.2f %%),"
                        + " int4-g128 %.3f (%+.2f %%)%n", heldOut.length, bf16, int8, 100 * (int8 / bf16 - 1), int4, 100 * (int4 / bf16 - 1),
                int4Wide, 100 * (int4Wide / bf16 - 1));
        assertTrue(Math.abs(int8 / bf16 - 1) <= 0.01, "int8 moves perplexity from " + bf16 + " to " + int8);
        assertTrue(Math.abs(int4 / bf16 - 1) <= 0.05, "int4 (groups of 32) moves perplexity from " + bf16 + " to " + int4);
        // Quantization must really have happened: 4 bits cost something measurable.
        assertTrue(int4 != bf16, "int4 gives bf16's perplexity exactly");
    }

    private static double perplexity(Path dir, long[] tokens, Quantization quantization) {
        try (Checkpoint checkpoint = Checkpoint.open(dir); Architecture architecture = Architecture.of(checkpoint.config());
             ModelHead head = architecture.loadHead(checkpoint, ScalarType.BFloat16);
             BlockSpan blocks = BlockSpan.load(checkpoint, 0, checkpoint.config().numLayers(), DType.BF16, quantization,
                     i -> { })) {
            return Math.exp(LanguageModelTrainer.evaluate(head, blocks, tokens, LENGTH));
        }
    }
}
