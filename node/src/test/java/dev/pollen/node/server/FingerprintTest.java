package dev.pollen.node.server;

import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.make.ModelMaker;
import dev.pollen.inference.make.ModelSpec;
import dev.pollen.protocol.BlockRange;
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

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@ExtendWith(VertxExtension.class)
@DisplayName("Model fingerprints")
class FingerprintTest {
    private static ServerSettings settings(Path model, BlockRange blocks) {
        return TestSettings.of(model, blocks);
    }

    @Test
    @DisplayName("a server whose checkpoint differs from the one a swarm serves under the same name refuses to start")
    void otherWeightsUnderOneNameAreRefused() throws Exception {
        Path work = Path.of(System.getProperty("pollen.test.workdir", "target/test-work"));
        Path first = work.resolve("fingerprint-a");
        Path other = work.resolve("fingerprint-b");
        ModelMaker.write(first, ModelSpec.preset("tiny", "llama", DType.F32, 1), i -> { });
        // Same shapes, other dtype on disk: a different checkpoint that a client must never mix in.
        ModelMaker.write(other, ModelSpec.preset("tiny", "llama", DType.F16, 1), i -> { });
        Vertx vertx = Vertx.vertx();
        InMemoryDirectory directory = new InMemoryDirectory(Clock.systemUTC());
        try {
            vertx.deployVerticle(new BlockServer(settings(first, BlockRange.of(0, 2)), directory, i -> { }))
                    .await(2, TimeUnit.MINUTES);
            Exception e = assertThrows(Exception.class, () -> vertx.deployVerticle(
                    new BlockServer(settings(other, BlockRange.of(2, 4)), directory, i -> { })).await(2, TimeUnit.MINUTES));
            assertTrue(e.getMessage().contains("already serves a model named 'tiny' with other weights"), e.getMessage());
            assertEquals(1, directory.servers("tiny").toCompletableFuture().get().size(), "only the first server is listed");
            vertx.deployVerticle(new BlockServer(settings(first, BlockRange.of(2, 4)), directory, i -> { }))
                    .await(2, TimeUnit.MINUTES);
            assertEquals(2, directory.servers("tiny").toCompletableFuture().get().size(), "the same weights join");
        } finally {
            vertx.close().await(30, TimeUnit.SECONDS);
        }
    }
}
