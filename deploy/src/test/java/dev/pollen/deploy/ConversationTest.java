package dev.pollen.deploy;

import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.generate.Generator;
import dev.pollen.inference.generate.LocalModel;
import dev.pollen.inference.make.ModelMaker;
import dev.pollen.inference.make.ModelSpec;
import dev.pollen.inference.model.KvCache;
import dev.pollen.inference.sampling.SamplingOptions;
import dev.pollen.inference.tokenizer.Tokenizer;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

@DisplayName("A chat conversation")
class ConversationTest {
    @Test
    @DisplayName("that keeps its session across turns replies as one that re-feeds everything, and sends fewer tokens")
    void reuseEqualsRefeed() throws Exception {
        Path model = Path.of(System.getProperty("pollen.test.workdir", "target/test-work")).resolve("chat-llama");
        ModelMaker.write(model, ModelSpec.preset("tiny", "llama", DType.F32, 12), i -> { });
        String[] turns = {"Hello, who are you?", "Tell me about bees.", "Thanks!"};
        try (Tokenizer tokenizer = Tokenizer.load(model); LocalModel local = LocalModel.load(model, DType.F32);
             KvCache reused = local.blocks().newCache(1, 256); KvCache refed = local.blocks().newCache(1, 256)) {
            Generator keep = local.generator(reused);
            Generator again = local.generator(refed);
            Conversation kept = new Conversation(tokenizer, (tokens, position, options, sink) ->
                    keep.generate(new long[][] {tokens}, position, options, sink)[0], "Be brief.", 256, 6,
                    SamplingOptions.GREEDY, true);
            Conversation fresh = new Conversation(tokenizer, (tokens, position, options, sink) ->
                    again.generate(new long[][] {tokens}, position, options, sink)[0], "Be brief.", 256, 6,
                    SamplingOptions.GREEDY, false);
            for (String turn : turns) {
                assertEquals(fresh.say(turn, piece -> { }), kept.say(turn, piece -> { }), "reply to: " + turn);
            }
            // Fewer, not a tiny fraction: a random model's reply re-tokenizes differently once it is text in the
            // template, so each turn re-feeds from the start of the previous reply (the rollback path).
            assertTrue(kept.tokensSent() < fresh.tokensSent() * 3 / 4, kept.tokensSent() + " tokens sent against "
                    + fresh.tokensSent());
        }
    }
}
