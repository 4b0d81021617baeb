"""Slurm's job states and reason codes, in batchhub's terms.

Kept apart from the backend so the whole mapping can be read (and checked
against Slurm's manual) on one screen.
"""

from __future__ import annotations

from batchhub.jobs import JobState

#: Every job state Slurm 22.05 reports (squeue ``%T``, sacct ``State``).
STATES: dict[str, JobState] = {
    "PENDING": JobState.PENDING,
    "REQUEUED": JobState.PENDING,  # back in the queue after a requeue
    "REQUEUE_FED": JobState.PENDING,
    "REQUEUE_HOLD": JobState.HELD,
    "RESV_DEL_HOLD": JobState.HELD,
    "CONFIGURING": JobState.STARTING,  # nodes being readied
    "RUNNING": JobState.RUNNING,
    "RESIZING": JobState.RUNNING,
    "SIGNALING": JobState.RUNNING,
    "SUSPENDED": JobState.SUSPENDED,
    "STOPPED": JobState.SUSPENDED,
    "COMPLETING": JobState.STOPPING,
    "STAGE_OUT": JobState.STOPPING,
    "COMPLETED": JobState.COMPLETED,
    "CANCELLED": JobState.CANCELLED,
    "FAILED": JobState.FAILED,
    "BOOT_FAIL": JobState.FAILED,
    "NODE_FAIL": JobState.FAILED,
    "OUT_OF_MEMORY": JobState.FAILED,
    "PREEMPTED": JobState.FAILED,
    "SPECIAL_EXIT": JobState.FAILED,
    "REVOKED": JobState.FAILED,
    "TIMEOUT": JobState.TIMEOUT,
    "DEADLINE": JobState.TIMEOUT,
}

#: Pending reasons that mean someone holds the job.
HOLD_REASONS = frozenset({"JobHeldUser", "JobHeldAdmin", "job requeued in held state"})

#: The plain words every backend shares for why a job waits.
BUSY = "The cluster is busy"
RESOURCES = "Waiting for resources"
PRIORITY = "Waiting behind higher-priority jobs"
HELD = "Held"
NEVER = "Your request can never run here"

#: Why a job waits or ended, as a sentence for the spawn page. Waiting
#: reasons start with the shared plain words above.
REASONS: dict[str, str] = {
    "Resources": f"{RESOURCES}: the cores, memory or GPUs it asks for are in use",
    "Priority": PRIORITY,
    "JobHeldUser": f"{HELD} by its owner (scontrol release releases it)",
    "JobHeldAdmin": f"{HELD} by an administrator",
    "job requeued in held state": f"{HELD}: requeued and held (scontrol release releases it)",
    "BeginTime": "Waiting for its requested start time",
    "Dependency": "Waiting for another job to finish",
    "DependencyNeverSatisfied": f"{NEVER}: it waits for another job that will never finish as needed",
    "ReqNodeNotAvail": f"{RESOURCES}: the nodes it needs are unavailable (down, drained or reserved)",
    "PartitionConfig": f"{NEVER}: no node in the partition has that many cores, that much memory or "
    "that many GPUs",
    "PartitionNodeLimit": f"{NEVER}: it asks for more nodes than the partition allows, or they are down",
    "PartitionTimeLimit": f"{NEVER}: its run time exceeds the partition's limit",
    "PartitionDown": f"{RESOURCES}: the partition is down",
    "PartitionInactive": f"{RESOURCES}: the partition is inactive",
    "NodeDown": f"{RESOURCES}: a node it needs is down",
    "BadConstraints": f"{NEVER}: no node satisfies its constraints",
    "InvalidAccount": f"{NEVER}: its account is invalid",
    "InvalidQOS": f"{NEVER}: its QOS is invalid",
    "QOSJobLimit": f"{RESOURCES}: its QOS has reached its maximum number of jobs",
    "QOSResourceLimit": f"{RESOURCES}: its QOS has reached a resource limit",
    "QOSTimeLimit": f"{RESOURCES}: its QOS has reached its time limit",
    "AssocGrpJobsLimit": f"{RESOURCES}: your account has reached its maximum number of jobs",
    "AssociationJobLimit": f"{RESOURCES}: your account has reached its maximum number of jobs",
    "AssociationResourceLimit": f"{RESOURCES}: your account has reached a resource limit",
    "AssociationTimeLimit": f"{RESOURCES}: your account has reached its time limit",
    "Licenses": f"{RESOURCES}: waiting for a license",
    "Reservation": "Waiting for its reservation to become active",
    "Prolog": "Starting: the site's start-up script (prolog) is still running",
    "Cleaning": "Being requeued and still cleaning up its previous run",
    "WaitingForScheduling": "Waiting for the scheduler to look at it",
    "JobLaunchFailure": "the job could not be launched",
    "NonZeroExitCode": "the job exited with an error",
    "TimeLimit": "the job reached its time limit",
    "SystemFailure": "a failure of Slurm, a file system or the network",
    "InactiveLimit": "the job reached the system's inactivity limit",
    "BootFail": "the node failed to boot",
    "OutOfMemory": "the job ran out of memory",
}

#: Reasons for terminal states where the reason code says little.
STATE_REASONS: dict[str, str] = {
    "NODE_FAIL": "the node running the job failed",
    "OUT_OF_MEMORY": "the job ran out of memory",
    "PREEMPTED": "the job was preempted by a higher-priority job",
    "BOOT_FAIL": "the node failed to boot",
    "DEADLINE": "the job reached its deadline",
    "TIMEOUT": "the job reached its time limit",
    "CANCELLED": "the job was cancelled",
    "REVOKED": "the job was revoked (it ran on another cluster)",
    "SPECIAL_EXIT": "the job ended in a special exit state",
}


def human_reason(code: str) -> str:
    """A sentence for a reason code; unknown codes pass through as they
    are (``QOSMaxCpuPerUserLimit`` still tells an admin something)."""
    code = code.strip()
    if code in ("", "None", "(null)"):
        return ""
    return REASONS.get(code, code)
