package dev.pollen.node.server;

import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ServerState;
import dev.pollen.scheduler.directory.ServerDirectory;
import dev.pollen.scheduler.selection.Rebalancer;
import io.vertx.core.Context;
import io.vertx.core.Future;

import java.time.Duration;
import java.util.SplittableRandom;
import java.util.logging.Logger;

/**
 * Moves a server started with {@code --num-blocks} to the blocks the swarm needs most. At a
 * randomized period (0.5 to 1.5 times three announce periods, so servers do not all re-choose at
 * once) it asks {@link Rebalancer} whether a move would help; when it would and the machine has
 * the memory for both spans, it loads the new span while the old one serves, switches new sessions
 * to it and announces it; the {@link HostedSpan} frees the old span when its last session closes.
 * The record keeps the old span, ONLINE, until the new one serves: a span being loaded is never
 * routed to nor counted as covered.
 */
final class Rebalancing {
    private static final Logger LOG = Logger.getLogger(Rebalancing.class.getName());

    private final Context context;
    private final ServerDirectory directory;
    private final ServerSettings settings;
    private final String serverId;
    private final int numBlocks;
    private final HostedSpan span;
    private final ComputeWorker compute;
    private final Announcer announcer;
    private final SplittableRandom random = new SplittableRandom();
    private long timer = -1;
    private boolean moving;
    private boolean stopped;

    Rebalancing(Context context, ServerDirectory directory, ServerSettings settings, String serverId, int numBlocks,
                HostedSpan span, ComputeWorker compute, Announcer announcer) {
        this.context = context;
        this.directory = directory;
        this.settings = settings;
        this.serverId = serverId;
        this.numBlocks = numBlocks;
        this.span = span;
        this.compute = compute;
        this.announcer = announcer;
    }

    /** How often, on average, the server checks whether to move: three announce periods. */
    static Duration period(ServerSettings settings) {
        return settings.network().announcePeriod().multipliedBy(3);
    }

    /** Schedules the next check. */
    void start() {
        long period = period(settings).toMillis();
        timer = context.owner().setTimer(Math.max(1, (long) (period * (0.5 + random.nextDouble()))), id -> {
            timer = -1;
            if (stopped) {
                return;
            }
            if (announcer.state() != ServerState.ONLINE || moving) {
                start();
                return;
            }
            Future.fromCompletionStage(directory.servers(settings.model().name()), context)
                    .compose(servers -> Rebalancer.rebalance(serverId, servers, numBlocks,
                            settings.placement().balanceQuality(), random).map(this::move).orElse(Future.succeededFuture()))
                    .onFailure(e -> LOG.warning("The rebalancing check failed: " + e.getMessage()))
                    .onComplete(v -> start());
        });
    }

    void stop() {
        stopped = true;
        if (timer >= 0) {
            context.owner().cancelTimer(timer);
            timer = -1;
        }
    }

    /** Moves to {@code target}, or stays when the machine cannot hold both spans at once (the old blocks would go uncovered). */
    private Future<Void> move(BlockRange target) {
        BlockRange from = span.blocks();
        long needed = span.config().blockParameters() * target.length() * settings.compute().dtype().bytes();
        long available = Memory.availableBytes();
        if (available < needed * 5 / 4) {
            LOG.info("The swarm would gain if this server moved from " + from + " to " + target + ", but "
                    + (available >> 20) + " MiB are free and the new span needs " + (needed >> 20) + " MiB; staying");
            return Future.succeededFuture();
        }
        moving = true;
        LOG.info("Moving from blocks " + from + " to " + target + " where the swarm needs them more; loading them first");
        return Future.fromCompletionStage(HostedSpan.loadSpan(compute, settings.model().dir(), target,
                        settings.compute(), i -> LOG.fine("Loaded block " + i + " for the move")), context)
                .map(loaded -> {
                    span.switchTo(loaded);
                    return (Void) null;
                })
                .compose(v -> announcer.announce(ServerState.ONLINE))
                .onSuccess(v -> LOG.info("Now serving blocks " + target + " (was " + from + ")"))
                .onComplete(v -> moving = false);
    }
}
