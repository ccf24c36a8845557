"""The deploy Lambda (deployer.py, zipped alone for AWS Lambda) and the registry CLI."""
