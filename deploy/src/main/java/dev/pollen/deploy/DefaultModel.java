package dev.pollen.deploy;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;

/**
 * The model the jar carries: a small Llama trained by `pollen train` on the King James Bible
 * (deploy/train-default-model.sh). Checkpoints are memory-mapped from disk, so the first use
 * copies it out of the jar into ~/.cache/pollen/models/default-HASH (HASH of its files, so a newer
 * jar never reuses an older copy).
 */
final class DefaultModel {
    static final String NAME = "pollen-kjv";
    private static final String RESOURCE = "/default-model/";
    private static final List<String> FILES = List.of("config.json", "model.safetensors", "tokenizer.json",
            "tokenizer_config.json");

    private DefaultModel() {
    }

    /** The directory of the default model, extracted on first use. */
    static Path directory() {
        try {
            MessageDigest digest = MessageDigest.getInstance("SHA-256");
            for (String file : FILES) {
                try (InputStream in = open(file)) {
                    byte[] buffer = new byte[1 << 16];
                    int n;
                    while ((n = in.read(buffer)) > 0) {
                        digest.update(buffer, 0, n);
                    }
                }
            }
            String hash = HexFormat.of().formatHex(digest.digest()).substring(0, 12);
            Path dir = Path.of(System.getProperty("user.home"), ".cache", "pollen", "models", NAME + "-" + hash);
            if (!Files.exists(dir.resolve("tokenizer_config.json"))) {
                Path partial = Files.createDirectories(dir.resolveSibling(dir.getFileName() + ".partial-" + ProcessHandle.current().pid()));
                for (String file : FILES) {
                    try (InputStream in = open(file)) {
                        Files.copy(in, partial.resolve(file), StandardCopyOption.REPLACE_EXISTING);
                    }
                }
                try {
                    Files.move(partial, dir, StandardCopyOption.ATOMIC_MOVE);
                } catch (IOException e) {
                    // another process extracted it first
                    if (!Files.exists(dir.resolve("tokenizer_config.json"))) {
                        throw e;
                    }
                }
            }
            return dir;
        } catch (IOException e) {
            throw new IllegalStateException("Cannot extract the default model: " + e.getMessage(), e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static InputStream open(String file) throws IOException {
        InputStream in = DefaultModel.class.getResourceAsStream(RESOURCE + file);
        if (in == null) {
            throw new IOException("the jar carries no " + RESOURCE + file + "; build it with deploy/train-default-model.sh");
        }
        return in;
    }
}
