"""Procedural 2D cartoons with known ground truth, for demos and for testing the detectors.

Each clip is a shot: a painted background (gradient sky, large flat hills) seen through a panning
camera, and a few flat-shaded characters with dark antialiased outlines that move along eased
paths, rotate and pass in front of one another. Drawings are held on ones, twos or threes (a clip
may switch cadence halfway, as real animation does), so consecutive frames of one drawing are
pixel-identical before encoding. Clips are joined by hard cuts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from afi.errors import UsageError

OUTLINE_RGB = (24, 20, 28)
# cv2 draws with sub-pixel precision when coordinates are fixed-point with this many fraction bits;
# without it slow motion would move in whole-pixel jumps.
SUBPIXEL_BITS = 4
SUBPIXEL = 1 << SUBPIXEL_BITS


@dataclass(frozen=True)
class SynthConfig:
    clips: int = 3
    frames_per_clip: int = 24
    width: int = 128
    height: int = 128
    seed: int = 0
    fps: float = 24.0
    cadences: tuple[int, ...] = (1, 2, 3)
    # A clip switches to another cadence halfway with this probability (mixed cadence).
    mixed_cadence_probability: float = 0.5
    characters: int = 3
    outline_px: int = 2

    def validate(self) -> SynthConfig:
        if self.clips < 1 or self.frames_per_clip < 3:
            raise UsageError("synth needs at least 1 clip of at least 3 frames")
        if self.width < 16 or self.height < 16 or self.width % 2 or self.height % 2:
            raise UsageError(
                f"synth size {self.width}x{self.height} must be even and at least 16 (video codecs"
                " need even sizes)"
            )
        if not self.cadences or min(self.cadences) < 1:
            raise UsageError(f"cadences must be positive frame counts, got {self.cadences}")
        if not 1 <= self.outline_px <= 8:
            raise UsageError(f"outline_px must be between 1 and 8, got {self.outline_px}")
        if self.fps <= 0:
            raise UsageError(f"fps must be positive, got {self.fps}")
        return self


@dataclass(frozen=True)
class SynthVideo:
    """Frames plus the ground truth the detectors should recover."""

    frames: np.ndarray  # (N, H, W, 3) uint8 RGB
    fps: float
    # Frame index where each clip after the first begins (a hard cut precedes it).
    cuts: tuple[int, ...]
    # For each frame, the global id of the drawing it shows; equal ids on neighbours = a hold.
    drawing_ids: tuple[int, ...]
    # For each clip, the cadences it used in order (one entry, or two for a mixed clip).
    clip_cadences: tuple[tuple[int, ...], ...]

    @property
    def pts(self) -> np.ndarray:
        return np.arange(len(self.frames), dtype=np.float64) / self.fps

    @property
    def hold_lengths(self) -> tuple[int, ...]:
        """How many frames each drawing is shown, in order."""
        lengths: list[int] = []
        previous = None
        for drawing in self.drawing_ids:
            if drawing == previous:
                lengths[-1] += 1
            else:
                lengths.append(1)
            previous = drawing
        return tuple(lengths)


Ease = Callable[[float], float]
EASES: tuple[Ease, ...] = (
    lambda u: u * u * (3 - 2 * u),  # smoothstep: ease in and out
    lambda u: 1 - (1 - u) ** 2,  # ease out
    lambda u: u**3,  # ease in
    lambda u: 0.5 - 0.5 * np.cos(np.pi * u),  # sine in-out
)


@dataclass(frozen=True)
class Character:
    kind: str  # "blob" (body, head, eyes) or "polygon"
    fill: tuple[int, int, int]
    start: tuple[float, float]  # world coordinates of the centre
    end: tuple[float, float]
    size: float
    sides: int
    spin: float  # radians over the clip
    ease: Ease


def generate_cartoon(config: SynthConfig) -> SynthVideo:
    """Render `config.clips` shots joined by hard cuts; deterministic for a given config."""
    config = config.validate()
    frames: list[np.ndarray] = []
    drawing_ids: list[int] = []
    cuts: list[int] = []
    clip_cadences: list[tuple[int, ...]] = []
    next_drawing = 0
    for clip in range(config.clips):
        if clip:
            cuts.append(len(frames))
        rng = np.random.default_rng([config.seed, clip])
        schedule, cadences = _drawing_schedule(rng, config)
        clip_cadences.append(cadences)
        scene = _Scene.random(rng, config)
        rendered: dict[int, np.ndarray] = {}
        for drawing_start in schedule:
            if drawing_start not in rendered:
                rendered[drawing_start] = scene.render(drawing_start / (config.frames_per_clip - 1))
            # Holds share one array: the frames are identical by construction.
            frames.append(rendered[drawing_start])
            # The schedule only moves forward, so the current drawing is the latest one rendered.
            drawing_ids.append(next_drawing + len(rendered) - 1)
        next_drawing += len(rendered)
    return SynthVideo(
        frames=np.stack(frames),
        fps=config.fps,
        cuts=tuple(cuts),
        drawing_ids=tuple(drawing_ids),
        clip_cadences=tuple(clip_cadences),
    )


def _drawing_schedule(
    rng: np.random.Generator, config: SynthConfig
) -> tuple[list[int], tuple[int, ...]]:
    """For each frame of a clip, the frame index where its drawing was made."""
    n = config.frames_per_clip
    cadences = [int(rng.choice(config.cadences))]
    if len(config.cadences) > 1 and rng.random() < config.mixed_cadence_probability:
        cadences.append(int(rng.choice([c for c in config.cadences if c != cadences[0]])))
    switch = n // 2 if len(cadences) == 2 else n
    schedule: list[int] = []
    drawing_start = 0
    for frame in range(n):
        cadence = cadences[0] if frame < switch else cadences[-1]
        if frame == switch or frame - drawing_start >= cadence:
            drawing_start = frame
        schedule.append(drawing_start)
    return schedule, tuple(cadences)


def _random_colour(
    rng: np.random.Generator, saturation: float, value: float
) -> tuple[int, int, int]:
    hsv = np.array([[[rng.integers(0, 180), int(255 * saturation), int(255 * value)]]], np.uint8)
    r, g, b = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]
    return int(r), int(g), int(b)


@dataclass(frozen=True)
class _Scene:
    background: np.ndarray  # (H, W + pan, 3): wider than the view so the camera can pan
    pan_px: float  # signed camera travel over the clip
    pan_ease: Ease
    characters: tuple[Character, ...]
    width: int
    height: int
    outline_px: int

    @classmethod
    def random(cls, rng: np.random.Generator, config: SynthConfig) -> _Scene:
        w, h = config.width, config.height
        pan_px = float(rng.uniform(-0.4, 0.4) * w)
        background = _paint_background(rng, w + int(np.ceil(abs(pan_px))) + 1, h)
        characters = tuple(_random_character(rng, w, h) for _ in range(config.characters))
        return cls(
            background=background,
            pan_px=pan_px,
            pan_ease=EASES[int(rng.integers(len(EASES)))],
            characters=characters,
            width=w,
            height=h,
            outline_px=config.outline_px,
        )

    def render(self, u: float) -> np.ndarray:
        """The drawing at clip time u in [0, 1]: (H, W, 3) uint8."""
        travel = self.pan_px * self.pan_ease(u)
        # Panning right shows background further right; the canvas starts at the leftmost view.
        x0 = int(round(travel - min(self.pan_px, 0.0)))
        image = np.ascontiguousarray(self.background[:, x0 : x0 + self.width])
        for character in self.characters:  # later characters occlude earlier ones
            _draw_character(image, character, u, camera_x=travel, outline_px=self.outline_px)
        return image


def _paint_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    top = np.array(_random_colour(rng, 0.35, 0.95), np.float32)
    bottom = np.array(_random_colour(rng, 0.5, 0.75), np.float32)
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    image = (top * (1 - ramp) + bottom * ramp).astype(np.uint8)
    image = np.repeat(image, width, axis=1)
    for _ in range(int(rng.integers(1, 4))):  # large flat hills and ground
        centre = (
            int(rng.uniform(0, width) * SUBPIXEL),
            int(rng.uniform(0.6, 1.1) * height * SUBPIXEL),
        )
        axes = (
            int(rng.uniform(0.3, 0.8) * width * SUBPIXEL),
            int(rng.uniform(0.2, 0.5) * height * SUBPIXEL),
        )
        colour = _random_colour(rng, 0.45, rng.uniform(0.4, 0.8))
        cv2.ellipse(image, centre, axes, 0, 0, 360, colour, -1, cv2.LINE_AA, SUBPIXEL_BITS)
    return image


def _random_character(rng: np.random.Generator, width: int, height: int) -> Character:
    def point() -> tuple[float, float]:
        return float(rng.uniform(0.1, 0.9) * width), float(rng.uniform(0.25, 0.85) * height)

    return Character(
        kind="blob" if rng.random() < 0.5 else "polygon",
        fill=_random_colour(rng, rng.uniform(0.55, 0.9), rng.uniform(0.7, 1.0)),
        start=point(),
        end=point(),
        size=float(rng.uniform(0.09, 0.18) * min(width, height)),
        sides=int(rng.integers(3, 7)),
        spin=float(rng.uniform(-1.5, 1.5)),
        ease=EASES[int(rng.integers(len(EASES)))],
    )


def _fixed(x: float, y: float) -> tuple[int, int]:
    return int(round(x * SUBPIXEL)), int(round(y * SUBPIXEL))


def _draw_character(
    image: np.ndarray, c: Character, u: float, camera_x: float, outline_px: int
) -> None:
    e = c.ease(u)
    x = c.start[0] + (c.end[0] - c.start[0]) * e - camera_x
    y = c.start[1] + (c.end[1] - c.start[1]) * e
    angle = c.spin * e
    aa = cv2.LINE_AA
    if c.kind == "polygon":
        theta = angle + np.arange(c.sides) * 2 * np.pi / c.sides
        corners = np.stack([x + c.size * np.cos(theta), y + c.size * np.sin(theta)], axis=1)
        pts = np.round(corners * SUBPIXEL).astype(np.int32)
        cv2.fillPoly(image, [pts], c.fill, aa, SUBPIXEL_BITS)
        cv2.polylines(image, [pts], True, OUTLINE_RGB, outline_px, aa, SUBPIXEL_BITS)
        return
    # A blob character: body, head, and two eyes that follow the head's tilt.
    body_axes = _fixed(c.size, c.size * 1.3)
    cv2.ellipse(
        image,
        _fixed(x, y),
        body_axes,
        np.degrees(angle) * 0.3,
        0,
        360,
        c.fill,
        -1,
        aa,
        SUBPIXEL_BITS,
    )
    cv2.ellipse(
        image,
        _fixed(x, y),
        body_axes,
        np.degrees(angle) * 0.3,
        0,
        360,
        OUTLINE_RGB,
        outline_px,
        aa,
        SUBPIXEL_BITS,
    )
    hx, hy, r = x + 0.3 * c.size * np.sin(angle), y - 1.5 * c.size, 0.7 * c.size
    head = tuple(min(255, int(v * 1.1) + 20) for v in c.fill)
    cv2.circle(image, _fixed(hx, hy), int(r * SUBPIXEL), head, -1, aa, SUBPIXEL_BITS)
    cv2.circle(image, _fixed(hx, hy), int(r * SUBPIXEL), OUTLINE_RGB, outline_px, aa, SUBPIXEL_BITS)
    for side in (-1, 1):
        ex = hx + side * 0.35 * r + 0.15 * r * np.sin(angle)
        cv2.circle(
            image,
            _fixed(ex, hy - 0.1 * r),
            max(1, int(0.18 * r * SUBPIXEL)),
            OUTLINE_RGB,
            -1,
            aa,
            SUBPIXEL_BITS,
        )
