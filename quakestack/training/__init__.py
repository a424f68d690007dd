"""Training: the input pipeline, the epoch loop, the worker process and evaluation."""
