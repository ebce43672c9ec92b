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

    /**
     * @param inputs       text to append before generating; null or "" continues the sequence
     * @param specialTokens whether the tokenizer adds its special tokens (BOS) to the sequence's
     *                     first text; false for text a chat template already rendered them into
     * @param chunkTokens  tokens per emitted chunk (Petals' max_new_tokens); 0 emits every token's text
     * @param maxNewTokens tokens to generate at most
     * @param sampling     how tokens are drawn
     * @param stops        text that ends the reply when it appears
     * @param trimStop     true cuts the reply before the stop text (OpenAI); false keeps it (Petals)
     */
    public record Request(String inputs, boolean specialTokens, int chunkTokens, int maxNewTokens, SamplingOptions sampling, List<String> stops,
                          boolean trimStop) {
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
    private final CachedSequence sequence = new CachedSequence();
    private int requests;
    private int failoversSeen;
    private boolean closed;
    private LongConsumer stepListener = nanos -> { };
    private Admission.Ticket ticket;

    TextSession(ServedModel model, DistributedModel.Session session, int maxLength) {
        this.model = model;
        this.session = session;
        this.maxLength = maxLength;
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

    /** Appends {@code request.inputs}, generates, streams chunks to {@code sink} and returns the reply. */
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
        int total = sequence.length() + newIds.length;
        int room = maxLength - total;
        if (room < 1) {
            throw ApiException.tooLong("The session would hold " + total + " tokens with this input, and its limit is "
                    + maxLength + " with at least one to generate; shorten the input or open a longer session.");
        }
        if (request.maxNewTokens() < 1) {
            throw ApiException.invalid("At least one token must be generated.");
        }
        int maxNew = Math.min(request.maxNewTokens(), room);
        long[] feed = sequence.feed(newIds);

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
        Finish finish = assembler.finish != null ? assembler.finish
                : produced < maxNew && cancelled.getAsBoolean() ? Finish.CANCELLED : Finish.LENGTH;
        sequence.record(feed, generated[0]);
        return new Reply(assembler.end(finish), newIds.length, produced, finish);
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
        private final StreamingDetokenizer detokenizer = model.tokenizer().streaming();
        private final StringBuilder text = new StringBuilder();   // the whole reply so far
        private int emitted;        // chars of text already sent
        private final int maxNew;
        private int produced;
        private int chunkTokens;    // tokens since the last chunk
        private Finish finish;

        Assembler(Request request, Consumer<Chunk> sink, long eos, int maxNew) {
            this.request = request;
            this.sink = sink;
            this.eos = eos;
            this.maxNew = maxNew;
        }

        /** Takes one token; false ends the reply. */
        boolean accept(long token) {
            chunkTokens++;
            produced++;
            if (token == eos) {
                finish = Finish.STOP;
                return false;
            }
            int searchFrom = Math.max(0, text.length() - longestStop());
            text.append(detokenizer.push(token));
            for (String stop : request.stops()) {
                int at = text.indexOf(stop, searchFrom);
                if (at >= 0) {
                    text.setLength(request.trimStop() ? at : at + stop.length());
                    finish = Finish.STOP;
                    return false;
                }
            }
            // The reply's last token goes out with the last chunk, in one message.
            if (produced < maxNew && (request.chunkTokens() == 0 || chunkTokens >= request.chunkTokens())) {
                int safe = request.trimStop() ? text.length() - heldForStops() : text.length();
                if (safe > emitted || request.chunkTokens() > 0) {
                    sink.accept(new Chunk(text.substring(emitted, Math.max(emitted, safe)), chunkTokens, false, null));
                    emitted = Math.max(emitted, safe);
                    chunkTokens = 0;
                }
            }
            return true;
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
