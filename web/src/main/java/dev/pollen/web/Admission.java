package dev.pollen.web;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;
import java.util.function.LongConsumer;

/**
 * The gateway's admission queue: its session slots ({@code --max-sessions}) handed out fairly
 * across client addresses. A client holds at most {@code --max-sessions-per-client} slots at once;
 * its further requests wait in its own queue, and whenever a slot frees, the clients with a
 * waiting request take turns (round robin, the one served longest ago first), so a greedy
 * client's backlog never delays another client's first request by more than one turn. A request that cannot wait is refused before any
 * byte of a reply is sent: 429 when its client already has {@code --max-queued-per-client}
 * waiting, 503 when the whole queue ({@code --max-queued}) is full or the wait passed
 * {@code --queue-timeout-s}; both carry a Retry-After estimate. Thread-safe.
 */
public final class Admission implements AutoCloseable {
    /** How often a waiting request checks whether its client is still there. */
    private static final long POLL_MILLIS = 100;

    /** One request's place: waiting, then admitted, then released. */
    public final class Ticket {
        private final String client;
        private final CompletableFuture<Void> admitted = new CompletableFuture<>();
        private final long queuedNanos = System.nanoTime();
        private long admittedNanos;
        private ScheduledFuture<?> timeout;
        private boolean done;

        private Ticket(String client) {
            this.client = client;
        }

        /** Completes when the request may open its session; fails with an {@link ApiException} when it may not. */
        public CompletableFuture<Void> admitted() {
            return admitted;
        }

        /**
         * Waits for admission on the calling thread (never an event loop); leaves the queue and throws
         * when {@code gone} turns true first (the client went away).
         */
        public void await(BooleanSupplier gone) {
            while (true) {
                try {
                    admitted.get(POLL_MILLIS, TimeUnit.MILLISECONDS);
                    return;
                } catch (ExecutionException e) {
                    throw e.getCause() instanceof RuntimeException r ? r : new IllegalStateException(e.getCause());
                } catch (TimeoutException e) {
                    if (gone.getAsBoolean()) {
                        release();
                        throw ApiException.unavailable("The client went away while its request waited.");
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    release();
                    throw ApiException.unavailable("The gateway stopped while the request waited.");
                }
            }
        }

        /** Gives the slot back when admitted, or leaves the queue when still waiting. Idempotent. */
        public void release() {
            Admission.this.release(this);
        }
    }

    private static final class Client {
        int active;
        /** When it was last admitted (the admission count then); the client served longest ago goes first. */
        long lastTurn = -1;
        final Deque<Ticket> waiting = new ArrayDeque<>();
    }

