package dev.pollen.deploy.bench;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.locks.LockSupport;
import java.util.logging.Logger;

/**
 * A network link in user space: a TCP proxy that accepts connections on a local port, connects
 * each to a target, and delivers the bytes of each direction late and slowly, as a link of a given
 * {@link LinkProfile} would. This kernel has no netem; a proxy in front of each server puts every
 * connection into that server (clients' and other servers' pushes alike) behind the link.
 *
 * <p>Each direction models a queue in front of a wire: a chunk read at time t starts sending when
 * the wire is free, takes {@code bytes / bandwidth}, and arrives one-way delay (half the RTT, plus
 * jitter) after it was sent; chunks arrive in order. Each direction has its own reader and writer
 * thread (blocking sockets, parking to the nanosecond), and the reader stops reading while a
 * bandwidth-delay product plus 1 MiB waits, so TCP's flow control pushes back on the sender as a
 * slow link would. The profile can change while connections are open; it applies to bytes read
 * after the change.
 */
public final class LinkEmulator implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(LinkEmulator.class.getName());
    private static final int CHUNK = 64 << 10;

    private final ServerSocket listener;
    private final InetSocketAddress target;
    private final List<Socket> sockets = new CopyOnWriteArrayList<>();
    private volatile LinkProfile profile;
    private volatile boolean closed;

    private LinkEmulator(ServerSocket listener, InetSocketAddress target, LinkProfile profile) {
        this.listener = listener;
        this.target = target;
        this.profile = profile;
    }

    /** Listens on 127.0.0.1:{@code port} (0 picks one) and forwards to {@code target} through {@code profile}. */
    public static LinkEmulator start(int port, InetSocketAddress target, LinkProfile profile) throws IOException {
        ServerSocket listener = new ServerSocket(port, 50, InetAddress.getLoopbackAddress());
        LinkEmulator link = new LinkEmulator(listener, target, profile);
        Thread accept = new Thread(link::acceptLoop, "link-accept-" + listener.getLocalPort());
        accept.setDaemon(true);
        accept.start();
        return link;
    }

    public int port() {
        return listener.getLocalPort();
    }

    public LinkProfile profile() {
        return profile;
    }

    public void profile(LinkProfile newProfile) {
        this.profile = newProfile;
    }

    private void acceptLoop() {
        while (!closed) {
            try {
                Socket client = listener.accept();
                Socket server = new Socket();
                try {
                    server.connect(target, 10_000);
                } catch (IOException e) {
                    LOG.fine("The link's target " + target + " refused: " + e.getMessage());
                    client.close();
                    continue;
                }
                for (Socket socket : new Socket[] {client, server}) {
                    socket.setTcpNoDelay(true);
                    sockets.add(socket);
                }
                try {
                    new Direction(client, server, "up").start();
                    new Direction(server, client, "down").start();
                } catch (IOException e) {
                    closeQuietly(client);
                    closeQuietly(server);
                }
            } catch (IOException e) {
                if (!closed) {
                    LOG.fine("The link stopped accepting: " + e.getMessage());
                }
                return;
            }
        }
    }

    /** One direction of one connection: read, stamp with the arrival time, deliver on time. */
    private final class Direction {
        private final Socket from;
        private final Socket to;
        private final String name;
        private final ArrayDeque<Chunk> queue = new ArrayDeque<>();
        private long queuedBytes;
        private long wireFreeAt;      // nanoTime when the wire finishes sending what was read so far
        private long lastArrival;     // arrivals keep their order
        private boolean writing;      // the writer thread holds a chunk it took from the queue
        private OutputStream out;

        private record Chunk(byte[] bytes, long arriveAt) {
        }

        Direction(Socket from, Socket to, String name) {
            this.from = from;
            this.to = to;
            this.name = name;
        }

        void start() throws IOException {
            out = to.getOutputStream();
            Thread reader = new Thread(this::read, "link-" + name + "-read-" + from.getPort());
            Thread writer = new Thread(this::write, "link-" + name + "-write-" + to.getPort());
            reader.setDaemon(true);
            writer.setDaemon(true);
            reader.start();
            writer.start();
        }

        private void read() {
            byte[] buffer = new byte[CHUNK];
            try (InputStream in = from.getInputStream()) {
                int n;
                while ((n = in.read(buffer)) > 0) {
                    enqueue(Arrays.copyOf(buffer, n));
                }
            } catch (IOException e) {
                // the connection ended
            }
            enqueue(null);   // end of stream
        }

        private synchronized void enqueue(byte[] bytes) {
            LinkProfile link = profile;
            long now = System.nanoTime();
            long arriveAt = now;
            if (bytes != null) {
                long sendStart = Math.max(now, wireFreeAt);
                long sendNanos = Double.isInfinite(link.bitsPerSecond()) ? 0 : (long) (bytes.length * 8e9 / link.bitsPerSecond());
                wireFreeAt = sendStart + sendNanos;
                double jitter = link.jitterSeconds() > 0 ? ThreadLocalRandom.current().nextDouble() * link.jitterSeconds() : 0;
                arriveAt = wireFreeAt + (long) ((link.rttSeconds() / 2 + jitter) * 1e9);
            }
            arriveAt = Math.max(arriveAt, lastArrival);
            lastArrival = arriveAt;
            if (bytes != null && queue.isEmpty() && !writing && arriveAt <= System.nanoTime()) {
                // Nothing to wait for and nothing ahead of it: write it now, sparing a thread handoff, so an
                // unlimited link costs a copy and no more.
                try {
                    out.write(bytes);
                    out.flush();
                } catch (IOException e) {
                    closeQuietly(from);
                    closeQuietly(to);
                }
                return;
            }
            queue.add(new Chunk(bytes, arriveAt));
            queuedBytes += bytes == null ? 0 : bytes.length;
            notifyAll();
            long limit = (long) (Math.min(link.bitsPerSecond(), 1e10) / 8 * (link.rttSeconds() + 0.01)) + (1 << 20);
            while (queuedBytes > limit && !closed) {
                try {
                    wait(100);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }

        private void write() {
            try {
                while (true) {
                    Chunk chunk;
                    synchronized (this) {
                        while (queue.isEmpty()) {
                            wait();
                        }
                        chunk = queue.peek();
                        writing = true;
                    }
                    long wait;
                    while ((wait = chunk.arriveAt() - System.nanoTime()) > 0) {
                        LockSupport.parkNanos(wait);
                    }
                    if (chunk.bytes() == null) {
                        to.shutdownOutput();
                        return;
                    }
                    out.write(chunk.bytes());
                    out.flush();
                    synchronized (this) {
                        queue.poll();
                        queuedBytes -= chunk.bytes().length;
                        writing = false;
                        notifyAll();
                    }
                }
            } catch (IOException | InterruptedException e) {
                closeQuietly(from);
                closeQuietly(to);
            }
        }
    }

    private static void closeQuietly(Socket socket) {
        try {
            socket.close();
        } catch (IOException ignored) {
            // closing anyway
        }
    }

    @Override
    public void close() {
        closed = true;
        try {
            listener.close();
        } catch (IOException ignored) {
            // closing anyway
        }
        sockets.forEach(LinkEmulator::closeQuietly);
    }

    /** For logs: what the link does and where it leads. */
    @Override
    public String toString() {
        return "link 127.0.0.1:" + port() + " -> " + target + " (" + profile.describe() + ")";
    }
}
