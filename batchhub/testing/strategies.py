"""Hypothesis strategies for testing backends: resource requests (valid and
hostile) and garbage scheduler output.

    from hypothesis import given
    from batchhub.testing import strategies

    @given(strategies.resource_requests())
    def test_directives(request): ...

Needs hypothesis (``pip install batchhub[testing]``).
"""

from __future__ import annotations

from collections.abc import Iterable

from hypothesis import strategies as st

from batchhub.jobs import ResourceRequest

__all__ = ["garbage_output", "hostile_names", "names", "resource_requests"]

#: Texts a broken or impostor scheduler command prints.
CANNED_GARBAGE = (
    "",
    " ",
    "\n\n",
    "\x00\x17<html>502 Bad Gateway</html>\n",
    "Segmentation fault (core dumped)\n",
    "error: connection refused\n",
    "Killed\n",
    "{}",
    "[]",
    "null",
    '{"Jobs": {}}',
    "<?xml version='1.0'?>\n<job_info></job_info>\n",
    "<?xml version='1.0'?>\n<job_info><queue_info>",
    "||||||\n",
    "JOBID STATE\n",
    "COMPLETED\nFAILED\nCANCELLED\nTIMEOUT\n",
    "Job has finished\n",
    "exit_status = 0\njob_state = F\n",
    "\ufeff\u202e",
)


def names() -> st.SearchStrategy[str]:
    """Queue, partition and project names a scheduler accepts."""
    return st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,30}", fullmatch=True)


def hostile_names() -> st.SearchStrategy[str]:
    """Values a user might type where a name belongs: line breaks, another
    directive, shell syntax, options."""
    tricks = st.sampled_from(
        [
            "a\n#SBATCH --uid=0",
            "a\r#$ -u root",
            "q; rm -rf ~",
            "$(id)",
            "`id`",
            "-V",
            "--export=ALL",
            "a b",
            "a'b",
            'a"b',
            "a\x00b",
            "\u2028",
        ]
    )
    return st.one_of(tricks, st.text(min_size=1, max_size=40))


def resource_requests(hostile: bool = False) -> st.SearchStrategy[ResourceRequest]:
    """``ResourceRequest`` values as the form's validation lets them
    through; ``hostile=True`` also puts hostile text in the names."""
    name = st.one_of(names(), hostile_names()) if hostile else names()
    return st.builds(
        ResourceRequest,
        cores=st.integers(min_value=1, max_value=256),
        memory_mb=st.none() | st.integers(min_value=1, max_value=4_000_000),
        gpus=st.integers(min_value=0, max_value=16),
        runtime_s=st.none() | st.integers(min_value=1, max_value=30 * 86400),
        queue=st.none() | name,
        project=st.none() | name,
    )


def garbage_output(vocabulary: Iterable[str] = ()) -> st.SearchStrategy[str]:
    """Scheduler output that is broken in the ways real output breaks:
    empty, truncated, interleaved with warnings, in another format, or
    random. ``vocabulary`` (recorded outputs of the scheduler) makes the
    garbage look like the real thing: their lines shuffled, cut and mixed
    with noise."""
    recorded = [text for text in vocabulary if text]
    lines = sorted({line for text in recorded for line in text.splitlines() if line.strip()})
    pieces: list[st.SearchStrategy[str]] = [
        st.sampled_from(CANNED_GARBAGE),
        st.text(max_size=300),
        st.text(alphabet=st.characters(codec="ascii"), max_size=300),
    ]
    if recorded:
        pieces.append(
            st.sampled_from(recorded).flatmap(
                lambda text: st.integers(min_value=0, max_value=len(text)).map(lambda n: text[:n])
            )
        )
    if lines:
        noise = st.one_of(st.sampled_from(lines), st.text(max_size=60), st.sampled_from(CANNED_GARBAGE))
        pieces.append(st.lists(noise, max_size=8).map("\n".join))
    return st.one_of(pieces)
