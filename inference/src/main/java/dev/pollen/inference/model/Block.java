package dev.pollen.inference.model;

import dev.pollen.inference.quant.DenseLinear;
import dev.pollen.inference.quant.Linear;
import org.bytedeco.pytorch.Tensor;

import java.util.List;

/** One transformer block with its weights. Owns its weight tensors; {@link #close()} frees them. */
public interface Block extends AutoCloseable {
    /**
     * Runs the block on the hidden states of one or more sessions stacked along the batch
     * dimension: the projections and the MLP run once for all rows, attention per segment.
     *
     * @param hidden   (rows, seq, hidden) in the block's dtype, every segment with the same seq
     * @param segments the sessions' rows, in order, covering every row
     * @return (rows, seq, hidden); a new tensor in the caller's pointer scope
     */
    Tensor forward(Tensor hidden, List<Segment> segments);

    /**
     * One session.
     *
     * @param cache null for a whole-sequence forward from position 0 (training), which keeps no state
     */
    default Tensor forward(Tensor hidden, LayerCache cache, StepContext step) {
        return forward(hidden, List.of(new Segment(0, (int) hidden.size(0), cache, step)));
    }

    /** The block's matrix products, in the form the span stores them (dense or quantized). */
    List<Linear> linears();

    /** {@code layer} as a dense weight, or a clear error: a quantized span is frozen. */
    static DenseLinear dense(Linear layer) {
        if (layer instanceof DenseLinear dense) {
            return dense;
        }
        throw new UnsupportedOperationException("A quantized span is frozen: its weights cannot be trained or saved; "
                + "load it without --quant for that");
    }

    /**
     * The weights as the tensors training updates in place (leaves for autograd and the optimizer).
     * Families that cannot be trained from scratch yet say so.
     */
    default List<Tensor> parameters() {
        throw new UnsupportedOperationException("Training a " + getClass().getSimpleName() + " is not supported");
    }

    /**
     * The weights under the Hugging Face names they have as layer {@code index} of a checkpoint (views
     * of {@link #parameters()}, split where the block fuses matrices).
     */
    default java.util.Map<String, Tensor> checkpointTensors(int index) {
        throw new UnsupportedOperationException("Saving a " + getClass().getSimpleName() + " is not supported");
    }

    @Override
    void close();
}
