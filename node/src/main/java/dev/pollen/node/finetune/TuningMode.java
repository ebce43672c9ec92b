package dev.pollen.node.finetune;

/** What a client trains while the servers' weights stay frozen. */
public enum TuningMode {
    /** Trainable embeddings prepended to the input (Lester et al., 2021). */
    PTUNE("ptune"),
    /** Trainable embeddings prepended to the input and a trainable prompt added before every block (P-Tuning v2). */
    DEEP_PTUNE("deep-ptune"),
    /** A small residual bottleneck the client runs between two spans: h + up(down(h)), with up starting at zero. */
    ADAPTER("adapter");

    private final String cliName;

    TuningMode(String cliName) {
        this.cliName = cliName;
    }

    public String cliName() {
        return cliName;
    }

    public static TuningMode parse(String name) {
        for (TuningMode mode : values()) {
            if (mode.cliName.equals(name)) {
                return mode;
            }
        }
        throw new IllegalArgumentException("Unknown tuning mode '" + name + "'; use ptune, deep-ptune or adapter");
    }
}
