package dev.pollen.node.server;

import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.make.ModelMaker;
import dev.pollen.inference.make.ModelSpec;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.scheduler.directory.InMemoryDirectory;
import io.vertx.core.Vertx;
import io.vertx.junit5.VertxExtension;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertTrue;

@ExtendWith(VertxExtension.class)
@DisplayName("The network probe")
class NetworkProbeTest {
    private static ServerSettings settings(Path model, BlockRange blocks, boolean measure) {
        return TestSettings.of(model, blocks, 0, 1 << 20, Duration.ofMillis(300), 1e12, 0, measure);
    }

    @Test
    @DisplayName("caps a server's announced throughput by the hidden states per second its measured bandwidth carries")
    void capsThroughputByBandwidth() throws Exception {
        Path model = Path.of(System.getProperty("pollen.test.workdir", "target/test-work")).resolve("network-llama");
        ModelMaker.write(model, ModelSpec.preset("tiny", "llama", DType.F32, 4), i -> { });
        Vertx vertx = Vertx.vertx();
        InMemoryDirectory directory = new InMemoryDirectory(Clock.systemUTC());
        try {
            vertx.deployVerticle(new BlockServer(settings(model, BlockRange.of(2, 4), false), directory, i -> { }))
                    .await(2, TimeUnit.MINUTES);
            BlockServer measured = new BlockServer(settings(model, BlockRange.of(0, 2), true), directory, i -> { });
            vertx.deployVerticle(measured).await(2, TimeUnit.MINUTES);
            double announced = Double.MAX_VALUE;
            long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
            while (System.nanoTime() < deadline) {
                ServerInfo record = directory.servers("tiny").toCompletableFuture().get().stream()
                        .filter(s -> s.serverId().equals(measured.serverId())).findFirst().orElseThrow();
                announced = record.throughput();
                if (announced < 1e11) {
                    break;
                }
                Thread.sleep(100);
            }
            // 1e12 requests/s of compute was announced; no loopback carries 1e12 hidden states of 64 floats per second.
            assertTrue(announced > 0 && announced < 1e11, "announced " + announced);
        } finally {
            vertx.close().await(30, TimeUnit.SECONDS);
        }
    }
}
