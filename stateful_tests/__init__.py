"""Model checking: Hypothesis state machines, the reference model, and the seed's known-bad rules."""
