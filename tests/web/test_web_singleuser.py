"""The in-job launcher: private token file on a safe path, exec, and the
server's own report of the port it listens on."""

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
    check_token_path,
    listening_ports,
    read_token_file,
    report_listening_port,
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


def test_write_removes_earlier_submissions_token_files_only(tmp_path):
    srv = tmp_path / "srv"
    srv.mkdir(mode=0o700)
    for name in ("token", "token.0000dead", "job.err", "tokens-of-mine"):
        (srv / name).write_text("old")
    (srv / "token.dir").mkdir()
    write_token_file(str(srv / "token.1234abcd"), TOKEN)
    # a stray job of an earlier submission finds no token; nothing else goes
    left = sorted(p.name for p in srv.iterdir())
    assert left == ["job.err", "token.1234abcd", "token.dir", "tokens-of-mine"]


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


def test_write_refuses_a_symlink_higher_up_the_path(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(LaunchError, match=r"link on the token's path is a symbolic link"):
        write_token_file(str(tmp_path / "link" / "srv" / "token"), TOKEN)
    assert not (tmp_path / "elsewhere" / "srv" / "token").exists()


@pytest.mark.parametrize("loose", [0o770, 0o707, 0o777], ids=oct)
def test_write_refuses_a_directory_others_can_write_on_the_path(tmp_path, loose):
    (tmp_path / "shared").mkdir()
    os.chmod(tmp_path / "shared", loose)
    with pytest.raises(LaunchError, match="writable by group or others"):
        write_token_file(str(tmp_path / "shared" / "srv" / "token"), TOKEN)
    assert not (tmp_path / "shared" / "srv" / "token").exists()


def temporaries(directory) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".token.")]


def test_write_leaves_no_temporary_when_the_replace_fails(tmp_path):
    (tmp_path / "srv" / "token").mkdir(parents=True)  # a directory where the file should go
    (tmp_path / "srv" / "token" / "keep").write_text("x")
    with pytest.raises(LaunchError, match="cannot write the token file"):
        write_token_file(str(tmp_path / "srv" / "token"), TOKEN)
    assert temporaries(tmp_path / "srv") == []


def test_write_leaves_no_temporary_when_the_write_fails(tmp_path, monkeypatch):
    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(LaunchError, match="No space left on device"):
        write_token_file(str(tmp_path / "srv" / "token"), TOKEN)
    assert temporaries(tmp_path / "srv") == []
    assert not (tmp_path / "srv" / "token").exists()


