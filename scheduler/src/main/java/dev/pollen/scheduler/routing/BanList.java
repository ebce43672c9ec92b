package dev.pollen.scheduler.routing;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.Map;

/**
 * Servers a client stopped trusting after a failure. The first failure bans a server for
 * {@code initial}; each further failure before a success doubles the ban, up to {@code max}; a
 * success forgets it. A server whose ban ended less than {@code max} ago is "recently failed",
 * which routing penalises. Thread-safe.
 */
public final class BanList {
    private record Entry(int failures, Instant until) {
    }

    private final Duration initial;
    private final Duration max;
    private final Clock clock;
    private final Map<String, Entry> entries = new HashMap<>();

    public BanList(Duration initial, Duration max, Clock clock) {
        if (initial.isNegative() || initial.isZero() || max.compareTo(initial) < 0) {
            throw new IllegalArgumentException("A ban needs 0 < initial <= max, got " + initial + " and " + max);
        }
        this.initial = initial;
        this.max = max;
        this.clock = clock;
    }

    /** Petals' defaults: 15 s, doubling, at most 10 minutes (Petals caps its back-off at 60 s; a ban may be longer). */
    public static BanList withDefaults(Clock clock) {
        return new BanList(Duration.ofSeconds(15), Duration.ofMinutes(10), clock);
    }

    /** Records a failure of {@code serverId} and returns how long it is now banned. */
    public synchronized Duration ban(String serverId) {
        Instant now = clock.instant();
        Entry previous = entries.get(serverId);
        int failures = previous == null ? 1 : previous.failures() + 1;
        Duration length = initial;
        for (int i = 1; i < failures && length.compareTo(max) < 0; i++) {
            length = length.multipliedBy(2);
        }
        if (length.compareTo(max) > 0) {
            length = max;
        }
        entries.put(serverId, new Entry(failures, now.plus(length)));
        return length;
    }

    /** A call to the server succeeded: its failures are forgotten. */
    public synchronized void succeeded(String serverId) {
        entries.remove(serverId);
    }

    public synchronized boolean isBanned(String serverId) {
        Entry entry = entries.get(serverId);
        return entry != null && clock.instant().isBefore(entry.until());
    }

    /** Not banned any more, but its ban ended less than {@code max} ago. */
    public synchronized boolean recentlyFailed(String serverId) {
        Entry entry = entries.get(serverId);
        return entry != null && !isBanned(serverId) && clock.instant().isBefore(entry.until().plus(max));
    }
}
