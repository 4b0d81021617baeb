"""A sample of hostile option values through a real JupyterHub: its REST
API (``POST /hub/api/users/alice/server``) and its spawn form (``POST
/hub/spawn/alice``, logged in as alice).

The in-process fuzz (tests/web/test_web_fuzz_options.py) tries thousands of
values through the spawner's own code; this sample checks that the real
hub, its JSON decoding, its form handling and its answers agree: every
request is refused with a message naming the field and no traceback, and
no server or job appears; or it starts a job whose script (read from the
fake scheduler's spool) holds only allow-listed directives, which is then
stopped.
"""

from __future__ import annotations

import html
import importlib.util
import json
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from batchhub.resources import ResourceForm, parse_options
from batchhub.testing import missing
from batchhub.testing.hub import RealHub, hub_prerequisites, login, shared_state_dir

pytestmark = pytest.mark.hub


def _load_fuzz() -> Any:
    """The in-process fuzz's site, allow-list and helpers (one definition)."""
    path = Path(__file__).resolve().parents[1] / "web" / "test_web_fuzz_options.py"
    spec = importlib.util.spec_from_file_location("batchhub_fuzz_options_for_hub", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


fuzz = _load_fuzz()
USER = fuzz.USER

#: (field or key, value): each sent as ``{"user_options": {key: value}}`` and
#: as the form's field (with "Advanced" chosen, unless the key is the profile).
HOSTILE: list[tuple[str, Any]] = [
    ("cores", 99),
    ("cores", -1),
    ("cores", 1e306),
    ("cores", 10**400),
    ("cores", float("nan")),
    ("cores", float("inf")),
    ("cores", "0x10"),
    ("cores", "4; rm -rf ~"),
    ("cores", [1, 2]),
    ("cores", {"$gt": 1}),
    ("cores", True),
    ("cores", "$(touch /tmp/pwned)"),
    ("memory", "4G\n#FAKE --mem=999999"),
    ("memory", "4G\r#$ -l h_vmem=999G"),
    ("memory", "1e306"),
    ("memory", "999999999T"),
    ("memory", "4 G"),
    ("memory", "`id`"),
    ("memory", "65G"),
    ("memory", -1),
    ("gpus", 5),
    ("gpus", "1\u2028#SBATCH --gres=gpu:8"),
    ("gpus", 2.5),
    ("runtime", "99:00:00"),
    ("runtime", "1h\n#$ -l h_rt=99:00:00"),
    ("runtime", "1e400"),
    ("runtime", "13h"),
    ("queue", "all.q\n#$ -u root"),
    ("queue", "-V"),
    ("queue", "a b"),
    ("queue", "q;id"),
    ("queue", "x" * 65),
    ("queue", "\ud800"),
    ("queue", "gpu\x00"),
    ("project", "--account=root"),
    ("project", "$(id)"),
    ("project", "p\u2029#FAKE --cores=64"),
    ("project", ["a", "b"]),
    ("profile", "huge"),
    ("profile", "small\n"),
    ("profile", {"name": "gpu"}),
    ("profile", "#SBATCH --time=99:00:00"),
    ("Cores", 2),
    ("user_options", {"cores": 64}),
    ("__proto__", {"admin": True}),
    ("opt-cores", 4),
    # digits, but not 0-9: refused, as the form's own core-hours line reads only 0-9
    ("cores", "\u0663"),  # Arabic-Indic 3
    ("runtime", "\u0661:\u0663\u0660"),  # 1:30 in Arabic-Indic digits
]
#: Values that are taken: each starts a job, whose script is checked, then stopped.
TAKEN: list[tuple[str, Any]] = [
    ("queue", "gpu"),  # the queue with wider limits
    ("profile", "small"),
]
SAMPLE = HOSTILE + TAKEN
#: REST bodies the hub itself refuses before the spawner sees them.
RAW_BODIES = [
    '{"user_options": {"cores": ' + "9" * 5001 + "}}",  # more digits than json.loads takes
    '{"user_options": ["cores", 64]}',
    '{"user_options": "cores=64"}',
]
HUB_SAYS = ("Invalid JSON in body of request", "user_options must be an object or null")


@pytest.fixture(scope="module")
def hub() -> Iterator[RealHub]:
    problem = hub_prerequisites()
    if problem:
        missing(problem)
    state = shared_state_dir()
    config = "".join(f"c.ResourceForm.{key} = {value!r}\n" for key, value in fuzz.SITE.items())
    real = RealHub(state, backend="fake", extra_config=config)
    real.start()
    try:
        real.api("POST", "users", json={"usernames": [USER]})
        yield real
    finally:
        try:
            if real.server(USER) is not None:
                real.api("DELETE", f"users/{USER}/server")
                real.wait_stopped(USER)
        finally:
            real.stop()
            shutil.rmtree(state, ignore_errors=True)


def refused_by_name(message: str, keys: list[str]) -> bool:
    message = message.removeprefix(fuzz.REFUSED)
    return fuzz.names_a_key(message, keys)


def check_spawned(hub: RealHub, previous_job: str | None) -> str:
    """The job the hub just submitted has an allow-listed script; stop it."""
    job_id = hub.wait_for(
        "the job to be submitted",
        lambda: (job := hub.spawner_state(USER).get("job_id")) and job != previous_job and job,
        60,
    )
    server = hub.server(USER)
    assert server is not None
    options = server["user_options"]
    request = parse_options(ResourceForm(**fuzz.SITE), options)
    script = (hub.state_dir / "fake-spool" / str(job_id) / "script").read_text()
    patterns = fuzz.shapes("fake", f"{hub.workdir_base(USER)}/default", hub.job_prefix)
    fuzz.check_script("fake", script, ResourceForm(**fuzz.SITE), request, patterns)
    r = hub.api("DELETE", f"users/{USER}/server")
    assert r.status_code in (202, 204), r.text
    hub.wait_stopped(USER)
    return str(job_id)


def test_hostile_values_through_the_rest_api(hub: RealHub) -> None:
    jobs_before = hub.live_jobs()
    last_job = hub.spawner_state(USER).get("job_id")
    refused = spawned = 0
    for key, value in SAMPLE:
        body = json.dumps({"user_options": {key: value}})
        r = hub.api("POST", f"users/{USER}/server", data=body, headers={"Content-Type": "application/json"})
        assert "Traceback" not in r.text, r.text
        if r.status_code in (201, 202):
            last_job = check_spawned(hub, last_job)
            spawned += 1
            continue
        assert r.status_code == 400, (key, value, r.status_code, r.text)
        assert refused_by_name(r.json()["message"], [key]), (key, r.json())
        assert hub.server(USER) is None
        refused += 1
    for body in RAW_BODIES:
        r = hub.api("POST", f"users/{USER}/server", data=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["message"] in HUB_SAYS, r.text
        assert hub.server(USER) is None
        refused += 1
    assert (refused, spawned) == (len(HOSTILE) + len(RAW_BODIES), len(TAKEN))
    assert hub.live_jobs() - jobs_before == set(), "a job was left behind"


FORM_ERROR = re.compile(r"Error: (.*?)</p>", re.S)


def test_hostile_values_through_the_spawn_form(hub: RealHub) -> None:
    jobs_before = hub.live_jobs()
    last_job = hub.spawner_state(USER).get("job_id")
    session = login(hub.url, USER, hub.password)
    refused = spawned = 0
    for key, value in SAMPLE:
        data: dict[str, Any] = {"_xsrf": session.cookies.get("_xsrf", "")}
        if key != "profile":
            data["profile"] = "advanced"
        data[key] = fuzz.form_values(value)
        r = session.post(f"{hub.url}/hub/spawn/{USER}", data=data, allow_redirects=False, timeout=30)
        assert "Traceback" not in r.text, r.text
        if r.status_code == 302:
            last_job = check_spawned(hub, last_job)
            spawned += 1
            continue
        # 200, not 400: KNOWN_GAPS["form-refusal-not-400"] in the in-process fuzz
        assert r.status_code in (200, 400), (key, value, r.status_code)
        said = FORM_ERROR.search(r.text)
        assert said, (key, value, r.text[:2000])
        assert refused_by_name(html.unescape(said.group(1)).strip(), [key, "profile"]), said.group(1)
        assert hub.server(USER) is None
        refused += 1
    assert (refused, spawned) == (len(HOSTILE), len(TAKEN))
    assert hub.live_jobs() - jobs_before == set(), "a job was left behind"
    assert requests.get(f"{hub.url}/hub/api/", timeout=10).ok  # the hub still serves
