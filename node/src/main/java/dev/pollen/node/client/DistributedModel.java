package dev.pollen.node.client;

import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.generate.CachedSequence;
import dev.pollen.inference.generate.GenerationOptions;
import dev.pollen.inference.generate.Generator;
import dev.pollen.inference.generate.HeadWorker;
import dev.pollen.inference.model.Architecture;
import dev.pollen.inference.model.ModelHead;
import dev.pollen.inference.tensor.Torch;
import dev.pollen.protocol.ModelInfo;
import io.reactivex.rxjava3.core.BackpressureStrategy;
import io.reactivex.rxjava3.core.Flowable;
import io.reactivex.rxjava3.schedulers.Schedulers;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import dev.pollen.inference.generate.BlockStepper;
import java.util.function.IntSupplier;

/**
 * A model whose blocks live in the swarm: the embeddings, final norm and LM head run here, the
 * blocks through an {@link InferenceSession}. Generation streams tokens as an RxJava
 * {@link Flowable} computed on this model's worker threads (one per generating session, so
 * sessions run side by side), or blocks the caller with {@link Session#generate(long[][],
 * GenerationOptions, Generator.TokenSink)}.
 */
public final class DistributedModel implements AutoCloseable {
    private final ModelHead head;
    private final ModelConfig config;
    private final ModelInfo model;
    private final SwarmClient swarm;
    private final ExecutorService worker;
    /** Runs the LM head for every session of this model (see {@link HeadWorker} for why one thread). */
    private final HeadWorker headWorker;

    private DistributedModel(ModelHead head, ModelConfig config, ModelInfo model, SwarmClient swarm) {
        this.head = head;
        this.config = config;
        this.model = model;
        this.swarm = swarm;
        this.worker = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "pollen-client-" + model.name());
            t.setDaemon(true);
            return t;
        });
        this.headWorker = new HeadWorker(model.name());
    }

    /**
     * Loads the client-side parts from a local checkpoint and finds the model in the swarm; the
     * checkpoint's fingerprint must match the one the swarm serves.
     */
    public static DistributedModel load(Path modelDir, String modelName, DType dtype, SwarmClient swarm) {
        ModelInfo model = swarm.model(modelName);
        try (Checkpoint checkpoint = Checkpoint.open(modelDir)) {
            if (!checkpoint.fingerprint().equals(model.fingerprint())) {
                throw new IllegalArgumentException("The checkpoint in " + modelDir + " is not the model the swarm serves as '"
                        + modelName + "' (fingerprints " + checkpoint.fingerprint() + " and " + model.fingerprint() + ")");
            }
            Torch.ensureThreads();
            try (Architecture architecture = Architecture.of(checkpoint.config())) {
                return new DistributedModel(architecture.loadHead(checkpoint, Torch.scalarType(dtype)), checkpoint.config(),
                        model, swarm);
            }
        }
    }

    public ModelConfig config() {
        return config;
    }

    public ModelInfo info() {
        return model;
    }

    /**
     * Generates through {@code blocks} instead of a plain session (a stepper that adds tuned
     * prompts or adapters), on the calling thread, from position 0.
     */
    public long[][] generate(BlockStepper blocks, long[][] tokens, GenerationOptions options,
                             Generator.TokenSink sink) {
        return new Generator(head, blocks, headWorker).generate(tokens, 0, options, sink);
    }

    /** The embeddings, final norm and LM head this client runs (read-only). */
    public ModelHead head() {
        return head;
    }

    /** Opens a session that keeps its servers' caches across calls (a chat). */
    public Session session(int maxLength, int batch, SessionOptions options) {
        InferenceSession remote = new InferenceSession(swarm, model, maxLength, batch, options);
        return new Session(remote, remote, remote::failovers, remote);
    }

    /**
     * A session through {@code blocks} (a stepper that adds tuned prompts or an adapter to plain
     * sessions); {@code resources} close with it.
     */
    public Session session(BlockStepper blocks, IntSupplier failovers,
                           AutoCloseable resources) {
        return new Session(blocks, null, failovers, resources);
    }

    /** Token ids of the sequences of a batch, one array per generation step. */
    public final class Session implements AutoCloseable {
        private final BlockStepper blocks;
        private final InferenceSession remote;
        private final IntSupplier failovers;
        private final AutoCloseable resources;
        private int position;

        private Session(BlockStepper blocks, InferenceSession remote,
                        IntSupplier failovers, AutoCloseable resources) {
            this.blocks = blocks;
            this.remote = remote;
            this.failovers = failovers;
            this.resources = resources;
        }

        /** The plain inference session under this one, or null for a session through a custom stepper. */
        public InferenceSession remote() {
            return remote;
        }

        /** Servers that failed under this session and were replaced. */
        public int failovers() {
            return failovers.getAsInt();
        }

        /** Tokens the servers' caches hold. */
        public synchronized int position() {
            return position;
        }

        /** Forgets the tokens from {@code newPosition} on; the servers roll back at the next step. */
        public synchronized void rollback(int newPosition) {
            if (newPosition < 0 || newPosition > position) {
                throw new IllegalArgumentException("Cannot roll back to " + newPosition + " in a session of " + position
                        + " tokens");
            }
            position = newPosition;
        }

        /**
         * Feeds {@code tokens} (equal lengths per sequence) after what the session holds and
         * generates; each emission is one step's tokens, one per sequence. Cancelling stops after
         * the current step.
         */
        public Flowable<long[]> generate(long[][] tokens, GenerationOptions options) {
            return Flowable.<long[]>create(emitter -> {
                try {
                    generate(tokens, options, (step, next) -> {
                        emitter.onNext(next);
                        return !emitter.isCancelled();
                    });
                    emitter.onComplete();
                } catch (Throwable t) {
                    // RxJava rethrows errors it deems fatal instead of signalling them; the caller must hear of every one.
                    emitter.tryOnError(t);
                }
            }, BackpressureStrategy.BUFFER).subscribeOn(Schedulers.from(worker));
        }

        /**
         * As {@link #generate(long[][], GenerationOptions)}, on the calling thread (never an event
         * loop: it waits for the servers): feeds {@code tokens}, generates until a stop token, the
         * limit or {@code sink} returning false, and returns the generated tokens per sequence.
         * Calls on one session run one at a time.
         */
        public synchronized long[][] generate(long[][] tokens, GenerationOptions options, Generator.TokenSink sink) {
            long[][] generated = new Generator(head, blocks, headWorker).generate(tokens, position, options, sink);
            // A sequence stops growing at its stop token; the longest ran every step.
            int steps = Arrays.stream(generated).mapToInt(g -> g.length).max().orElse(0);
            // The last generated token is returned, not fed: the caller feeds it with its next tokens.
            position = CachedSequence.cachedAfter(position, tokens[0].length, steps);
            return generated;
        }

        @Override
        public void close() {
            try {
                resources.close();
            } catch (RuntimeException e) {
                throw e;
            } catch (Exception e) {
                throw new IllegalStateException("Closing the session failed: " + e.getMessage(), e);
            }
        }
    }

    @Override
    public void close() {
        worker.shutdown();
        headWorker.close();
        head.close();
    }
}
