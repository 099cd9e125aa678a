"""The pure kernel: immutable state, pure transitions, and the invariants as contracts."""
