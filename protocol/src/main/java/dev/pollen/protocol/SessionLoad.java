package dev.pollen.protocol;

import java.io.Serializable;

/**
 * How full a server is with inference sessions, as its record announces it: clients route around
 * servers with no room or a queue, and `pollen swarm` shows it.
 *
 * @param open         sessions open now
 * @param left         sessions that may still open before one has to wait
 * @param queued       sessions waiting for room (sessions or cache)
 */
public record SessionLoad(int open, int left, int queued) implements Serializable {
    /** What a record that says nothing about its load (a simulation's) stands for: room for anyone. */
    public static final SessionLoad UNKNOWN = new SessionLoad(0, Integer.MAX_VALUE, 0);

    public SessionLoad {
        if (open < 0 || left < 0 || queued < 0) {
            throw new IllegalArgumentException("Session counts must be >= 0, got open " + open + ", left " + left
                    + ", queued " + queued);
        }
    }

    /** Whether a new session would wait: no session slot, or others already waiting. */
    public boolean full() {
        return left == 0 || queued > 0;
    }
}
