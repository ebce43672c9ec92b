package dev.pollen.deploy.bench;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The emulated link does what its profile says: a ping measures the RTT, a bulk transfer the bandwidth. */
@DisplayName("The link emulator")
class LinkEmulatorTest {
    /** Timing tolerance: the emulator itself adds well under a millisecond; the machine's scheduler may add a few. */
    private static final double RTT_TOLERANCE_SECONDS = 0.008;
    private static final double BANDWIDTH_TOLERANCE = 0.10;

    @Test
    @DisplayName("a ping through a 50 ms link takes 50 ms, and through an unlimited one next to nothing")
    void pingMeasuresTheRtt() throws Exception {
        try (EchoServer echo = new EchoServer(); LinkEmulator link = LinkEmulator.start(0, echo.address(), LinkProfile.of(50, 1000))) {
            double median = medianPing(link.port(), 15);
            assertTrue(Math.abs(median - 0.050) < RTT_TOLERANCE_SECONDS, "median ping " + median * 1e3 + " ms for a 50 ms link");
            link.profile(LinkProfile.NONE);
            double direct = medianPing(link.port(), 15);
            assertTrue(direct < 0.003, "an unlimited link must add almost nothing, took " + direct * 1e3 + " ms");
        }
    }

    @Test
    @DisplayName("a bulk transfer through a 40 Mbit/s link runs at 40 Mbit/s, and its bytes arrive intact and in order")
    void bulkTransferMeasuresTheBandwidth() throws Exception {
        byte[] payload = new byte[5_000_000];   // one second at 40 Mbit/s
        new java.util.Random(1).nextBytes(payload);
        try (EchoServer echo = new EchoServer(); LinkEmulator link = LinkEmulator.start(0, echo.address(), LinkProfile.of(10, 40));
             Socket socket = new Socket(InetAddress.getLoopbackAddress(), link.port())) {
            byte[] back = new byte[payload.length];
            Thread reader = new Thread(() -> {
                try {
                    new DataInputStream(socket.getInputStream()).readFully(back);
                } catch (IOException e) {
                    throw new IllegalStateException(e);
                }
            });
            long start = System.nanoTime();
            reader.start();
            OutputStream out = socket.getOutputStream();
            out.write(payload);
            out.flush();
            reader.join(30_000);
            double seconds = (System.nanoTime() - start) / 1e9;
            assertArrayEquals(payload, back);
            // Up and back down: both directions are 40 Mbit/s and pipeline, so the echo takes one transfer plus an RTT.
            double measured = payload.length * 8 / (seconds - 0.010) / 1e6;
            assertTrue(Math.abs(measured - 40) / 40 < BANDWIDTH_TOLERANCE, "measured " + measured + " Mbit/s through a 40 Mbit/s link");
        }
    }

    private static double medianPing(int port, int pings) throws IOException {
        double[] times = new double[pings];
        try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), port)) {
            socket.setTcpNoDelay(true);
            OutputStream out = socket.getOutputStream();
            InputStream in = socket.getInputStream();
            byte[] ping = new byte[100];
            for (int i = 0; i < pings; i++) {
                long start = System.nanoTime();
                out.write(ping);
                out.flush();
                new DataInputStream(in).readFully(new byte[ping.length]);
                times[i] = (System.nanoTime() - start) / 1e9;
            }
        }
        Arrays.sort(times);
        return times[pings / 2];
    }

    /** Echoes every byte back on each connection. */
    private static final class EchoServer implements AutoCloseable {
        private final ServerSocket listener = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());

        EchoServer() throws IOException {
            Thread accept = new Thread(() -> {
                while (!listener.isClosed()) {
                    try {
                        Socket socket = listener.accept();
                        socket.setTcpNoDelay(true);
                        Thread echo = new Thread(() -> {
                            try (socket) {
                                socket.getInputStream().transferTo(socket.getOutputStream());
                            } catch (IOException ignored) {
                                // the peer left
                            }
                        });
                        echo.setDaemon(true);
                        echo.start();
                    } catch (IOException e) {
                        return;
                    }
                }
            });
            accept.setDaemon(true);
            accept.start();
        }

        InetSocketAddress address() {
            return new InetSocketAddress(InetAddress.getLoopbackAddress(), listener.getLocalPort());
        }

        @Override
        public void close() throws IOException {
            listener.close();
        }
    }
}
