"""Model variants as data: the built-in library plus variants a user registers from a file.

`afi.models` (and so torch) is imported inside the functions that build a model: every CLI command
imports this module, and listing runs should not pay torch's start-up time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from afi.config import VariantConfig
from afi.errors import NotFoundError
from registry import variants as registry_variants
from registry.db import session_scope
from registry.errors import NotFound
from registry.records import VariantRecord


def variant_row(variant: VariantConfig) -> registry_variants.NewVariant:
    """The registry form of a variant, with its parameter count (needs the model built once)."""
    from afi.models import describe_variant

    summary = describe_variant(variant)
    return registry_variants.NewVariant(
        name=variant.name(),
        kind=variant.kind,
        arch=variant.arch,
        flow=variant.flow,
        disc=variant.disc,
        generator_config=summary.generator_config,
        discriminator_config=summary.discriminator_config,
        loss_config=summary.loss_config,
        config=variant.to_dict(),
        param_count=summary.params,
    )


def list_variants(engine: Any) -> list[dict[str, Any]]:
    """Built-in variants (registered or not) and every registered one, by name."""
    from afi.models import BUILTIN_VARIANTS

    with session_scope(engine) as session:
        registered = {v.name: v for v in registry_variants.list_variants(session)}
    rows: dict[str, dict[str, Any]] = {}
    for name, variant in BUILTIN_VARIANTS.items():
        rows[name] = _row(variant, registered.get(name), builtin=True)
    for name, record in registered.items():
        if name not in rows:
            rows[name] = _row(VariantConfig.from_dict(record.config), record, builtin=False)
    return sorted(rows.values(), key=lambda r: r["name"])


def _row(variant: VariantConfig, record: VariantRecord | None, builtin: bool) -> dict[str, Any]:
    return {
        "name": variant.name(),
        "kind": variant.kind,
        "arch": variant.arch,
        "flow": variant.flow,
        "disc": variant.disc,
        "losses": variant.losses,
        "builtin": builtin,
        "registered": record is not None,
        "params": record.param_count if record else None,
    }


def find_variant(engine: Any, name: str) -> VariantConfig:
    from afi.models import BUILTIN_VARIANTS

    if name in BUILTIN_VARIANTS:
        return BUILTIN_VARIANTS[name]
    with session_scope(engine) as session:
        try:
            return VariantConfig.from_dict(registry_variants.get_variant(session, name).config)
        except NotFound:
            raise NotFoundError(f"variant {name!r} not found: see `afi variant list`") from None


def show_variant(engine: Any, name: str, width: int, height: int) -> dict[str, Any]:
    from afi.models import describe_variant

    summary = describe_variant(find_variant(engine, name), width, height)
    return {**summary.to_dict(), "resolution": [width, height]}


def add_variant(engine: Any, path: Path) -> VariantRecord:
    """Register the variant described by a TOML/JSON file (same config twice is a no-op)."""
    from afi.models import load_variant_file

    row = variant_row(load_variant_file(path))
    with session_scope(engine) as session:
        return registry_variants.get_or_create_variant(session, row)
