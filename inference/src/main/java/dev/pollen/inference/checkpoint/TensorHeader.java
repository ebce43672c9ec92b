package dev.pollen.inference.checkpoint;

import java.util.Arrays;

/**
 * One tensor's entry in a safetensors header.
 *
 * @param name  Hugging Face tensor name, e.g. {@code model.layers.3.self_attn.q_proj.weight}
 * @param dtype element type
 * @param shape dimensions, outermost first
 * @param begin byte offset of the data, relative to the end of the header
 * @param end   byte offset one past the data, relative to the end of the header
 */
public record TensorHeader(String name, DType dtype, long[] shape, long begin, long end) {
    public TensorHeader {
        shape = shape.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public long numel() {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    public long byteSize() {
        return end - begin;
    }

    public String shapeString() {
        return Arrays.toString(shape);
    }
}