    private final int maxActive;
    private final int maxActivePerClient;
    private final int maxQueued;
    private final int maxQueuedPerClient;
    private final long timeoutNanos;
    private final Map<String, Client> clients = new HashMap<>();
    private long admissions;
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread thread = new Thread(r, "pollen-web-admission");
        thread.setDaemon(true);
        return thread;
    });
    private int active;
    private int queued;
    /** Mean seconds a request held its slot lately (exponentially weighted), for Retry-After. */
    private double meanHoldSeconds = 5;
    private LongConsumer waited = nanos -> { };

    public Admission(int maxActive, int maxActivePerClient, int maxQueued, int maxQueuedPerClient, long timeoutMillis) {
        this.maxActive = maxActive;
        this.maxActivePerClient = maxActivePerClient;
        this.maxQueued = maxQueued;
        this.maxQueuedPerClient = maxQueuedPerClient;
        this.timeoutNanos = TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
    }

    /** Hears how long each admitted request waited, in nanoseconds. */
    public synchronized void onAdmitted(LongConsumer listener) {
        this.waited = listener;
    }

    /**
     * Takes a place for {@code client}'s request: admitted now when a slot is free and nobody waits
     * for it, else queued. Throws at once when the request may not wait.
     */
    public synchronized Ticket enter(String client) {
        Ticket ticket = new Ticket(client);
        Client c = clients.computeIfAbsent(client, k -> new Client());
        // Requests wait only while slots are short: when one is free, whoever waits is at its own limit.
        if (c.waiting.isEmpty() && c.active < maxActivePerClient && active < maxActive) {
            admit(ticket, c);
            return ticket;
        }
        if (c.waiting.size() >= maxQueuedPerClient) {
            forget(client, c);
            throw tooMany("This client already has " + c.waiting.size() + " requests waiting for a session, the most it may, "
                    + "besides " + c.active + " open; retry in about " + retryAfterSeconds() + " s.");
        }
        if (queued >= maxQueued) {
            forget(client, c);
            throw busy("The gateway is full: " + active + " sessions open and " + queued + " requests waiting; retry in "
                    + "about " + retryAfterSeconds() + " s.");
        }
        c.waiting.add(ticket);
        queued++;
        ticket.timeout = timer.schedule(() -> expire(ticket), timeoutNanos, TimeUnit.NANOSECONDS);
        return ticket;
    }

    /** Requests running now. */
    public synchronized int active() {
        return active;
    }

    /** Requests waiting for a slot. */
    public synchronized int queued() {
        return queued;
    }

    /** Seconds until a slot is likely: the queue ahead, served as running requests end. */
    public synchronized long retryAfterSeconds() {
        return Math.max(1, Math.round(meanHoldSeconds * (queued + 1) / maxActive));
    }

    private ApiException tooMany(String message) {
        return ApiException.tooMany(message).retryAfter(retryAfterSeconds());
    }

    private ApiException busy(String message) {
        return ApiException.busy(message).retryAfter(retryAfterSeconds());
    }

    private void admit(Ticket ticket, Client c) {
        c.lastTurn = admissions++;
        c.active++;
        active++;
        ticket.admittedNanos = System.nanoTime();
        if (ticket.timeout != null) {
            ticket.timeout.cancel(false);
        }
        waited.accept(ticket.admittedNanos - ticket.queuedNanos);
        ticket.admitted.complete(null);
    }

    private synchronized void expire(Ticket ticket) {
        Client c = clients.get(ticket.client);
        if (c != null && !ticket.done && c.waiting.remove(ticket)) {
            ticket.done = true;
            queued--;
            forget(ticket.client, c);
            ticket.admitted.completeExceptionally(busy("The gateway was too busy to start this request within "
                    + TimeUnit.NANOSECONDS.toSeconds(timeoutNanos) + " s; retry in about " + retryAfterSeconds() + " s."));
        }
    }

    private synchronized void release(Ticket ticket) {
        if (ticket.done) {
            return;
        }
        ticket.done = true;
        Client c = clients.get(ticket.client);
        if (!ticket.admitted.isDone()) {
            if (c != null && c.waiting.remove(ticket)) {
                queued--;
                ticket.timeout.cancel(false);
                ticket.admitted.completeExceptionally(ApiException.unavailable("The request left the queue."));
            }
        } else if (!ticket.admitted.isCompletedExceptionally()) {
            c.active--;
            active--;
            double held = (System.nanoTime() - ticket.admittedNanos) / 1e9;
            meanHoldSeconds = 0.9 * meanHoldSeconds + 0.1 * held;
        }
        if (c != null) {
            forget(ticket.client, c);
        }
        admitWaiting();
    }

    /**
     * Hands free slots to waiting requests, one at a time to the waiting client (under its own
     * limit) that was admitted longest ago: round robin, in which a client's requests admitted
     * straight away count as its turns too.
     */
    private void admitWaiting() {
        while (active < maxActive && queued > 0) {
            Client next = null;
            for (Client c : clients.values()) {
                if (!c.waiting.isEmpty() && c.active < maxActivePerClient && (next == null || c.lastTurn < next.lastTurn)) {
                    next = c;
                }
            }
            if (next == null) {
                return;   // whoever waits is at its own limit
            }
            queued--;
            admit(next.waiting.poll(), next);
        }
    }

    /** Drops a client's entry when it holds and waits for nothing. */
    private void forget(String client, Client c) {
        if (c.active == 0 && c.waiting.isEmpty()) {
            clients.remove(client);
        }
    }

    @Override
    public void close() {
        timer.shutdownNow();
    }
}
