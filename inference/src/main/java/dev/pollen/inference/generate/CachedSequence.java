package dev.pollen.inference.generate;

import java.util.Arrays;

/**
 * One sequence that a {@link Generator} continues call after call, and how much of it the blocks'
 * caches hold. A call feeds tokens at {@link #cached()} and generates; its last generated token is
 * returned but not fed (no step has needed its hidden state yet), so afterwards the caches hold
 * every token but that one, which is pending: the next call feeds it first.
 * {@code length() == cached() + (pending() ? 1 : 0)}, unless {@link #replacePending} put several
 * tokens in its place.
 *
 * <p>Not thread-safe: the session that owns it runs one call at a time.
 */
public final class CachedSequence {
    private long[] tokens = new long[0];   // the sequence: what the caches hold, then the pending token if any
    private int cached;

    /**
     * The caches' length after a call at {@code position} that fed {@code fed} tokens and ran
     * {@code steps} generation steps: the fed tokens and every generated token but the last.
     */
    public static int cachedAfter(int position, int fed, int steps) {
        return position + fed + Math.max(0, steps - 1);
    }

    /** Tokens the caches hold: the position of the next call. */
    public int cached() {
        return cached;
    }

    /** Tokens of the sequence, the pending one included. */
    public int length() {
        return tokens.length;
    }

    /** Whether tokens still have to be fed: the last generated one, or what replaced it. */
    public boolean pending() {
        return tokens.length > cached;
    }

    /** The tokens of the sequence, the pending one included (a copy). */
    public long[] tokens() {
        return tokens.clone();
    }

    /** The tokens the caches hold (a copy). */
    public long[] cachedTokens() {
        return Arrays.copyOf(tokens, cached);
    }

    /** What the next call feeds to append {@code newTokens}: the pending token first, if any. */
    public long[] feed(long[] newTokens) {
        long[] feed = new long[tokens.length - cached + newTokens.length];
        System.arraycopy(tokens, cached, feed, 0, tokens.length - cached);
        System.arraycopy(newTokens, 0, feed, tokens.length - cached, newTokens.length);
        return feed;
    }

    /**
     * Records a call that fed {@code fed} at {@link #cached()} and generated {@code generated}.
     *
     * @throws IllegalArgumentException when a pending token was not fed first
     */
    public void record(long[] fed, long[] generated) {
        if (pending() && (fed.length == 0 || fed[0] != tokens[cached])) {
            throw new IllegalArgumentException("A call after a generation must feed its last token " + tokens[cached]
                    + " first, got " + Arrays.toString(Arrays.copyOf(fed, Math.min(fed.length, 4))));
        }
        long[] grown = Arrays.copyOf(tokens, cached + fed.length + generated.length);
        System.arraycopy(fed, 0, grown, cached, fed.length);
        System.arraycopy(generated, 0, grown, cached + fed.length, generated.length);
        cached = cachedAfter(cached, fed.length, generated.length);
        tokens = grown;
    }

    /**
     * Puts {@code replacement} in place of the pending token: the next call feeds it first instead
     * (Petals' chat keeps its stop sequence where the end token was, so the next turn reads
     * "###Human:" rather than "</s>Human:").
     *
     * @throws IllegalStateException when no generated token is pending
     */
    public void replacePending(long[] replacement) {
        if (tokens.length != cached + 1) {
            throw new IllegalStateException("Only a pending generated token can be replaced; " + (tokens.length - cached)
                    + " tokens are pending");
        }
        long[] grown = Arrays.copyOf(tokens, cached + replacement.length);
        System.arraycopy(replacement, 0, grown, cached, replacement.length);
        tokens = grown;
    }

    /** Forgets the tokens from {@code position} on, the pending one too; the caches roll back at their next step. */
    public void rollback(int position) {
        if (position < 0 || position > cached) {
            throw new IllegalArgumentException("Cannot roll back to " + position + " a sequence whose caches hold " + cached
                    + " tokens");
        }
        tokens = Arrays.copyOf(tokens, position);
        cached = position;
    }
}
