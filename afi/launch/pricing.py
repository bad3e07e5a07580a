"""Hourly prices of accelerators, and how fast AFI trains on each (to estimate a run's cost).

Three sources, most specific first: the user's `$AFI_HOME/prices.toml`, SkyPilot's catalogue when
a copy is already cached on this machine (never fetched: pricing must work offline), and the
defaults shipped in `afi/launch/prices.toml`.
"""

from __future__ import annotations

import csv
import importlib.util
import math
import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from afi.errors import UsageError
from afi.paths import afi_home

DEFAULTS_PATH = Path(__file__).with_name("prices.toml")
USER_TABLE_NAME = "prices.toml"
LOCAL_ACCELERATOR = "local"  # the machine a worker runs on, whatever its device
PRICE_KEYS = frozenset({"on_demand", "spot", "mpix_per_s"})
DEFAULT_MPIX_PER_S = 1.0  # for an accelerator AFI has no measurement of


@dataclass(frozen=True)
class AcceleratorPrice:
    """One accelerator's entry: USD per hour for one unit, and training throughput."""

    name: str
    on_demand: float
    spot: float
    mpix_per_s: float
    source: str  # "user table", "skypilot catalogue" or "afi defaults"


@dataclass(frozen=True)
class PriceQuote:
    """What one run on `count` x `accelerator` costs per hour."""

    accelerator: str
    count: int
    spot: bool
    hourly_usd: float
    mpix_per_s: float  # for all `count` accelerators together
    source: str

    @property
    def label(self) -> str:
        """`A10G:1` as SkyPilot spells it; stored in runs.accelerator."""
        return f"{self.accelerator}:{self.count}"


@dataclass(frozen=True)
class PriceTable:
    defaults: dict[str, AcceleratorPrice]
    user: dict[str, dict[str, float]]  # partial entries from $AFI_HOME/prices.toml
    cap_usd: float
    user_path: Path

    def quote(self, accelerator: str | None, spot: bool = False) -> PriceQuote:
        """The price of `A10G:1` (or `A10G`, or None for this machine)."""
        name, count = parse_accelerator(accelerator)
        entry = self.lookup(name)
        per_unit = entry.spot if spot else entry.on_demand
        return PriceQuote(
            accelerator=entry.name,
            count=count,
            spot=spot,
            hourly_usd=per_unit * count,
            mpix_per_s=entry.mpix_per_s * count,
            source=entry.source,
        )

    def lookup(self, name: str) -> AcceleratorPrice:
        """The user's entry over SkyPilot's cached catalogue over AFI's defaults."""
        canonical = {n.lower(): n for n in (*self.defaults, *self.user)}.get(name.lower(), name)
        base = self.defaults.get(canonical)
        if canonical != LOCAL_ACCELERATOR:
            catalogue = skypilot_catalogue_prices().get(canonical)
            if catalogue is not None:
                # The catalogue has prices, not AFI's throughput: keep ours where there is one.
                throughput = base.mpix_per_s if base else DEFAULT_MPIX_PER_S
                base = AcceleratorPrice(canonical, *catalogue, throughput, "skypilot catalogue")
        override = self.user.get(canonical)
        if override is None:
            if base is None:
                raise UsageError(
                    f"no price for accelerator {name!r}: known are {', '.join(self.names())}; "
                    f"add [accelerators.{name}] to {self.user_path}"
                )
            return base
        values = {"on_demand": None, "spot": None, "mpix_per_s": DEFAULT_MPIX_PER_S}
        if base is not None:
            values = {"on_demand": base.on_demand, "spot": base.spot, "mpix_per_s": base.mpix_per_s}
        values.update(override)
        if values["on_demand"] is None:
            raise UsageError(
                f"{self.user_path}: [accelerators.{canonical}] is new: give its on_demand price"
            )
        spot = values["spot"] if values["spot"] is not None else values["on_demand"]
        return AcceleratorPrice(
            canonical, values["on_demand"], spot, values["mpix_per_s"], "user table"
        )

    def names(self) -> list[str]:
        return sorted({*self.defaults, *self.user, *skypilot_catalogue_prices()})


def parse_accelerator(text: str | None) -> tuple[str, int]:
    """'A10G:1' -> ('A10G', 1); 'A10G' -> ('A10G', 1); None -> ('local', 1)."""
    if text is None or not text.strip():
        return LOCAL_ACCELERATOR, 1
    match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9_.-]*)\s*(?::\s*(\d+))?\s*", text)
    if match is None or (match.group(2) is not None and int(match.group(2)) < 1):
        raise UsageError(f"bad accelerator {text!r}: write NAME:COUNT, e.g. --gpu A10G:1")
    return match.group(1), int(match.group(2) or 1)


def user_table_path() -> Path:
    return afi_home() / USER_TABLE_NAME


def load_price_table() -> PriceTable:
    """AFI's shipped table and the user's overrides; SkyPilot's catalogue is read on lookup."""
    defaults = _read_table(DEFAULTS_PATH)
    user_path = user_table_path()
    user = _read_table(user_path) if user_path.exists() else {}
    entries = {
        name: AcceleratorPrice(name, source="afi defaults", **values)
        for name, values in _entries(defaults, DEFAULTS_PATH).items()
    }
    cap = user.get("budget", {}).get("cap_usd", defaults["budget"]["cap_usd"])
    if not isinstance(cap, (int, float)) or cap < 0:
        raise UsageError(f"{user_path}: [budget] cap_usd must be a non-negative number")
    return PriceTable(
        defaults=entries, user=_entries(user, user_path), cap_usd=float(cap), user_path=user_path
    )


def _read_table(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot read price table {path}: {exc}") from None


def _entries(table: dict[str, Any], path: Path) -> dict[str, dict[str, float]]:
    """The [accelerators.NAME] tables, checked: known keys, non-negative numbers."""
    entries = {}
    for name, body in table.get("accelerators", {}).items():
        where = f"{path}: [accelerators.{name}]"
        if not isinstance(body, dict) or set(body) - PRICE_KEYS:
            raise UsageError(f"{where}: use only the keys {', '.join(sorted(PRICE_KEYS))}")
        for key, value in body.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise UsageError(f"{where}: {key} must be a non-negative number, got {value!r}")
            if key == "mpix_per_s" and value == 0:
                raise UsageError(f"{where}: mpix_per_s must be positive")
        entries[name] = {key: float(value) for key, value in body.items()}
    return entries


@lru_cache(maxsize=1)
def skypilot_catalogue_prices() -> dict[str, tuple[float, float]]:
    """Cheapest (on-demand, spot) price per single accelerator across the clouds whose catalogue
    SkyPilot has already downloaded here; empty when SkyPilot is absent or has no cache."""
    if importlib.util.find_spec("sky") is None:
        return {}
    from sky.catalog import common as catalog_common  # heavy (about 2 s): only when pricing GPUs

    return _cached_catalogue_prices(Path(catalog_common.get_catalog_path("")))


def _cached_catalogue_prices(directory: Path) -> dict[str, tuple[float, float]]:
    best: dict[str, tuple[float, float]] = {}
    for path in sorted(directory.glob("*/vms.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                name = row.get("AcceleratorName")
                price, count = _float(row.get("Price")), _float(row.get("AcceleratorCount"))
                if not name or price is None or not count:
                    continue
                spot = _float(row.get("SpotPrice"))
                unit = (price / count, (price if spot is None else spot) / count)
                old = best.get(name, unit)
                best[name] = (min(old[0], unit[0]), min(old[1], unit[1]))
    return best


def _float(text: str | None) -> float | None:
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value
