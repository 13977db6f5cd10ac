"""A fake OpenAI-compatible judge server on 127.0.0.1, for tests, benches and dry runs of the plumbing.

    python -m tests.fake_judge --port 8001 --latency 0.3      # then judge.base_url=http://127.0.0.1:8001/v1

Serves `GET /v1/models` and `POST /v1/chat/completions` (one thread per connection, so `latency`
overlaps like a batching server's). By default it answers a valid verdict whose score is a hash of the
prompt (deterministic, all of 1-5); `answer` (prompt -> text) and `status` change that for fault tests.
It counts requests and the most requests in flight at once, and remembers Authorization headers and
each request's `response_format` (`refuse_response_format` answers those with HTTP 400, as a server
without structured output does).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def hashed_verdict(prompt: str) -> str:
    score = 1 + int(hashlib.sha256(prompt.encode()).hexdigest(), 16) % 5
    quality = ("none", "poor", "adequate", "good", "perfect")[score - 1]
    return json.dumps(
        {"intent_score": score, "reasoning": "fake judge", "intent_detected": "unknown", "alignment_quality": quality}
    )


class FakeJudge:
    def __init__(
        self,
        latency: float = 0.0,
        model: str = "fake-judge",
        answer: Callable[[str], str] = hashed_verdict,
        status: int = 200,
        fail_first: int = 0,
        port: int = 0,
        refuse_response_format: bool = False,
    ):
        self.latency = latency
        self.model = model
        self.answer = answer
        self.status = status  # HTTP status of chat answers (500: a failing judge)
        self.fail_first = fail_first  # the first N chat requests get HTTP 503 (retry tests)
        # HTTP 400 for requests carrying response_format, as servers without structured output answer
        self.refuse_response_format = refuse_response_format
        self.response_formats: list = []  # each chat request's response_format (None: none sent)
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.authorization: list[str | None] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", port), _handler(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread: threading.Thread | None = None

    def start(self) -> FakeJudge:
        # poll_interval: how long stop() may wait; short, so tests start and stop servers quickly
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-judge", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeJudge:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _chat(self, body: dict) -> tuple[int, str]:
        with self._lock:
            self.requests += 1
            number = self.requests
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.latency)
            if number <= self.fail_first:
                return 503, json.dumps({"error": "warming up"})
            if self.status != 200:
                return self.status, json.dumps({"error": "fake failure"})
            self.response_formats.append(body.get("response_format"))
            if self.refuse_response_format and "response_format" in body:
                return 400, json.dumps({"error": "response_format is not supported"})
            prompt = body["messages"][-1]["content"]
            message = {"role": "assistant", "content": self.answer(prompt)}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            answer = {"id": f"chatcmpl-{number}", "object": "chat.completion", "model": body.get("model")}
            return 200, json.dumps({**answer, "choices": [choice]})
        finally:
            with self._lock:
                self.in_flight -= 1


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default backlog (5) makes concurrent clients wait for SYN retries


def _handler(judge: FakeJudge):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as clients expect from a real server
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

        def do_GET(self):
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, json.dumps({"object": "list", "data": [{"id": judge.model, "object": "model"}]}))
            else:
                self._send(404, json.dumps({"error": "not found"}))

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            judge.authorization.append(self.headers.get("Authorization"))
            if self.path.rstrip("/") != "/v1/chat/completions":
                return self._send(404, json.dumps({"error": "not found"}))
            try:
                body = json.loads(raw)
            except ValueError:
                return self._send(400, json.dumps({"error": "bad json"}))
            self._send(*judge._chat(body))

        def _send(self, status: int, text: str):
            data = text.encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up (timeout): nothing to answer
                self.close_connection = True

        def log_message(self, *args):  # quiet: tests and benches print their own results
            pass

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--latency", type=float, default=0.3, help="seconds per answer")
    parser.add_argument("--model", default="fake-judge")
    args = parser.parse_args(argv)
    judge = FakeJudge(latency=args.latency, model=args.model, port=args.port).start()
    print(f"fake judge at {judge.base_url} (model {judge.model!r}, latency {args.latency:g}s); Ctrl-C stops")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        judge.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
