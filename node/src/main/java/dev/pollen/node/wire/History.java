package dev.pollen.node.wire;

import com.google.protobuf.ByteString;
import dev.pollen.protocol.TensorCodec;
import dev.pollen.protocol.grpc.WireTensor;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * Every hidden state a client sent to one hop, by position: what a replacement server needs to
 * rebuild the hop's attention cache. Kept as wire tensors (batch, seq, hidden), so a replay is one
 * concatenation. Positions are explicit: a step at a position before the end forgets what follows.
 */
public final class History {
    private record Chunk(int position, WireTensor hidden) {
        int length() {
            return (int) hidden.getShape(1);
        }
    }

    private final List<Chunk> chunks = new ArrayList<>();

    /** Tokens held. */
    public int length() {
        return chunks.isEmpty() ? 0 : chunks.get(chunks.size() - 1).position() + chunks.get(chunks.size() - 1).length();
    }

    /** Records the input of a step at {@code position}, forgetting anything from there on. */
    public void record(int position, WireTensor hidden) {
        truncate(position);
        if (position != length()) {
            throw new IllegalArgumentException("Position " + position + " is ahead of the history's " + length() + " tokens");
        }
        chunks.add(new Chunk(position, hidden));
    }

    /** Forgets every token from {@code position} on. */
    public void truncate(int position) {
        while (!chunks.isEmpty() && chunks.get(chunks.size() - 1).position() >= position) {
            chunks.remove(chunks.size() - 1);
        }
        if (!chunks.isEmpty() && length() > position) {
            Chunk last = chunks.remove(chunks.size() - 1);
            chunks.add(new Chunk(last.position(), slice(last.hidden(), position - last.position())));
        }
    }

    /** Everything held, as one (batch, length, hidden) tensor; null when empty. */
    public WireTensor all() {
        if (chunks.isEmpty()) {
            return null;
        }
        if (chunks.size() == 1) {
            return chunks.get(0).hidden();
        }
        WireTensor first = chunks.get(0).hidden();
        long batch = first.getShape(0);
        long hidden = first.getShape(2);
        int element = TensorCodec.elementBytes(first.getDtype());
        int total = length();
        ByteBuffer out = ByteBuffer.allocate(Math.toIntExact(batch * total * hidden * element));
        for (int b = 0; b < batch; b++) {
            for (Chunk chunk : chunks) {
                int rowBytes = Math.toIntExact(chunk.length() * hidden * element);
                if (chunk.hidden().getDtype() != first.getDtype()) {
                    throw new IllegalStateException("A history mixes dtypes");
                }
                out.put(chunk.hidden().getData().substring(b * rowBytes, (b + 1) * rowBytes).asReadOnlyByteBuffer());
            }
        }
        out.flip();
        return WireTensor.newBuilder().setDtype(first.getDtype()).addShape(batch).addShape(total).addShape(hidden)
                .setData(ByteString.copyFrom(out)).build();
    }

    /** The first {@code keep} positions of a (batch, seq, hidden) tensor. */
    static WireTensor slice(WireTensor tensor, int keep) {
        long batch = tensor.getShape(0);
        long seq = tensor.getShape(1);
        long hidden = tensor.getShape(2);
        int element = TensorCodec.elementBytes(tensor.getDtype());
        int rowBytes = Math.toIntExact(seq * hidden * element);
        int keepBytes = Math.toIntExact(keep * hidden * element);
        ByteBuffer out = ByteBuffer.allocate(Math.toIntExact(batch * keepBytes));
        for (int b = 0; b < batch; b++) {
            out.put(tensor.getData().substring(b * rowBytes, b * rowBytes + keepBytes).asReadOnlyByteBuffer());
        }
        out.flip();
        return WireTensor.newBuilder().setDtype(tensor.getDtype()).addShape(batch).addShape(keep).addShape(hidden)
                .setData(ByteString.copyFrom(out)).build();
    }
}
