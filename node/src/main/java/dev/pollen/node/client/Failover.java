package dev.pollen.node.client;

import dev.pollen.scheduler.routing.BanList;
import dev.pollen.scheduler.routing.MissingBlocksException;
import dev.pollen.scheduler.routing.ServerFilter;

import java.util.HashSet;
import java.util.Set;
import java.util.function.Supplier;
import java.util.logging.Logger;

/**
 * The client's one failover engine, used by inference steps, training forward passes and
 * backward passes alike. It runs an operation's tries under one {@link RetryPolicy}: each failed
 * try counts against the same bound, nested recoveries included (a backward pass that recomputes a
 * hop's forward elsewhere spends the tries of the operation that asked for it), and the tries stop
 * at the policy's deadline. Between tries it decides whose fault the failure was:
 * <ul>
 *   <li>a server that failed (connection, status, deadline) is banned and the operation retried
 *       elsewhere after a backoff;</li>
 *   <li>a server that refused the request as invalid is left out of this operation's routes (not
 *       banned: the ban list is shared by every user of a gateway, and one user's bad request must
 *       not take a server from the others), and the request tried on one other server: a second
 *       refusal, or no other server to ask, means the request itself is wrong, and the operation
 *       ends with an {@link IllegalArgumentException} saying so;</li>
 *   <li>a push that failed between two servers bans neither: the caller relays that link;</li>
 *   <li>a server that had no room for the request (busy: its sessions, cache or compute queue
 *       full) is neither banned nor counted as a failed try: routes leave it out while other
 *       servers have room, and when every server of some blocks is busy the operation waits, backing
 *       off, and queues at them again, until the deadline;</li>
 *   <li>blocks that no server covers now are waited for, up to the deadline.</li>
 * </ul>
 * One instance serves one operation; it is not thread-safe.
 */
final class Failover {
    private static final Logger LOG = Logger.getLogger(Failover.class.getName());

    private final RetryPolicy policy;
    private final BanList bans;
    private final String operation;
    private final long deadlineNanos;
    private int attempts = 1;
    private int failovers;
    private HopFailedException refusal;
    private final Set<String> refusedBy = new HashSet<>();
    /** Servers that had no room for this operation since it last waited. */
    private final Set<String> busy = new HashSet<>();
    private int busyWaits;
    private RuntimeException last;

    /** @param operation what is tried, for messages: "The step at position 12" */
    Failover(RetryPolicy policy, BanList bans, String operation) {
        this.policy = policy;
        this.bans = bans;
        this.operation = operation;
        this.deadlineNanos = System.nanoTime() + policy.totalDeadline().toNanos();
    }

    /** Runs {@code attempt} until it succeeds or the policy gives up. */
    <T> T run(Supplier<T> attempt) {
        while (true) {
            try {
                return attempt.get();
            } catch (HopFailedException e) {
                failed(e);
            } catch (MissingBlocksException e) {
                missing(e);
            }
        }
    }

    /**
     * Takes one failed try: throws when the operation must end, otherwise bans whom the failure
     * calls for, backs off, and returns so the caller tries again.
     */
    void failed(HopFailedException e) {
        if (e.busy()) {
            busy(e);
            return;
        }
        if (e.refused()) {
            if (refusal != null && !refusal.server().serverId().equals(e.server().serverId())) {
                throw new IllegalArgumentException("Two servers refused the request as invalid: " + refusal.getMessage()
                        + "; and " + e.getMessage(), e);
            }
            refusal = e;
            refusedBy.add(e.server().serverId());
        } else if (!(e instanceof PushFailedException)) {
            bans.ban(e.server().serverId());
        }
        failovers++;
        LOG.info(e.getMessage() + "; " + (e instanceof PushFailedException ? "relaying that link" : "trying another server")
                + ", attempt " + (attempts + 1) + " of " + policy.maxAttempts());
        next(e);
    }

    /**
     * Takes one try that found no server for some blocks: when servers left out as busy hold them,
     * waits and asks those again; otherwise waits for a server to come, within the bounds.
     */
    void missing(MissingBlocksException e) {
        if (refusal != null) {
            throw new IllegalArgumentException(refusal.getMessage() + " (and no other server can serve blocks "
                    + e.missing() + " to check)", refusal);
        }
        if (!busy.isEmpty()) {
            busy.clear();
            busyWaits++;
            pause(policy.backoff(busyWaits + 1).toNanos(), e);
            return;
        }
        next(e);
    }

    /** A server with no room: route around it for now; no ban, no try spent, only the deadline bounds it. */
    private void busy(HopFailedException e) {
        busy.add(e.server().serverId());
        LOG.info(e.getMessage() + "; routing around it while other servers have room");
        if (System.nanoTime() > deadlineNanos) {
            throw new SwarmUnavailableException(operation + " found no server with room within its "
                    + policy.totalDeadline().toSeconds() + " s; the last answer: " + e.getMessage(), e);
        }
    }

    /** The servers this operation may route through: {@code base} less those that refused it or had no room. */
    ServerFilter filter(ServerFilter base) {
        if (refusedBy.isEmpty() && busy.isEmpty()) {
            return base;
        }
        Set<String> deny = new HashSet<>(base.deny());
        deny.addAll(refusedBy);
        deny.addAll(busy);
        return new ServerFilter(base.allow(), deny);
    }

    /** Failovers so far: tries that ended with a server's or a link's failure. */
    int failovers() {
        return failovers;
    }

    private void next(RuntimeException failure) {
        last = failure;
        attempts++;
        long backoff = policy.backoff(attempts).toNanos();
        if (attempts > policy.maxAttempts() || System.nanoTime() + backoff > deadlineNanos) {
            if (failure instanceof MissingBlocksException missing) {
                throw missing;
            }
            throw new SwarmUnavailableException(operation + " failed " + (attempts - 1) + " times or ran out of its "
                    + policy.totalDeadline().toSeconds() + " s; the last failure: " + last.getMessage(), last);
        }
        sleep(backoff);
    }

    /** Waits {@code nanos} before asking busy servers again, within the deadline. */
    private void pause(long nanos, RuntimeException failure) {
        if (System.nanoTime() + nanos > deadlineNanos) {
            throw new SwarmUnavailableException(operation + " found every server of some blocks busy until its "
                    + policy.totalDeadline().toSeconds() + " s ran out; the last failure: " + failure.getMessage(), failure);
        }
        sleep(nanos);
    }

    private void sleep(long nanos) {
        try {
            Thread.sleep(nanos / 1_000_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SwarmUnavailableException(operation + " was interrupted while backing off", e);
        }
    }
}
