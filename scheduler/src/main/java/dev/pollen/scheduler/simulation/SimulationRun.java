package dev.pollen.scheduler.simulation;

/**
 * A report and the wall time it took. Kept apart from the report so that one seed always gives
 * an equal report.
 */
public record SimulationRun(SimulationReport report, double wallSeconds) {
}
