package dev.pollen.node.server;

import dev.pollen.protocol.ServerInfo;
import dev.pollen.protocol.ServerState;
import dev.pollen.scheduler.directory.ServerDirectory;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Vertx;

import java.time.Duration;
import java.util.function.Function;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Keeps a server's record in the directory: written at each state change and refreshed every
 * announce period, so it expires about two periods after the server dies.
 */
public final class Announcer {
    private static final Logger LOG = Logger.getLogger(Announcer.class.getName());

    private final Vertx vertx;
    private final Context context;
    private final ServerDirectory directory;
    private final Function<ServerState, ServerInfo> record;
    private final Duration period;
    private final Duration timeToLive;
    private volatile ServerState state = ServerState.JOINING;
    private long timer = -1;

    public Announcer(Vertx vertx, Context context, ServerDirectory directory, Function<ServerState, ServerInfo> record,
                     Duration period, Duration timeToLive) {
        this.vertx = vertx;
        this.context = context;
        this.directory = directory;
        this.record = record;
        this.period = period;
        this.timeToLive = timeToLive;
    }

    public ServerState state() {
        return state;
    }

    /** Announces {@code newState} now and starts the periodic refresh if it is not running. */
    public Future<Void> announce(ServerState newState) {
        state = newState;
        if (timer < 0) {
            timer = vertx.setPeriodic(period.toMillis(), id -> refresh());
        }
        return refresh();
    }

    /** Writes the record now, in the current state: when what it says changed between refreshes. */
    public Future<Void> refresh() {
        ServerInfo info = record.apply(state);
        return Future.fromCompletionStage(directory.announce(info, timeToLive), context)
                .onFailure(e -> LOG.log(Level.WARNING, "Could not refresh this server's record in the swarm directory: "
                        + e.getMessage()));
    }

    /** Stops refreshing and removes the record at once. */
    public Future<Void> withdraw(String serverId) {
        if (timer >= 0) {
            vertx.cancelTimer(timer);
            timer = -1;
        }
        return Future.fromCompletionStage(directory.remove(serverId), context);
    }
}
