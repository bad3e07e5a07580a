"""Experiment specs: a TOML file holding a base run (a diff of afi.config's defaults) plus either a
curriculum (`[[stages]]`), an ablation grid (`[grid]`) or an Optuna search space (`[search]`).

    [experiment]                      # optional: name (default: file stem), kind, description
    name = "ablation-arch"

    [variant]                         # the base run: any RunConfig field, as in RunConfig.from_dict
    width = 32

    [[stages]]
    res = 256
    steps = 20000
    minutes = 60                      # optional: a wall-clock budget; steps is then the most

    [grid]                            # one run per combination
    arch = ["unet", "isnet"]
    disc = ["none", "patchgan"]

Grid, search and `--set` keys name a RunConfig field: `variant.X`, `data.X`, `stage.X` (every
stage), `stages.N.X` (stage N only), a run-level field (`seed`), `variant.losses.TERM`, or a bare
field name when only one section has it (`arch`, `lr`, `dataset`, `minutes`; `width` is ambiguous).
"""

from __future__ import annotations

import copy
import itertools
import re
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from afi.config import (
    LOWER_IS_BETTER,
    DataConfig,
    RunConfig,
    StageConfig,
    VariantConfig,
    default_variant,
)
from afi.errors import UsageError

EXPERIMENT_KINDS = ("single", "curriculum", "ablation", "study")
SECTIONS: dict[str, type] = {"variant": VariantConfig, "data": DataConfig, "stage": StageConfig}
RUN_FIELDS = frozenset(f.name for f in fields(RunConfig)) - {"variant", "data", "stages"}
STAGE_FIELDS = frozenset(f.name for f in fields(StageConfig)) | {"res"}
SPEC_TABLES = frozenset({"experiment", "grid", "search", "tune"})
EXPERIMENT_KEYS = frozenset({"name", "kind", "description"})
TUNE_KEYS = frozenset({"metric", "direction", "trials", "warmup_steps", "startup_trials"})
SEARCH_KEYS = frozenset({"low", "high", "log", "step", "choices"})
# Field paths are tuples: ("variant", "arch"), ("stages", "*", "lr"), ("stages", 1, "steps"),
# ("variant", "losses", "census"), ("seed",). "*" means every stage.
FieldPath = tuple[str | int, ...]


@dataclass(frozen=True)
class SearchParam:
    """One Optuna dimension: a float/int range (`low`..`high`, optionally `log`) or `choices`."""

    key: str
    path: FieldPath
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    @property
    def is_int(self) -> bool:
        return not self.choices and all(
            isinstance(v, int) and not isinstance(v, bool) for v in (self.low, self.high)
        ) and (self.step is None or isinstance(self.step, int))


@dataclass(frozen=True)
class TuneSettings:
    """How a study scores and prunes trials. `metric` is a logged key such as `val/psnr`."""

    metric: str = "val/psnr"
    direction: str = "maximize"
    trials: int = 20
    # The pruner ignores reports before this step and the first `startup_trials` trials.
    warmup_steps: int = 0
    startup_trials: int = 2


@dataclass(frozen=True)
class PlannedRun:
    """One run an experiment will queue: its name, resolved config and the tags that place it."""

    name: str
    config: RunConfig
    tags: dict[str, str]


@dataclass(frozen=True)
class ExperimentSpec:
    name: str
    kind: str
    description: str
    source: str  # the file it came from, for messages
    base: dict[str, Any]  # the base run, in RunConfig.from_dict form, --set overrides applied
    grid: tuple[tuple[str, FieldPath, tuple[Any, ...]], ...] = ()  # (key, path, values)
    search: tuple[SearchParam, ...] = ()
    tune: TuneSettings | None = None

    def to_dict(self) -> dict[str, Any]:
        """The resolved spec, as stored on the experiment row."""
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "base": self.base,
            "grid": {key: list(values) for key, _path, values in self.grid},
            "search": {p.key: _search_dict(p) for p in self.search},
            "tune": None if self.tune is None else vars(self.tune),
        }

    def expand(self) -> list[PlannedRun]:
        """Every run of the experiment: one per grid point (the base run alone without a grid)."""
        keys = [key for key, _path, _values in self.grid]
        runs = []
        for point in itertools.product(*(values for _key, _path, values in self.grid)):
            data = copy.deepcopy(self.base)
            for (key, path, _values), value in zip(self.grid, point):
                set_path(data, path, value, f"{self.source}: grid key {key!r}")
            where = ", ".join(f"{k}={v}" for k, v in zip(keys, point)) or "base run"
            config = resolve_config(data, f"{self.source} ({where})")
            tags = {key: value_text(value) for key, value in zip(keys, point)}
            runs.append(PlannedRun(run_name(self.name, point, len(runs)), config, tags))
        return runs

    def trial_config(self, values: dict[str, Any]) -> RunConfig:
        """The run of one Optuna trial: the base with each search key set to the sampled value."""
        data = copy.deepcopy(self.base)
        for param in self.search:
            set_path(data, param.path, values[param.key], f"{self.source}: search key {param.key!r}")
        where = ", ".join(f"{k}={v}" for k, v in values.items())
        return resolve_config(data, f"{self.source} (trial {where})")


