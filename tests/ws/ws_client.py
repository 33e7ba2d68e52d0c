"""
ws_client.py — the WebSocket client of the ws suites, over websocket-client
(Debian's python3-websocket, module `websocket`).

    c = WSClient.connect("127.0.0.1", port, token=tok)   # raises Refused if not upgraded
    c.send_json({"type": "ping"})
    msg = c.expect("pong")            # the first JSON frame of that type, others skipped
    c.close()

The library does the handshake (and checks Sec-WebSocket-Accept), masks and
parses frames. What stays here is what the suites need on top: frames of any
opcode, fragments and raw bytes (c.frame, c.sock) to send malformed or
flooding input, presence batches handed out entry by entry, and waiting for a
frame of a type. recv() returns (opcode, payload bytes); a close frame's
payload starts with its 2-byte status code.
"""
import json
import socket
import struct
import sys
import urllib.parse

try:
    import websocket
except ImportError:  # a python3 that is not Debian's (pyenv, a venv) does not look where apt put it
    sys.path.append("/usr/lib/python3/dist-packages")
    import websocket
from websocket import ABNF

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


class Refused(Exception):
    """The server did not answer the handshake with 101."""


class Closed(Exception):
    """The connection ended; .code is the close status (None if the socket just ended)."""

    def __init__(self, code=None):
        super().__init__(f"closed (code {code})")
        self.code = code


class WSClient:
    def __init__(self, ws):
        self.ws = ws
        self.sock = ws.sock  # the TCP socket, for raw bytes
        self.unbatched = []  # the rest of a presence.batch, handed out one frame at a time
        self.batches = 0  # presence.batch frames received

    @classmethod
    def connect(cls, host, port, token=None, path="/ws", headers=None, timeout=5.0):
        # Connected here, not by the library: a port nobody listens on is an OSError, not a
        # refusal, and no proxy from the environment gets in the way.
        sock = socket.create_connection((host, port), timeout=timeout)
        target = path + ("?token=" + urllib.parse.quote(token, safe="") if token else "")
        ws = websocket.WebSocket()
        try:
            ws.connect(f"ws://{host}:{port}{target}", socket=sock, timeout=timeout, header=dict(headers or {}),
                       suppress_origin=True)
        except (websocket.WebSocketException, OSError) as e:
            sock.close()
            raise Refused(str(e)) from e
        return cls(ws)

    def send(self, opcode, payload, fin=True):
        self.ws.send_frame(ABNF.create_frame(payload, opcode, int(bool(fin))))

    @staticmethod
    def frame(opcode, payload, fin=True):
        """One masked frame, as bytes."""
        return ABNF.create_frame(payload, opcode, int(bool(fin))).format()

    def send_json(self, obj):
        self.send(OP_TEXT, json.dumps(obj).encode())

    def send_text(self, text):
        self.send(OP_TEXT, text.encode() if isinstance(text, str) else text)

    def recv(self):
        """The next message (fragments joined) or control frame, as (opcode, payload bytes).

        Closed(None) when the socket ends; TimeoutError when nothing comes in time."""
        op, parts = None, []
        while True:
            try:
                f = self.ws.recv_frame()
            except websocket.WebSocketTimeoutException as e:
                raise TimeoutError(str(e)) from e
            except websocket.WebSocketConnectionClosedException as e:
                raise Closed(None) from e
            data = f.data if isinstance(f.data, bytes) else f.data.encode()
            if f.opcode in (OP_CLOSE, OP_PING, OP_PONG):
                return f.opcode, data
            if f.opcode != OP_CONT:
                op = f.opcode
            parts.append(data)
            if f.fin:
                return op, b"".join(parts)

    def next_json(self, timeout=5.0):
        """The next JSON text frame; Closed on a close frame or the end of the socket.

        A presence.batch is handed out as the presence frames it holds, in order (the server
        coalesces presence; docs/ws.md), and self.batches counts the batches seen."""
        if self.unbatched:
            return self.unbatched.pop(0)
        self.ws.settimeout(timeout)
        while True:
            op, payload = self.recv()
            if op == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                raise Closed(code)
            if op == OP_PING:
                self.send(OP_PONG, payload)
                continue
            if op == OP_TEXT:
                msg = json.loads(payload)
                if msg.get("type") == "presence.batch":
                    self.batches += 1
                    self.unbatched = list(msg["users"])
                    if not self.unbatched:
                        continue
                    return self.unbatched.pop(0)
                return msg

    def expect(self, type_, timeout=5.0, where=None):
        """The first JSON frame of type_ (and matching where(msg), if given) within timeout."""
        while True:
            msg = self.next_json(timeout)
            if msg.get("type") == type_ and (where is None or where(msg)):
                return msg

    def quiet(self, type_, timeout=0.5, where=None):
        """True if no frame of type_ arrives within timeout."""
        try:
            self.expect(type_, timeout, where)
            return False
        except (socket.timeout, TimeoutError):
            return True

    def wait_close(self, timeout=5.0):
        """The close code the server sends (skipping other frames); None if the socket just ends."""
        self.ws.settimeout(timeout)
        try:
            while True:
                op, payload = self.recv()
                if op == OP_CLOSE:
                    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
        except Closed as e:
            return e.code

    def close(self):
        try:
            self.ws.send_close(1000)
        except (websocket.WebSocketException, OSError):
            pass
        self.ws.shutdown()
