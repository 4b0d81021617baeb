"""The port a job reports is held by the user's own server when the hub
hears of it, and no other user on the node can take it.

alice's launcher starts a server (the real jupyterhub-singleuser, and a
quicker stand-in) from the node environment while bob, on the same node,
binds in a tight loop every port he can see of alice's: listening sockets
in /proc/net/tcp{,6} and ``--port=N`` on her processes' command lines, on
IPv4 and IPv6. A stand-in hub takes the report and, before answering,
looks who listens on the reported port and who answers there.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jupyterhub
import pytest

from batchhub.demo import NODE_ENV
from batchhub.testing import missing

TOKEN = "fedcba9876543210fedcba9876543210"
PREFIX = "/user/alice/"

#: bob's side: bind every port of the victim's he can see, forever, and
#: answer as bob on what he gets. One JSON line per first attempt.
BOB = r"""
import json, os, re, socket, sys, threading

VICTIM = int(sys.argv[1])
PORT_ARG = re.compile(rb"--(?:[A-Za-z]+\.)?port=(\d+)")
held, tried = {}, set()


def say(**what):
    print(json.dumps(what), flush=True)


def serve(sock):
    body = b'{"server": "bob"}'
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)  # the request; closing on it unread would reset the connection
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


def victim_ports():
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[7]) == VICTIM:  # listening, the victim's
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.stat("/proc/" + pid).st_uid != VICTIM:
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        for arg in args:
            match = PORT_ARG.fullmatch(arg)
            if match and int(match.group(1)):
                ports.add(int(match.group(1)))
    return ports


def grab(port):
    for family, address in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        if (port, address) in held:
            continue
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((address, port))
            sock.listen()
        except OSError as exc:
            sock.close()
            if (port, address) not in tried:
                tried.add((port, address))
                say(port=port, address=address, bound=False, error=exc.strerror)
            continue
        held[(port, address)] = sock
        say(port=port, address=address, bound=True)
        threading.Thread(target=serve, args=(sock,), daemon=True).start()


say(ready=True)
while True:
    for port in victim_ports():
        grab(port)
"""

#: A server like jupyterhub-singleuser with the launcher's extension, only
#: quicker: it takes a while to start, binds the port its arguments ask for
#: (0: the kernel's choice) on IPv4 and IPv6, answers as itself, and
#: reports its port from this process.
STANDIN = r"""
import json, os, socket, sys, threading, time
opts = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
time.sleep(1)
sock = socket.create_server(("::", int(opts["port"])), family=socket.AF_INET6, dualstack_ipv6=True)


def serve():
    body = json.dumps({"server": "alice's stand-in", "uid": os.getuid()}).encode()
    while True:
        conn, _ = sock.accept()
        with conn:
            conn.recv(65536)  # the request; closing on it unread would reset the connection
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


threading.Thread(target=serve, daemon=True).start()
from batchhub.singleuser import report_listening_port
report_listening_port(sock.getsockname()[1])
time.sleep(600)
"""


# --- what the hub sees -------------------------------------------------------------
def listeners(port: int) -> list[tuple[int, list[int]]]:
    """(owner uid, pids holding it) of each socket listening on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            lines = f.readlines()[1:]
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.append((int(fields[7]), socket_holders(fields[9])))
    return found


def socket_holders(inode: str) -> list[int]:
    target = f"socket:[{inode}]"
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    pids.append(int(pid))
                    break
            except OSError:
                continue
    return pids


