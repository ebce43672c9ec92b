package dev.pollen.node.server;

import dev.pollen.protocol.SessionLoad;
import io.vertx.core.Vertx;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.concurrent.CompletableFuture;

/**
 * Room for inference sessions on this server: a number of open sessions and a KV cache budget in
 * tokens of one sequence across the whole span (a session of batch b and max length L on k of the
 * span's n blocks takes b x L x k / n tokens). A session that finds no room waits in a bounded
 * queue, in arrival order, up to the allocation timeout its client sent; when the queue is full it
 * is refused at once, with a hint of when room is likely (from how long sessions have held room
 * lately). Thread-safe.
 */
public final class SessionRoom {
    /** A place in the room, granted or waiting: cancel it when the client leaves before it is used. */
    public final class Reservation {
        private final long tokens;
        private final CompletableFuture<Void> granted = new CompletableFuture<>();
        private long timerId = -1;
        private long grantedNanos;
        private boolean released;

        private Reservation(long tokens) {
            this.tokens = tokens;
        }

        /** Completes when the room is granted; fails when it cannot be within the timeout. */
        public CompletableFuture<Void> granted() {
            return granted;
        }

        public long tokens() {
            return tokens;
        }

        /** Gives the room back: leaves the queue if still waiting, frees it if granted. Idempotent. */
        public void release() {
            SessionRoom.this.release(this);
        }
    }

    private final Vertx vertx;
    private final long capacity;
    private final int maxSessions;
    private final int maxQueued;
    private long used;
    private int open;
    private final Deque<Reservation> waiting = new ArrayDeque<>();
    private Runnable fullChanged = () -> { };
    private boolean wasFull;
    /** Mean seconds a session held room lately (exponentially weighted), for retry hints. */
    private double meanHoldSeconds = 10;

    public SessionRoom(Vertx vertx, long capacityTokens, int maxSessions, int maxQueued) {
        this.vertx = vertx;
        this.capacity = capacityTokens;
        this.maxSessions = maxSessions;
        this.maxQueued = maxQueued;
    }

    /**
     * Hears when the room turns full (a new session would wait) or has room again, so the record
     * can say so before the next announce period. Called under the room's lock: hand work off.
     */
    public synchronized void onFullChanged(Runnable listener) {
        this.fullChanged = listener;
    }

    private void noteFullness() {
        boolean full = open >= maxSessions || !waiting.isEmpty();
        if (full != wasFull) {
            wasFull = full;
            fullChanged.run();
        }
    }

    /** Cache tokens not granted to any session. */
    public synchronized long left() {
        return capacity - used;
    }

    public long capacity() {
        return capacity;
    }

    /** Sessions holding room now. */
    public synchronized int open() {
        return open;
    }

    /** Sessions that may still open before one has to wait. */
    public synchronized int sessionsLeft() {
        return maxSessions - open;
    }

    /** Open, left and queued sessions, for the directory record. */
    public synchronized SessionLoad load() {
        return new SessionLoad(open, maxSessions - open, waiting.size());
    }

    /** Sessions waiting for room. */
    public synchronized int queued() {
        return waiting.size();
    }

    /**
     * Asks for one session's room with {@code tokens} of cache: granted now when it fits and nobody
     * waits ahead, else queued for up to {@code timeoutMillis}, else refused.
     */
    public synchronized Reservation reserve(long tokens, long timeoutMillis) {
        Reservation r = new Reservation(tokens);
        if (tokens > capacity) {
            r.released = true;
            r.granted.completeExceptionally(new ServerBusyException("A cache of " + tokens + " tokens is larger than this "
                    + "server's whole budget of " + capacity + " tokens"));
        } else if (waiting.isEmpty() && fits(tokens)) {
            grant(r);
        } else if (timeoutMillis <= 0 || waiting.size() >= maxQueued) {
            r.released = true;
            r.granted.completeExceptionally(new ServerBusyException(full(tokens) + (timeoutMillis <= 0 ? ""
                    : " and " + waiting.size() + " sessions already wait for room, the most this server queues")
                    + "; retry in about " + retryHintSeconds() + " s"));
        } else {
            r.timerId = vertx.setTimer(timeoutMillis, id -> expire(r));
            waiting.add(r);
        }
        noteFullness();
        return r;
    }

    /** How long until room is likely, in whole seconds: the queue ahead, served as sessions close. */
    public synchronized long retryHintSeconds() {
        return Math.max(1, Math.round(meanHoldSeconds * (waiting.size() + 1) / maxSessions));
    }

    private boolean fits(long tokens) {
        return open < maxSessions && used + tokens <= capacity;
    }

    private String full(long tokens) {
        return open >= maxSessions ? "This server holds its limit of " + maxSessions + " sessions"
                : "No room for a cache of " + tokens + " tokens: " + left() + " of " + capacity + " are free";
    }

    private void grant(Reservation r) {
        used += r.tokens;
        open++;
        r.grantedNanos = System.nanoTime();
        r.granted.complete(null);
    }

    private synchronized void expire(Reservation r) {
        if (waiting.remove(r)) {
            r.released = true;
            r.granted.completeExceptionally(new ServerBusyException(full(r.tokens) + ", and no room came free within the "
                    + "allocation timeout; retry in about " + retryHintSeconds() + " s"));
            noteFullness();
        }
    }

    private synchronized void release(Reservation r) {
        if (r.released) {
            return;
        }
        r.released = true;
        if (waiting.remove(r)) {
            vertx.cancelTimer(r.timerId);
            r.granted.completeExceptionally(new ServerBusyException("The session left the queue before room came free"));
        } else {
            used = Math.max(0, used - r.tokens);
            open = Math.max(0, open - 1);
            double held = (System.nanoTime() - r.grantedNanos) / 1e9;
            meanHoldSeconds = 0.9 * meanHoldSeconds + 0.1 * held;
        }
        while (!waiting.isEmpty() && fits(waiting.peek().tokens)) {
            Reservation next = waiting.poll();
            vertx.cancelTimer(next.timerId);
            grant(next);
        }
        noteFullness();
    }
}
