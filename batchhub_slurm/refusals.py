"""What sbatch says when it does not take a job, as advice for the person
at the spawn page (matched case-insensitively in its output)."""

from __future__ import annotations

#: sbatch's words when the request may have reached slurmctld but its answer
#: did not come back (a frozen or overloaded controller).
UNCERTAIN_ERRORS = ("Socket timed out on send/recv operation", "Zero Bytes were transmitted or received")

#: sbatch's refusals, and what the user can do about each.
SUBMIT_ERRORS: tuple[tuple[str, str], ...] = (
    ("Invalid partition name", "Slurm has no such partition. Choose another partition (queue) in the form."),
    (
        "Requested node configuration is not available",
        "No node in the chosen partition has that many cores, that much memory or that many GPUs. "
        "Ask for less, or choose another partition.",
    ),
    (
        "Invalid account or account/partition combination",
        "You cannot charge jobs to that account (project) in that partition. "
        "Choose one of your accounts, or ask your administrator to add you.",
    ),
    (
        "Invalid qos specification",
        "The quality of service (QOS) is not available to you. Ask your administrator.",
    ),
    (
        "Job violates accounting/QOS policy",
        "The job exceeds a limit of your account or QOS (number of jobs, cores, memory or run time). "
        "Stop another job or ask for less.",
    ),
    (
        "QOSMax",
        "The job exceeds a per-job limit of your QOS. "
        "Ask for fewer cores, less memory or a shorter run time.",
    ),
    (
        "Requested time limit is invalid",
        "The run time is longer than the partition allows. Ask for a shorter run time.",
    ),
    (
        "Memory required by task is not available",
        "No node in the chosen partition has that much memory. Ask for less memory.",
    ),
    (
        "Invalid generic resource (gres) specification",
        "The chosen partition has no GPUs of that kind. Ask for no GPUs or choose a GPU partition.",
    ),
    (
        "Invalid Trackable RESource (TRES) specification",
        "The chosen partition has no GPUs of that kind. Ask for no GPUs or choose a GPU partition.",
    ),
    (
        "Unable to contact slurm controller",
        "The Slurm controller is not answering. "
        "Try again in a minute; if it persists, tell your administrator.",
    ),
    ("Access/permission denied", "Slurm refused to run jobs for your account. Ask your administrator."),
)
