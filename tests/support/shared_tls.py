"""One TLS context for the tests' HTTP clients. httpx makes a context for every client it makes (every
``httpx.get``, every ``httpx.Client``), and with OpenSSL 3 that takes about 30 ms of CPU: in the suite, hundreds of
seconds spent on contexts for servers that all speak plain HTTP on loopback. The context is still the one httpx
makes (its own function, called once for each environment); only the making is shared. A client given its own
``verify`` or ``cert`` gets its own, as before. (httpcore sets the context's ALPN protocols on each TLS connection:
shared, that would matter only to tests mixing HTTP/2 and HTTP/1.1 over TLS; none speaks TLS with the default
context.)"""

from __future__ import annotations

import os
import ssl
from typing import Any

import httpx._transports.default as transports

__all__ = ["install"]

MAKE = transports.create_ssl_context
"""httpx's own function, as its transports call it."""
_MADE: dict[tuple[Any, ...], ssl.SSLContext] = {}


def _shared(verify: Any = True, cert: Any = None, trust_env: bool = True) -> ssl.SSLContext:
    if verify is not True or cert is not None:
        return MAKE(verify=verify, cert=cert, trust_env=trust_env)
    key = (trust_env, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    made = _MADE.get(key)
    if made is None:
        made = _MADE[key] = MAKE(verify=True, cert=None, trust_env=trust_env)
    return made


def install() -> None:
    """Every httpx client made in this process from now on shares the context (tests/conftest.py)."""
    transports.create_ssl_context = _shared
