"""What the stages share, none of it run on its own: settings (config), artifacts and their provenance (artifacts,
files), logging and the stage's start-up (log, runtime), the training loop (training, distributed), scoring
(metrics, scoring), health checks (health), figures and pages (plotting, pages), the code key of the cache
(code_key), the runs of a workflow (runs), the sweep's point names (sweep_points) and fault injection for the tests
(faults)."""
