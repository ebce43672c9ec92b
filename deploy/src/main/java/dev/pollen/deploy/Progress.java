package dev.pollen.deploy;

import java.io.PrintWriter;

/** A one-line progress bar on the terminal's error stream: {@code Loading blocks [####    ] 11/22}. */
public final class Progress {
    private static final int WIDTH = 30;
    private final PrintWriter out;
    private final String label;
    private final int total;
    private final long startNanos = System.nanoTime();

    public Progress(PrintWriter out, String label, int total) {
        this.out = out;
        this.label = label;
        this.total = total;
    }

    public void update(int done) {
        update(done, "");
    }

    /** As {@link #update(int)}, with a note after the count (a loss, a rate). */
    public void update(int done, String note) {
        int filled = total <= 0 ? WIDTH : Math.min(WIDTH, done * WIDTH / total);
        out.printf("\r%s [%s%s] %d/%d%s", label, "#".repeat(filled), " ".repeat(WIDTH - filled), done, total,
                note.isEmpty() ? "" : "  " + note);
        if (done >= total) {
            out.printf(" in %.1f s%n", (System.nanoTime() - startNanos) / 1e9);
        }
        out.flush();
    }
}
