"""The registry's one clock: naive UTC, which is how every timestamp column stores time."""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)
