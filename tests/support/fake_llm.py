#!/usr/bin/env python3
"""fake_llm.py — a fake OpenAI-compatible chat server for the support tests.

Serves POST /v1/chat/completions on 127.0.0.1 (port 0: any free port; the
port is written to --port-file).  What it does with a request depends on a
magic word in the user's message, or, without one, on the mode set through
the control endpoint (POST /control/mode {"mode": "..."}):

  xyzzy-slow       answers after --slow seconds (beyond the client's timeout)
  xyzzy-500        HTTP 500 with an error body
  xyzzy-malformed  HTTP 200 with a body that is not JSON
  (none)           success: {"choices":[{"message":{"content":"fake-llm: ..."}}]}

A request without "Authorization: Bearer <--key>" gets 401.  GET
/control/last returns what the last request carried (whether the key
matched, the model, the messages, max_tokens, temperature) and how many
requests came, so the test checks what the role sent.  Python stdlib only.
"""
import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = {"xyzzy-slow": "slow", "xyzzy-500": "error", "xyzzy-malformed": "malformed"}


class State:
    def __init__(self, key, slow):
        self.key = key
        self.slow = slow
        self.mode = "success"
        self.last = None
        self.count = 0
        self.lock = threading.Lock()


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # quiet: the test prints what matters
            pass

        def reply(self, status, body, content_type="application/json"):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (the slow mode's purpose)

        def read_json(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                return json.loads(raw or b"null")
            except ValueError:
                return None

        def do_GET(self):
            if self.path == "/control/last":
                with state.lock:
                    return self.reply(200, {"count": state.count, "last": state.last})
            self.reply(404, {"error": {"message": "no such path"}})

        def do_POST(self):
            if self.path == "/control/mode":
                body = self.read_json() or {}
                with state.lock:
                    state.mode = body.get("mode", "success")
                return self.reply(200, {"mode": state.mode})
            if not self.path.endswith("/chat/completions"):
                return self.reply(404, {"error": {"message": "no such path"}})
            body = self.read_json()
            auth_ok = self.headers.get("Authorization") == "Bearer " + state.key
            messages = body.get("messages") if isinstance(body, dict) else None
            user = ""
            if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
                user = str(messages[-1].get("content", ""))
            with state.lock:
                state.count += 1
                state.last = {
                    "path": self.path,
                    "authorization_ok": auth_ok,
                    "model": body.get("model") if isinstance(body, dict) else None,
                    "messages": messages,
                    "max_tokens": body.get("max_tokens") if isinstance(body, dict) else None,
                    "temperature": body.get("temperature") if isinstance(body, dict) else None,
                }
                mode = state.mode
            if not auth_ok:
                return self.reply(401, {"error": {"message": "invalid api key"}})
            for word, m in MODES.items():
                if word in user:
                    mode = m
            if mode == "slow":
                time.sleep(state.slow)
                return self.reply(200, answer("too late"))
            if mode == "error":
                return self.reply(500, {"error": {"message": "the model is on fire"}})
            if mode == "malformed":
                return self.reply(200, b'{"choices": [{"message": ', "application/json")
            self.reply(200, answer("fake-llm: a short answer about " + user[:40]))

    return Handler


def answer(content):
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--slow", type=float, default=5.0)
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(State(args.key, args.slow)))
    server.daemon_threads = True
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