def _search_dict(param: SearchParam) -> dict[str, Any]:
    if param.choices:
        return {"choices": list(param.choices)}
    found = {"low": param.low, "high": param.high, "log": param.log, "step": param.step}
    return {k: v for k, v in found.items() if v is not None}


def value_text(value: Any) -> str:
    """A compact, stable text form of a grid value for run names and tags."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return ",".join(f"{k}={value_text(v)}" for k, v in sorted(value.items()))
    if isinstance(value, list):
        return "+".join(value_text(v) for v in value)
    return str(value)


def run_name(experiment: str, point: tuple[Any, ...], index: int) -> str:
    """`ablation-arch-isnet-patchgan`: the experiment plus the grid values, slugged."""
    if not point:
        return experiment
    slug = "-".join(re.sub(r"[^A-Za-z0-9.+=-]+", "_", value_text(v)) for v in point)
    name = f"{experiment}-{slug}"
    # Run names are VARCHAR(255): long dict-valued grids fall back to the point's index.
    return name if len(name) <= 200 else f"{experiment}-{index:03d}"


def resolve_key(key: str, where: str) -> FieldPath:
    """A dotted or bare field name -> a field path; unknown or ambiguous names are bad usage."""
    parts = key.split(".")
    head = parts[0]
    if head == "variant" and len(parts) == 3 and parts[1] == "losses":
        return ("variant", "losses", parts[2])
    if head in ("variant", "data", "stage") and len(parts) == 2:
        _check_field(SECTIONS[head], parts[1], key, where)
        return ("stages", "*", parts[1]) if head == "stage" else (head, parts[1])
    if head == "stages" and len(parts) == 3 and parts[1].isdigit():
        _check_field(StageConfig, parts[2], key, where)
        return ("stages", int(parts[1]), parts[2])
    if len(parts) == 1:
        return _resolve_bare(key, where)
    raise UsageError(
        f"{where}: cannot read key {key!r}: use variant.X, data.X, stage.X, stages.N.X, "
        "variant.losses.TERM or a run field"
    )


def _check_field(section: type, name: str, key: str, where: str) -> None:
    known = STAGE_FIELDS if section is StageConfig else {f.name for f in fields(section)}
    if name not in known:
        raise UsageError(f"{where}: unknown key {key!r}: known are {', '.join(sorted(known))}")


def _resolve_bare(name: str, where: str) -> FieldPath:
    candidates: list[FieldPath] = []
    if name in RUN_FIELDS:
        candidates.append((name,))
    for section, cls in SECTIONS.items():
        known = STAGE_FIELDS if cls is StageConfig else {f.name for f in fields(cls)}
        if name in known:
            candidates.append(("stages", "*", name) if section == "stage" else (section, name))
    if not candidates:
        raise UsageError(
            f"{where}: unknown key {name!r}: name a RunConfig field, e.g. arch, disc, lr, "
            "variant.width, stage.res"
        )
    if len(candidates) > 1:
        dotted = " or ".join(_dotted(c) for c in candidates)
        raise UsageError(f"{where}: key {name!r} is ambiguous: write {dotted}")
    return candidates[0]


def _dotted(path: FieldPath) -> str:
    return "stage." + str(path[2]) if path[:2] == ("stages", "*") else ".".join(map(str, path))


def set_path(data: dict[str, Any], path: FieldPath, value: Any, where: str) -> None:
    """Set `value` at `path` inside a RunConfig.from_dict-style dict."""
    if path[0] != "stages":
        target = data
        for part in path[:-1]:
            target = target.setdefault(str(part), {})
            if not isinstance(target, dict):
                raise UsageError(f"{where}: {_dotted(path)} sets inside a non-table value")
        target[str(path[-1])] = value
        return
    stages = data.setdefault("stages", [{}])
    if path[1] == "*":
        for stage in stages:
            stage[str(path[2])] = value
        return
    index = int(path[1])
    if index >= len(stages):
        raise UsageError(
            f"{where}: stages.{index} does not exist: the base run has {len(stages)} stage(s)"
        )
    stages[index][str(path[2])] = value


def resolve_config(data: dict[str, Any], where: str) -> RunConfig:
    """A RunConfig from a spec dict. The variant starts from `default_variant(arch, flow, disc)`,
    so switching `disc` brings its adversarial loss; `losses` entries add to the defaults."""
    data = copy.deepcopy(data)
    variant = data.get("variant", {})
    if not isinstance(variant, dict):
        raise UsageError(f"{where}: variant must be a table")
    try:
        defaults = default_variant(
            variant.get("arch", "unet"), variant.get("flow", "none"), variant.get("disc", "none")
        ).to_dict()
        losses = {**defaults["losses"], **variant.get("losses", {})}
        data["variant"] = {**defaults, **variant, "losses": losses}
        return RunConfig.from_dict(data)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None
    except (TypeError, ValueError) as exc:  # a wrong value type, e.g. steps = "many"
        raise UsageError(f"{where}: bad value: {exc}") from None


def parse_set(items: list[str] | tuple[str, ...]) -> list[tuple[str, Any]]:
    """`--set stage.res=32` -> [("stage.res", 32)]: values are TOML, else plain strings."""
    pairs = []
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"bad --set {item!r}: use --set key=value, e.g. --set stage.steps=4")
        try:
            value = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        pairs.append((key.strip(), value))
    return pairs


def load_spec(
    path: Path | str, overrides: list[tuple[str, Any]] | None = None, name: str | None = None
) -> ExperimentSpec:
    """Read and validate a spec file; every expanded run is validated here, before any launch.
    `name` replaces the experiment's name (to launch a spec again as a new experiment)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"spec {path} not found: see the examples in experiments/") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read spec {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None
    if name is not None:
        raw.setdefault("experiment", {})
        if isinstance(raw["experiment"], dict):
            raw["experiment"]["name"] = name
    spec = parse_spec(raw, str(path), default_name=path.stem, overrides=overrides or [])
    spec.expand()  # validates every grid point now, so a bad one fails before anything is queued
    return spec


