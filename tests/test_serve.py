"""`studio serve`: the real server refuses requests for a foreign Host (DNS rebinding), page and WebSocket
alike, and answers localhost and --allow-host names; a page that raises shows a short error with details."""
from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

from studio.server import allowed_hosts, host_name

STUDIO = Path(sys.executable).parent / "studio"  # the console script of this venv


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str, host: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host})
        return conn.getresponse().status
    finally:
        conn.close()


def handshake(port: int, host: str) -> int:
    """The status of a WebSocket handshake on Streamlit's stream, from a page on `host` (Origin matches)."""
    request = (f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\n"
               "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request.encode())
        status_line = s.makefile("rb").readline().decode()
    return int(status_line.split()[1])


@pytest.fixture
def serve(tmp_path):
    """Start the studio on a free port with `argv` (as a list, {port} filled in); yields the port."""
    procs = []

    def start(argv: list[str]) -> int:
        port = free_port()
        log = (tmp_path / f"server-{port}.log").open("wb")
        env = {**os.environ, "STUDIO_WORKSPACE": str(tmp_path / "ws"), "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen([a.format(port=port) for a in argv], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        procs.append(proc)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / f"server-{port}.log").read_text()
            try:
                if get(port, "/_stcore/health", f"127.0.0.1:{port}") == 200:
                    return port
            except OSError:
                pass
            time.sleep(0.5)
        pytest.fail("the studio did not answer within 60 s:\n" + (tmp_path / f"server-{port}.log").read_text())

    try:
        yield start
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_host_names_as_compared():
    assert host_name("LocalHost:8501") == "localhost" and host_name("[::1]:8501") == "::1"
    assert host_name("studio.lan.") == "studio.lan" and host_name("evil.example") == "evil.example"
    assert allowed_hosts("127.0.0.1") == {"localhost", "127.0.0.1", "::1"}
    assert allowed_hosts("0.0.0.0", ["Studio.LAN:80"]) == {"localhost", "127.0.0.1", "::1", "studio.lan"}
    assert "192.168.1.5" in allowed_hosts("192.168.1.5")


def test_server_refuses_a_foreign_host(serve):
    port = serve([sys.executable, "-m", "studio.server", "--port", "{port}"])
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "localhost"):
        assert get(port, "/_stcore/health", host) == 200, host
    assert handshake(port, f"localhost:{port}") == 101
    for host in (f"evil.example:{port}", "evil.example", f"studio.lan:{port}", f"127.0.0.1.evil.example:{port}"):
        assert get(port, "/_stcore/health", host) in (400, 403), host
        assert get(port, "/", host) in (400, 403), host
        assert handshake(port, host) in (400, 403), host


def test_allow_host_through_studio_serve(serve, tmp_path):
    port = serve([str(STUDIO), "serve", "--port", "{port}", "--allow-host", "studio.lan",
                  "--workspace", str(tmp_path / "ws")])
    assert get(port, "/_stcore/health", f"studio.lan:{port}") == 200
    assert handshake(port, f"studio.lan:{port}") == 101
    assert get(port, "/_stcore/health", f"localhost:{port}") == 200
    assert get(port, "/_stcore/health", f"evil.example:{port}") in (400, 403)


def test_a_page_that_raises_shows_a_short_error_with_details(ws, monkeypatch, caplog):
    from streamlit.testing.v1 import AppTest

    from core import runs

    at = AppTest.from_file(str(ROOT / "studio" / "app.py"), default_timeout=30)
    at.run()
    at.switch_page("app_pages/runs.py")

    def broken(*args, **kwargs):
        raise OSError("disk on fire\nsecond line")

    monkeypatch.setattr(runs, "list_runs", broken)
    at.run()
    assert len(at.error) == 1 and "Something went wrong" in at.error[0].value
    assert "OSError: disk on fire" in at.error[0].value and "second line" not in at.error[0].value
    details = [e for e in at.expander if e.label == "Details"]
    assert len(details) == 1 and len(details[0].exception) == 1  # the traceback, folded away
    assert any("broken" in line for line in details[0].exception[0].stack_trace)
    assert any(r.name == "studio.pages" and r.exc_info for r in caplog.records)  # and in the server log
