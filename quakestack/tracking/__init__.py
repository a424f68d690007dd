"""The tracking tools users already own: TensorBoard event files of every training job, and an MLflow export."""
