"""What `studio serve` starts: studio/app.py served by Streamlit as an `st.App`, with one middleware in
front of Streamlit's own that refuses every request, page or WebSocket, whose Host header is not an
address this studio serves. That closes DNS rebinding: a web page on evil.example whose name later
resolves to 127.0.0.1 reaches the port, but its requests say `Host: evil.example` and are refused.

    python -m studio.server --address 127.0.0.1 --port 8501 [--allow-host studio.lan ...]

Run it from the repository root (as `studio serve` does) so .streamlit/config.toml applies. Served by
default: localhost, 127.0.0.1 and [::1] on any port, plus --address when it is one specific address."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP_SCRIPT = Path(__file__).resolve().parent / "app.py"
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
ANY_ADDRESS = ("", "0.0.0.0", "::", "[::]")  # binds every interface: names no one host to allow

log = logging.getLogger("studio.server")


def host_name(value: str) -> str:
    """The name in a Host header (or an --allow-host value) as compared: lower case, without the port,
    the brackets of an IPv6 literal or a final dot. 'LocalHost:8501' → 'localhost', '[::1]:8501' → '::1'."""
    value = value.strip().lower()
    if value.startswith("["):  # [v6]:port
        return value[1:value.index("]")] if "]" in value else ""
    if value.count(":") == 1:  # name:port (a bare v6 literal, not valid in a Host header, is kept whole)
        value = value.split(":")[0]
    return value.rstrip(".")


def allowed_hosts(address: str = "127.0.0.1", extra: Iterable[str] = ()) -> frozenset[str]:
    """The Host names this server answers: the loopback names, the bound address unless it is a wildcard,
    and the names given with --allow-host."""
    hosts = set(LOCAL_HOSTS)
    if address.strip() not in ANY_ADDRESS:
        hosts.add(host_name(address))
    hosts.update(host_name(h) for h in extra if host_name(h))
    return frozenset(hosts)


class HostGuard:
    """ASGI middleware: HTTP requests and WebSocket handshakes with a Host header that is missing or not
    among `allowed` get 403 and a one-line reason; everything else (and lifespan) passes through."""

    def __init__(self, app, allowed: Iterable[str]) -> None:
        self.app = app
        self.allowed = frozenset(allowed)
        self._logged: set[str] = set()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] in ("http", "websocket"):
            hosts = [v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"host"]
            if len(hosts) != 1 or host_name(hosts[0]) not in self.allowed:
                await self.refuse(scope, send, hosts[0] if hosts else "")
                return
        await self.app(scope, receive, send)

    async def refuse(self, scope, send, host: str) -> None:
        name = host_name(host)
        text = (f"Tuning Studio does not answer for host `{host}`. If that name is yours, restart with "
                f"`studio serve --allow-host {name}`." if name else "Tuning Studio needs a Host header.")
        if name not in self._logged and len(self._logged) < 100:  # once per name: a probe cannot flood the log
            self._logged.add(name)
            log.warning("refused a request for Host %r (allowed: %s; add more with --allow-host)",
                        host, ", ".join(sorted(self.allowed)))
        if scope["type"] == "websocket":  # closed before the handshake: the server answers 403 (ASGI spec)
            await send({"type": "websocket.close", "code": 1008})
            return
        from starlette.responses import PlainTextResponse

        await PlainTextResponse(text + "\n", status_code=403)(scope, None, send)


def build_app(allowed: Iterable[str]):
    """studio/app.py as an st.App whose outermost middleware is the Host guard."""
    import streamlit as st
    from starlette.middleware import Middleware

    return st.App(str(APP_SCRIPT), middleware=[Middleware(HostGuard, allowed=frozenset(allowed))])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m studio.server", description=__doc__.split("\n\n")[0])
    p.add_argument("--address", default="127.0.0.1", help="address to bind (default: localhost only)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="also answer requests for this host name (repeatable)")
    a = p.parse_args(argv)
    studio_log = logging.getLogger("studio")  # this guard's refusals and the pages' unexpected errors
    if not studio_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        studio_log.addHandler(handler)
        studio_log.setLevel(logging.INFO)
        studio_log.propagate = False
    os.chdir(ROOT)  # .streamlit/config.toml (theme, upload size) is read from the working directory
    allowed = allowed_hosts(a.address, a.allow_host)
    app = build_app(allowed)
    sys.argv = sys.argv[:1]  # App.run hands the rest of argv to the page script, which takes none
    # server.allowedHosts: Streamlit's own check of the WebSocket's Host, behind the guard (which also covers
    # every HTTP route: pages, health, uploads, media).
    app.run(config={"server.address": a.address, "server.port": a.port, "browser.gatherUsageStats": False,
                    "server.allowedHosts": sorted(allowed)})


if __name__ == "__main__":
    main()