def parse_spec(
    raw: dict[str, Any], source: str, default_name: str, overrides: list[tuple[str, Any]]
) -> ExperimentSpec:
    meta = _table(raw, "experiment", source)
    _check_keys(meta, EXPERIMENT_KEYS, f"{source}: [experiment]")
    base = {k: v for k, v in raw.items() if k not in SPEC_TABLES}
    grid = _parse_grid(_table(raw, "grid", source), source)
    search = _parse_search(_table(raw, "search", source), source)
    if grid and search:
        raise UsageError(f"{source}: a spec has a [grid] (ablation) or a [search] (study), not both")
    grid_keys = {path for _key, path, _values in grid} | {p.path for p in search}
    for key, value in overrides:
        path = resolve_key(key, f"--set {key}")
        if path in grid_keys:
            raise UsageError(f"--set {key}: {source} varies {key} itself: drop the --set")
        set_path(base, path, value, f"--set {key}")
    tune_table = _table(raw, "tune", source)
    if tune_table and not search:
        raise UsageError(f"{source}: [tune] needs a [search] table saying what to vary")
    name = meta.get("name", default_name)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", name):
        raise UsageError(
            f"{source}: bad experiment name {name!r}: use letters, digits, '-', '_' or '.'"
        )
    kind = meta.get("kind", _inferred_kind(base, grid, search))
    if kind not in EXPERIMENT_KINDS:
        raise UsageError(
            f"{source}: [experiment] kind {kind!r}: choose one of {', '.join(EXPERIMENT_KINDS)}"
        )
    resolve_config(base, f"{source} (base run)")
    return ExperimentSpec(
        name=name,
        kind=kind,
        description=str(meta.get("description", "")),
        source=source,
        base=base,
        grid=grid,
        search=search,
        tune=_parse_tune(tune_table, source) if search else None,
    )


