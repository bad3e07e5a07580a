"""`afi report EXPERIMENT`: one self-contained HTML page (images inlined), openable offline.

The page holds the experiment's leaderboard on one split (its runs beside the classical baselines
scored on the same split of the same datasets, by `afi eval`'s protocol), its training validation
on a board of its own (centre crops: not comparable), metric curves as PNG plots, and per run a
grid of sample interpolations: the two input frames, the prediction, the truth and an error map.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from afi import __version__
from afi.errors import NotFoundError
from afi.leaderboard import COLUMNS, DEFAULT_SPLIT, Board, experiment_boards, rows_as_dicts
from afi.report.compare import validation_curves
from afi.report.plots import curves_png
from registry import checkpoints as registry_checkpoints
from registry import datasets as registry_datasets
from registry import experiments as registry_experiments
from registry import metrics as registry_metrics
from registry import runs as registry_runs
from registry.db import session_scope
from registry.errors import NotFound
from registry.records import DatasetRecord, LeaderboardRow, RunRecord, TripletRecord

SAMPLE_SPLITS = ("test", "val", "train")  # where sample triplets come from, first non-empty
TRAIN_LOSS_KEY = "loss/G/total"
GRID_LABELS = ("frame 0", "frame 2", "prediction", "truth (frame 1)", "error x4")


@dataclass(frozen=True)
class ReportData:
    experiment: str
    kind: str
    runs: list[RunRecord]
    boards: list[Board]  # the split asked for (with baselines), then training validation
    curves_png: bytes
    samples: dict[str, list[list[bytes]]]  # run name -> rows of PNGs, one per GRID_LABELS column
    sample_notes: dict[str, str]  # run name -> why it has no samples


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def image_png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def error_map(prediction: np.ndarray, truth: np.ndarray, gain: float = 4.0) -> np.ndarray:
    """|prediction - truth| per pixel, amplified and shown in a red heat scale: (H, W, 3) uint8."""
    diff = np.abs(prediction.astype(np.float32) - truth.astype(np.float32)).mean(axis=2)
    level = np.clip(diff * gain, 0, 255).astype(np.uint8)
    return np.stack([level, level // 3, np.zeros_like(level)], axis=2)


def load_rgb(root: Path, relative: str) -> np.ndarray:
    with Image.open(root / relative) as image:
        return np.array(image.convert("RGB"))  # a writable copy: torch warns on read-only arrays


def sample_triplets(engine: Any, dataset: DatasetRecord, count: int) -> list[TripletRecord]:
    with session_scope(engine) as session:
        for split in SAMPLE_SPLITS:
            triplets = registry_datasets.list_triplets(session, dataset.id, split=split, limit=count)
            if triplets:
                return triplets
    return []


def run_samples(engine: Any, run: RunRecord, dataset: DatasetRecord, count: int) -> list[list[bytes]]:
    """The grid of sample interpolations for one run, from its best checkpoint."""
    from afi.video.engine import open_interpolator  # torch: only when samples are drawn

    interpolator = open_interpolator(engine, run=str(run.id))
    root = Path(dataset.root)
    rows = []
    for triplet in sample_triplets(engine, dataset, count):
        frame0, truth, frame2 = (load_rgb(root, p) for p in (triplet.frame0, triplet.frame1, triplet.frame2))
        prediction = interpolator(frame0[None], frame2[None], np.array([triplet.t]))[0]
        images = (frame0, frame2, prediction, truth, error_map(prediction, truth))
        rows.append([image_png(image) for image in images])
    if not rows:
        raise NotFoundError(f"dataset {dataset.name} has no triplets to draw samples from")
    return rows


def collect(engine: Any, experiment: str, samples: int, split: str = DEFAULT_SPLIT) -> ReportData:
    with session_scope(engine) as session:
        try:
            record = registry_experiments.get_experiment(session, experiment)
        except NotFound:
            raise NotFoundError(f"experiment {experiment!r} not found: see `afi experiment list`") from None
        runs = registry_runs.list_runs(session, experiment=experiment)
        boards = experiment_boards(session, experiment, split, "psnr")
        dataset_names = sorted({r.dataset for r in runs if r.dataset})
        datasets = {name: registry_datasets.get_dataset(session, name) for name in dataset_names}
        points = {run.id: registry_metrics.get_metrics(session, run.id) for run in runs}
        best = {run.id: registry_checkpoints.best_checkpoint(session, run.id) for run in runs}
    curves = validation_curves(runs, points)
    for run in runs:  # training loss too: the first thing to look at when a run disappoints
        series = [(p.step, p.value) for p in sorted(points[run.id], key=lambda p: p.step)
                  if p.key == TRAIN_LOSS_KEY and p.value is not None]
        if series:
            curves.setdefault(TRAIN_LOSS_KEY, {})[run.name] = series
    grids: dict[str, list[list[bytes]]] = {}
    notes: dict[str, str] = {}
    for run in runs:
        if run.kind != "interp" or run.dataset is None or best[run.id] is None:
            notes[run.name] = "no checkpoint yet" if run.kind == "interp" else f"{run.kind} run"
            continue
        grids[run.name] = run_samples(engine, run, datasets[run.dataset], samples)
    return ReportData(
        experiment=record.name,
        kind=record.kind,
        runs=runs,
        boards=boards,
        curves_png=curves_png(curves, title=f"experiment {record.name}"),
        samples=grids,
        sample_notes=notes,
    )


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: right; }
th { background: #f3f3f3; } td.text { text-align: left; }
tr.baseline td { color: #666; font-style: italic; }
img { max-width: 100%; border: 1px solid #ddd; }
table.grid td, table.grid th { border: none; padding: 2px; text-align: center; font-weight: normal; }
table.grid img { width: 160px; image-rendering: pixelated; }
"""

