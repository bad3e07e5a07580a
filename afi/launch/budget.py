"""Spend, commitments and the cap: what runs have cost, what queued runs will cost, what is left.

A run's cost is recorded as it trains: a worker meters the wall time its machine is busy
(`UsageMeter`: GPU-hours and USD from the run's hourly price), and the trainer records training
time wherever it runs (SkyPilot jobs included); a run has spent the larger of the two. A run not
yet finished is *committed* for its estimated cost less what it has already spent. The
estimate is a rough throughput model (see prices.toml): good enough to stop a launch that would
blow the budget, not an invoice.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from afi.config import RunConfig
from afi.errors import AfiError
from afi.launch.pricing import DEFAULT_MPIX_PER_S, PriceQuote, PriceTable, parse_accelerator
from registry import runs as registry_runs
from registry.db import session_scope
from registry.errors import RegistryError
from registry.records import RunRecord

log = logging.getLogger(__name__)

REFERENCE_WIDTH = 32  # the model width prices.toml's throughputs were measured with
UNFINISHED = ("created", "queued", "running")


def estimate_hours(config: RunConfig, mpix_per_s: float) -> float:
    """Wall-clock hours to train `config` at `mpix_per_s` (megapixels of predictions per second
    for the reference width; compute grows with width squared); a stage with a time budget
    takes at most its minutes."""
    width_factor = (config.variant.width / REFERENCE_WIDTH) ** 2
    hours = 0.0
    for s in config.stages:
        megapixels = s.steps * s.batch * s.grad_accum * s.width * s.height / 1e6
        stage_h = megapixels * width_factor / mpix_per_s / 3600.0
        hours += stage_h if s.minutes is None else min(stage_h, s.minutes / 60.0)
    return hours


def estimate_cost(config: RunConfig, quote: PriceQuote) -> float:
    return estimate_hours(config, quote.mpix_per_s) * quote.hourly_usd


@dataclass(frozen=True)
class BudgetReport:
    cap_usd: float
    spent_usd: float  # recorded cost of every run, finished or not
    committed_usd: float  # estimated cost still to come for created, queued and running runs
    gpu_hours: float
    runs_counted: int
    by_accelerator: dict[str, float]  # accelerator label -> spent USD

    @property
    def remaining_usd(self) -> float:
        return self.cap_usd - self.spent_usd - self.committed_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            "cap_usd": self.cap_usd,
            "spent_usd": self.spent_usd,
            "committed_usd": self.committed_usd,
            "remaining_usd": self.remaining_usd,
            "gpu_hours": self.gpu_hours,
            "runs_counted": self.runs_counted,
            "by_accelerator": self.by_accelerator,
        }


def run_spend(run: RunRecord) -> tuple[float, float]:
    """(USD, GPU-hours) a run has used: what its worker metered (wall time on the machine), or
    at least its training time at its hourly price, which is all a run started elsewhere (a
    SkyPilot job runs `afi run start`, not a worker) records."""
    trained_h = run.train_seconds / 3600.0
    gpus = parse_accelerator(run.accelerator)[1]
    return (
        max(run.cost_usd, trained_h * (run.hourly_price or 0.0)),
        max(run.gpu_hours, trained_h * gpus if run.accelerator else 0.0),
    )


def run_commitment(run: RunRecord, table: PriceTable) -> float:
    """What an unfinished run will still cost: its estimate less what it has spent."""
    if run.status not in UNFINISHED or not run.hourly_price or run.config is None:
        return 0.0
    name, count = parse_accelerator(run.accelerator)
    try:
        mpix_per_s = table.lookup(name).mpix_per_s * count
    except AfiError:  # priced by hand for an accelerator the table does not know
        mpix_per_s = DEFAULT_MPIX_PER_S * count
    estimate = estimate_hours(RunConfig.from_dict(run.config), mpix_per_s) * run.hourly_price
    return max(0.0, estimate - run_spend(run)[0])


def budget_report(engine: Any, table: PriceTable, cap_usd: float | None = None) -> BudgetReport:
    with session_scope(engine) as session:
        runs = registry_runs.list_runs(session)
    spends = [run_spend(run) for run in runs]
    by_accelerator: dict[str, float] = {}
    for run, (usd, _hours) in zip(runs, spends):
        if usd:
            label = run.accelerator or "unrecorded"
            by_accelerator[label] = by_accelerator.get(label, 0.0) + usd
    return BudgetReport(
        cap_usd=table.cap_usd if cap_usd is None else cap_usd,
        spent_usd=sum(usd for usd, _hours in spends),
        committed_usd=sum(run_commitment(run, table) for run in runs),
        gpu_hours=sum(hours for _usd, hours in spends),
        runs_counted=len(runs),
        by_accelerator=dict(sorted(by_accelerator.items())),
    )


def check_budget(report: BudgetReport, new_cost_usd: float, force: bool) -> None:
    """Refuse a launch whose estimate would take spend + commitments past the cap."""
    total = report.spent_usd + report.committed_usd + new_cost_usd
    if total <= report.cap_usd or force:
        return
    raise AfiError(
        f"over budget: this launch is estimated at ${new_cost_usd:,.2f}, and spent "
        f"${report.spent_usd:,.2f} + committed ${report.committed_usd:,.2f} + it = ${total:,.2f} "
        f"> cap ${report.cap_usd:,.2f}: shrink it, raise the cap (--cap or [budget] cap_usd in "
        "$AFI_HOME/prices.toml), or pass --force"
    )


class UsageMeter:
    """Accrues one attempt's GPU-hours and cost onto a run's totals (earlier attempts included).

    Call `record()` periodically while the run trains and once when it stops; each call writes
    the running total, so a process killed between calls loses at most one interval.
    """

    def __init__(self, engine: Any, run: RunRecord) -> None:
        self.engine = engine
        self.run_id = run.id
        self.hourly_usd = run.hourly_price or 0.0
        self.gpus = parse_accelerator(run.accelerator)[1]
        self.base_gpu_hours = run.gpu_hours
        self.base_cost_usd = run.cost_usd
        self.started = time.monotonic()

    def record(self) -> None:
        hours = (time.monotonic() - self.started) / 3600.0
        try:
            with session_scope(self.engine) as session:
                registry_runs.update_run(
                    session,
                    self.run_id,
                    gpu_hours=self.base_gpu_hours + hours * self.gpus,
                    cost_usd=self.base_cost_usd + hours * self.hourly_usd,
                )
        except RegistryError as exc:  # the next call writes the total again: no loss
            log.warning("could not record the cost of run %s: %s", self.run_id, exc)
