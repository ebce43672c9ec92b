package dev.pollen.protocol.trust;

import dev.pollen.protocol.ServerInfo;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.TreeMap;

/**
 * The bytes a server signs for its record: every field of the record but its seal, in a fixed
 * order and encoding (strings as length and UTF-8, numbers big-endian, doubles by their bits, maps
 * sorted by key), then the seal's public key, sequence, expiry and admission. Written by hand rather than
 * taken from Java or protobuf serialization, neither of which promises the same bytes for the
 * same record across versions; a record read from Hazelcast or from gRPC gives the same bytes.
 */
public final class RecordSigning {
    /** Names what is signed, so a signature over these bytes means nothing anywhere else. */
    private static final String DOMAIN = "pollen server record v2";

    private RecordSigning() {
    }

    public static byte[] signedBytes(ServerInfo info, byte[] publicKey, long sequence, long expiresAtMillis, byte[] admission) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(256);
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            string(out, DOMAIN);
            string(out, info.serverId());
            string(out, info.model());
            string(out, info.modelFingerprint());
            out.writeInt(info.blocks().start());
            out.writeInt(info.blocks().end());
            string(out, info.state().name());
            string(out, info.host());
            out.writeInt(info.port());
            out.writeLong(Double.doubleToLongBits(info.throughput()));
            out.writeLong(Double.doubleToLongBits(info.inferenceRps()));
            out.writeLong(Double.doubleToLongBits(info.forwardRps()));
            out.writeLong(info.cacheTokensLeft());
            string(out, info.dtype());
            string(out, info.quant());
            out.writeInt(info.adapters().size());
            for (String adapter : info.adapters()) {
                string(out, adapter);
            }
            string(out, info.version());
            string(out, info.publicName());
            Map<String, Double> rtts = new TreeMap<>(info.nextRttSeconds());
            out.writeInt(rtts.size());
            for (Map.Entry<String, Double> rtt : rtts.entrySet()) {
                string(out, rtt.getKey());
                out.writeLong(Double.doubleToLongBits(rtt.getValue()));
            }
            out.writeInt(info.load().open());
            out.writeInt(info.load().left());
            out.writeInt(info.load().queued());
            out.writeLong(info.memory().resident());
            out.writeLong(info.memory().heapUsed());
            out.writeLong(info.memory().heapCommitted());
            out.writeLong(info.memory().jvm());
            out.writeLong(info.memory().weights());
            out.writeLong(info.memory().caches());
            out.writeInt(publicKey.length);
            out.write(publicKey);
            out.writeLong(sequence);
            out.writeLong(expiresAtMillis);
            out.writeInt(admission.length);
            out.write(admission);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return bytes.toByteArray();
    }

    private static void string(DataOutputStream out, String value) throws IOException {
        byte[] utf8 = value.getBytes(StandardCharsets.UTF_8);
        out.writeInt(utf8.length);
        out.write(utf8);
    }
}
