package dev.pollen.deploy;

import dev.pollen.inference.generate.CachedSequence;
import dev.pollen.inference.generate.GenerationOptions;
import dev.pollen.inference.generate.Generator;
import dev.pollen.inference.sampling.SamplingOptions;
import dev.pollen.inference.tokenizer.ChatMessage;
import dev.pollen.inference.tokenizer.StreamingDetokenizer;
import dev.pollen.inference.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;

/**
 * A chat over one inference session. Each turn renders the whole conversation with the chat
 * template, and feeds the blocks only the tokens past the longest prefix their caches already
 * hold (a position below the caches' length rolls them back, so a template that re-renders an
 * earlier turn differently costs only the difference).
 */
final class Conversation {
    /** Runs the blocks: feeds {@code tokens} at {@code position}, generates, returns the generated tokens. */
    interface Blocks {
        long[] run(long[] tokens, int position, GenerationOptions options, Generator.TokenSink sink);
    }

    private final Tokenizer tokenizer;
    private final Blocks blocks;
    private final int maxLength;
    private final int maxNewTokens;
    private final SamplingOptions sampling;
    private final boolean reuse;
    private final List<ChatMessage> messages = new ArrayList<>();
    private final CachedSequence sequence = new CachedSequence();
    private int tokensSent;
    private int turn;

    /** @param reuse false re-feeds the whole conversation every turn (the oracle for tests) */
    Conversation(Tokenizer tokenizer, Blocks blocks, String system, int maxLength, int maxNewTokens, SamplingOptions sampling,
                 boolean reuse) {
        this.tokenizer = tokenizer;
        this.blocks = blocks;
        this.maxLength = maxLength;
        this.maxNewTokens = maxNewTokens;
        this.sampling = sampling;
        this.reuse = reuse;
        if (system != null) {
            messages.add(new ChatMessage("system", system));
        }
    }

    /** Tokens fed to the blocks so far, over all turns. */
    int tokensSent() {
        return tokensSent;
    }

    /** One turn: streams the reply's text to {@code stream} and returns it. */
    String say(String user, Consumer<String> stream) {
        messages.add(new ChatMessage("user", user));
        long[] ids = tokenizer.encode(tokenizer.applyChatTemplate(messages, true), false);
        if (ids.length + maxNewTokens > maxLength) {
            messages.remove(messages.size() - 1);
            throw new IllegalArgumentException("The conversation would pass " + maxLength + " tokens; start a new chat.");
        }
        int common = reuse ? commonPrefix(sequence.cachedTokens(), ids) : 0;
        if (common == ids.length) {
            common--;   // a step needs at least one new token
        }
        sequence.rollback(common);
        long[] feed = Arrays.copyOfRange(ids, common, ids.length);
        long eos = tokenizer.eosTokenId().orElse(-1);
        GenerationOptions options = new GenerationOptions(maxNewTokens, sampling.withSeed(sampling.seed() + turn++),
                eos >= 0 ? new long[] {eos} : new long[0]);
        StreamingDetokenizer detokenizer = tokenizer.streaming();
        StringBuilder text = new StringBuilder();
        long[] reply = blocks.run(feed, common, options, (step, tokens) -> {
            if (tokens[0] != eos) {
                String piece = detokenizer.push(tokens[0]);
                text.append(piece);
                stream.accept(piece);
            }
            return true;
        });
        String rest = detokenizer.flush();
        text.append(rest);
        stream.accept(rest);
        sequence.record(feed, reply);
        tokensSent += sequence.cached() - common;
        long[] replyText = reply.length > 0 && reply[reply.length - 1] == eos ? Arrays.copyOf(reply, reply.length - 1) : reply;
        messages.add(new ChatMessage("assistant", tokenizer.decode(replyText)));
        return text.toString();
    }

    private static int commonPrefix(long[] a, long[] b) {
        int n = 0;
        while (n < a.length && n < b.length && a[n] == b[n]) {
            n++;
        }
        return n;
    }
}
