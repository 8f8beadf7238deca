"""The Discord token and the LLM API key never appear in anything Kabar writes: output, logs, errors, files.

Real `kabar` processes run with fake secrets at -vv, against a loopback LLM server that echoes the key back
in its error reply (as some proxies do) and with Discord unreachable; every byte they write is searched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.integration

TOKEN = "MTE5ODc2NTQzMjEwOTg3NjU0.GfakeX.TOKENsecret0123456789abcdefghij"
API_KEY = "sk-test-APIKEYsecret9876543210zyxwvu"


class EchoKey(BaseHTTPRequestHandler):
    """Rejects every request, quoting the Authorization header it was sent."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = f'{{"error": "invalid api key: {self.headers.get("authorization")}"}}'.encode()
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoKey)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def kabar(home: Path, cache: Path, url: str, *args: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "KABAR_HOME": str(home),
        "KABAR_CACHE_DIR": str(cache),
        "KABAR_DISCORD_TOKEN": TOKEN,
        "KABAR_LLM": "openai",
        "KABAR_LLM_URL": url,
        "KABAR_LLM_API_KEY": API_KEY,
        "KABAR_LLM_RETRIES": "0",
        "KABAR_CORPUS": f'["{ROOT / "seeds"}"]',
    }
    code = "import sys; from bot.cli.main import main; sys.argv[0] = 'kabar'; main()"
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=home.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_no_secret_in_output_logs_errors_or_files(tmp_path, seed_index, e5_cache_dir, echo_server):
    home = tmp_path / "home"
    shutil.copytree(seed_index, home)
    runs = {
        "ask": kabar(home, e5_cache_dir, echo_server, "-vv", "ask", "--json", "--llm", "Apa desakan Korsel?"),
        "ask text": kabar(home, e5_cache_dir, echo_server, "-vv", "ask", "--llm", "Apa desakan Korsel?"),
        "stats": kabar(home, e5_cache_dir, echo_server, "-vv", "stats", "--json"),
        "check": kabar(home, e5_cache_dir, echo_server, "-vv", "discord", "--check"),
        "discord": kabar(home, e5_cache_dir, echo_server, "-vv", "discord"),  # Discord unreachable here
        "index error": kabar(home, e5_cache_dir, echo_server, "-vv", "index", "--json", "/nonexistent"),
    }
    # the runs did what they should (so the grep below looked at real output)
    assert '"notice"' in runs["ask"][1] and "HTTP 401" in runs["ask"][1] + runs["ask text"][1]
    assert "invalid api key: Bearer ***" in runs["ask"][1] + runs["ask text"][1]
    assert runs["stats"][0] == 0 and runs["check"][0] == 0 and "token: set (not shown)" in runs["check"][1]
    assert runs["discord"][0] == 1 and "Could not reach Discord" in runs["discord"][1]
    assert "Traceback" not in runs["discord"][1]
    written = "".join(out for _, out in runs.values())
    for path in tmp_path.rglob("*"):
        if path.is_file():
            written += path.read_bytes().decode("utf-8", "replace")
    for secret in (TOKEN, API_KEY):
        for piece in (secret, secret[-16:]):  # whole, or its tail as a masked form would show it
            assert piece not in written
