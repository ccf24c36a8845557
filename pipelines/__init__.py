"""The cloud path: the SageMaker pipeline definition and its CLIs, and the Model Registry CLI."""
