package dev.pollen.deploy;

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
    private long[] fed = new long[0];   // the tokens the caches hold
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
        int common = reuse ? commonPrefix(fed, ids) : 0;
        if (common == ids.length) {
            common--;   // a step needs at least one new token
        }
        long eos = tokenizer.eosTokenId().orElse(-1);
        GenerationOptions options = new GenerationOptions(maxNewTokens, sampling.withSeed(sampling.seed() + turn++),
                eos >= 0 ? new long[] {eos} : new long[0]);
        StreamingDetokenizer detokenizer = tokenizer.streaming();
        StringBuilder text = new StringBuilder();
        long[] reply = blocks.run(Arrays.copyOfRange(ids, common, ids.length), common, options, (step, tokens) -> {
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
        tokensSent += ids.length - common + Math.max(0, reply.length - 1);
        // The caches hold the prompt and every reply token but the last, which was never fed back.
        fed = Arrays.copyOf(ids, ids.length + Math.max(0, reply.length - 1));
        System.arraycopy(reply, 0, fed, ids.length, Math.max(0, reply.length - 1));
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
