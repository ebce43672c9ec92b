package dev.pollen.inference.naive;

import dev.pollen.inference.TestModels;
import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.config.ModelFamily;
import dev.pollen.inference.generate.LocalModel;
import dev.pollen.inference.model.BlockSpan;
import dev.pollen.inference.quant.Quantization;
import dev.pollen.inference.quant.ReferenceQuantizer;
import dev.pollen.inference.tensor.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A quantized span against the naive double-precision blocks run on weights that the plain-Java
 * reference quantized and dequantized: the oracle of "dequantize, then multiply", sharing no code
 * with LibTorch's packed kernels.
 */
@DisplayName("Quantized spans against the naive oracle on dequantized weights")
class QuantizedOracleTest {
    /**
     * Both sides hold identical dequantized weights (QuantizedLinearTest checks them to a float32 ulp), so
     * what separates them is float32 rounding in the kernels, as in NaiveOracleTest (measured 1.5e-6
     * there); 1e-5 is its tolerance. A wrong scale, zero, group or row order moves hidden states by
     * a hundredth or more: a step of 4-bit weights is a fifteenth of a group's range.
     */
    static final double TOLERANCE = 1e-5;

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        for (String family : List.of("llama", "bloom")) {
            for (Quantization q : List.of(Quantization.INT8, Quantization.int4(32), Quantization.int4(128))) {
                // int8 takes the packed kernel for 12 rows and the weight dequantized in scratch memory
                // from 32; int4 the packed kernel up to 159 rows.
                out.add(Arguments.of(family, q, 12));
                out.add(Arguments.of(family, q, 45));
                out.add(Arguments.of(family, q, 170));
            }
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0}, {1}, {2} tokens")
    @MethodSource("cases")
    @DisplayName("every block of the quantized span gives the oracle's hidden states")
    void spanMatchesDequantizedOracle(String family, Quantization quantization, int seq) {
        Path dir = TestModels.tiny(family);
        ModelConfig config = ModelConfig.read(dir);
        long[] ids = new SplittableRandom(seq).longs(seq, 0, config.vocabSize()).toArray();
        double[][] input;
        double[][] expected;
        if (config.family() == ModelFamily.BLOOM) {
            NaiveBloom naive = NaiveBloom.load(dir);
            input = naive.embed(ids);
            expected = quantized(naive, quantization).blocks(input, 0, config.numLayers());
        } else {
            NaiveLlama naive = NaiveLlama.load(dir);
            input = naive.embed(ids);
            expected = quantized(naive, quantization).blocks(input, 0, config.numLayers());
        }
        float[][] actual;
        try (Checkpoint checkpoint = Checkpoint.open(dir);
             BlockSpan span = BlockSpan.load(checkpoint, 0, config.numLayers(), DType.F32, quantization, i -> { });
             PointerScope scope = new PointerScope()) {
            Tensor hidden = Torch.floats(NaiveOracleTest.flatten(input), 1, seq, config.hiddenSize());
            actual = NaiveMath.rows(Torch.toFloats(span.forward(hidden)), config.hiddenSize());
        }
        double diff = NaiveMath.maxAbsDifference(NaiveMath.toFloats(expected), actual);
        assertTrue(diff < TOLERANCE, family + " " + quantization + ": span output differs from the oracle by " + diff);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("headQuantizations")
    @DisplayName("a whole Llama loaded with a quantization gives the oracle's logits, its LM head quantized too")
    void logitsMatchDequantizedOracle(Quantization quantization) {
        Path dir = TestModels.tiny("llama");
        ModelConfig config = ModelConfig.read(dir);
        long[] ids = new SplittableRandom(3).longs(12, 0, config.vocabSize()).toArray();
        NaiveLlama naive = quantized(NaiveLlama.load(dir), quantization);
        // The embeddings stay as they are (a lookup reads one row); the LM head, tied or not, is quantized.
        NaiveLlama withHead = new NaiveLlama(config, naive.embeddings(), naive.layers(), naive.finalNorm(),
                ReferenceQuantizer.apply(quantization, naive.lmHead(), config.vocabSize(), config.hiddenSize()));
        float[][] expected = withHead.logits(ids);
        float[][] actual;
        try (LocalModel model = LocalModel.load(dir, DType.F32, quantization, i -> { });
             PointerScope scope = new PointerScope()) {
            Tensor logits = model.head().logits(model.blocks().forward(model.head().embed(Torch.longs(ids, 1, ids.length))));
            actual = NaiveMath.rows(Torch.toFloats(logits), config.vocabSize());
        }
        double diff = NaiveMath.maxAbsDifference(expected, actual);
        double largest = NaiveMath.maxAbs(expected);
        assertTrue(diff < NaiveOracleTest.LOGITS_RELATIVE_TOLERANCE * largest, quantization + ": logits differ from the "
                + "oracle by " + diff + " where the largest |logit| is " + largest);
    }

    static Stream<Quantization> headQuantizations() {
        return Stream.of(Quantization.INT8, Quantization.int4(32));
    }

    private static NaiveLlama quantized(NaiveLlama m, Quantization q) {
        ModelConfig c = m.config();
        int h = c.hiddenSize();
        int heads = c.numHeads() * c.headDim();
        int kv = c.numKvHeads() * c.headDim();
        int inter = c.intermediateSize();
        List<NaiveLlama.Layer> layers = new ArrayList<>();
        for (NaiveLlama.Layer l : m.layers()) {
            layers.add(new NaiveLlama.Layer(l.inputNorm(), ReferenceQuantizer.apply(q, l.q(), heads, h), l.qBias(),
                    ReferenceQuantizer.apply(q, l.k(), kv, h), l.kBias(), ReferenceQuantizer.apply(q, l.v(), kv, h), l.vBias(),
                    ReferenceQuantizer.apply(q, l.o(), h, heads), l.oBias(), l.postNorm(),
                    ReferenceQuantizer.apply(q, l.gate(), inter, h), l.gateBias(),
                    ReferenceQuantizer.apply(q, l.up(), inter, h), l.upBias(),
                    ReferenceQuantizer.apply(q, l.down(), h, inter), l.downBias()));
        }
        return new NaiveLlama(c, m.embeddings(), layers, m.finalNorm(), m.lmHead());
    }

    private static NaiveBloom quantized(NaiveBloom m, Quantization q) {
        ModelConfig c = m.config();
        int h = c.hiddenSize();
        int inter = c.intermediateSize();
        List<NaiveBloom.Layer> layers = new ArrayList<>();
        for (NaiveBloom.Layer l : m.layers()) {
            layers.add(new NaiveBloom.Layer(l.inputNormWeight(), l.inputNormBias(),
                    ReferenceQuantizer.apply(q, l.qkv(), 3 * h, h), l.qkvBias(),
                    ReferenceQuantizer.apply(q, l.dense(), h, h), l.denseBias(), l.postNormWeight(), l.postNormBias(),
                    ReferenceQuantizer.apply(q, l.up(), inter, h), l.upBias(),
                    ReferenceQuantizer.apply(q, l.down(), h, inter), l.downBias()));
        }
        return new NaiveBloom(c, m.embeddings(), m.embeddingNormWeight(), m.embeddingNormBias(), layers, m.finalNormWeight(),
                m.finalNormBias());
    }
}
