"""A real OpenAI-compatible chat-completions server on loopback, replying from a script (LLM tests)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted reply: content (streamed in `pieces` when the client streams), or a failure."""

    content: str = ""
    status: int = 200
    delay: float = 0.0  # seconds before answering (timeouts)
    raw: bytes | None = None  # sent as the body instead of a proper reply (malformed JSON)
    pieces: list[str] | None = None  # how a streamed reply is cut; default: word by word
    stall: float = 0.0  # seconds to wait between streamed pieces
    respond: Callable[[dict[str, Any]], str] | None = None  # builds the content from the request body
    piece_size: int | None = None  # stream the content in pieces of this many characters


class ChatServer:
    """Serves POST /v1/chat/completions from a queue of Replies; records every request body."""

    def __init__(self, structured: bool = True) -> None:
        """`structured=False`: a server that rejects response_format with HTTP 400 (as older ones do)."""
        self.structured = structured
        self.replies: deque[Reply] = deque()
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "headers": dict(self.headers), **body})
                if "response_format" in body and not server.structured:
                    self._send(400, b'{"error": {"message": "unknown field response_format"}}')
                    return
                reply = server.replies.popleft() if server.replies else Reply(status=500)
                time.sleep(reply.delay)
                if reply.respond is not None:
                    reply = Reply(reply.respond(body), stall=reply.stall, piece_size=reply.piece_size)
                if self.path != "/v1/chat/completions":
                    self._send(404, b'{"error": "not found"}')
                elif reply.status != 200:
                    self._send(reply.status, b'{"error": {"message": "scripted failure"}}')
                elif reply.raw is not None:
                    self._send(200, reply.raw)
                elif body.get("stream"):
                    self._stream(reply)
                else:
                    message = {"role": "assistant", "content": reply.content}
                    data = {
                        "id": "x",
                        "object": "chat.completion",
                        "choices": [{"index": 0, "message": message}],
                    }
                    self._send(200, json.dumps(data).encode())

            def _send(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, reply: Reply) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                pieces = reply.pieces or [w + " " for w in reply.content.split(" ")]
                if reply.piece_size:
                    size = reply.piece_size
                    pieces = [reply.content[i : i + size] for i in range(0, len(reply.content), size)]
                try:
                    for piece in pieces:
                        event = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                        self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                        self.wfile.flush()
                        time.sleep(reply.stall)
                    self.wfile.write(b"data: [DONE]\n\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.handle_error = lambda request, address: None  # type: ignore[method-assign]  # a client that gave up
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def script(self, *replies: Reply | str) -> None:
        """Queue replies (a str is a plain successful reply)."""
        self.replies.extend(r if isinstance(r, Reply) else Reply(r) for r in replies)

    def close(self) -> None:
        """Stop serving."""
        self._httpd.shutdown()
        self._httpd.server_close()


def prompt_passages(body: dict[str, Any]) -> dict[int, str]:
    """The passages of a chat request's prompt by number (`<passage id="n">...</passage>`)."""
    user = body["messages"][-1]["content"]
    return {
        int(n): text for n, text in re.findall(r'<passage id="(\d+)"[^>]*>\n(.*?)\n</passage>', user, re.S)
    }


def passage_no(body: dict[str, Any], phrase: str) -> int:
    """The [n] the prompt of a chat request gave the passage containing `phrase`."""
    for n, text in prompt_passages(body).items():
        if phrase in text:
            return n
    raise AssertionError(f"{phrase!r} is in no passage")
