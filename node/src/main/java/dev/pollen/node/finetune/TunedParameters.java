package dev.pollen.node.finetune;

import dev.pollen.inference.checkpoint.SafetensorsFile;
import dev.pollen.inference.checkpoint.SafetensorsWriter;
import dev.pollen.inference.checkpoint.TensorHeader;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.tensor.Torch;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A client's trainable parameters, float32, and nothing of the model's own: prefix embeddings
 * {@code (prefix, hidden)}, deep prompts {@code (blocks, prefix, hidden)}, or an adapter after
 * block k ({@code down (hidden, rank)}, {@code up (rank, hidden)}). Saved as safetensors whose
 * tensor names say the mode: {@code prompt.prefix}, {@code prompt.deep}, {@code adapter.K.down},
 * {@code adapter.K.up}.
 */
public final class TunedParameters {
    private final TuningMode mode;
    private final int adapterAfter;
    private final Tensor prefix;
    private final Tensor deep;
    private final Tensor down;
    private final Tensor up;

    private TunedParameters(TuningMode mode, int adapterAfter, Tensor prefix, Tensor deep, Tensor down, Tensor up) {
        this.mode = mode;
        this.adapterAfter = adapterAfter;
        this.prefix = prefix;
        this.deep = deep;
        this.down = down;
        this.up = up;
        for (Tensor t : trainable()) {
            t.set_requires_grad(true);
        }
    }

    /**
     * Fresh parameters: prompts drawn from N(0, 0.02^2) (deep ones from N(0, 0.01^2)), the adapter's
     * down projection from N(0, 1/hidden) and its up projection zero, so training starts from the model.
     *
     * @param prefixLength  prompt tokens (ptune and deep-ptune)
     * @param adapterAfter  the adapter runs after this many blocks (adapter mode), in (0, blocks)
     * @param rank          the adapter's bottleneck width
     */
    public static TunedParameters create(TuningMode mode, ModelConfig config, int prefixLength, int adapterAfter, int rank,
                                         long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        int hidden = config.hiddenSize();
        return switch (mode) {
            case PTUNE -> new TunedParameters(mode, 0, gaussian(random, 0.02, prefixLength(prefixLength), hidden), null, null, null);
            case DEEP_PTUNE -> new TunedParameters(mode, 0, gaussian(random, 0.02, prefixLength(prefixLength), hidden),
                    gaussian(random, 0.01, config.numLayers(), prefixLength, hidden), null, null);
            case ADAPTER -> {
                if (adapterAfter <= 0 || adapterAfter >= config.numLayers()) {
                    throw new IllegalArgumentException("The adapter must sit between blocks: after 1 to " + (config.numLayers() - 1)
                            + " blocks, got " + adapterAfter);
                }
                if (rank < 1) {
                    throw new IllegalArgumentException("The adapter's rank must be at least 1, got " + rank);
                }
                yield new TunedParameters(mode, adapterAfter, null, null, gaussian(random, 1 / Math.sqrt(hidden), hidden, rank),
                        torch.zeros(new long[] {rank, hidden}, Torch.options(ScalarType.Float)));
            }
        };
    }

    private static int prefixLength(int length) {
        if (length < 1) {
            throw new IllegalArgumentException("A prompt needs at least one token, got " + length);
        }
        return length;
    }

    private static Tensor gaussian(SplittableRandom random, double std, long... shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        float[] values = new float[Math.toIntExact(n)];
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) (random.nextGaussian() * std);
        }
        return Torch.floats(values, shape);
    }

    public TuningMode mode() {
        return mode;
    }

    /** Prompt tokens prepended to the input; 0 for an adapter. */
    public int prefixLength() {
        return prefix == null ? 0 : (int) prefix.size(0);
    }

    public int adapterAfter() {
        return adapterAfter;
    }

    /** (prefix, hidden) or null. */
    public Tensor prefix() {
        return prefix;
    }

    /** (blocks, prefix, hidden) or null. */
    public Tensor deep() {
        return deep;
    }

    public Tensor down() {
        return down;
    }

    public Tensor up() {
        return up;
    }

    /** The tensors an optimizer steps. */
    public List<Tensor> trainable() {
        List<Tensor> out = new ArrayList<>();
        for (Tensor t : new Tensor[] {prefix, deep, down, up}) {
            if (t != null) {
                out.add(t);
            }
        }
        return out;
    }

    /** The adapter: h + (h @ down) @ up, in float32. */
    public Tensor adapt(Tensor hidden) {
        Tensor h = hidden.to(ScalarType.Float);
        return h.add(h.matmul(down).matmul(up));
    }

    public void save(Path file) throws IOException {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        if (prefix != null) {
            tensors.put("prompt.prefix", prefix.detach());
        }
        if (deep != null) {
            tensors.put("prompt.deep", deep.detach());
        }
        if (down != null) {
            tensors.put("adapter." + adapterAfter + ".down", down.detach());
            tensors.put("adapter." + adapterAfter + ".up", up.detach());
        }
        SafetensorsWriter.write(file, tensors, Map.of("format", "pollen-tuned", "mode", mode.cliName()));
    }

    /** Loads parameters saved by {@link #save}, checking they fit {@code config}. */
    public static TunedParameters load(Path file, ModelConfig config) {
        try (SafetensorsFile st = SafetensorsFile.open(file)) {
            Map<String, TensorHeader> headers = st.tensors();
            Tensor prefix = headers.containsKey("prompt.prefix") ? read(st, "prompt.prefix") : null;
            Tensor deep = headers.containsKey("prompt.deep") ? read(st, "prompt.deep") : null;
            String downName = headers.keySet().stream().filter(n -> n.startsWith("adapter.") && n.endsWith(".down")).findFirst()
                    .orElse(null);
            TuningMode mode = downName != null ? TuningMode.ADAPTER : deep != null ? TuningMode.DEEP_PTUNE
                    : prefix != null ? TuningMode.PTUNE : null;
            if (mode == null) {
                throw new IllegalArgumentException(file + " holds no tuned parameters (prompt.prefix, prompt.deep or adapter.K.*)");
            }
            int after = 0;
            Tensor down = null;
            Tensor up = null;
            if (downName != null) {
                after = Integer.parseInt(downName.substring("adapter.".length(), downName.length() - ".down".length()));
                down = read(st, downName);
                up = read(st, "adapter." + after + ".up");
            }
            long hidden = config.hiddenSize();
            if ((prefix != null && prefix.size(1) != hidden) || (deep != null && (deep.size(0) != config.numLayers()
                    || deep.size(2) != hidden)) || (down != null && (down.size(0) != hidden || after >= config.numLayers()))) {
                throw new IllegalArgumentException(file + " was trained for another model shape (hidden " + hidden + ", "
                        + config.numLayers() + " blocks)");
            }
            return new TunedParameters(mode, after, prefix, deep, down, up);
        }
    }

    private static Tensor read(SafetensorsFile st, String name) {
        TensorHeader header = st.header(name);
        return Torch.floats(st.readFloats(name), header.shape());
    }
}
