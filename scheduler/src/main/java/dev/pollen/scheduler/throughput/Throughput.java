package dev.pollen.scheduler.throughput;

/**
 * What a server announces about its speed, and how the figure block selection balances is made
 * from it.
 *
 * @param inferenceRps single-token steps per second through one block (the span's measured steps/s
 *                     times its number of blocks)
 * @param forwardRps   1024-token forward passes per second through one block
 * @param networkRps   hidden states per second the network carries: bandwidth / (hidden size x 2 bytes)
 */
public record Throughput(double inferenceRps, double forwardRps, double networkRps) {
    public Throughput {
        if (!(inferenceRps >= 0) || !(forwardRps >= 0) || !(networkRps >= 0)) {
            throw new IllegalArgumentException("rates must be >= 0, got " + inferenceRps + ", " + forwardRps + ", " + networkRps);
        }
    }

    /**
     * Petals' server throughput (Borzunov et al. 2023): the compute rate of a request that uses, on
     * average, half of a span of {@code numBlocks} blocks (requests enter anywhere in the span), or
     * the network rate if that is lower.
     *
     * @return requests per second this server adds to each of its blocks
     */
    public double effective(int numBlocks) {
        if (numBlocks <= 0) {
            throw new IllegalArgumentException("A span has at least one block, got " + numBlocks);
        }
        double compute = forwardRps / ((numBlocks + 1) / 2.0);
        return Math.min(compute, networkRps);
    }
}
