package dev.pollen.inference.model;

import dev.pollen.inference.TestModels;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.generate.LocalModel;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.DisplayName;

import static org.junit.jupiter.api.Assertions.assertTrue;

@DisplayName("Reduced-precision compute")
class ComputeDtypeTest {
    /**
     * Relative error of the logits against fp32: bf16 keeps 8 mantissa bits (~0.4 % per rounding) and
     * fp16 11; through 4 blocks and the head the errors add up to a few percent of the logits' scale.
     */
    static final double BF16_RELATIVE_TOLERANCE = 0.08;
    static final double FP16_RELATIVE_TOLERANCE = 0.02;

    @ParameterizedTest(name = "{0} in {1}")
    @CsvSource({"llama, BF16", "llama, F16", "bloom, BF16", "bloom, F16"})
    @DisplayName("bf16 and fp16 logits stay close to fp32 logits")
    void closeToFp32(String type, DType dtype) {
        try (LocalModel exact = LocalModel.load(TestModels.tiny(type), DType.F32);
             LocalModel reduced = LocalModel.load(TestModels.tiny(type), dtype);
             PointerScope scope = new PointerScope()) {
            Tensor ids = IncrementalDecodingTest.randomIds(2, 10, exact.config().vocabSize(), 5);
            Tensor expected = exact.head().logits(exact.blocks().forward(exact.head().embed(ids)));
            Tensor actual;
            try (KvCache cache = reduced.blocks().newCache(2, 10)) {
                actual = reduced.head().logits(reduced.blocks().step(reduced.head().embed(ids), cache, 0));
            }
            assertTrue(reduced.blocks().dtype() == (dtype == DType.BF16 ? ScalarType.BFloat16 : ScalarType.Half));
            double scale = expected.abs().max().item_float();
            double diff = IncrementalDecodingTest.maxDifference(expected, actual);
            double tolerance = dtype == DType.BF16 ? BF16_RELATIVE_TOLERANCE : FP16_RELATIVE_TOLERANCE;
            assertTrue(diff / scale < tolerance, type + " " + dtype + ": relative difference " + diff / scale);
        }
    }
}
