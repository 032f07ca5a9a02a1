"""Training: the loop, its callbacks, the stopping rules and the assembly of a run from its config."""
