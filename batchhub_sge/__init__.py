"""batchhub_sge: a batchhub scheduler backend plugin."""