# Marks the page once every image has decoded, so a headless browser can check that they load.
IMAGE_CHECK = """
window.addEventListener('load', function () {
  var images = Array.from(document.images);
  var ok = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images-loaded', ok + '/' + images.length);
});
"""


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def leaderboard_html(rows: list[LeaderboardRow]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = []
    for row in rows_as_dicts(rows):
        cls = ' class="baseline"' if row.get("is_baseline") else ""
        cells = "".join(
            f'<td class="text">{_cell(row.get(c))}</td>' if isinstance(row.get(c), str) else f"<td>{_cell(row.get(c))}</td>"
            for c in COLUMNS
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def board_html(board: Board) -> str:
    """A board under a heading that names its split and protocol."""
    title = f'<h3 data-split="{html.escape(board.split)}">{html.escape(board.label)}</h3>'
    if not any(not row.is_baseline for row in board.rows):
        note = (f"No run scored on split {board.split} yet: an experiment's runs and the baselines are "
                "scored on test when its last run completes, or by `afi eval RUN --baselines`.")
        return title + f"<p>{html.escape(note)}</p>" + (leaderboard_html(board.rows) if board.rows else "")
    return title + leaderboard_html(board.rows)


def render(data: ReportData) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    status_counts: dict[str, int] = {}
    for run in data.runs:
        status_counts[run.status] = status_counts.get(run.status, 0) + 1
    progress = ", ".join(f"{n} {s}" for s, n in sorted(status_counts.items())) or "no runs"
    header = "".join(f"<th>{html.escape(label)}</th>" for label in GRID_LABELS)
    samples = []
    for run in data.runs:
        if run.name in data.samples:
            rows = "".join(
                "<tr>" + "".join(f'<td><img alt="{html.escape(label)}" src="{png_data_uri(png)}"></td>'
                                 for label, png in zip(GRID_LABELS, row)) + "</tr>"
                for row in data.samples[run.name]
            )
            samples.append(
                f'<h3>{html.escape(run.name)}</h3><table class="grid"><tr>{header}</tr>{rows}</table>'
            )
        else:
            samples.append(f"<p>{html.escape(run.name)}: {html.escape(data.sample_notes.get(run.name, ''))}</p>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>AFI report: {html.escape(data.experiment)}</title>
<style>{STYLE}</style></head>
<body>
<h1>Experiment {html.escape(data.experiment)}</h1>
<p>{html.escape(data.kind)} &middot; {len(data.runs)} run(s): {html.escape(progress)} &middot;
generated {stamp} by AFI {__version__}. Metrics are each run's best over all evaluations;
baselines are in italics. Only rows of one board compare with each other.</p>
<h2>Leaderboard</h2>
{''.join(board_html(board) for board in data.boards)}
<h2>Metric curves</h2>
<img alt="metric curves" src="{png_data_uri(data.curves_png)}">
<h2>Sample interpolations</h2>
{''.join(samples)}
<script>{IMAGE_CHECK}</script>
</body></html>
"""


def write_report(
    engine: Any, experiment: str, output: Path, samples: int = 3, split: str = DEFAULT_SPLIT
) -> Path:
    """Render the report to `output` atomically (a half-written page is never left behind)."""
    page = render(collect(engine, experiment, samples, split))
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.partial")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(output)
    return output
