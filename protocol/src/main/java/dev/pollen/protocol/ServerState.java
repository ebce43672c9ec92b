package dev.pollen.protocol;

/** Where a server is in its life, as the directory shows it. */
public enum ServerState {
    /** Loading its span: announced so others plan around it, not yet routable. */
    JOINING,
    /** Serving. */
    ONLINE,
    /** Stopping cleanly: finishes or hands back open sessions, takes no new ones. */
    DRAINING;

    public boolean routable() {
        return this == ONLINE;
    }
}
