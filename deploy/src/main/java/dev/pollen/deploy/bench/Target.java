package dev.pollen.deploy.bench;

import dev.pollen.inference.generate.Generator;

/** What the network bench times: the swarm, or the same model in this process. */
interface Target {
    /** One greedy generation of {@code newTokens} after {@code prompt} (batch, length); {@code sink} hears each step. */
    void run(long[][] prompt, int maxLength, int newTokens, boolean push, Generator.TokenSink sink);
}
