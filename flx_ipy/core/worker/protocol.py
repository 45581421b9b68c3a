"""The kernel ↔ worker wire format: 4-byte big-endian length, then one MessagePack map.

Plain data only, both ways: MessagePack has no code objects and extension types are refused,
so nothing a (possibly hostile) worker sends can run code in the kernel — unlike a pickle,
whose loading calls whatever the sender named. Frames are bounded (``MAX_FRAME``): a worker
cannot make the kernel allocate without limit.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

import msgpack

MAX_FRAME = 64 << 20
_HEAD = struct.Struct(">I")


class ProtocolError(Exception):
    """A frame that is not what the protocol allows (too big, not MessagePack, ext types)."""


class ChannelClosed(EOFError):
    """The other end went away."""


class NotPlainData(TypeError):
    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def _refuse(obj: Any) -> Any:
    raise NotPlainData(f"{type(obj).__module__}.{type(obj).__qualname__}")


def _no_ext(code: int, data: bytes) -> Any:
    raise ProtocolError(f"MessagePack extension type {code} is not allowed")


def encode(obj: Any, max_frame: int = MAX_FRAME) -> bytes:
    body: bytes = msgpack.packb(obj, use_bin_type=True, default=_refuse)
    if len(body) > max_frame:
        raise ProtocolError(f"message of {len(body)} bytes exceeds the {max_frame}-byte frame limit")
    return _HEAD.pack(len(body)) + body


def decode(body: bytes | bytearray | memoryview) -> Any:
    try:
        return msgpack.unpackb(body, raw=False, strict_map_key=False, ext_hook=_no_ext,
                               use_list=True)
    except ProtocolError:
        raise
    except Exception as e:
        raise ProtocolError(f"not a MessagePack message: {e}") from None


class Channel:
    """One end of the socketpair. Not thread-safe by itself: callers serialise."""

    def __init__(self, sock: socket.socket, max_frame: int = MAX_FRAME) -> None:
        self.sock = sock
        self.max_frame = max_frame
        self._buf = bytearray()

    def send(self, obj: Any) -> None:
        self.sock.sendall(encode(obj, self.max_frame))

    def send_raw(self, frame: bytes) -> None:
        self.sock.sendall(frame)

    def recv(self) -> Any:
        buf = self._buf
        recv = self.sock.recv
        while len(buf) < 4:
            chunk = recv(65536)
            if not chunk:
                raise ChannelClosed("the other end closed the channel")
            buf += chunk
        (n,) = _HEAD.unpack_from(buf)
        if n > self.max_frame:
            raise ProtocolError(f"incoming frame of {n} bytes exceeds the {self.max_frame}-byte limit")
        while len(buf) < 4 + n:
            chunk = recv(max(65536, 4 + n - len(buf)))
            if not chunk:
                raise ChannelClosed("the other end closed the channel mid-frame")
            buf += chunk
        body = bytes(buf[4:4 + n])
        del buf[:4 + n]
        return decode(body)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
