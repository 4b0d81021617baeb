"""The launcher's line in the job's times file, which the jobs page reads:
the job's start, its wall time's end and every node it runs on."""

from __future__ import annotations

from batchhub.jobs_page import parse_times
from batchhub.singleuser import job_nodes, times_line


def test_start_end_and_every_node_reach_the_jobs_page() -> None:
    nodes = job_nodes({"BATCHHUB_NODES": "node001,node002.cluster,gpu-03"})
    line = times_line(1_700_000_000, 1_700_003_600, nodes)
    assert "on node001, node002.cluster, gpu-03;" in line
    found = parse_times(f"some earlier output\n{line}\n")
    assert found is not None
    assert (found.start, found.end, found.nodes) == (1_700_000_000, 1_700_003_600, nodes)


def test_a_line_without_nodes_or_an_end_still_reads() -> None:
    found = parse_times(times_line(1_700_000_000, None))
    assert found is not None and found.end is None and found.nodes == []
    # an older launcher's line
    assert parse_times("[batchhub-times start=5 end=9]") == (5, 9, [])


def test_a_list_with_anything_but_host_names_is_not_carried() -> None:
    assert job_nodes({"BATCHHUB_NODES": "vm,vm2,"}) == ["vm", "vm2"]
    for odd in ("vm,vm2;touch /tmp/x", "vm,$(id)", "../etc", "vm,-flag", "cn1,cn[3-4],y"):
        assert job_nodes({"BATCHHUB_NODES": odd}) == [], odd  # never a part shown as the whole
    assert job_nodes({}) == []


def test_a_thousand_nodes_are_cut_short_and_still_read_back() -> None:
    names = [f"node{i:04d}.hpc.example.ac.uk" for i in range(1000)]
    nodes = job_nodes({"BATCHHUB_NODES": ",".join(names)})
    assert nodes[:3] == names[:3] and nodes[-1].startswith("+")
    assert len(nodes) - 1 + int(nodes[-1][1:]) == 1000
    line = times_line(1_700_000_000, 1_700_003_600, nodes)
    assert len(line.encode()) < 4096, "the jobs page reads the last 4096 bytes of the times file"
    found = parse_times(line[-4096:])
    assert found is not None and found.nodes == nodes
    assert "on node0000.hpc.example.ac.uk and 999 other nodes;" in line
