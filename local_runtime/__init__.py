"""The laptop runtime: local AWS APIs, the pipeline executor, the trainer and the endpoint."""
