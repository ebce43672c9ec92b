package dev.pollen.web;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@DisplayName("The gateway's admission queue")
class AdmissionTest {
    private static final long NO_TIMEOUT = TimeUnit.MINUTES.toMillis(10);

    @Test
    @DisplayName("admits at once while slots are free, then queues, and hands freed slots on in arrival order")
    void queuesWhenFull() {
        try (Admission admission = new Admission(2, 8, 16, 16, NO_TIMEOUT)) {
            Admission.Ticket a = admission.enter("a");
            Admission.Ticket b = admission.enter("b");
            Admission.Ticket c = admission.enter("c");
            Admission.Ticket d = admission.enter("d");
            assertTrue(a.admitted().isDone() && b.admitted().isDone());
            assertFalse(c.admitted().isDone() || d.admitted().isDone());
            assertEquals(2, admission.queued());
            a.release();
            assertTrue(c.admitted().isDone());
            assertFalse(d.admitted().isDone());
            a.release();   // twice changes nothing
            assertFalse(d.admitted().isDone());
            b.release();
            assertTrue(d.admitted().isDone());
            assertEquals(0, admission.queued());
            assertEquals(2, admission.active());
        }
    }

    /**
     * The oracle is first come first served: the greedy client's 20 requests, queued first, would
     * all run before the latecomers. Round robin gives each latecomer the next free slot.
     */
    @Test
    @DisplayName("a greedy client's backlog does not hold back other clients: waiting clients take turns")
    void roundRobinAcrossClients() {
        try (Admission admission = new Admission(2, 8, 64, 64, NO_TIMEOUT)) {
            List<Admission.Ticket> greedy = new ArrayList<>();
            for (int i = 0; i < 20; i++) {
                greedy.add(admission.enter("greedy"));
            }
            Admission.Ticket x = admission.enter("x");
            Admission.Ticket y = admission.enter("y");
            greedy.get(0).release();
            assertTrue(x.admitted().isDone(), "the first slot freed goes to the next client in turn, not to the greedy one");
            assertFalse(y.admitted().isDone());
            greedy.get(1).release();
            assertTrue(y.admitted().isDone());
            x.release();
            assertTrue(greedy.get(2).admitted().isDone(), "with nobody else waiting, the greedy client goes on");
        }
    }

    @Test
    @DisplayName("a client at its own limit waits while others are admitted, and its turn passes")
    void perClientLimitQueues() {
        try (Admission admission = new Admission(4, 2, 64, 64, NO_TIMEOUT)) {
            Admission.Ticket a1 = admission.enter("a");
            admission.enter("a");
            Admission.Ticket a3 = admission.enter("a");
            assertFalse(a3.admitted().isDone(), "over its limit of 2 it waits, though slots are free");
            Admission.Ticket b = admission.enter("b");
            assertTrue(b.admitted().isDone(), "another client takes a free slot past the waiting one");
            a1.release();
            assertTrue(a3.admitted().isDone());
        }
    }

    @Test
    @DisplayName("a full queue refuses at once: 429 over the client's share, 503 over the whole, both with Retry-After")
    void fullQueueRefuses() {
        try (Admission admission = new Admission(1, 1, 3, 2, NO_TIMEOUT)) {
            admission.enter("a");
            admission.enter("a");
            admission.enter("a");
            ApiException mine = assertThrows(ApiException.class, () -> admission.enter("a"));
            assertEquals(429, mine.status());
            assertTrue(mine.retryAfterSeconds() >= 1);
            admission.enter("b");
            ApiException all = assertThrows(ApiException.class, () -> admission.enter("c"));
            assertEquals(503, all.status());
            assertTrue(all.retryAfterSeconds() >= 1);
            assertTrue(all.getMessage().contains("retry in about"), all.getMessage());
        }
    }

    @Test
    @DisplayName("a request that waits past the queue timeout is answered 503, and one whose client left gives its place up")
    void timeoutAndLeaving() {
        try (Admission admission = new Admission(1, 1, 8, 8, 200)) {
            Admission.Ticket held = admission.enter("a");
            Admission.Ticket late = admission.enter("b");
            ApiException timedOut = assertThrows(ApiException.class, () -> late.await(() -> false));
            assertEquals(503, timedOut.status());
            assertEquals(0, admission.queued());

            Admission.Ticket gone = admission.enter("c");
            assertThrows(ApiException.class, () -> gone.await(() -> true));
            Admission.Ticket next = admission.enter("d");
            held.release();
            assertTrue(next.admitted().isDone(), "the slot goes to the request still waiting");
            assertEquals(0, admission.queued());
        }
    }
}
