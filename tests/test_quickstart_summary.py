"""The quickstart's closing line compares each model with the strongest baseline, not blend."""

from __future__ import annotations

from dataclasses import fields

from afi.quickstart import versus_strongest_baseline
from registry.records import LeaderboardRow


def row(run: str, arch: str, psnr: float, baseline: bool = False) -> LeaderboardRow:
    values = {f.name: None for f in fields(LeaderboardRow)}
    values.update(run=run, arch=arch, psnr=psnr, is_baseline=baseline, dataset="quickstart", split="test",
                  kind="baseline" if baseline else "interp")
    return LeaderboardRow(**values)


def test_models_are_measured_against_the_strongest_baseline() -> None:
    rows = [row("flow-q", "flow", 31.75, True), row("isnet-a", "isnet", 32.10),
            row("blend-q", "blend", 26.07, True), row("unet-a", "unet", 30.90)]
    line = versus_strongest_baseline(rows)
    assert line.startswith("1 of 2 models beat the strongest baseline, flow at 31.75 dB PSNR")
    assert "(quickstart, test split)" in line
    assert "isnet-a +0.35 dB" in line and "unet-a -0.85 dB" in line
    assert versus_strongest_baseline(rows[:2]).startswith("every model beats the strongest baseline, flow")
    assert "nothing to compare" in versus_strongest_baseline(rows[1:2])
