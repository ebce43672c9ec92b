package dev.pollen.inference.model;

import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.quant.Linear;
import dev.pollen.inference.quant.Quantization;
import dev.pollen.inference.tensor.Torch;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.ArrayList;
import java.util.List;
import java.util.function.IntConsumer;

/**
 * A contiguous span of blocks [start, end) of one model: what a server hosts. Two ways to run it:
 * {@link #step} for inference (new tokens at explicit positions, through a session's
 * {@link KvCache}) and {@link #forward} for a whole sequence with no state (training).
 * Owns its blocks; {@link #close()} frees them.
 */
public final class BlockSpan implements AutoCloseable {
    private final Architecture architecture;
    private final int start;
    private final int end;
    private final ScalarType dtype;
    private final Quantization quantization;
    private final List<Block> blocks;
    private final boolean owner;

    private BlockSpan(Architecture architecture, int start, int end, ScalarType dtype, Quantization quantization,
                      List<Block> blocks, boolean owner) {
        this.architecture = architecture;
        this.start = start;
        this.end = end;
        this.dtype = dtype;
        this.quantization = quantization;
        this.blocks = blocks;
        this.owner = owner;
    }

    /**
     * Blocks [from, to) of this span as a span of their own that shares the weights: a session may
     * use part of what a server hosts. The slice owns nothing; closing it does nothing, and it must
     * not outlive this span.
     */
    public BlockSpan slice(int from, int to) {
        if (from < start || to > end || from >= to) {
            throw new IllegalArgumentException("Blocks [" + from + ", " + to + ") are not inside this span [" + start
                    + ", " + end + ")");
        }
        if (from == start && to == end) {
            return new BlockSpan(architecture, start, end, dtype, quantization, blocks, false);
        }
        return new BlockSpan(architecture, from, to, dtype, quantization, blocks.subList(from - start, to - start), false);
    }

    /** Loads blocks [start, end) from the checkpoint, reading only their tensors. */
    public static BlockSpan load(Checkpoint checkpoint, int start, int end, DType dtype) {
        return load(checkpoint, start, end, dtype, Quantization.NONE, i -> { });
    }

    /** As {@link #load(Checkpoint, int, int, DType)}, calling {@code progress} with each block index loaded. */
    public static BlockSpan load(Checkpoint checkpoint, int start, int end, DType dtype, IntConsumer progress) {
        return load(checkpoint, start, end, dtype, Quantization.NONE, progress);
    }

    /**
     * As {@link #load(Checkpoint, int, int, DType, IntConsumer)}, with every block's matrices stored
     * as {@code quantization} says (quantized one block at a time as it loads).
     */
    public static BlockSpan load(Checkpoint checkpoint, int start, int end, DType dtype, Quantization quantization,
                                 IntConsumer progress) {
        ModelConfig config = checkpoint.config();
        if (start < 0 || end > config.numLayers() || start >= end) {
            throw new IllegalArgumentException("Block range [" + start + ", " + end + ") is not inside the model's "
                    + config.numLayers() + " blocks");
        }
        Torch.ensureThreads();
        ScalarType type = Torch.scalarType(dtype);
        Architecture architecture = Architecture.of(config);
        List<Block> blocks = new ArrayList<>(end - start);
        try {
            for (int i = start; i < end; i++) {
                blocks.add(architecture.loadBlock(checkpoint, i, type, quantization));
                progress.accept(i);
            }
        } catch (RuntimeException e) {
            blocks.forEach(Block::close);
            architecture.close();
            throw e;
        }
        // Loading (quantizing most of all) frees as much as it keeps; hand it back to the system now
        // rather than leave it with the allocator, where it would count as the server's for good.
        Linear.releaseThreadScratch();
        Pointer.trimMemory();
        return new BlockSpan(architecture, start, end, type, quantization, List.copyOf(blocks), true);
    }

    public int start() {
        return start;
    }

    public int end() {
        return end;
    }

    public int size() {
        return end - start;
    }

    public ModelConfig config() {
        return architecture.config();
    }

    public ScalarType dtype() {
        return dtype;
    }

    /** How the blocks' matrices are stored. */
    public Quantization quantization() {
        return quantization;
    }

    /** Bytes of weights one step over every block reads: the matrices as stored, norms and biases aside. */
    public long matrixBytes() {
        long bytes = 0;
        for (Block block : blocks) {
            for (Linear layer : block.linears()) {
                bytes += layer.weightBytes();
            }
        }
        return bytes;
    }

    /** Every block's matrix products, block by block, for tests that compare them with their dense form. */
    public List<List<Linear>> linears() {
        List<List<Linear>> out = new ArrayList<>();
        for (Block block : blocks) {
            out.add(block.linears());
        }
        return out;
    }

    /** Reserves a cache for {@code batch} sequences of up to {@code maxLength} tokens on this span. */
    public KvCache newCache(int batch, int maxLength) {
        ModelConfig c = config();
        return new KvCache(size(), batch, c.numKvHeads(), maxLength, c.headDim(), dtype);
    }

