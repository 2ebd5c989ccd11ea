"""HTTP for tests: one GET against a service's health and metrics endpoint."""

from __future__ import annotations

import httpx


async def http_get(host: str, port: int, path: str, *, timeout_s: float = 10.0) -> tuple[int, bytes]:
    """One HTTP GET: ``(status, body)`` (an IPv6 ``host`` is bracketed; no proxies from the environment)."""
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    async with httpx.AsyncClient(timeout=timeout_s, trust_env=False) as client:
        response = await client.get(f"http://{netloc}{path}")
        return response.status_code, response.content
