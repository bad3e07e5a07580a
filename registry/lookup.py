"""Find a row by id or unique name, with a NotFound message that says where to look."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.errors import NotFound

T = TypeVar("T")


def find_row(
    s: Session,
    model: type[T],
    name_or_id: str | int,
    what: str,
    listing: str,
    error: type[NotFound] = NotFound,
) -> T:
    """The row whose id (an int, or a string of digits) or name is `name_or_id`."""
    text = str(name_or_id).strip()
    column = model.id if text.isdigit() else model.name  # type: ignore[attr-defined]
    value: str | int = int(text) if text.isdigit() else text
    row = s.scalars(select(model).where(column == value)).first()
    if row is None:
        raise error(f"{what} {text!r} not found: see `{listing}`")
    return row
