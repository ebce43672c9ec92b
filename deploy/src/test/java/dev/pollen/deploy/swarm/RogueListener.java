package dev.pollen.deploy.swarm;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.concurrent.atomic.AtomicInteger;

/** A port on 127.0.0.1 that accepts connections and only counts them: where forged records point. */
final class RogueListener implements AutoCloseable {
    private final ServerSocket socket;
    private final AtomicInteger contacts = new AtomicInteger();

    RogueListener() throws IOException {
        socket = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        Thread listener = new Thread(() -> {
            while (!socket.isClosed()) {
                try (Socket accepted = socket.accept()) {
                    contacts.incrementAndGet();
                } catch (IOException e) {
                    return;
                }
            }
        }, "rogue-server");
        listener.setDaemon(true);
        listener.start();
    }

    int port() {
        return socket.getLocalPort();
    }

    /** Connections accepted so far. */
    int contacts() {
        return contacts.get();
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
