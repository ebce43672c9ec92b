package dev.pollen.node.server;

import dev.pollen.inference.model.BlockSpan;
import dev.pollen.inference.model.KvCache;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.grpc.InferenceResponse;

import java.util.function.Consumer;

/**
 * One client's inference session on a server: a sub-range of the span, its KV cache, and where its
 * results go. The cache is touched only on the compute thread; the rest only on the event loop.
 */
final class ServerSession {
    final String id;
    final BlockRange blocks;
    final int maxLength;
    final int batch;
    final SessionRoom.Reservation room;         // its place in the server's room, given back on close
    final BlockSpan owner;                     // the server's span the session was opened on
    final BlockSpan span;                      // a slice of it; owns nothing
    KvCache cache;                             // compute thread only
    long lastStepId = -1;                      // event loop only
    long lastActiveNanos = System.nanoTime();  // event loop only
    boolean closed;                            // event loop only
    final Consumer<InferenceResponse> results; // writes to the session's stream, on the event loop
    final Consumer<Throwable> failure;          // ends the session's stream with the failure's status, on the event loop
    final PushClient.Streams pushes;           // to the next servers of the route; failures go to the client
    final StepRhythm rhythm = new StepRhythm();                   // of its one-token steps, event loop only

    ServerSession(String id, BlockRange blocks, int maxLength, int batch, SessionRoom.Reservation room, BlockSpan owner, BlockSpan span,
                  Consumer<InferenceResponse> results, Consumer<Throwable> failure) {
        this.owner = owner;
        this.id = id;
        this.blocks = blocks;
        this.maxLength = maxLength;
        this.batch = batch;
        this.room = room;
        this.span = span;
        this.results = results;
        this.failure = failure;
        this.pushes = new PushClient.Streams(failed -> results.accept(InferenceResponse.newBuilder().setPushFailed(failed)
                .build()));
    }
}
