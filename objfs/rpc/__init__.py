"""Retry RPC for the objfs daemons (imgr, ickpt, iclient).

Length-prefixed msgpack frames over TCP or TLS (see objfs.rpc.wire for the
format). Clients reconnect and resend; the server runs each request once
(objfs.rpc.server, objfs.rpc.replies) and can send upcalls down the same
connection. Errors travel as code plus message and come back as the classes
registered in objfs.rpc.errors, each with an errno.
"""

from objfs.rpc.client import ReconnectPolicy, RpcClient
from objfs.rpc.errors import (
    AlreadyExists,
    CodedError,
    FrameTooLarge,
    InternalError,
    InvalidArgument,
    NoSuchMethod,
    NotFound,
    PermissionDenied,
    ProtocolError,
    ReplyExpired,
    RpcError,
    RpcTimeout,
    RpcUnavailable,
    error_for,
    register,
)
from objfs.rpc.server import RpcServer, Session
from objfs.rpc.wire import DEFAULT_MAX_FRAME

__all__ = [
    "DEFAULT_MAX_FRAME",
    "AlreadyExists",
    "CodedError",
    "FrameTooLarge",
    "InternalError",
    "InvalidArgument",
    "NoSuchMethod",
    "NotFound",
    "PermissionDenied",
    "ProtocolError",
    "ReconnectPolicy",
    "ReplyExpired",
    "RpcClient",
    "RpcError",
    "RpcServer",
    "RpcTimeout",
    "RpcUnavailable",
    "Session",
    "error_for",
    "register",
]
