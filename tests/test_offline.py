"""`kabar index` + `kabar ask` open no network connection (only loopback is allowed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

# Runs kabar in a fresh interpreter with socket.connect guarded, so import-time telemetry counts too.
GUARD = r"""
import socket, sys, json, runpy
attempts = []
real_connect = socket.socket.connect
real_connect_ex = socket.socket.connect_ex

def _host(address):
    return address[0] if isinstance(address, tuple) else str(address)

def _check(address):
    host = _host(address)
    if isinstance(address, (str, bytes)):  # unix sockets
        return
    if host in ("127.0.0.1", "::1", "localhost") or host.startswith("127."):
        return
    attempts.append(host)
    raise OSError(f"kabar tried to connect to {host}")

def connect(self, address):
    _check(address)
    return real_connect(self, address)

def connect_ex(self, address):
    _check(address)
    return real_connect_ex(self, address)

socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
_real_getaddrinfo = socket.getaddrinfo
def getaddrinfo(host, *a, **k):
    if host not in (None, "localhost", "127.0.0.1", "::1"):
        attempts.append(f"dns:{host}")
    return _real_getaddrinfo(host, *a, **k)
socket.getaddrinfo = getaddrinfo
sys.argv = ["kabar"] + sys.argv[1:]
try:
    from bot.cli.main import main
    main()
except SystemExit as e:
    code = e.code
else:
    code = 0
finally:
    print("NETWORK-ATTEMPTS:" + json.dumps(attempts), file=sys.stderr)
sys.exit(code or 0)
"""


def _kabar(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", GUARD, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_index_and_ask_make_no_network_connection(tmp_path: Path, e5_cache_dir: Path) -> None:
    import os

    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KABAR_", "HF_", "TRANSFORMERS_"))}
    env.update(KABAR_HOME=str(tmp_path / "home"), KABAR_CACHE_DIR=str(e5_cache_dir), HOME=str(tmp_path))
    for args in (["index"], ["ask", "What does Cheong Seong-chang expect Kim Jong Un to gain?", "--json"]):
        proc = _kabar(args, env, root)
        attempts = json.loads(proc.stderr.split("NETWORK-ATTEMPTS:")[-1].splitlines()[0])
        assert attempts == [], f"{args}: {attempts}\n{proc.stderr[-2000:]}"
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["refused"] is False
