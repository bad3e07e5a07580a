"""Model variants: what a model is (architecture, flow, discriminator, losses), named once."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry.clock import utcnow
from registry.errors import DuplicateName
from registry.lookup import find_row
from registry.records import VariantRecord
from registry.schema import SqlVariant


@dataclass(frozen=True)
class NewVariant:
    name: str
    kind: str
    arch: str
    config: dict[str, Any]  # the whole variant; two variants are the same when these are equal
    flow: str = "none"
    disc: str = "none"
    generator_config: dict[str, Any] | None = None
    discriminator_config: dict[str, Any] | None = None
    loss_config: dict[str, Any] | None = None
    param_count: int | None = None


def get_or_create_variant(s: Session, variant: NewVariant) -> VariantRecord:
    """The variant named `variant.name`, created on first use.

    Raises DuplicateName when that name already holds a different config.
    """
    existing = s.scalars(select(SqlVariant).where(SqlVariant.name == variant.name)).first()
    if existing is None:
        try:
            # A savepoint, so a worker racing us to create the same variant costs one retry.
            with s.begin_nested():
                existing = SqlVariant(**asdict(variant), created_at=utcnow())
                s.add(existing)
        except IntegrityError:
            existing = s.scalars(select(SqlVariant).where(SqlVariant.name == variant.name)).one()
    if existing.config != variant.config:
        raise DuplicateName(
            f"variant {variant.name!r} already exists with a different config: "
            "give this one another name (see `afi variant show`)"
        )
    if existing.param_count is None and variant.param_count is not None:
        existing.param_count = variant.param_count
    return VariantRecord.from_row(existing)


def get_variant(s: Session, name_or_id: str | int) -> VariantRecord:
    return VariantRecord.from_row(find_row(s, SqlVariant, name_or_id, "variant", "afi variant list"))


def list_variants(s: Session) -> list[VariantRecord]:
    return [VariantRecord.from_row(r) for r in s.scalars(select(SqlVariant).order_by(SqlVariant.id))]
