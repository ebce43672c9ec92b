package dev.pollen.web;

import dev.pollen.inference.generate.CachedSequence;
import dev.pollen.inference.generate.GenerationOptions;
import dev.pollen.inference.sampling.SamplingOptions;
import dev.pollen.inference.tokenizer.StreamingDetokenizer;
import dev.pollen.node.client.DistributedModel;

import java.util.List;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import java.util.function.LongConsumer;

/**
 * One text sequence generated through the swarm: the servers' caches hold it, so each request
 * feeds only its new text. What both web APIs drive.
 *
 * <p>After a request the last generated token has been returned but not fed (nothing needed it
 * yet); the next request feeds it first ({@link CachedSequence}).
 *
 * <p>Requests block the calling thread (never an event loop) and run one at a time.
 */
public final class TextSession implements AutoCloseable {
    /** Why a reply ended, in OpenAI's words. */
    public enum Finish { STOP, LENGTH, CANCELLED }

    /** Whose rules end a reply. */
    public enum Style {
        /**
         * OpenAI's: a stop text anywhere in the reply ends it and is cut off; the end token has no
         * text; a reply that reaches the session's length ends with finish "length".
         */
        OPENAI,
        /**
         * Petals' chat server's: a stop text ends the reply when the text so far ends with it, at the
         * end of a message, and is kept; the end token's text ("</s>") is sent; a reply that reaches
         * the session's length fails with "Maximum length exceeded", after the messages that fit.
         */
        PETALS
    }

    /**
     * What the session keeps in place of the reply's last token when the reply ends with one of
     * {@code after}: Petals' chat puts its stop sequence where "</s>" was, so the next turn reads
     * "...###Human:". {@code text} may be several tokens (Petals allows only one).
     */
    public record Continuation(String text, List<String> after) {
        public Continuation {
            after = List.copyOf(after);
        }
    }

    /**
     * @param inputs        text to append before generating; null or "" continues the sequence
     * @param specialTokens whether the tokenizer adds its special tokens (BOS) to the sequence's
     *                      first text; false for text a chat template already rendered them into
     * @param chunkTokens   tokens per emitted chunk (Petals' max_new_tokens); 0 emits every token's text
     * @param maxNewTokens  tokens to generate at most
     * @param sampling      how tokens are drawn
     * @param stops         text that ends the reply
     * @param style         whose rules end the reply
     * @param continuation  what replaces the last token after some stops; null for none
     */
    public record Request(String inputs, boolean specialTokens, int chunkTokens, int maxNewTokens, SamplingOptions sampling,
                          List<String> stops, Style style, Continuation continuation) {
        public Request {
            stops = List.copyOf(stops);
        }
    }

    /** Text emitted during a reply; {@code last} marks the final one, with the reason. */
    public record Chunk(String text, int tokens, boolean last, Finish finish) {
    }

    /** A finished reply. */
    public record Reply(String text, int promptTokens, int completionTokens, Finish finish) {
    }

    private final ServedModel model;
    private final DistributedModel.Session session;
    private final int maxLength;
    private final int asked;
    private final CachedSequence sequence = new CachedSequence();
    private int requests;
    private int failoversSeen;
    private boolean closed;
    private LongConsumer stepListener = nanos -> { };
    private Admission.Ticket ticket;

    /**
     * @param maxLength the tokens the servers' caches hold for it
     * @param asked     the length the client asked for, which may be more than the model allows
     */
    TextSession(ServedModel model, DistributedModel.Session session, int maxLength, int asked) {
        this.model = model;
        this.session = session;
        this.maxLength = maxLength;
        this.asked = asked;
    }

    public ServedModel model() {
        return model;
    }

    public int maxLength() {
        return maxLength;
    }

    /** The gateway's slot this session holds: closing the session gives it back. */
    synchronized void admitted(Admission.Ticket slot) {
        this.ticket = slot;
    }

    /** Hears the time each generated token took, in nanoseconds (the first one includes the prompt). */
    public synchronized void onStep(LongConsumer listener) {
        this.stepListener = listener;
    }

    /** Tokens of the sequence so far. */
    public synchronized int length() {
        return sequence.length();
    }

