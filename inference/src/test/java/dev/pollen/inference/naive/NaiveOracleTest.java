package dev.pollen.inference.naive;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.pollen.inference.TestModels;
import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.config.ModelFamily;
import dev.pollen.inference.config.RopeScaling;
import dev.pollen.inference.generate.LocalModel;
import dev.pollen.inference.make.ModelSpec;
import dev.pollen.inference.model.BlockSpan;
import dev.pollen.inference.tensor.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

@DisplayName("The LibTorch blocks against the naive Hugging Face oracle")
class NaiveOracleTest {
    /**
     * Both sides read the same fp32 weights; LibTorch computes in float32, the oracle in double, so
     * only float32 rounding separates them, and it grows with the logits' size. Measured on the tiny
     * checkpoints: at most 5e-7 of the largest |logit| (1.9e-6 on Llama logits up to 3.8, 1.1e-5 on
     * BLOOM's up to 31, whose LM head is the unit-variance embedding table). 5e-6 of the largest
     * |logit|, about 40 float32 ulps, leaves a ten-fold margin for other CPUs' kernels and sits far
     * below what a semantic slip gives: a flipped rotate_half sign, a wrong slope or a misread fused
     * layout each move the logits by a tenth of their size or more.
     */
    static final double LOGITS_RELATIVE_TOLERANCE = 5e-6;
    /** Hidden states after two blocks are of order 1; measured 1.5e-6, so again a ten-fold margin. */
    static final double HIDDEN_TOLERANCE = 1e-5;
    static final int SEQ = 12;
    private static Path residualAfterNorm;   // made by bloomWithResidualAfterNorm()

    static Stream<Arguments> models() {
        return Stream.of(
                Arguments.of("llama", TestModels.tiny("llama")),
                Arguments.of("qwen2 (q/k/v biases)", TestModels.tiny("qwen2")),
                Arguments.of("mistral", TestModels.tiny("mistral")),
                Arguments.of("bloom", TestModels.tiny("bloom")),
                Arguments.of("bloom with apply_residual_connection_post_layernorm", bloomWithResidualAfterNorm()),
                // The same specs as IncrementalDecodingTest, so one JVM makes each checkpoint once.
                Arguments.of("llama with llama3 rope scaling", TestModels.make("tiny-llama-rope-llama3",
                        ModelSpec.preset("tiny", "llama", DType.F32, 1).withRopeScaling(RopeScaling.llama3(8, 1, 4, 64)))),
                Arguments.of("llama with linear rope scaling", TestModels.make("tiny-llama-rope-linear",
                        ModelSpec.preset("tiny", "llama", DType.F32, 2).withRopeScaling(RopeScaling.linear(4)))));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("models")
    @DisplayName("a full causal forward pass gives the oracle's logits at every position")
    void logitsMatchOracle(String name, Path dir) {
        ModelConfig config = ModelConfig.read(dir);
        long[] ids = randomIds(config.vocabSize(), 5);
        float[][] expected = oracleLogits(dir, config, ids);
        float[][] actual;
        // The model frees its weights; the scope frees every tensor made in between.
        try (LocalModel model = LocalModel.load(dir, DType.F32); PointerScope scope = new PointerScope()) {
            Tensor logits = model.head().logits(model.blocks().forward(model.head().embed(Torch.longs(ids, 1, SEQ))));
            actual = NaiveMath.rows(Torch.toFloats(logits), config.vocabSize());
        }
        double diff = NaiveMath.maxAbsDifference(expected, actual);
        double largest = NaiveMath.maxAbs(expected);
        assertTrue(diff < LOGITS_RELATIVE_TOLERANCE * largest, name + ": logits differ from the oracle by " + diff
                + " where the largest |logit| is " + largest);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("spanModels")
    @DisplayName("a span [1, 3) loaded alone turns the oracle's hidden states into the oracle's output of blocks 1 and 2")
    void spanMatchesOracle(String name, Path dir) {
        ModelConfig config = ModelConfig.read(dir);
        long[] ids = randomIds(config.vocabSize(), 11);
        double[][] input;
        double[][] expected;
        if (config.family() == ModelFamily.BLOOM) {
            NaiveBloom naive = NaiveBloom.load(dir);
            input = naive.blocks(naive.embed(ids), 0, 1);
            expected = naive.blocks(input, 1, 3);
        } else {
            NaiveLlama naive = NaiveLlama.load(dir);
            input = naive.blocks(naive.embed(ids), 0, 1);
            expected = naive.blocks(input, 1, 3);
        }
        float[][] actual;
        try (Checkpoint checkpoint = Checkpoint.open(dir);
             BlockSpan span = BlockSpan.load(checkpoint, 1, 3, DType.F32);
             PointerScope scope = new PointerScope()) {
            Tensor hidden = Torch.floats(flatten(input), 1, SEQ, config.hiddenSize());
            actual = NaiveMath.rows(Torch.toFloats(span.forward(hidden)), config.hiddenSize());
        }
        double diff = NaiveMath.maxAbsDifference(NaiveMath.toFloats(expected), actual);
        assertTrue(diff < HIDDEN_TOLERANCE, name + ": span output differs from the oracle by " + diff);
    }

    static Stream<Arguments> spanModels() {
        return Stream.of(Arguments.of("llama", TestModels.tiny("llama")), Arguments.of("bloom", TestModels.tiny("bloom")));
    }

    @Test
    @DisplayName("the post-LayerNorm residual checkpoint really sets apply_residual_connection_post_layernorm")
    void residualVariantIsExercised() {
        assertTrue(ModelConfig.read(bloomWithResidualAfterNorm()).residualAfterNorm());
        assertFalse(ModelConfig.read(TestModels.tiny("bloom")).residualAfterNorm());
    }

    private static float[][] oracleLogits(Path dir, ModelConfig config, long[] ids) {
        return config.family() == ModelFamily.BLOOM ? NaiveBloom.load(dir).logits(ids) : NaiveLlama.load(dir).logits(ids);
    }

    static long[] randomIds(int vocab, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        long[] ids = new long[SEQ];
        for (int i = 0; i < SEQ; i++) {
            ids[i] = random.nextInt(vocab);
        }
        return ids;
    }

    static float[] flatten(double[][] x) {
        int cols = x[0].length;
        float[] flat = new float[x.length * cols];
        for (int r = 0; r < x.length; r++) {
            for (int c = 0; c < cols; c++) {
                flat[r * cols + c] = (float) x[r][c];
            }
        }
        return flat;
    }

    /**
     * The tiny BLOOM checkpoint with apply_residual_connection_post_layernorm set: ModelMaker writes
     * it false, as every published BLOOM has it, so the other residual path needs its own config.
     * Made once per JVM, like {@link TestModels}, so no test rewrites a file another has mapped.
     */
    static synchronized Path bloomWithResidualAfterNorm() {
        if (residualAfterNorm != null) {
            return residualAfterNorm;
        }
        Path source = TestModels.tiny("bloom");
        Path dir = TestModels.workDir().resolve("models").resolve("tiny-bloom-residual-after-norm");
        try {
            Files.createDirectories(dir);
            Files.copy(source.resolve(Checkpoint.SINGLE_FILE), dir.resolve(Checkpoint.SINGLE_FILE),
                    StandardCopyOption.REPLACE_EXISTING);
            ObjectMapper json = new ObjectMapper();
            ObjectNode config = (ObjectNode) json.readTree(source.resolve("config.json").toFile());
            config.put("apply_residual_connection_post_layernorm", true);
            json.writeValue(dir.resolve("config.json").toFile(), config);
            residualAfterNorm = dir;
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
