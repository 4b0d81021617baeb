"""batchhub_fake: a batchhub scheduler backend plugin."""