    /**
     * One session's step: the new tokens of {@code hidden} at {@code position}, through its cache.
     *
     * @param hidden (batch, seq, hidden) any floating dtype; converted to the span's
     */
    public record SessionStep(Tensor hidden, KvCache cache, int position) {
    }

    /**
     * One inference step: runs the new tokens' hidden states through every block, writing their keys
     * and values at {@code position}. A position below the cache's length rolls the cache back first.
     *
     * @param hidden   (batch, seq, hidden) any floating dtype; converted to the span's
     * @param position where the first new token goes; at most the cache's current length
     * @return (batch, seq, hidden) in the span's dtype, in the caller's pointer scope
     * @throws IllegalArgumentException for a wrong shape, a batch other than the cache's, a position
     *                                  ahead of the cache, or a length past its maximum
     */
    public Tensor step(Tensor hidden, KvCache cache, int position) {
        return step(List.of(new SessionStep(hidden, cache, position))).get(0);
    }

    /**
     * A session's first step with deep prompts (deep prompt tuning at inference): as
     * {@link #step(Tensor, KvCache, int)} at position 0, with {@code deepPrompts[i]} added to the
     * first prefix positions of block i's input, as {@link #forward(Tensor, Tensor)} does; the
     * cache keeps what the prompted blocks computed, so later steps need no prompts.
     *
     * @param deepPrompts (blocks of this span, batch, prefix <= seq, hidden), or null for a plain step
     */
    public Tensor step(Tensor hidden, KvCache cache, int position, Tensor deepPrompts) {
        if (deepPrompts == null) {
            return step(hidden, cache, position);
        }
        if (position != 0) {
            throw new IllegalArgumentException("Deep prompts go with a session's first step, at position 0, not " + position);
        }
        checkHidden(hidden);
        checkPrompts(deepPrompts, hidden);
        int seq = (int) hidden.size(1);
        checkStep(new SessionStep(hidden, cache, 0), seq);
        cache.rollback(0);
        StepContext context = architecture.context(0, seq, dtype);
        Tensor x = throughBlocks(hidden.to(dtype), (i, in) -> blocks.get(i).forward(
                addPrompt(in, deepPrompts.select(0, i).to(dtype)), List.of(new Segment(0, cache.batch(), cache.layer(i), context))));
        cache.advanceTo(seq);
        return x;
    }

    /**
     * Several sessions' steps as one call: their rows are stacked, so every weight matrix is read
     * once for all of them (decoding is bound by reading weights), while each session attends over
     * its own cache at its own positions. Every step must have the same number of new tokens.
     *
     * @return each session's output, in order
     */
    public List<Tensor> step(List<SessionStep> steps) {
        int seq = -1;
        for (SessionStep s : steps) {
            checkHidden(s.hidden());
            if (seq >= 0 && s.hidden().size(1) != seq) {
                throw new IllegalArgumentException("Batched steps must have equal lengths, got " + seq + " and "
                        + s.hidden().size(1));
            }
            seq = (int) s.hidden().size(1);
            checkStep(s, seq);
        }
        List<StepContext> contexts = new ArrayList<>();
        TensorVector inputs = new TensorVector();
        for (SessionStep s : steps) {
            s.cache().rollback(s.position());
            contexts.add(architecture.context(s.position(), seq, dtype));
            inputs.push_back(s.hidden().to(dtype));
        }
        Tensor x = throughBlocks(steps.size() == 1 ? inputs.get(0) : torch.cat(inputs, 0), (i, in) -> {
            List<Segment> segments = new ArrayList<>(steps.size());
            int row = 0;
            for (int j = 0; j < steps.size(); j++) {
                int rows = steps.get(j).cache().batch();
                segments.add(new Segment(row, rows, steps.get(j).cache().layer(i), contexts.get(j)));
                row += rows;
            }
            return blocks.get(i).forward(in, segments);
        });
        List<Tensor> outputs = new ArrayList<>(steps.size());
        int row = 0;
        for (SessionStep s : steps) {
            s.cache().advanceTo(s.position() + seq);
            outputs.add(steps.size() == 1 ? x : x.narrow(0, row, s.cache().batch()));
            row += s.cache().batch();
        }
        return outputs;
    }

    private void checkStep(SessionStep s, int seq) {
        KvCache cache = s.cache();
        if (s.hidden().size(0) != cache.batch()) {
            throw new IllegalArgumentException("Hidden states have batch " + s.hidden().size(0) + " but the session's cache holds "
                    + cache.batch() + " sequences");
        }
        if (s.position() < 0 || s.position() > cache.length()) {
            throw new IllegalArgumentException("Position " + s.position() + " is ahead of the session's cache, which holds "
                    + cache.length() + " tokens");
        }
        if ((long) s.position() + seq > cache.maxLength()) {
            throw new IllegalArgumentException("Positions up to " + (s.position() + seq) + " exceed the session's max length "
                    + cache.maxLength());
        }
    }

