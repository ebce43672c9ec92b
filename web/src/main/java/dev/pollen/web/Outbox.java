package dev.pollen.web;

import java.util.concurrent.TimeUnit;

/**
 * Backpressure for one streaming reply (server-sent events or a WebSocket): counts the bytes
 * written to the connection and not yet flushed to the client. The generation thread calls
 * {@link #awaitRoom()} before each token: when a client stops reading and its buffer passes the
 * bound, its generation pauses there (holding no event loop and no other client's turn), and when
 * the client reads nothing for the idle limit the reply is given up and its session closed. So a
 * stalled reader costs at most the bound in memory. Thread-safe.
 */
final class Outbox {
    private final long maxUnread;
    private final long idleLimitNanos;
    private long unread;
    private boolean abandoned;

    /** Bounds from the gateway's settings: {@code --max-unread-kb} and {@code --stalled-reader-s}. */
    Outbox(GatewaySettings settings) {
        this.maxUnread = settings.maxUnreadBytes();
        this.idleLimitNanos = settings.stalledReader().toNanos();
    }

    /** {@code bytes} were handed to the event loop for the client (any thread). */
    synchronized void queued(long bytes) {
        unread += bytes;
    }

    /** {@code bytes} left the gateway, or the connection is gone (any thread). */
    synchronized void flushed(long bytes) {
        unread -= bytes;
        notifyAll();
    }

    /** Bytes written and not yet flushed to the client. */
    synchronized long unread() {
        return unread;
    }

    /** Whether the client stopped reading for longer than the idle limit: the reply was given up. */
    synchronized boolean abandoned() {
        return abandoned;
    }

    /**
     * Blocks the generation thread while the client's unread bytes exceed the bound; returns false
     * when the client read nothing for the idle limit (the reply should end and its session close).
     */
    synchronized boolean awaitRoom() {
        long deadline = System.nanoTime() + idleLimitNanos;
        while (unread > maxUnread && !abandoned) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                abandoned = true;
                break;
            }
            try {
                TimeUnit.NANOSECONDS.timedWait(this, left);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                abandoned = true;
            }
        }
        return !abandoned;
    }
}
