"""batchhub_slurm: a batchhub scheduler backend plugin."""
