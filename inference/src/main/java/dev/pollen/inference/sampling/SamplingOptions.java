package dev.pollen.inference.sampling;

/**
 * How the next token is chosen from the logits, with Hugging Face's meanings.
 *
 * @param temperature       0 for greedy decoding; otherwise logits are divided by it
 * @param topK              keep only the k most likely tokens; 0 keeps all
 * @param topP              keep the smallest set of tokens whose probability reaches p; 1 keeps all
 * @param repetitionPenalty > 1 makes tokens already in the sequence less likely (CTRL, Keskar et al. 2019); 1 is off
 * @param seed              seeds the random draw, so the same options and prompt give the same text
 */
public record SamplingOptions(double temperature, int topK, double topP, double repetitionPenalty, long seed) {
    public static final SamplingOptions GREEDY = new SamplingOptions(0, 0, 1, 1, 0);

    public SamplingOptions {
        if (!(temperature >= 0) || Double.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be finite and >= 0, got " + temperature);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("top_k must be >= 0, got " + topK);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("top_p must be in (0, 1], got " + topP);
        }
        if (!(repetitionPenalty > 0) || Double.isInfinite(repetitionPenalty)) {
            throw new IllegalArgumentException("repetition_penalty must be finite and > 0, got " + repetitionPenalty);
        }
    }

    public boolean greedy() {
        return temperature == 0;
    }

    public SamplingOptions withSeed(long newSeed) {
        return new SamplingOptions(temperature, topK, topP, repetitionPenalty, newSeed);
    }
}