    /**
     * The whole sequence from position 0 with no cache, for training: autograd can follow it.
     *
     * @param hidden (batch, seq, hidden)
     * @return (batch, seq, hidden) in the span's dtype
     */
    public Tensor forward(Tensor hidden) {
        return forward(hidden, null);
    }

    /**
     * As {@link #forward(Tensor)}, with deep prompts (deep prompt tuning): before block i of the
     * span, {@code deepPrompts[i]} is added to the first {@code prefix} positions of its input, as
     * Petals does. Autograd follows both the hidden states and the prompts.
     *
     * @param deepPrompts null, or (blocks of this span, batch, prefix, hidden) with prefix at most the sequence length
     */
    public Tensor forward(Tensor hidden, Tensor deepPrompts) {
        checkHidden(hidden);
        if (deepPrompts != null) {
            checkPrompts(deepPrompts, hidden);
        }
        StepContext step = architecture.context(0, (int) hidden.size(1), dtype);
        return throughBlocks(hidden.to(dtype), (i, in) -> blocks.get(i).forward(
                deepPrompts == null ? in : addPrompt(in, deepPrompts.select(0, i).to(dtype)), null, step));
    }

    /** One block's work: block {@code index} of the span on its input. */
    private interface BlockCall {
        Tensor apply(int index, Tensor input);
    }

    /**
     * Runs the span's blocks in turn, each in its own pointer scope: a block's temporaries are freed
     * when it returns, and its input once the next block has its output. A long prefill then holds
     * one block's activations at a time rather than the whole span's until the step ends ({@code pollen
     * bench local --prefill 2000}, all 22 TinyLlama blocks: 7.2 GB peak resident memory, against
     * 13.4 GB when every block's temporaries lived until the end). The output belongs to the
     * caller's scope; with no scope open, tensors are left to the garbage collector as anywhere else.
     *
     * @param input a tensor this span made (a conversion or a concatenation), never the caller's own
     */
    private Tensor throughBlocks(Tensor input, BlockCall call) {
        PointerScope outer = PointerScope.getInnerScope();
        Tensor x = input;
        for (int i = 0; i < blocks.size(); i++) {
            if (outer == null) {
                x = call.apply(i, x);
                continue;
            }
            Tensor out;
            try (PointerScope scope = new PointerScope()) {
                out = call.apply(i, x);
                outer.attach(out);
            }
            outer.detach(x);   // frees the handle when the outer scope holds it; autograd keeps what it saved
            x = out;
        }
        return x;
    }

    /** {@code x} with {@code prompt} (batch, prefix, hidden) added to its first prefix positions, out of place. */
    private static Tensor addPrompt(Tensor x, Tensor prompt) {
        long prefix = prompt.size(1);
        if (prefix == x.size(1)) {
            return x.add(prompt);
        }
        return torch.cat(new TensorVector(x.narrow(1, 0, prefix).add(prompt), x.narrow(1, prefix, x.size(1) - prefix)), 1);
    }

    private void checkPrompts(Tensor prompts, Tensor hidden) {
        if (prompts.dim() != 4 || prompts.size(0) != blocks.size() || prompts.size(1) != hidden.size(0)
                || prompts.size(2) < 1 || prompts.size(2) > hidden.size(1) || prompts.size(3) != config().hiddenSize()) {
            throw new IllegalArgumentException("Deep prompts must have shape (" + blocks.size() + " blocks, " + hidden.size(0)
                    + " batch, prefix <= " + hidden.size(1) + ", " + config().hiddenSize() + "), got "
                    + java.util.Arrays.toString(Torch.shape(prompts)));
        }
    }

    /** Every block's weights as trainable leaves (see {@link Block#parameters()}). */
    public List<Tensor> parameters() {
        List<Tensor> out = new ArrayList<>();
        for (Block block : blocks) {
            out.addAll(block.parameters());
        }
        return out;
    }

    /** Every block's weights under its Hugging Face names. */
    public java.util.Map<String, Tensor> checkpointTensors() {
        java.util.Map<String, Tensor> out = new java.util.LinkedHashMap<>();
        for (int i = 0; i < blocks.size(); i++) {
            out.putAll(blocks.get(i).checkpointTensors(start + i));
        }
        return out;
    }

    private void checkHidden(Tensor hidden) {
        if (hidden.dim() != 3 || hidden.size(2) != config().hiddenSize() || hidden.size(1) < 1 || hidden.size(0) < 1) {
            throw new IllegalArgumentException("Hidden states must have shape (batch, seq, " + config().hiddenSize()
                    + "), got " + java.util.Arrays.toString(Torch.shape(hidden)));
        }
    }

    @Override
    public void close() {
        if (owner) {
            blocks.forEach(Block::close);
            architecture.close();
        }
    }
}
