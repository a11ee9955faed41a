"""Errors of the retry RPC, and the registry that maps wire codes to them.

An error travels as a code plus a message. `error_for(code, message)` turns a
received pair back into an exception: the class registered for the code, or a
plain `RpcError` for a code nobody registered. Every class carries an errno so
the mount can answer the kernel with it (`EIO` unless the class says better).
"""

from __future__ import annotations

import errno as _errno
from typing import ClassVar, TypeVar

E = TypeVar("E", bound="type[RpcError]")

_registry: dict[str, type[RpcError]] = {}


class RpcError(Exception):
    """An error reported by the remote end (or by the RPC layer itself)."""

    code: ClassVar[str] = "error"
    errno: ClassVar[int] = _errno.EIO

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code  # type: ignore[misc]  # instances may carry unregistered codes
        self.message = message


class CodedError(RpcError):
    """Base of errors whose code is fixed by their class: raise `NotFound("why")`."""

    def __init__(self, message: str = "") -> None:
        super().__init__(type(self).code, message)


def register(cls: E) -> E:
    """Class decorator: received errors with `cls.code` become `cls`."""
    if cls.code in _registry and _registry[cls.code] is not cls:
        raise ValueError(f"RPC error code {cls.code!r} is already registered")
    _registry[cls.code] = cls
    return cls


def error_for(code: str, message: str) -> RpcError:
    """The exception for an error received from the other end."""
    cls = _registry.get(code)
    if cls is None:
        return RpcError(code, message)
    if issubclass(cls, CodedError):
        return cls(message)
    return cls(code, message)


@register
class NotFound(CodedError):
    code = "not_found"
    errno = _errno.ENOENT


@register
class AlreadyExists(CodedError):
    code = "exists"
    errno = _errno.EEXIST


@register
class PermissionDenied(CodedError):
    code = "permission"
    errno = _errno.EACCES


@register
class InvalidArgument(CodedError):
    code = "invalid"
    errno = _errno.EINVAL


@register
class NoSuchMethod(CodedError):
    code = "no_method"
    errno = _errno.ENOSYS


@register
class InternalError(CodedError):
    """The handler failed unexpectedly; the server logged the details."""

    code = "internal"


@register
class ReplyExpired(CodedError):
    """A resent request whose stored reply was already dropped (TTL or table bound).

    The request may or may not have run; it is not run again.
    """

    code = "reply_expired"


@register
class RpcTimeout(CodedError):
    code = "timeout"
    errno = _errno.ETIMEDOUT


@register
class RpcUnavailable(CodedError):
    """The server could not be reached (the reconnect policy gave up, or TLS failed)."""

    code = "unavailable"
    errno = _errno.EHOSTUNREACH


class ProtocolError(Exception):
    """The peer broke the wire protocol; the connection is closed."""


class FrameTooLarge(ProtocolError):
    """A frame above the size limit, announced by a peer or about to be sent."""