def test_write_from_the_command_line_leaves_no_temporary_on_failure(tmp_path):
    (tmp_path / "srv" / "token").mkdir(parents=True)
    (tmp_path / "srv" / "token" / "keep").write_text("x")
    result = subprocess.run(
        [sys.executable, "-m", "batchhub.singleuser", "--write-token-file", str(tmp_path / "srv" / "token")],
        input=TOKEN,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1 and "cannot write the token file" in result.stderr
    assert TOKEN not in result.stderr
    assert temporaries(tmp_path / "srv") == []


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


def test_read_refuses_a_symlink_higher_up_the_path(tmp_path):
    path = tmp_path / "real" / "srv" / "token"
    write_token_file(str(path), TOKEN)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(LaunchError, match="symbolic link"):
        read_token_file(str(tmp_path / "link" / "srv" / "token"))
    assert path.exists()


@pytest.mark.parametrize("loose", [0o770, 0o707, 0o777, 0o2775], ids=oct)
def test_read_refuses_a_directory_others_can_write_on_the_path(tmp_path, loose):
    path = tmp_path / "shared" / "srv" / "token"
    write_token_file(str(path), TOKEN)
    os.chmod(tmp_path / "shared", loose)  # anyone in it could swap srv for a directory of their own
    with pytest.raises(LaunchError, match=f"shared on the token's path has mode {loose:04o}"):
        read_token_file(str(path))
    assert path.exists()


def test_read_accepts_a_sticky_shared_directory_on_the_path(tmp_path):
    path = tmp_path / "scratch" / "srv" / "token"
    write_token_file(str(path), TOKEN)
    os.chmod(tmp_path / "scratch", 0o1777)  # like /tmp: nobody may rename what others own
    assert read_token_file(str(path)) == TOKEN


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


#: From a shared top directory (root's, 0755) down to the token's directory:
#: each directory's owner and mode, and what alice's launcher says.
PATHS = {
    "another user's directory inside the user's": (
        [("root", 0o755), ("alice", 0o755), ("bob", 0o755), ("alice", 0o700)],
        "owned by uid 2002, neither this user",
    ),
    "a group-writable directory inside the user's": (
        [("alice", 0o775), ("alice", 0o700)],
        "writable by group or others",
    ),
    "a shared directory everyone may write, not sticky": (
        [("root", 0o777), ("alice", 0o700), ("alice", 0o700)],
        "writable by everyone and not sticky",
    ),
    "a sticky shared directory, like /tmp": ([("root", 0o1777), ("alice", 0o700), ("alice", 0o700)], None),
    "a project's group directory above the user's": ([("root", 0o2775), ("alice", 0o700)], None),
    "root's directory inside the user's": ([("alice", 0o700), ("root", 0o755), ("alice", 0o700)], None),
}


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make directories of several users")
@pytest.mark.parametrize("case", list(PATHS))
def test_every_directory_on_the_path_is_checked(case):
    try:
        pwd.getpwnam("alice"), pwd.getpwnam("bob")
    except KeyError:
        missing("the test users alice and bob (scripts/create-test-users)")
    layout, refusal = PATHS[case]
    top = tempfile.mkdtemp(prefix="batchhub-test-")
    os.chmod(top, 0o755)
    try:
        directory = top
        for i, (owner, dir_mode) in enumerate(layout):
            directory = os.path.join(directory, f"d{i}")
            os.mkdir(directory)
            shutil.chown(directory, owner, owner)
            os.chmod(directory, dir_mode)
        path = os.path.join(directory, "token")
        with open(path, "w") as f:
            f.write(TOKEN)
        shutil.chown(path, "alice", "alice")
        os.chmod(path, 0o600)

        def alice_reads() -> int:
            try:
                token = read_token_file(path, delete=False)
            except LaunchError as exc:
                print(f"refused: {exc}", file=sys.stderr)
                return 0 if refusal and refusal in str(exc) else 5
            return 0 if refusal is None and token == TOKEN else 6

        assert as_user("alice", alice_reads) == 0
    finally:
        shutil.rmtree(top)


def test_check_token_path_names_the_directory_at_fault(tmp_path):
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    os.chmod(tmp_path / "a" / "b", 0o777)
    with pytest.raises(LaunchError) as caught:
        check_token_path(str(tmp_path / "a" / "b" / "c"))
    assert str(caught.value).startswith(f"{tmp_path / 'a' / 'b'} on the token's path has mode 0777")


# --- the port: held before it is reported ----------------------------------------
def test_server_argv_asks_for_port_zero_last():
    assert server_argv([]) == ["jupyterhub-singleuser", "--ip=0.0.0.0", "--port=0"]
    assert server_argv(["lab", "--port=1", "--ip=10.0.0.1"]) == [
        "lab",
        "--port=1",
        "--ip=10.0.0.1",
        "--port=0",
    ]


def test_listening_ports_are_only_the_sockets_this_process_listens_on():
    with socket.socket() as bound, socket.create_server(("127.0.0.1", 0)) as listening:
        bound.bind(("127.0.0.1", 0))
        port = listening.getsockname()[1]
        with socket.create_connection(listening.getsockname()) as client:
            ports = listening_ports()
            assert port in ports
            assert bound.getsockname()[1] not in ports  # bound, not listening: anyone may still take it
            assert client.getsockname()[1] not in ports
    assert port not in listening_ports()


@pytest.fixture
def server_env(monkeypatch):
    """What the launcher puts into the server's environment."""

    def make(url: str) -> None:
        monkeypatch.setenv("JUPYTERHUB_API_URL", url)
        monkeypatch.setenv("JUPYTERHUB_API_TOKEN", TOKEN)
        monkeypatch.setenv("BATCHHUB_REPORT_TIMEOUT", "2")

    return make


def test_the_server_reports_the_port_it_listens_on(hub, server_env):
    fake = hub()
    server_env(fake.url)
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
        report_listening_port(port)
    [(path, headers, body)] = fake.requests
    assert path == "/hub/api/batchhub/port" and headers["Authorization"] == f"token {TOKEN}"
    assert json.loads(body) == {"port": port}


@pytest.mark.parametrize("holder", ["bound only", "nobody", "another process", "zero"])
def test_a_port_this_process_does_not_listen_on_is_never_reported(hub, server_env, holder):
    fake = hub()
    server_env(fake.url)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        other = None
        if holder == "nobody":
            sock.close()
        elif holder == "another process":
            sock.close()
            other = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    f"import socket,time; s=socket.create_server(('', {port})); time.sleep(60)",
                ]
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not _listens(port):
                time.sleep(0.05)
        try:
            with pytest.raises(LaunchError, match="does not listen on port"):
                report_listening_port(0 if holder == "zero" else port, wait=0.3)
        finally:
            if other is not None:
                other.kill()
                other.wait()
    assert fake.requests == []


