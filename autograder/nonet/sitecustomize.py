"""Loaded by the grading kernel in the ``process`` isolation mode (no namespaces).

Refuses internet sockets from Python code. The kernel's own messaging uses
ZeroMQ over Unix-domain sockets and is not affected. This is a courtesy
barrier, not a security boundary: the class report says that no namespaces
were in force.
"""

import socket as _socket

_BLOCKED = {getattr(_socket, name) for name in ("AF_INET", "AF_INET6") if hasattr(_socket, name)}
_original_init = _socket.socket.__init__


def _guarded_init(self, family=-1, type=-1, proto=-1, fileno=None):  # noqa: A002 - socket.socket's own parameter names
    if fileno is None and (family in _BLOCKED or family == -1):
        raise PermissionError("network access is disabled while grading")
    _original_init(self, family, type, proto, fileno)


_socket.socket.__init__ = _guarded_init


def _no_getaddrinfo(*args, **kwargs):
    raise PermissionError("network access is disabled while grading")


_socket.getaddrinfo = _no_getaddrinfo
_socket.create_connection = lambda *a, **k: _no_getaddrinfo()
