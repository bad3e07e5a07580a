"""Experiment specs: the shipped examples load, grids expand, bad keys and values name file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from afi.errors import UsageError
from afi.launch.spec import load_spec, parse_set, resolve_key

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
TINY = parse_set(["stage.res=32", "stage.steps=4", "variant.width=8"])


@pytest.mark.parametrize(
    ("file", "kind", "runs"),
    [
        ("ablation-arch.toml", "ablation", 6),
        ("ablation-disc.toml", "ablation", 8),
        ("curriculum.toml", "curriculum", 1),
        ("vae-study.toml", "ablation", 4),
        ("tune-isnet.toml", "study", 1),
    ],
)
def test_shipped_specs_load_and_expand(file: str, kind: str, runs: int) -> None:
    spec = load_spec(EXPERIMENTS / file)
    assert spec.kind == kind
    assert spec.name == Path(file).stem
    assert len(spec.expand()) == runs


def test_ablation_grid_is_the_full_product_with_tags_and_readable_names() -> None:
    runs = load_spec(EXPERIMENTS / "ablation-arch.toml", TINY).expand()
    pairs = {(r.config.variant.arch, r.config.variant.disc) for r in runs}
    assert pairs == {(a, d) for a in ("unet", "isnet") for d in ("none", "patchgan", "sn-resnet-sa")}
    named = {r.name: r for r in runs}
    run = named["ablation-arch-isnet-sn-resnet-sa"]
    assert run.tags == {"arch": "isnet", "disc": "sn-resnet-sa"}
    # --set reached every run; choosing a discriminator brought its adversarial loss term.
    assert run.config.stages[0].resolution == "32" and run.config.variant.width == 8
    assert "adversarial" in run.config.variant.losses
    assert "adversarial" not in named["ablation-arch-unet-none"].config.variant.losses


def test_curriculum_keeps_its_stages_and_stage_overrides_reach_each() -> None:
    spec = load_spec(EXPERIMENTS / "curriculum.toml", parse_set(["stages.2.steps=7", "batch=2"]))
    (run,) = spec.expand()
    assert [s.resolution for s in run.config.stages] == ["128", "256", "512"]
    assert [s.steps for s in run.config.stages] == [20000, 10000, 7]
    assert {s.batch for s in run.config.stages} == {2}
    assert run.config.stages[0].subset == 20000


def test_dotted_and_bare_keys_resolve() -> None:
    assert resolve_key("arch", "x") == ("variant", "arch")
    assert resolve_key("lr", "x") == ("stages", "*", "lr")
    assert resolve_key("dataset", "x") == ("data", "dataset")
    assert resolve_key("seed", "x") == ("seed",)
    assert resolve_key("stages.1.res", "x") == ("stages", 1, "res")
    assert resolve_key("variant.losses.census", "x") == ("variant", "losses", "census")


def test_search_space_and_trial_config() -> None:
    spec = load_spec(EXPERIMENTS / "tune-isnet.toml")
    keys = [p.key for p in spec.search]
    assert keys == ["lr", "variant.width", "variant.losses.census"]
    assert spec.tune is not None and spec.tune.direction == "maximize"
    config = spec.trial_config({"lr": 3e-4, "variant.width": 16, "variant.losses.census": 0.2})
    assert config.stages[0].lr == 3e-4 and config.variant.width == 16
    assert config.variant.losses["census"] == 0.2 and config.variant.losses["charbonnier"] == 1.0


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[grid]\narch = ['unet', 'resnet']\n", r"spec\.toml \(arch=resnet\): unknown arch 'resnet'"),
        ("[grid]\nwidth = [8, 16]\n", r"spec\.toml: grid key 'width'.*ambiguous: write variant\.width or stage\.width"),
        ("[grid]\nvariant.colour = ['red']\n", r"spec\.toml: grid key 'variant\.colour': unknown key"),
        ("[grid]\narch = 'unet'\n", r"grid key 'arch' must be a non-empty list"),
        ("[grid]\narch = ['unet']\n[search]\nlr = { low = 1e-4, high = 1e-3 }\n", "not both"),
        ("[search]\nlr = { low = 1e-3, high = 1e-4 }\n", r"search key 'lr': low .* must be below high"),
        ("[experiment]\nnmae = 'x'\n", r"\[experiment\]: unknown key\(s\) nmae"),
        ("[variant]\nwidht = 8\n", r"spec\.toml \(base run\): unknown variant setting\(s\) widht"),
        ("[[stages]]\nsteps = 'many'\n", r"steps must be positive|bad value"),
        ("[grid]\n'stages.3.steps' = [1, 2]\n", r"stages\.3 does not exist"),
        ("name = [", r"spec\.toml: not valid TOML"),
    ],
)
def test_bad_specs_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load_spec(write(tmp_path, text))


def test_missing_spec_and_bad_set(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not found"):
        load_spec(tmp_path / "nope.toml")
    with pytest.raises(UsageError, match="use --set key=value"):
        parse_set(["stage.steps"])
    with pytest.raises(UsageError, match="varies arch itself"):
        load_spec(EXPERIMENTS / "ablation-arch.toml", parse_set(["arch=unet"]))
    with pytest.raises(UsageError, match=r"--set stage\.colour: unknown key"):
        load_spec(EXPERIMENTS / "ablation-arch.toml", parse_set(["stage.colour=1"]))


def test_set_values_are_toml_else_text() -> None:
    assert parse_set(["a=4", "b=1e-4", "c=true", "d=toons", "e='x y'"]) == [
        ("a", 4), ("b", 1e-4), ("c", True), ("d", "toons"), ("e", "x y")
    ]


def test_minutes_is_a_stage_budget_in_tables_set_and_grid(tmp_path: Path) -> None:
    spec = tmp_path / "budget.toml"
    spec.write_text(
        "[[stages]]\nres = 32\nsteps = 4\nminutes = 1.5\n\n"
        "[[stages]]\nres = 64\nsteps = 4\n\n[grid]\nseed = [0, 1]\n"
    )
    runs = load_spec(spec).expand()
    assert [s.minutes for s in runs[0].config.stages] == [1.5, None]
    assert runs[0].config.to_dict()["stages"][0]["minutes"] == 1.5  # stored with the run
    every = load_spec(spec, parse_set(["minutes=2"])).expand()
    assert {s.minutes for r in every for s in r.config.stages} == {2}
    assert resolve_key("stages.1.minutes", "test") == ("stages", 1, "minutes")
    with pytest.raises(UsageError, match="minutes must be positive"):
        load_spec(spec, parse_set(["minutes=0"]))