def _listens(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


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
#: A stand-in server that does what jupyterhub-singleuser does with the
#: launcher's extension: bind the port its arguments ask for (0: the
#: kernel's choice), report it from this process, then show what it got.
STANDIN = """
import json, os, socket, sys
from batchhub.singleuser import LaunchError, report_listening_port
opts = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
sock = socket.create_server((opts.get("ip", "0.0.0.0"), int(opts.get("port", "8888"))))
port = sock.getsockname()[1]
try:
    report_listening_port(port)
except LaunchError as exc:
    sys.exit(f"batchhub-singleuser: {exc}")
print(json.dumps({
    "argv": sys.argv[1:], "port": port, "token": os.environ.get("JUPYTERHUB_API_TOKEN"),
    "config_path": os.environ.get("JUPYTER_CONFIG_PATH"),
}))
"""


def launcher_env(tmp_path, api_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "JUPYTER_CONFIG"))}
    if api_url:
        env["JUPYTERHUB_API_URL"] = api_url
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env["TMPDIR"] = str(tmp_path / "tmp")  # where the launcher makes its private config directory
    return env


def launcher(
    tmp_path, token_file: str, api_url: str | None, *command: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
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
        env={**launcher_env(tmp_path, api_url), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_launcher_execs_the_server_which_reports_the_port_it_holds(tmp_path, hub):
    fake = hub()
    path = private_token(tmp_path)
    result = launcher(tmp_path, path, fake.url, sys.executable, "-c", STANDIN, "--extra=1")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["argv"] == ["--extra=1", "--ip=0.0.0.0", "--port=0"]  # no port to read in /proc
    assert json.loads(fake.requests[0][2]) == {"port": shown["port"]}
    assert shown["token"] == TOKEN  # the server process has it ...
    assert not os.path.exists(path)  # ... and the file is gone
    # the directory that enables the extension is gone, and no longer on the server's path
    assert list((tmp_path / "tmp").iterdir()) == []
    assert not shown["config_path"]


def test_launcher_enables_the_extension_before_the_sites_config_path(tmp_path, hub):
    fake = hub()
    path = private_token(tmp_path)
    shown = tmp_path / "shown.json"
    show = (
        "import json, os, sys; from batchhub import singleuser as s; "
        "d = os.environ[s.CONFIG_DIR_ENV]; "
        "json.dump({'path': os.environ['JUPYTER_CONFIG_PATH'], 'dir': d, "
        "'config': json.load(open(os.path.join(d, s.CONFIG_FILE)))}, open(sys.argv[1], 'w'))"
    )
    site = {"JUPYTER_CONFIG_PATH": "/site/etc/jupyter"}
    result = launcher(tmp_path, path, fake.url, sys.executable, "-c", show, str(shown), env=site)
    assert result.returncode == 0, result.stderr
    seen = json.loads(shown.read_text())
    assert seen["path"] == os.pathsep.join([seen["dir"], "/site/etc/jupyter"])
    assert seen["config"] == {"ServerApp": {"jpserver_extensions": {"batchhub.singleuser": True}}}
    assert stat.S_IMODE(os.stat(seen["dir"]).st_mode) == 0o700
    assert fake.requests == []  # this server never listened: nothing was reported


@pytest.mark.parametrize(
    "case", ["refused", "no-token-file", "loose-mode", "loose-path", "no-api-url", "no-server"]
)
def test_launcher_fails_fast_with_a_reason(tmp_path, hub, case):
    fake = hub([403] if case == "refused" else [])
    path = private_token(tmp_path)
    if case == "no-token-file":
        os.unlink(path)
    if case == "loose-mode":
        os.chmod(path, 0o644)
    if case == "loose-path":
        os.chmod(tmp_path, 0o775)
    command = ["no-such-server-here"] if case == "no-server" else [sys.executable, "-c", STANDIN]
    result = launcher(tmp_path, path, None if case == "no-api-url" else fake.url, *command)
    assert result.returncode == 1
    assert result.stdout == ""  # the server never ran, or never got past its report
    assert result.stderr.startswith("batchhub-singleuser: ")
    assert TOKEN not in result.stderr
    expected = {
        "refused": "refused the port report (403)",
        "no-token-file": "cannot open the token file",
        "loose-mode": "mode 0644",
        "loose-path": "writable by group or others",
        "no-api-url": "JUPYTERHUB_API_URL",
        "no-server": "cannot run no-such-server-here",
    }[case]
    assert expected in result.stderr
    assert list((tmp_path / "tmp").iterdir()) == []  # no configuration directory left behind


def test_launcher_can_take_the_token_from_the_environment(tmp_path, hub):
    fake = hub()
    env = launcher_env(tmp_path, fake.url)
    env["JUPYTERHUB_API_TOKEN"] = TOKEN
    result = subprocess.run(
        [sys.executable, "-m", "batchhub.singleuser", "--token-env", "--", sys.executable, "-c", STANDIN],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["token"] == TOKEN
    assert fake.requests[0][1]["Authorization"] == f"token {TOKEN}"
    assert json.loads(fake.requests[0][2]) == {"port": shown["port"]}
