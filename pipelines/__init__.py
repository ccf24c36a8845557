"""The cloud path: the SageMaker pipeline definition, its CLIs and the deploy Lambda."""
