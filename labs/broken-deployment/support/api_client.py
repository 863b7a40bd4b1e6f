"""Talking to churn-api the way its clients do: through the Service's NodePort."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

API = "http://127.0.0.1:30080"


def call(path: str, payload: dict | None = None, token: str = "", timeout: float = 10.0) -> tuple[int, dict | str]:
    """(status, body); status 0 when no HTTP answer came at all."""
    request = urllib.request.Request(API + path, data=json.dumps(payload).encode() if payload is not None else None,
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read().decode()
            return response.status, (json.loads(body) if body.strip().startswith("{") else body)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")[:300]
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(getattr(exc, "reason", exc))


def wait_answering(path: str = "/readyz", timeout_s: float = 30.0) -> tuple[int, dict | str]:
    deadline = time.monotonic() + timeout_s
    status, body = call(path)
    while status != 200 and time.monotonic() < deadline:
        time.sleep(1)
        status, body = call(path)
    return status, body
