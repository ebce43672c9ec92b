package dev.pollen.scheduler.simulation;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

import java.util.ArrayList;
import java.util.List;

/**
 * Produces the table of docs/simulation.md (about 15 s on two cores), until {@code pollen simulate}
 * does: {@code mvn -o -q -pl scheduler test -Dtest=StandardScenariosTable -Dpollen.simulation.table=true};
 * the table lands in target/surefire-reports/*StandardScenariosTable-output.txt.
 */
@EnabledIfSystemProperty(named = "pollen.simulation.table", matches = "true")
class StandardScenariosTable {
    @Test
    @DisplayName("The six standard scenarios run and their table prints")
    void printTable() {
        List<SimulationRun> runs = new ArrayList<>();
        for (Scenario scenario : Scenario.standard()) {
            runs.add(SwarmSimulator.runTimed(scenario));
        }
        System.out.println(ReportTable.formatRuns(runs));
    }
}
