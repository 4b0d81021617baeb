"""batchhub_pbs: OpenPBS / PBS Pro for batchhub, as a third-party plugin."""
