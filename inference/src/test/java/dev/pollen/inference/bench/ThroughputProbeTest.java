package dev.pollen.inference.bench;

import dev.pollen.inference.TestModels;
import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.model.BlockSpan;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Speeds are measured in benchmarks, not asserted here: this checks what the probe reports. */
@DisplayName("The throughput probe")
class ThroughputProbeTest {
    @Test
    @DisplayName("reports finite positive per-block rates and caps the forward pass at the model's context")
    void reportsRates() {
        try (Checkpoint checkpoint = Checkpoint.open(TestModels.tiny("llama"));
             BlockSpan span = BlockSpan.load(checkpoint, 1, 3, DType.F32)) {
            ThroughputProbe.Rates rates = ThroughputProbe.measure(span, 10, ThroughputProbe.FORWARD_TOKENS);
            assertEquals(256, rates.forwardTokens(), "the tiny model's max_position_embeddings is 256");
            for (double rate : new double[] {rates.inferenceRps(), rates.forwardRps()}) {
                assertTrue(rate > 0 && Double.isFinite(rate), rates.toString());
            }
        }
    }
}
