package dev.pollen.deploy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.pollen.scheduler.simulation.ReportTable;
import dev.pollen.scheduler.simulation.Scenario;
import dev.pollen.scheduler.simulation.SimulationRun;
import dev.pollen.scheduler.simulation.SwarmSimulator;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "simulate", mixinStandardHelpOptions = true,
        description = {"Run the scheduler's block selection, rebalancing and routing on a simulated swarm.",
                "The simulation is event-driven (seconds of wall time) and prints throughput against its upper bound, " +
                "route latency and uncovered blocks. Without options: the six standard scenarios of docs/simulation.md."})
final class SimulateCommand implements Callable<Integer> {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--scenario", description = "One standard scenario by name (see docs/simulation.md).")
    String scenario;

    @Option(names = "--servers", description = "A custom scenario: this many servers.")
    Integer servers;

    @Option(names = "--blocks", defaultValue = "80", description = "Custom scenario: blocks of the model (default: ${DEFAULT-VALUE}).")
    int blocks;

    @Option(names = "--churn", defaultValue = "0", description = "Custom scenario: departures per server per hour (default: ${DEFAULT-VALUE}).")
    double churn;

    @Option(names = "--hours", defaultValue = "1", description = "Custom scenario: simulated hours (default: ${DEFAULT-VALUE}).")
    double hours;

    @Option(names = "--seed", defaultValue = "1", description = "Custom scenario: seed (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write the reports as JSON.")
    Path json;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        List<Scenario> scenarios = servers != null
                ? List.of(Scenario.of("custom", servers, blocks, churn, hours * 3600, seed))
                : scenario != null ? List.of(Scenario.standard(scenario)) : Scenario.standard();
        List<SimulationRun> runs = new ArrayList<>();
        for (Scenario s : scenarios) {
            err.printf("Simulating %s ...%n", s.name());
            err.flush();
            runs.add(SwarmSimulator.runTimed(s));
        }
        out.println(ReportTable.formatRuns(runs));
        if (json != null) {
            new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(json.toFile(), runs);
        }
        return 0;
    }
}
