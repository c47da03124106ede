"""Blocking framed-message channel used inside a worker process.

A reader thread turns frames into messages on a queue; ``send`` may be called from
any thread. The HTTP side has its own asyncio reader (``supervisor.py``).
"""

from __future__ import annotations

import queue
import socket
import threading

from . import messages

__all__ = ["Channel"]


def _recv_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(min(size - len(chunks), 1 << 20))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


class Channel:
    """A socket carrying ``messages`` frames; inbound messages land on ``inbox``."""

    CLOSED = object()

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._send_lock = threading.Lock()
        self.inbox: queue.Queue = queue.Queue()

    def send(self, message: messages.Message) -> None:
        frame = messages.encode(message)
        with self._send_lock:
            self._sock.sendall(frame)

    def start_reader(self, on_message=None) -> threading.Thread:
        """Read frames on a daemon thread. ``on_message`` may handle a message
        itself (returning True) instead of queueing it."""

        def run() -> None:
            try:
                while True:
                    header = _recv_exactly(self._sock, messages.HEADER.size)
                    if header is None:
                        break
                    body = _recv_exactly(self._sock, messages.read_frame_size(header))
                    if body is None:
                        break
                    message = messages.decode(body)
                    if on_message is None or not on_message(message):
                        self.inbox.put(message)
            except OSError:
                pass
            finally:
                self.inbox.put(self.CLOSED)

        thread = threading.Thread(target=run, name="channel-reader", daemon=True)
        thread.start()
        return thread
