"""fakepbs: a stand-in for OpenPBS's ``qsub``, ``qstat`` and ``qdel`` that
runs each job script with bash as a local process, for tests and demos
on a machine without PBS. It prints what OpenPBS prints (the formats the
backend parses), so a hub on it runs the plugin's real code paths.

Installed with batchhub-pbs as ``fakepbs-qsub``, ``fakepbs-qstat`` and
``fakepbs-qdel`` (or ``python -m fakepbs [--spool DIR] qsub ARGS...``);
point ``c.PBSBackend.programs`` at them. Jobs live in the spool directory
``$FAKEPBS_SPOOL`` (default /tmp/fakepbs-spool). See ``fakepbs.server``
for what it keeps there and how.
"""
