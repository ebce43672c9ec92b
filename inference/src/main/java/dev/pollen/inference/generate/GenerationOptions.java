package dev.pollen.inference.generate;

import dev.pollen.inference.sampling.SamplingOptions;

/**
 * @param maxNewTokens tokens to generate at most per sequence
 * @param sampling     how each token is chosen
 * @param stopTokenIds a sequence that produces one of these stops (the token is still reported)
 */
public record GenerationOptions(int maxNewTokens, SamplingOptions sampling, long[] stopTokenIds) {
    public GenerationOptions {
        if (maxNewTokens < 0) {
            throw new IllegalArgumentException("max new tokens must be >= 0, got " + maxNewTokens);
        }
        stopTokenIds = stopTokenIds.clone();
    }

    public static GenerationOptions greedy(int maxNewTokens) {
        return new GenerationOptions(maxNewTokens, SamplingOptions.GREEDY, new long[0]);
    }

    public boolean isStop(long token) {
        for (long stop : stopTokenIds) {
            if (stop == token) {
                return true;
            }
        }
        return false;
    }
}
