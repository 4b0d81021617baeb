"""The in-job launcher: private token file, free port, report, exec."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from batchhub.singleuser import (
    LaunchError,
    choose_port,
    read_token_file,
    report_port,
    server_argv,
    write_token_file,
)
from batchhub.testing import missing

TOKEN = "0123456789abcdef0123456789abcdef"


def private_token(tmp_path, token: str = TOKEN) -> str:
    path = tmp_path / "srv" / "token"
    write_token_file(str(path), token)
    return str(path)


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# --- writing -------------------------------------------------------------------
def test_write_creates_private_dir_and_file(tmp_path):
    path = tmp_path / ".batchhub" / "default" / "token"
    write_token_file(str(path), TOKEN + "\n")
    assert mode(path.parent) == 0o700 and mode(path.parent.parent) == 0o700
    assert mode(path) == 0o600
    assert path.read_text() == TOKEN + "\n"
    assert [p.name for p in path.parent.iterdir()] == ["token"]  # no temporary left


def test_write_tightens_an_existing_dir_and_replaces_the_file(tmp_path):
    (tmp_path / "srv").mkdir(mode=0o755)
    (tmp_path / "srv" / "token").write_text("old")
    write_token_file(str(tmp_path / "srv" / "token"), TOKEN)
    assert mode(tmp_path / "srv") == 0o700 and (tmp_path / "srv" / "token").read_text().strip() == TOKEN


def test_write_refuses_a_symlinked_dir(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "srv").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(LaunchError, match="symbolic link"):
        write_token_file(str(tmp_path / "srv" / "token"), TOKEN)
    assert not (tmp_path / "elsewhere" / "token").exists()


@pytest.mark.parametrize("token", ["", "   ", "a b", "x" * 300, "tok\x00en"])
def test_write_refuses_malformed_tokens(tmp_path, token):
    with pytest.raises(LaunchError, match="malformed"):
        write_token_file(str(tmp_path / "srv" / "token"), token)


def test_write_from_stdin_keeps_the_token_off_the_command_line(tmp_path):
    path = tmp_path / "srv" / "token"
    result = subprocess.run(
        [sys.executable, "-m", "batchhub.singleuser", "--write-token-file", str(path)],
        input=TOKEN,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert path.read_text().strip() == TOKEN and mode(path) == 0o600


# --- reading -------------------------------------------------------------------
def test_read_returns_token_and_deletes_file(tmp_path):
    path = private_token(tmp_path)
    assert read_token_file(path) == TOKEN
    assert not os.path.exists(path)


@pytest.mark.parametrize(
    ("target", "bad_mode", "words"),
    [
        ("file", 0o640, "mode 0640"),
        ("file", 0o400, "mode 0400"),
        ("dir", 0o750, "mode 0750"),
        ("dir", 0o711, "mode 0711"),
    ],
)
def test_read_refuses_loose_modes(tmp_path, target, bad_mode, words):
    path = private_token(tmp_path)
    os.chmod(path if target == "file" else os.path.dirname(path), bad_mode)
    with pytest.raises(LaunchError, match=words):
        read_token_file(path)


def test_read_refuses_a_symlink(tmp_path):
    path = private_token(tmp_path)
    os.rename(path, path + ".real")
    os.symlink(path + ".real", path)
    with pytest.raises(LaunchError, match="cannot open"):
        read_token_file(path)


def test_read_refuses_a_missing_file(tmp_path):
    (tmp_path / "srv").mkdir(mode=0o700)
    with pytest.raises(LaunchError, match="cannot open the token file"):
        read_token_file(str(tmp_path / "srv" / "token"))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand a file to another user")
def test_read_refuses_files_owned_by_someone_else(tmp_path):
    path = private_token(tmp_path)
    os.chown(path, 2001, -1)
    with pytest.raises(LaunchError, match="owned by uid 2001"):
        read_token_file(path)
    assert os.path.exists(path)


def as_user(name: str, fn) -> int:
    """Run ``fn`` in a child process switched to user ``name``; its exit code."""
    entry = pwd.getpwnam(name)
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            os.setgroups([])
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
            code = fn()
        except BaseException as exc:
            print(f"as {name}: {exc!r}", file=sys.stderr)
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")
def test_file_written_by_one_user_is_private_from_another():
    try:
        pwd.getpwnam("alice"), pwd.getpwnam("bob")
    except KeyError:
        missing("the test users alice and bob (scripts/create-test-users)")
    # a home-like directory both users can reach (pytest's tmp_path is root's alone)
    top = tempfile.mkdtemp(prefix="batchhub-test-")
    os.chmod(top, 0o755)
    base = os.path.join(top, "alice")
    os.mkdir(base, 0o755)
    os.chown(base, 2001, 2001)
    path = os.path.join(base, ".batchhub", "default", "token")
    try:
        _alice_and_bob(path)
    finally:
        shutil.rmtree(top)


def _alice_and_bob(path: str) -> None:
    def alice_writes() -> int:
        write_token_file(path, TOKEN)
        return 0

    def bob_reads() -> int:
        try:
            read_token_file(path)
        except LaunchError:
            return 3
        return 0

    def alice_reads() -> int:
        return 0 if read_token_file(path) == TOKEN else 4

    assert as_user("alice", alice_writes) == 0
    assert os.stat(path).st_uid == 2001
    assert as_user("bob", bob_reads) == 3
    assert as_user("alice", alice_reads) == 0
    assert not os.path.exists(path)


# --- port and report -------------------------------------------------------------
def test_choose_port_gives_a_bindable_port():
    port = choose_port()
    assert 1 <= port <= 65535
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", port))


def test_server_argv_adds_ip_and_port_last():
    assert server_argv([], 5000) == ["jupyterhub-singleuser", "--ip=0.0.0.0", "--port=5000"]
    assert server_argv(["lab", "--port=1", "--ip=10.0.0.1"], 5000) == [
        "lab",
        "--port=1",
        "--ip=10.0.0.1",
        "--port=5000",
    ]


class FakeHub:
    """A tiny HTTP server standing in for the hub's port endpoint."""

    def __init__(self, answers: list[int]) -> None:
        self.answers = answers
        self.requests: list[tuple[str, dict, bytes]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hub.requests.append((self.path, dict(self.headers), body))
                code = hub.answers.pop(0) if hub.answers else 200
                payload = json.dumps({"message": "not waiting" if code == 409 else "ok"}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hub/api"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub():
    servers: list[FakeHub] = []

    def make(answers=()):
        servers.append(FakeHub(list(answers)))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_report_posts_exactly_the_port_with_the_token(hub):
    fake = hub()
    report_port(fake.url, TOKEN, 45678)
    [(path, headers, body)] = fake.requests
    assert path == "/hub/api/batchhub/port"
    assert headers["Authorization"] == f"token {TOKEN}"
    assert json.loads(body) == {"port": 45678}


def test_report_retries_while_the_hub_is_unwell(hub):
    fake = hub([503, 502])
    report_port(fake.url, TOKEN, 45678, first_delay=0.01)
    assert len(fake.requests) == 3


def test_report_refusal_is_final(hub):
    fake = hub([409])
    with pytest.raises(LaunchError, match=r"refused the port report \(409\): not waiting"):
        report_port(fake.url, TOKEN, 45678, first_delay=0.01)
    assert len(fake.requests) == 1


def test_report_gives_up_on_an_unreachable_hub():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    started = time.monotonic()
    with pytest.raises(LaunchError, match="cannot reach the hub"):
        report_port(f"http://127.0.0.1:{port}/hub/api", TOKEN, 45678, deadline=1.0, first_delay=0.05)
    assert time.monotonic() - started < 5


# --- the whole launcher ------------------------------------------------------------
SHOW = (
    "import json, os, sys; "
    "print(json.dumps({'argv': sys.argv[1:], 'token': os.environ.get('JUPYTERHUB_API_TOKEN')}))"
)


def launcher(token_file: str, api_url: str | None, *command: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    if api_url:
        env["JUPYTERHUB_API_URL"] = api_url
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "batchhub.singleuser",
            "--token-file",
            token_file,
            "--report-timeout",
            "2",
            "--",
            *command,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_launcher_reports_then_execs_the_server_with_that_port(tmp_path, hub):
    fake = hub()
    path = private_token(tmp_path)
    result = launcher(path, fake.url, sys.executable, "-c", SHOW, "--extra=1")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    reported = json.loads(fake.requests[0][2])["port"]
    assert shown["argv"] == ["--extra=1", "--ip=0.0.0.0", f"--port={reported}"]
    assert shown["token"] == TOKEN  # the server process has it ...
    assert not os.path.exists(path)  # ... and the file is gone


@pytest.mark.parametrize("case", ["refused", "no-token-file", "loose-mode", "no-api-url"])
def test_launcher_fails_fast_with_a_reason(tmp_path, hub, case):
    fake = hub([403] if case == "refused" else [])
    path = private_token(tmp_path)
    if case == "no-token-file":
        os.unlink(path)
    if case == "loose-mode":
        os.chmod(path, 0o644)
    result = launcher(path, None if case == "no-api-url" else fake.url, sys.executable, "-c", SHOW)
    assert result.returncode == 1
    assert result.stdout == ""  # the server never ran
    assert result.stderr.startswith("batchhub-singleuser: ")
    assert TOKEN not in result.stderr
    expected = {
        "refused": "refused the port report (403)",
        "no-token-file": "cannot open the token file",
        "loose-mode": "mode 0644",
        "no-api-url": "JUPYTERHUB_API_URL",
    }[case]
    assert expected in result.stderr


def test_launcher_can_take_the_token_from_the_environment(hub):
    fake = hub()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    env.update(JUPYTERHUB_API_URL=fake.url, JUPYTERHUB_API_TOKEN=TOKEN)
    result = subprocess.run(
        [sys.executable, "-m", "batchhub.singleuser", "--token-env", "--", sys.executable, "-c", SHOW],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["token"] == TOKEN
    assert fake.requests[0][1]["Authorization"] == f"token {TOKEN}"
