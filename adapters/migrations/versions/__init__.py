"""One module per schema version, in order; each says what it changes and why."""
