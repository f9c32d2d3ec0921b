"""Pure detectors: ``(state, reading, now) -> (state, events)``; no I/O, no wall clock."""