def _inferred_kind(base: dict[str, Any], grid: tuple, search: tuple) -> str:
    if search:
        return "study"
    if grid:
        return "ablation"
    return "curriculum" if len(base.get("stages", [])) > 1 else "single"


def _table(raw: dict[str, Any], name: str, source: str) -> dict[str, Any]:
    table = raw.get(name, {})
    if not isinstance(table, dict):
        raise UsageError(f"{source}: {name} must be a table, written [{name}]")
    return table


def _check_keys(table: dict[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(unknown)}: known are {', '.join(sorted(known))}")


def _flatten(table: dict[str, Any], leaf: Any) -> list[tuple[str, Any]]:
    """TOML reads `variant.arch = [...]` as nested tables; turn them back into dotted keys.
    `leaf(value)` says when to stop descending."""
    items = []
    for key, value in table.items():
        if isinstance(value, dict) and not leaf(value):
            items.extend((f"{key}.{sub}", v) for sub, v in _flatten(value, leaf))
        else:
            items.append((key, value))
    return items


def _parse_grid(table: dict[str, Any], source: str) -> tuple[tuple[str, FieldPath, tuple], ...]:
    grid = []
    for key, values in _flatten(table, leaf=lambda _v: False):
        where = f"{source}: grid key {key!r}"
        if not isinstance(values, list) or not values:
            raise UsageError(f"{where} must be a non-empty list of values, e.g. {key} = [1, 2]")
        grid.append((key, resolve_key(key, where), tuple(values)))
    _check_unique([path for _key, path, _values in grid], source, "grid")
    return tuple(grid)


def _parse_search(table: dict[str, Any], source: str) -> tuple[SearchParam, ...]:
    params = []
    for key, body in _flatten(table, leaf=lambda v: bool(set(v) & SEARCH_KEYS)):
        where = f"{source}: search key {key!r}"
        if not isinstance(body, dict):
            raise UsageError(f"{where}: write {{ low = ..., high = ... }} or {{ choices = [...] }}")
        _check_keys(body, SEARCH_KEYS, where)
        path = resolve_key(key, where)
        if "choices" in body:
            choices = body["choices"]
            if not isinstance(choices, list) or not choices or set(body) != {"choices"}:
                raise UsageError(f"{where}: choices must be a non-empty list, and alone")
            params.append(SearchParam(key, path, choices=tuple(choices)))
            continue
        low, high = body.get("low"), body.get("high")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
            raise UsageError(f"{where}: needs numeric low and high (or choices)")
        if not low < high:
            raise UsageError(f"{where}: low ({low}) must be below high ({high})")
        if body.get("log", False) and low <= 0:
            raise UsageError(f"{where}: a log range needs low > 0, got {low}")
        params.append(
            SearchParam(key, path, low=low, high=high, log=bool(body.get("log", False)),
                        step=body.get("step"))
        )
    _check_unique([p.path for p in params], source, "search")
    return tuple(params)


def _check_unique(paths: list[FieldPath], source: str, table: str) -> None:
    seen = set()
    for path in paths:
        if path in seen:
            raise UsageError(f"{source}: [{table}] names {_dotted(path)} twice")
        seen.add(path)


def _parse_tune(table: dict[str, Any], source: str) -> TuneSettings:
    _check_keys(table, TUNE_KEYS, f"{source}: [tune]")
    metric = table.get("metric", "val/psnr")
    default_direction = "minimize" if metric.split("/")[-1] in LOWER_IS_BETTER else "maximize"
    settings = TuneSettings(
        metric=metric,
        direction=table.get("direction", default_direction),
        trials=table.get("trials", 20),
        warmup_steps=table.get("warmup_steps", 0),
        startup_trials=table.get("startup_trials", 2),
    )
    if settings.direction not in ("maximize", "minimize"):
        raise UsageError(f"{source}: [tune] direction must be maximize or minimize")
    for what in ("trials", "warmup_steps", "startup_trials"):
        value = getattr(settings, what)
        if not isinstance(value, int) or value < (1 if what == "trials" else 0):
            raise UsageError(f"{source}: [tune] {what} must be a whole number, got {value!r}")
    return settings
