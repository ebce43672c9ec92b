package dev.pollen.node.server;

import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.quant.Quantization;
import dev.pollen.protocol.BlockRange;

import java.nio.file.Path;
import java.time.Duration;

/** Settings of an in-process test server on 127.0.0.1: small limits, one compute thread. */
final class TestSettings {
    private TestSettings() {
    }

    /** A fixed span, 1 MiB messages, a 5 s announce period, a given throughput of 10, no moves, no network probe. */
    static ServerSettings of(Path model, BlockRange blocks) {
        return of(model, blocks, 0, 1 << 20, Duration.ofSeconds(5), 10, 0, false);
    }

    /**
     * @param blocks    a fixed span, or null to choose {@code numBlocks}
     * @param announce  announce period (rebalancing and pings run at multiples of it)
     */
    static ServerSettings of(Path model, BlockRange blocks, int numBlocks, int maxMessageBytes, Duration announce,
                             double throughput, double balanceQuality, boolean measureNetwork) {
        return of(model, blocks, numBlocks, maxMessageBytes, announce, throughput, balanceQuality, measureNetwork, Duration.ZERO);
    }

    /** As {@link #of(Path, BlockRange)}, with a core warm-up (zero turns it off). */
    static ServerSettings warmingUp(Path model, BlockRange blocks, Duration warmUp) {
        return of(model, blocks, 0, 1 << 20, Duration.ofSeconds(5), 10, 0, false, warmUp);
    }

    private static ServerSettings of(Path model, BlockRange blocks, int numBlocks, int maxMessageBytes, Duration announce,
                                     double throughput, double balanceQuality, boolean measureNetwork, Duration warmUp) {
        return new ServerSettings(new ServerSettings.Model(model, "tiny"),
                new ServerSettings.Placement(blocks, numBlocks, balanceQuality),
                new ServerSettings.Network("127.0.0.1", 0, 0, "", maxMessageBytes, announce, measureNetwork),
                new ServerSettings.Limits(4096, 64, 2, 8, Duration.ofMinutes(5)),
                new ServerSettings.Compute(DType.F32, Quantization.NONE, 1, Duration.ofSeconds(30), throughput, warmUp));
    }
}
