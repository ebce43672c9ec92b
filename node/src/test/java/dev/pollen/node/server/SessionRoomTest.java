package dev.pollen.node.server;

import io.vertx.core.Vertx;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@DisplayName("A server's room for sessions")
class SessionRoomTest {
    private static final long LONG = TimeUnit.MINUTES.toMillis(5);
    private static Vertx vertx;

    @BeforeAll
    static void start() {
        vertx = Vertx.vertx();
    }

    @AfterAll
    static void stop() {
        vertx.close().await();
    }

    @Test
    @DisplayName("a session over the session limit waits for one to close rather than failing")
    void sessionLimitQueues() {
        SessionRoom room = new SessionRoom(vertx, 1000, 2, 8);
        SessionRoom.Reservation a = room.reserve(10, LONG);
        room.reserve(10, LONG);
        SessionRoom.Reservation c = room.reserve(10, LONG);
        assertTrue(a.granted().isDone());
        assertFalse(c.granted().isDone());
        assertEquals(new dev.pollen.protocol.SessionLoad(2, 0, 1), room.load());
        a.release();
        assertTrue(c.granted().isDone() && !c.granted().isCompletedExceptionally());
        assertEquals(0, room.queued());
    }

    @Test
    @DisplayName("sessions waiting for cache room are granted in arrival order, a small one never overtaking a large one")
    void arrivalOrder() {
        SessionRoom room = new SessionRoom(vertx, 100, 10, 8);
        SessionRoom.Reservation big = room.reserve(80, LONG);
        SessionRoom.Reservation second = room.reserve(60, LONG);
        SessionRoom.Reservation small = room.reserve(10, LONG);
        assertFalse(second.granted().isDone());
        assertFalse(small.granted().isDone(), "10 tokens fit, but a session that came first waits");
        big.release();
        assertTrue(second.granted().isDone() && small.granted().isDone());
        assertEquals(30, room.left());
    }

    @Test
    @DisplayName("a full queue refuses at once with a retry hint; the allocation timeout ends a wait")
    void fullQueueAndTimeout() {
        SessionRoom room = new SessionRoom(vertx, 100, 1, 1);
        room.reserve(10, LONG);
        SessionRoom.Reservation waiting = room.reserve(10, 200);
        SessionRoom.Reservation refused = room.reserve(10, LONG);
        CompletionException full = assertThrows(CompletionException.class, () -> refused.granted().join());
        assertInstanceOf(ServerBusyException.class, full.getCause());
        assertTrue(full.getCause().getMessage().contains("retry in about"), full.getCause().getMessage());
        CompletionException late = assertThrows(CompletionException.class, () -> waiting.granted().join());
        assertTrue(late.getCause().getMessage().contains("allocation timeout"), late.getCause().getMessage());
        assertEquals(0, room.queued());
        SessionRoom.Reservation now = room.reserve(10, 0);
        assertTrue(now.granted().isCompletedExceptionally(), "no wait asked, no room: refused at once");
    }

    @Test
    @DisplayName("a client that leaves the queue gives its place to the next, and its room is never taken")
    void leavingTheQueue() {
        SessionRoom room = new SessionRoom(vertx, 100, 1, 8);
        SessionRoom.Reservation held = room.reserve(10, LONG);
        SessionRoom.Reservation gone = room.reserve(10, LONG);
        SessionRoom.Reservation next = room.reserve(10, LONG);
        gone.release();
        assertTrue(gone.granted().isCompletedExceptionally());
        held.release();
        assertTrue(next.granted().isDone() && !next.granted().isCompletedExceptionally());
        next.release();
        next.release();
        assertEquals(new dev.pollen.protocol.SessionLoad(0, 1, 0), room.load());
        assertEquals(100, room.left());
    }
}