    /** Failovers since the last call: the metrics count them. */
    public synchronized int takeFailovers() {
        int total = session.failovers();
        int fresh = total - failoversSeen;
        failoversSeen = total;
        return fresh;
    }

    /**
     * Appends {@code request.inputs}, generates, streams chunks to {@code sink} and returns the reply.
     * The caches hold {@link #maxLength()} tokens, and the last generated token is not fed, so a
     * session can reach one token more (as in Petals).
     *
     * @throws ApiException "Maximum length exceeded" when the input does not fit, or (Petals' style)
     *                      when the reply reaches the session's length before it ends
     */
    public synchronized Reply generate(Request request, BooleanSupplier cancelled, Consumer<Chunk> sink) {
        if (closed) {
            throw new IllegalStateException("The session is closed.");
        }
        String inputs = request.inputs() == null ? "" : request.inputs();
        long[] newIds = inputs.isEmpty() ? new long[0]
                : model.tokenizer().encode(inputs, request.specialTokens() && sequence.length() == 0);
        if (sequence.length() == 0 && newIds.length == 0) {
            throw ApiException.invalid("Nothing to continue: the first request of a session needs inputs.");
        }
        if (request.maxNewTokens() < 1) {
            throw ApiException.invalid("At least one token must be generated.");
        }
        long[] feed = sequence.feed(newIds);
        int cached = sequence.cached();
        if (cached + feed.length > maxLength) {
            throw ApiException.tooLong(exceeded(cached, feed.length));
        }
        // Generating k tokens feeds all but the last: cached + fed + k - 1 <= maxLength.
        int room = maxLength - cached - feed.length + 1;
        boolean petals = request.style() == Style.PETALS;
        if (petals && request.stops().isEmpty() && request.maxNewTokens() > room) {
            // One message of maxNewTokens: Petals fails at the step past the limit, and sends nothing.
            throw ApiException.tooLong(exceeded(maxLength, 1));
        }
        int maxNew = Math.min(request.maxNewTokens(), room);

        long eos = model.tokenizer().eosTokenId().orElse(-1);
        GenerationOptions options = new GenerationOptions(maxNew, request.sampling().withSeed(request.sampling().seed() + requests++),
                eos >= 0 ? new long[] {eos} : new long[0]);
        Assembler assembler = new Assembler(request, sink, eos, maxNew);
        long[] last = {System.nanoTime()};
        long[][] generated = session.generate(new long[][] {feed}, options, (step, next) -> {
            long now = System.nanoTime();
            stepListener.accept(now - last[0]);
            last[0] = now;
            return assembler.accept(next[0]) && !cancelled.getAsBoolean();
        });
        int produced = generated[0].length;
        sequence.record(feed, generated[0]);
        boolean wasCancelled = assembler.finish == null && produced < maxNew && cancelled.getAsBoolean();
        if (petals && assembler.finish == null && !wasCancelled && maxNew < request.maxNewTokens()) {
            assembler.cutShort();
            throw ApiException.tooLong(exceeded(sequence.cached(), 1));
        }
        Finish finish = assembler.finish != null ? assembler.finish : wasCancelled ? Finish.CANCELLED : Finish.LENGTH;
        if (assembler.continued && request.continuation() != null) {
            sequence.replacePending(model.tokenizer().encode(request.continuation().text(), false));
        }
        return new Reply(assembler.end(finish), newIds.length, produced, finish);
    }

