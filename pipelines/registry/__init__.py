"""The Model Registry as ML engineers use it: the ``scones-registry`` CLI and what it reads and changes."""