def ask(port: int) -> str:
    """What answers ``GET {PREFIX}api`` on the port, as the hub would ask."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(f"GET {PREFIX}api HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
        return data.decode("utf-8", "replace")
    except OSError as exc:
        return f"no answer: {exc}"


class StandInHub:
    """The hub's API as jupyterhub-singleuser and the launcher use it. On a
    port report it records, before it answers, who listens on the port and
    what answers there."""

    def __init__(self, answer: int = 200) -> None:
        self.reports: list[dict[str, Any]] = []
        self.reported = threading.Event()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.reply(200, {})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if not self.path.endswith("/batchhub/port"):
                    self.reply(200, {})
                    return
                port = json.loads(body)["port"]
                seen = {
                    "port": port,
                    "auth": self.headers.get("Authorization"),
                    "holders": listeners(port),
                    "answer": ask(port),
                }
                hub.reports.append(seen)
                hub.reported.set()
                self.reply(answer, {"message": "refused by the test" if answer >= 400 else "ok"})

            def reply(self, code: int, data: dict[str, Any]) -> None:
                payload = json.dumps(data).encode()
                self.send_response(code)
                self.send_header("X-JupyterHub-Version", jupyterhub.__version__)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hub/api"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_report(self, timeout: float) -> dict[str, Any] | None:
        self.reported.wait(timeout)
        self.reported.clear()
        return self.reports[-1] if self.reports else None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- alice and bob -----------------------------------------------------------------
def node_env() -> Path:
    if os.geteuid() != 0:
        missing("root, to run servers as the test users alice and bob")
    try:
        pwd.getpwnam("alice"), pwd.getpwnam("bob")
    except KeyError:
        missing("the test users alice and bob (scripts/create-test-users)")
    for name in ("python", "batchhub-singleuser", "jupyterhub-singleuser"):
        if not os.access(NODE_ENV / "bin" / name, os.X_OK):
            missing(f"{NODE_ENV / 'bin' / name} (run scripts/node-env)")
    return NODE_ENV / "bin"


def as_user(name: str) -> dict[str, Any]:
    return {"user": name, "group": name, "extra_groups": []}


class Alice:
    """alice's files in a directory both users can reach, and her jobs."""

    def __init__(self, bindir: Path, top: Path) -> None:
        self.bindir = bindir
        self.uid = pwd.getpwnam("alice").pw_uid
        self.home = top / "alice"
        self.home.mkdir(mode=0o700)
        shutil.chown(self.home, "alice", "alice")
        self.tmp = self.home / "tmp"
        self.logs = top / "logs"
        self.logs.mkdir()
        self.servers: list[subprocess.Popen[bytes]] = []

    def write_token(self) -> Path:
        """As the hub does: the launcher writes the file as alice, token on stdin."""
        path = self.home / "srv" / "token"
        subprocess.run(
            [str(self.bindir / "batchhub-singleuser"), "--write-token-file", str(path)],
            input=TOKEN.encode(),
            check=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin"},
            **as_user("alice"),
        )
        return path

    def start(self, hub_url: str, command: list[str]) -> subprocess.Popen[bytes]:
        """The job: ``batchhub-singleuser --token-file ... -- command``."""
        token = self.write_token()
        for path in (self.tmp, self.home / ".jupyter"):
            path.mkdir(mode=0o700, exist_ok=True)
            shutil.chown(path, "alice", "alice")
        env = {
            "PATH": f"{self.bindir}:/usr/bin:/bin",
            "HOME": str(self.home),
            "TMPDIR": str(self.tmp),
            "LANG": "C.UTF-8",
            "JUPYTERHUB_API_URL": hub_url,
            "JUPYTERHUB_SERVICE_URL": f"http://0.0.0.0:0{PREFIX}",
            "JUPYTERHUB_SERVICE_PREFIX": PREFIX,
            "JUPYTERHUB_BASE_URL": "/",
            "JUPYTERHUB_USER": "alice",
            "JUPYTERHUB_SERVER_NAME": "",
            "JUPYTERHUB_CLIENT_ID": "jupyterhub-user-alice",
            "JUPYTERHUB_OAUTH_CALLBACK_URL": f"{PREFIX}oauth_callback",
        }
        n = len(self.servers)
        with (self.logs / f"{n}.out").open("wb") as out, (self.logs / f"{n}.err").open("wb") as err:
            server = subprocess.Popen(
                [str(self.bindir / "batchhub-singleuser"), "--token-file", str(token), "--", *command],
                env=env,
                cwd=self.home,
                stdout=out,
                stderr=err,
                **as_user("alice"),
            )
        self.servers.append(server)
        return server

    def log(self, server: subprocess.Popen[bytes]) -> str:
        n = self.servers.index(server)
        return (self.logs / f"{n}.err").read_text(errors="replace")

    def logged(self, server: subprocess.Popen[bytes], text: str, timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        while text not in self.log(server):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def stop(self) -> None:
        for server in self.servers:
            if server.poll() is None:
                server.terminate()
                try:
                    server.wait(30)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()


class Bob:
    """bob's process, binding what he can see of alice's."""

    def __init__(self, bindir: Path, top: Path, victim: int) -> None:
        script = top / "bob.py"
        script.write_text(BOB)
        script.chmod(0o644)
        self.lines: list[dict[str, Any]] = []
        self.proc = subprocess.Popen(
            [str(bindir / "python"), str(script), str(victim)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=top,
            env={"PATH": "/usr/bin:/bin"},
            **as_user("bob"),
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.wait(lambda: any(line.get("ready") for line in self.lines), 30)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    def wait(self, condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return True

    def attempts(self, port: int) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("port") == port]

    def tried_both_families(self, port: int, timeout: float = 15) -> bool:
        return self.wait(lambda: {a["address"] for a in self.attempts(port)} == {"0.0.0.0", "::"}, timeout)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.reader.join(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def world() -> Iterator[tuple[Alice, Path]]:
    bindir = node_env()
    top = Path(tempfile.mkdtemp(prefix="batchhub-porthold-"))
    top.chmod(0o755)
    alice = Alice(bindir, top)
    try:
        yield alice, top
    finally:
        alice.stop()
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def bob(world) -> Iterator[Bob]:
    alice, top = world
    bob = Bob(alice.bindir, top, alice.uid)
    try:
        yield bob
    finally:
        bob.stop()


@pytest.fixture
def hub() -> Iterator[Callable[..., StandInHub]]:
    hubs: list[StandInHub] = []

    def make(answer: int = 200) -> StandInHub:
        hubs.append(StandInHub(answer))
        return hubs[-1]

    yield make
    for h in hubs:
        h.close()


def assert_alice_held_it(
    report: dict[str, Any], server: subprocess.Popen[bytes], alice: Alice, bob: Bob
) -> None:
    port = report["port"]
    # bob watches alice's processes and sockets: he sees the port, and tries it
    saw = bob.tried_both_families(port)
    context = f"report {report}; bob's attempts {bob.attempts(port)}"
    # at the moment of the report, the only listener on the port is the very
    # process started as alice's launcher (it exec'd the server: same pid)
    assert report["holders"], f"nobody listened on port {port} when it was reported: {context}"
    assert report["holders"] == [(alice.uid, [server.pid])] * len(report["holders"]), context
    assert "bob" not in report["answer"], context
    assert report["auth"] == f"token {TOKEN}"
    # ... on IPv4 and IPv6, and never got it
    assert saw, f"bob never saw port {port}: {context}"
    assert [a for a in bob.attempts(port) if a["bound"]] == [], context
    assert server.poll() is None, "alice's server died"


# --- the tests ---------------------------------------------------------------------
def test_bob_never_gets_the_port_of_alices_real_jupyterhub_singleuser(world, bob, hub):
    alice, _ = world
    stand_in = hub()
    server = alice.start(stand_in.url, [str(alice.bindir / "jupyterhub-singleuser")])
    report = stand_in.wait_report(120)
    assert report is not None, alice.log(server)[-4000:]
    assert_alice_held_it(report, server, alice, bob)
    assert '"version"' in report["answer"], report  # jupyter_server's own answer on /api
    # the port is nowhere on the server's command line, the token neither
    cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes().split(b"\0")
    assert b"--port=0" in cmdline and TOKEN.encode() not in b" ".join(cmdline)
    assert not any(p.name.startswith("batchhub-jupyter-") for p in alice.tmp.iterdir())
    assert alice.logged(server, f"batchhub: reported port {report['port']} to the hub")


def test_bob_never_gets_the_port_of_alices_stand_in_server(world, bob, hub):
    alice, _ = world
    stand_in = hub()
    for _ in range(5):
        server = alice.start(stand_in.url, [str(alice.bindir / "python"), "-c", STANDIN])
        report = stand_in.wait_report(60)
        assert report is not None, alice.log(server)[-4000:]
        assert_alice_held_it(report, server, alice, bob)
        assert json.loads(report["answer"].split("\r\n\r\n", 1)[1])["uid"] == alice.uid
        server.terminate()
        server.wait(30)


def test_a_refused_report_ends_the_real_server_with_the_reason(world, hub):
    alice, _ = world
    stand_in = hub(403)
    server = alice.start(stand_in.url, [str(alice.bindir / "jupyterhub-singleuser")])
    report = stand_in.wait_report(120)
    assert report is not None, alice.log(server)[-4000:]
    assert report["holders"] == [(alice.uid, [server.pid])]  # even a refused report came from the holder
    assert server.wait(60) == 1
    log = alice.log(server)
    assert "batchhub-singleuser: the hub refused the port report (403): refused by the test" in log
    assert TOKEN not in log


def test_the_users_own_server_extension_config_still_counts(world, hub):
    alice, _ = world
    stand_in = hub()
    config = alice.home / ".jupyter"
    config.mkdir(mode=0o700)
    (config / "jupyter_server_config.py").write_text(
        'c.ServerApp.jpserver_extensions = {"jupyter_lsp": False}\n'
    )
    shutil.chown(config, "alice", "alice")
    shutil.chown(config / "jupyter_server_config.py", "alice", "alice")
    server = alice.start(stand_in.url, [str(alice.bindir / "jupyterhub-singleuser")])
    report = stand_in.wait_report(120)
    assert report is not None, alice.log(server)[-4000:]
    log = alice.log(server)
    assert "batchhub.singleuser | extension was successfully loaded" in log
    assert "jupyterlab | extension was successfully loaded" in log
    assert "jupyter_lsp | extension was successfully loaded" not in log  # alice switched it off
