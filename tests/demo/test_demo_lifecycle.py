"""The demo as a new admin meets it: the URL it prints already answers
(never "connection refused" on the first click), and a state directory it
made itself, which holds the password, is gone once it stops, also when
the hub never came up.

The fast tests put a small stand-in for JupyterHub behind ``run_demo``;
the last one runs the real ``batchhub demo`` with the proxy."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import requests

from batchhub import demo
from batchhub.demo import free_port
from batchhub.testing import missing
from batchhub.testing.demo import DemoProcess
from batchhub.testing.hub import hub_prerequisites

#: A stand-in hub: binds the port after a delay, answers /hub/api/ with 200, exits after a while.
STAND_IN = """
import http.server, sys, threading, time
port, delay, lifetime = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/hub/api/" else 404)
        self.end_headers()
        self.wfile.write(b'{"version": "stand-in"}')
    def log_message(self, *args):
        pass
time.sleep(delay)
server = http.server.HTTPServer(("127.0.0.1", port), Handler)
threading.Timer(lifetime, server.shutdown).start()
server.serve_forever()
"""


@pytest.fixture
def made_dirs(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The temporary directories the demo makes; its checks and config stubbed."""
    made: list[Path] = []
    mkdtemp = demo.tempfile.mkdtemp

    def recording_mkdtemp(*args: object, **kwargs: object) -> str:
        path = mkdtemp(*args, **kwargs)  # type: ignore[call-overload]
        made.append(Path(path))
        return path

    def write_config(settings: demo.HubSettings) -> Path:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        path = settings.state_dir / "jupyterhub_config.py"
        path.write_text(f"# password {settings.password}\n")
        return path

    monkeypatch.setattr(demo.tempfile, "mkdtemp", recording_mkdtemp)
    monkeypatch.setattr(demo, "check_demo", lambda *args: [])
    monkeypatch.setattr(demo, "default_local_backend", lambda: "fake")
    monkeypatch.setattr(demo, "write_config", write_config)
    monkeypatch.setattr(demo, "HUB_START_TIMEOUT", 20.0)
    return made


def stand_in(monkeypatch: pytest.MonkeyPatch, port: int, delay: float, lifetime: float) -> None:
    def start_hub(config: Path, log_path: Path | None = None) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-c", STAND_IN, str(port), str(delay), str(lifetime)]
        return subprocess.Popen(argv, start_new_session=True)

    monkeypatch.setattr(demo, "start_hub", start_hub)


def test_the_url_answers_when_printed_and_the_state_dir_goes(
    monkeypatch: pytest.MonkeyPatch, made_dirs: list[Path]
) -> None:
    port = free_port()
    stand_in(monkeypatch, port, delay=1.5, lifetime=3)
    answered_when_printed: list[int] = []

    def print_and_try(*args: object, **kwargs: object) -> None:
        text = " ".join(map(str, args))
        if "log in as user" in text:  # the URL: does it answer right now?
            url = re.search(r"at (http://\S+)", text)
            assert url, text
            with urllib.request.urlopen(f"{url.group(1)}hub/api/", timeout=5) as response:
                answered_when_printed.append(response.status)
            assert Path(made_dirs[0]).is_dir()
            assert "(removed when the demo stops)" in text

    monkeypatch.setattr(demo, "print", print_and_try, raising=False)
    assert demo.run_demo(port=port) == 0
    assert answered_when_printed == [200]
    assert len(made_dirs) == 1 and not made_dirs[0].exists()


def test_a_hub_that_never_answers_prints_no_url_and_leaves_no_password(
    monkeypatch: pytest.MonkeyPatch, made_dirs: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    def start_hub(config: Path, log_path: Path | None = None) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])

    monkeypatch.setattr(demo, "start_hub", start_hub)
    assert demo.run_demo(port=free_port()) == 1
    out, err = capsys.readouterr()
    assert "log in as user" not in out + err
    assert "the hub exited with status 3" in err
    assert len(made_dirs) == 1 and not made_dirs[0].exists()


def test_a_state_dir_given_is_kept(
    monkeypatch: pytest.MonkeyPatch, made_dirs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    stand_in(monkeypatch, port, delay=0, lifetime=1)
    assert demo.run_demo(port=port, state_dir=tmp_path / "state") == 0
    assert (tmp_path / "state" / "jupyterhub_config.py").is_file()
    assert made_dirs == []
    assert "(kept)" in capsys.readouterr().out


@pytest.mark.hub
def test_the_real_demo_answers_when_it_prints_and_cleans_up_on_sigterm() -> None:
    problem = hub_prerequisites()
    if problem:
        missing(problem)
    port = free_port()
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}
    proxy = demo.find_proxy()
    if proxy is None:
        missing("configurable-http-proxy (npm install -g configurable-http-proxy)")
    demo_proc = DemoProcess(
        [str(Path(sys.executable).parent / "batchhub"), "demo", "--port", str(port)], env=env
    )
    try:
        state = demo_proc.wait_for(r"state, config and logs in (\S+) \(removed", timeout=120)
        page = requests.get(f"http://127.0.0.1:{port}/hub/login", timeout=10)  # no retry: it answers
        assert page.status_code == 200 and 'name="password"' in page.text
        state_dir = Path(state.group(1))
        assert (state_dir / "jupyterhub_config.py").is_file()
    finally:
        code = demo_proc.stop()
    assert code == 0, demo_proc.output[-3000:]
    assert not state_dir.exists(), "the demo left its state directory (it holds the password)"
