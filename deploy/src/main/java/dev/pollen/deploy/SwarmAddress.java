package dev.pollen.deploy;

import dev.pollen.node.client.SwarmConnection;
import dev.pollen.node.cluster.SwarmCluster;
import dev.pollen.protocol.trust.SwarmAuthority;
import dev.pollen.scheduler.routing.ServerFilter;
import picocli.CommandLine;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;

import java.util.List;

/** Where a swarm is, for a command that uses it as a client: its directory members and its name. */
public final class SwarmAddress {
    @Option(names = "--join", split = ",", paramLabel = "HOST:PORT", description = "Directory members of a swarm to use.")
    List<String> join;

    @Option(names = "--swarm", defaultValue = SwarmCluster.DEFAULT_SWARM, description = "Swarm name (default: ${DEFAULT-VALUE}).")
    String swarm;

    @Option(names = "--swarm-key", paramLabel = "KEY", description = "A private swarm's public key (Base64, or a file holding "
            + "it, as `pollen swarm init` prints it): use only the servers it admitted.")
    String swarmKey;

    /** Whether --join was given. */
    public boolean joining() {
        return join != null;
    }

    /**
     * For a command that works only on a swarm: without --join it is a usage error, reported as
     * picocli reports a missing required option.
     *
     * @param command the command line of the command that needs it
     */
    public void require(CommandLine command) {
        if (join == null) {
            throw new ParameterException(command, "Missing required option: '--join=HOST:PORT'");
        }
    }

    /** The directory members to join. */
    public List<String> members() {
        return join;
    }

    /** The swarm's name. */
    public String name() {
        return swarm;
    }

    /** The private swarm's admin public key, or null for an open swarm. */
    public byte[] swarmKey() {
        return swarmKey == null ? null : SwarmAuthority.parsePublicKey(swarmKey);
    }

    /** Connects a client to the swarm, routing only through the servers {@code filter} lets through. */
    public SwarmConnection connect(ServerFilter filter) {
        return SwarmConnection.open(swarm, join, filter, swarmKey());
    }
}