    /** Petals' words, which its chat frontend answers by reopening a longer session; then Pollen's. */
    private String exceeded(int prefix, int current) {
        String message = "Maximum length exceeded: prefix " + prefix + " + current " + current
                + " exceeds pre-allocated maximum " + maxLength;
        if (asked > maxLength) {
            return message + " (the session asked for " + asked + " tokens, and " + model.name() + " holds at most "
                    + model.maxLength() + ").";
        }
        if (maxLength < model.maxLength()) {
            return message + " (open a longer session, up to " + model.maxLength() + " tokens for " + model.name() + ").";
        }
        return message + " (" + model.name() + " holds at most " + model.maxLength() + " tokens).";
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            try {
                session.close();
            } finally {
                if (ticket != null) {
                    ticket.release();
                }
            }
        }
    }

    /**
     * Turns tokens into chunks of text: holds back unfinished characters (the detokenizer) and,
     * when the stop text is cut, any tail that could still become a stop sequence, so no client
     * ever sees text it must take back.
     */
    private final class Assembler {
        private final Request request;
        private final Consumer<Chunk> sink;
        private final long eos;
        private final boolean petals;
        private final StreamingDetokenizer detokenizer = model.tokenizer().streaming();
        private final StringBuilder text = new StringBuilder();   // the whole reply so far
        private int emitted;        // chars of text already sent
        private final int maxNew;
        private int produced;
        private int chunkTokens;    // tokens since the last chunk
        private Finish finish;
        private boolean continued;  // the reply ended with a stop that the continuation replaces

        Assembler(Request request, Consumer<Chunk> sink, long eos, int maxNew) {
            this.request = request;
            this.sink = sink;
            this.eos = eos;
            this.maxNew = maxNew;
            this.petals = request.style() == Style.PETALS;
        }

        /** Takes one token; false ends the reply. */
        boolean accept(long token) {
            chunkTokens++;
            produced++;
            if (token == eos) {
                // Pollen ends every reply at the end token; Petals would go on unless "</s>" is a stop.
                finish = Finish.STOP;
                if (petals) {
                    text.append(detokenizer.flush()).append(model.tokenizer().decode(new long[] {token}, false));
                    continued = endsWithAny(request.continuation() == null ? List.of() : request.continuation().after());
                }
                return false;
            }
            int searchFrom = Math.max(0, text.length() - longestStop());
            text.append(detokenizer.push(token));
            boolean boundary = request.chunkTokens() == 0 || chunkTokens >= request.chunkTokens();
            if (petals) {
                // Petals checks the whole reply at the end of each message, and holds a message whose
                // last character is unfinished.
                if (!boundary || detokenizer.holding()) {
                    return true;
                }
                if (endsWithAny(request.stops())) {
                    finish = Finish.STOP;
                    continued = endsWithAny(request.continuation() == null ? List.of() : request.continuation().after());
                    return false;
                }
            } else {
                for (String stop : request.stops()) {
                    int at = text.indexOf(stop, searchFrom);
                    if (at >= 0) {
                        text.setLength(at);
                        finish = Finish.STOP;
                        return false;
                    }
                }
            }
            // The reply's last token goes out with the last chunk, in one message.
            if (produced < maxNew && boundary) {
                int safe = petals ? text.length() : text.length() - heldForStops();
                if (safe > emitted || request.chunkTokens() > 0) {
                    sink.accept(new Chunk(text.substring(emitted, Math.max(emitted, safe)), chunkTokens, false, null));
                    emitted = Math.max(emitted, safe);
                    chunkTokens = 0;
                }
            }
            return true;
        }

        /**
         * The session's length ended the reply (Petals' style): sends the last message if it is
         * whole, without "stop", as Petals does before the step that fails.
         */
        void cutShort() {
            if (chunkTokens > 0 && chunkTokens >= request.chunkTokens() && !detokenizer.holding()) {
                sink.accept(new Chunk(text.substring(emitted), chunkTokens, false, null));
            }
        }

        /** Sends what is left as the last chunk and returns the whole reply. */
        String end(Finish reason) {
            if (finish == null) {
                String rest = detokenizer.flush();
                text.append(rest);
            }
            sink.accept(new Chunk(text.substring(Math.min(emitted, text.length())), chunkTokens, true, reason));
            return text.toString();
        }

        private boolean endsWithAny(List<String> stops) {
            for (String stop : stops) {
                int from = text.length() - stop.length();
                if (!stop.isEmpty() && from >= 0 && text.indexOf(stop, from) == from) {
                    return true;
                }
            }
            return false;
        }

        private int longestStop() {
            return request.stops().stream().mapToInt(String::length).max().orElse(0);
        }

        /** Length of the longest tail of the text that begins some stop sequence. */
        private int heldForStops() {
            int held = 0;
            for (String stop : request.stops()) {
                for (int length = Math.min(stop.length() - 1, text.length()); length > held; length--) {
                    if (text.substring(text.length() - length).equals(stop.substring(0, length))) {
                        held = length;
                        break;
                    }
                }
            }
            return held;
        }
    }
}
