"""httpx's one-call functions (`get`, `post`, `put`, `request`) for the tests, without their cost.

`httpx.post(...)` builds a new Client for the call, and with it a new SSL context that loads
certifi's CA bundle: about 20 ms of CPU a call on an idle machine (measured), though the tests speak
plain HTTP. py-spy over a whole `make test` (2026-12-06) found a third of the pytest workers' samples
there, most of them the dedup race's 48 threads waiting for the GIL in it. These build a fresh
Client each call as httpx's do (so no connection, cookie or setting is carried from one call to the
next), given one SSL context on the same CA bundle, made once."""

from __future__ import annotations

import ssl
from typing import Any

import certifi
import httpx

_TLS = ssl.create_default_context(cafile=certifi.where())


def request(method: str, url: str, *, timeout: Any = httpx.USE_CLIENT_DEFAULT, **kwargs: Any) -> httpx.Response:
    """As `httpx.request`: the keywords a request takes (json, content, headers, params...)."""
    with httpx.Client(verify=_TLS) as client:
        return client.request(method, url, timeout=timeout, **kwargs)


def get(url: str, **kwargs: Any) -> httpx.Response:
    return request("GET", url, **kwargs)


def post(url: str, **kwargs: Any) -> httpx.Response:
    return request("POST", url, **kwargs)


def put(url: str, **kwargs: Any) -> httpx.Response:
    return request("PUT", url, **kwargs)
