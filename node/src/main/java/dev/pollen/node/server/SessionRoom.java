package dev.pollen.node.server;

import io.vertx.core.Vertx;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.concurrent.CompletableFuture;

/**
 * The server's KV cache budget, in tokens of one sequence across its whole span (a session of
 * batch b and max length L on k of the span's n blocks takes b x L x k / n tokens). A reservation
 * that does not fit waits, first come first served, up to its allocation timeout. Thread-safe.
 */
public final class CacheBudget {
    private record Waiter(long tokens, CompletableFuture<Void> granted, long timerId) {
    }

    private final Vertx vertx;
    private final long capacity;
    private long used;
    private final Deque<Waiter> waiting = new ArrayDeque<>();

    public CacheBudget(Vertx vertx, long capacityTokens) {
        this.vertx = vertx;
        this.capacity = capacityTokens;
    }

    public synchronized long left() {
        return capacity - used;
    }

    public long capacity() {
        return capacity;
    }

    /** Grants {@code tokens} now, or when enough is released within {@code timeoutMillis}, or fails. */
    public synchronized CompletableFuture<Void> reserve(long tokens, long timeoutMillis) {
        CompletableFuture<Void> granted = new CompletableFuture<>();
        if (tokens > capacity) {
            granted.completeExceptionally(new ServerBusyException("A cache of " + tokens + " tokens is larger than this "
                    + "server's whole budget of " + capacity + " tokens"));
        } else if (waiting.isEmpty() && used + tokens <= capacity) {
            used += tokens;
            granted.complete(null);
        } else if (timeoutMillis <= 0) {
            granted.completeExceptionally(new ServerBusyException("No room for a cache of " + tokens + " tokens: "
                    + left() + " of " + capacity + " are free"));
        } else {
            Waiter waiter = new Waiter(tokens, granted, vertx.setTimer(timeoutMillis, id -> expire(granted, tokens)));
            waiting.add(waiter);
        }
        return granted;
    }

    private synchronized void expire(CompletableFuture<Void> granted, long tokens) {
        if (waiting.removeIf(w -> w.granted() == granted)) {
            granted.completeExceptionally(new ServerBusyException("No room for a cache of " + tokens
                    + " tokens came free within the allocation timeout"));
        }
    }

    public synchronized void release(long tokens) {
        used = Math.max(0, used - tokens);
        while (!waiting.isEmpty() && used + waiting.peek().tokens() <= capacity) {
            Waiter next = waiting.poll();
            vertx.cancelTimer(next.timerId());
            used += next.tokens();
            next.granted().complete(null);
        }
    }
}
