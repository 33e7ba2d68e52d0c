"""
ws_client.py — a minimal RFC 6455 WebSocket client for the ws suites (stdlib only).

    c = WSClient.connect("127.0.0.1", port, token=tok)   # raises Refused if not upgraded
    c.send_json({"type": "ping"})
    msg = c.expect("pong")            # the first JSON frame of that type, others skipped
    c.close()

Frames from the client are masked with a random key, as the RFC requires.
recv() returns (opcode, payload bytes); a close frame's payload starts with
its 2-byte status code.
"""
import base64
import hashlib
import json
import os
import socket
import struct
import urllib.parse

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 1, 2, 8, 9, 10


class Refused(Exception):
    """The server did not answer the handshake with 101."""


class Closed(Exception):
    """The connection ended; .code is the close status (None if the socket just ended)."""

    def __init__(self, code=None):
        super().__init__(f"closed (code {code})")
        self.code = code


class WSClient:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.unbatched = []  # the rest of a presence.batch, handed out one frame at a time
        self.batches = 0  # presence.batch frames received

    @classmethod
    def connect(cls, host, port, token=None, path="/ws", headers=None, timeout=5.0):
        sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        target = path + ("?token=" + urllib.parse.quote(token, safe="") if token else "")
        lines = [
            f"GET {target} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        try:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    raise Refused("connection closed during the handshake")
                head += chunk
        except (OSError, socket.timeout) as e:
            sock.close()
            raise Refused(str(e)) from e
        head, rest = head.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n", 1)[0].decode(errors="replace")
        if " 101 " not in status + " ":
            sock.close()
            raise Refused(status)
        accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        if f"sec-websocket-accept: {accept}".lower().encode() not in head.lower():
            sock.close()
            raise Refused("bad Sec-WebSocket-Accept")
        c = cls(sock)
        c.buf = rest
        return c

    def send(self, opcode, payload, fin=True):
        self.sock.sendall(self.frame(opcode, payload, fin))

    @staticmethod
    def frame(opcode, payload, fin=True):
        """One masked frame, as bytes."""
        header = bytes([(0x80 if fin else 0) | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return header + mask + masked

    def send_json(self, obj):
        self.send(OP_TEXT, json.dumps(obj).encode())

    def send_text(self, text):
        self.send(OP_TEXT, text.encode() if isinstance(text, str) else text)

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Closed(None)
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        b0, b1 = self._read(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._read(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._read(8))
        mask = self._read(4) if b1 & 0x80 else None
        payload = self._read(n)
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return b0 & 0x0F, payload

    def next_json(self, timeout=5.0):
        """The next JSON text frame; Closed on a close frame or the end of the socket.

        A presence.batch is handed out as the presence frames it holds, in order (the server
        coalesces presence; docs/ws.md), and self.batches counts the batches seen."""
        if self.unbatched:
            return self.unbatched.pop(0)
        self.sock.settimeout(timeout)
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
        self.sock.settimeout(timeout)
        try:
            while True:
                op, payload = self.recv()
                if op == OP_CLOSE:
                    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
        except Closed as e:
            return e.code

    def close(self):
        try:
            self.send(OP_CLOSE, struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()
