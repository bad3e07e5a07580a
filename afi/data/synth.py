"""Procedural 2D cartoons with known ground truth, for demos and for testing the detectors.

Each clip is a shot: a painted background (gradient sky, large flat hills) seen through a panning
camera, and a few flat-shaded characters with dark antialiased outlines that move along eased
paths, rotate and pass in front of one another. Drawings are held on ones, twos or threes (a clip
may switch cadence halfway, as real animation does), so consecutive frames of one drawing are
pixel-identical before encoding. Clips are joined by hard cuts.

`motion` sets the difficulty of the cel cartoons. "easy" is the original generator (kept bitwise
as it was, so seeds and datasets made before still hold). "medium" and "hard" add what flow methods
get wrong on real animation: long arcing paths with anticipation and overshoot, characters that
enter and leave the frame, fast thin limbs swinging about a joint, 1 px hatching and 1 px outlines,
and a camera pan over parallax layers (far background, midground, a foreground that passes in
front of the characters), so things are occluded and disoccluded.

`style="painted"` is a second, differently made generator (afi/data/painted.py): camera moves over
textured painted artwork and vector-style animation with gradient fills. It exists to check that a
gain measured on the cel cartoons is not a gain on this generator alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from afi.data.painted import PaintedScene
from afi.errors import UsageError

OUTLINE_RGB = (24, 20, 28)
# cv2 draws with sub-pixel precision when coordinates are fixed-point with this many fraction bits;
# without it slow motion would move in whole-pixel jumps.
SUBPIXEL_BITS = 4
SUBPIXEL = 1 << SUBPIXEL_BITS
STYLES = ("cel", "painted")


@dataclass(frozen=True)
class MotionProfile:
    """How far and how wildly a medium or hard cel clip moves; such clips always pan over
    parallax layers (FAR_SPEED, NEAR_SPEED). Shares are of the frame width."""

    pan: float  # the camera travels up to this share of the width over a clip, either way
    reach: float  # character paths start and end this far outside the frame (share of the side)
    arc: float  # sideways bulge of a path, as a share of its length
    spin: float  # radians a character turns over the clip, at most
    limbs: int  # thin limbs per character, at most
    swings: float  # limb swings per clip, at most (fast limbs: several per clip)
    hatching: bool  # 1 px hatching on bodies and scenery, 1 px outlines on some characters


MOTIONS: dict[str, MotionProfile | None] = {
    "easy": None,  # the original generator, drawn exactly as before
    "medium": MotionProfile(pan=0.5, reach=0.05, arc=0.2, spin=2.5, limbs=1, swings=1.0,
                            hatching=True),
    "hard": MotionProfile(pan=0.9, reach=0.2, arc=0.45, spin=4.0, limbs=3, swings=2.5,
                          hatching=True),
}
# Parallax speeds of the layers, as shares of the camera's travel (characters live at 1.0).
FAR_SPEED = 0.35
NEAR_SPEED = 1.7


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
    motion: str = "easy"  # easy | medium | hard (cel style): see MOTIONS
    # cel | painted: painted has motion laws, outlines and figures of its own, so `motion`,
    # `characters` and `outline_px` are the cel style's only.
    style: str = "cel"

    def validate(self) -> SynthConfig:
        if self.motion not in MOTIONS:
            raise UsageError(f"unknown motion {self.motion!r}: choose one of {', '.join(MOTIONS)}")
        if self.style not in STYLES:
            raise UsageError(f"unknown style {self.style!r}: choose one of {', '.join(STYLES)}")
        if self.style == "painted" and self.motion != "easy":
            raise UsageError(
                "--motion sets the cel style's motion; the painted style has motion laws of its own:"
                " drop --motion"
            )
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
# Added for medium and hard motion only (EASES stays as it is: easy clips index into it).
BACK = 1.7  # how far anticipation and overshoot go back (the "back" ease's constant)
HARD_EASES: tuple[Ease, ...] = EASES + (
    lambda u: u * u * ((BACK + 1) * u - BACK),  # anticipation: back up, then go
    lambda u: 1 + (u - 1) ** 2 * ((BACK + 1) * (u - 1) + BACK),  # overshoot and settle
    lambda u: u**4,  # a strong acceleration
    lambda u: 1 - (1 - u) ** 4,  # a strong deceleration
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
    arc: float = 0.0  # sideways bulge of the path, in pixels at its middle (signed)
    outline_px: int | None = None  # None: the clip's outline width
    limbs: tuple[Limb, ...] = ()
    hatch: Hatch | None = None

    def position(self, u: float) -> tuple[float, float, float]:
        """World (x, y) of the centre and the turn at clip time u."""
        e = self.ease(u)
        x = self.start[0] + (self.end[0] - self.start[0]) * e
        y = self.start[1] + (self.end[1] - self.start[1]) * e
        if self.arc:
            # Bulge along the path's normal, largest halfway: an arc, not a straight line.
            dx, dy = self.end[0] - self.start[0], self.end[1] - self.start[1]
            length = max(np.hypot(dx, dy), 1e-6)
            bulge = self.arc * np.sin(np.pi * e)
            x, y = x - dy / length * bulge, y + dx / length * bulge
        return x, y, self.spin * e


@dataclass(frozen=True)
class Limb:
    """A thin part swinging about a joint on the body: an arm, a tail, an antenna."""

    joint: tuple[float, float]  # offset from the centre, in sizes, turning with the body
    length: float  # pixels
    thickness: int  # pixels, without its outline
    angle: float  # radians at rest
    amplitude: float  # radians either way
    swings: float  # full swings over the clip
    phase: float
    in_front: bool  # drawn over the body, else behind it


@dataclass(frozen=True)
class Hatch:
    """1 px parallel lines across a body, turning with it."""

    angle: float
    spacing: float  # pixels
    colour: tuple[int, int, int]


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
        scene = _scene(rng, config)
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


class Scene(Protocol):
    def render(self, u: float) -> np.ndarray:
        """The drawing at clip time u in [0, 1]: (H, W, 3) uint8."""
        ...


def _scene(rng: np.random.Generator, config: SynthConfig) -> Scene:
    if config.style == "painted":
        return PaintedScene.random(rng, config.width, config.height)
    profile = MOTIONS[config.motion]
    if profile is None:
        return _Scene.random(rng, config)
    return _LayeredScene.random(rng, config, profile)


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


@dataclass(frozen=True)
class _Layer:
    """A see-through picture wider than the view, moving at `speed` times the camera."""

    rgba: np.ndarray  # (H, W', 4) uint8, colour premultiplied by alpha (how cv2 draws on zeros)
    speed: float
    left: float  # canvas x of the view's left edge when the camera is at 0


@dataclass(frozen=True)
class _LayeredScene:
    """Medium and hard cel clips: a pan over parallax layers, characters with limbs on arcs."""

    far: np.ndarray  # (H, W', 3): the sky and distant hills, slowest
    far_left: float
    layers: tuple[_Layer, _Layer]  # midground (with the characters' speed), foreground
    characters: tuple[Character, ...]
    camera: tuple[float, Ease]  # signed travel over the clip, and its ease
    width: int
    outline_px: int

    @classmethod
    def random(
        cls, rng: np.random.Generator, config: SynthConfig, profile: MotionProfile
    ) -> _LayeredScene:
        w, h = config.width, config.height
        pan_px = float(rng.uniform(-profile.pan, profile.pan) * w)

        def span(speed: float) -> tuple[int, float]:
            travel = abs(pan_px) * speed
            return w + int(np.ceil(travel)) + 2, max(0.0, -pan_px * speed)

        far_width, far_left = span(FAR_SPEED)
        mid_width, mid_left = span(1.0)
        near_width, near_left = span(NEAR_SPEED)
        midground = _Layer(_paint_midground(rng, mid_width, h, profile), 1.0, mid_left)
        foreground = _Layer(_paint_foreground(rng, near_width, h), NEAR_SPEED, near_left)
        characters = tuple(
            _random_character_in_motion(rng, w, h, profile) for _ in range(config.characters)
        )
        far = _paint_background(rng, far_width, h)
        camera = (pan_px, HARD_EASES[int(rng.integers(len(HARD_EASES)))])
        return cls(far, far_left, (midground, foreground), characters, camera, w, config.outline_px)

    def render(self, u: float) -> np.ndarray:
        pan_px, ease = self.camera
        travel = pan_px * ease(u)
        image = _view(self.far, self.far_left + travel * FAR_SPEED, self.width)
        midground, foreground = self.layers
        _composite(image, _view(midground.rgba, midground.left + travel, self.width))
        for character in self.characters:
            _draw_character(image, character, u, camera_x=travel, outline_px=self.outline_px)
        _composite(
            image, _view(foreground.rgba, foreground.left + travel * foreground.speed, self.width)
        )
        return image


def _view(canvas: np.ndarray, x: float, width: int) -> np.ndarray:
    """The `width` columns of `canvas` from x on, at sub-pixel x (bilinear)."""
    shift = np.float32([[1, 0, -x], [0, 1, 0]])
    return cv2.warpAffine(
        canvas, shift, (width, canvas.shape[0]), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def _composite(image: np.ndarray, rgba: np.ndarray) -> None:
    """Premultiplied `rgba` over `image`, in place."""
    alpha = rgba[..., 3:].astype(np.float32) / 255.0
    image[...] = np.clip(
        image.astype(np.float32) * (1 - alpha) + rgba[..., :3].astype(np.float32) + 0.5, 0, 255
    ).astype(np.uint8)


def _paint_midground(
    rng: np.random.Generator, width: int, height: int, profile: MotionProfile
) -> np.ndarray:
    """Outlined hills and trees on a transparent canvas, with 1 px hatching on the hills."""
    layer = np.zeros((height, width, 4), np.uint8)
    aa = cv2.LINE_AA
    for _ in range(int(rng.integers(1, 3))):
        centre = _fixed(rng.uniform(0, width), rng.uniform(0.75, 1.05) * height)
        axes = _fixed(rng.uniform(0.25, 0.6) * width, rng.uniform(0.15, 0.35) * height)
        colour = (*_random_colour(rng, 0.5, rng.uniform(0.45, 0.75)), 255)
        cv2.ellipse(layer, centre, axes, 0, 0, 360, colour, -1, aa, SUBPIXEL_BITS)
        cv2.ellipse(layer, centre, axes, 0, 0, 360, (*OUTLINE_RGB, 255), 2, aa, SUBPIXEL_BITS)
    if profile.hatching:
        _hatch_opaque(rng, layer, spacing=float(rng.uniform(3.0, 6.0)))
    for _ in range(int(rng.integers(2, 3 + width // 64))):  # trees: trunk and canopy
        x = rng.uniform(0, width)
        top, bottom = rng.uniform(0.35, 0.6) * height, rng.uniform(0.8, 1.0) * height
        trunk = max(2, int(rng.uniform(0.01, 0.03) * width))
        cv2.line(layer, _fixed(x, top), _fixed(x, bottom), (*OUTLINE_RGB, 255), trunk + 2, aa,
                 SUBPIXEL_BITS)
        cv2.line(layer, _fixed(x, top), _fixed(x, bottom), (96, 64, 40, 255), trunk, aa,
                 SUBPIXEL_BITS)
        radius = int(rng.uniform(0.06, 0.12) * height * SUBPIXEL)
        leaves = (*_random_colour(rng, 0.6, rng.uniform(0.45, 0.7)), 255)
        cv2.circle(layer, _fixed(x, top), radius, leaves, -1, aa, SUBPIXEL_BITS)
        cv2.circle(layer, _fixed(x, top), radius, (*OUTLINE_RGB, 255), 1, aa, SUBPIXEL_BITS)
    return layer


def _hatch_opaque(rng: np.random.Generator, layer: np.ndarray, spacing: float) -> None:
    """1 px dark strokes across the layer's opaque parts (shading, grass)."""
    h, w = layer.shape[:2]
    lines = np.zeros((h, w), np.uint8)
    angle = rng.uniform(0.3, 1.2)
    dx, dy = np.cos(angle) * (w + h), np.sin(angle) * (w + h)
    for offset in np.arange(-h, w + h, spacing):
        cv2.line(lines, _fixed(offset - dx, -dy), _fixed(offset + dx, dy), 255, 1, cv2.LINE_AA,
                 SUBPIXEL_BITS)
    strength = (lines.astype(np.float32) / 255.0 * (layer[..., 3] > 250))[..., None] * 0.6
    shade = np.array(OUTLINE_RGB, np.float32)
    layer[..., :3] = (layer[..., :3] * (1 - strength) + shade * strength).astype(np.uint8)


def _paint_foreground(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A few outlined posts, bushes and grass tufts that pass in front of everything."""
    layer = np.zeros((height, width, 4), np.uint8)
    aa = cv2.LINE_AA
    for _ in range(int(rng.integers(1, 2 + width // 128))):
        x = rng.uniform(0, width)
        colour = (*_random_colour(rng, 0.55, rng.uniform(0.3, 0.6)), 255)
        if rng.random() < 0.5:  # a post from the bottom edge up
            half = rng.uniform(0.02, 0.06) * width
            top = rng.uniform(0.2, 0.6) * height
            corners = np.array([[x - half, height + 2], [x - half, top], [x + half, top],
                                [x + half, height + 2]])
            pts = np.round(corners * SUBPIXEL).astype(np.int32)
            cv2.fillPoly(layer, [pts], colour, aa, SUBPIXEL_BITS)
            cv2.polylines(layer, [pts], True, (*OUTLINE_RGB, 255), 2, aa, SUBPIXEL_BITS)
        else:  # a bush with blades of grass
            centre = _fixed(x, height * rng.uniform(0.95, 1.1))
            axes = _fixed(rng.uniform(0.08, 0.2) * width, rng.uniform(0.1, 0.25) * height)
            cv2.ellipse(layer, centre, axes, 0, 0, 360, colour, -1, aa, SUBPIXEL_BITS)
            cv2.ellipse(layer, centre, axes, 0, 0, 360, (*OUTLINE_RGB, 255), 2, aa, SUBPIXEL_BITS)
            for _ in range(int(rng.integers(4, 12))):
                bx = x + rng.uniform(-1, 1) * axes[0] / SUBPIXEL
                tip = (bx + rng.uniform(-4, 4), height * rng.uniform(0.6, 0.85))
                cv2.line(layer, _fixed(bx, height), _fixed(*tip), (*OUTLINE_RGB, 255), 1, aa,
                         SUBPIXEL_BITS)
    return layer


def _random_character_in_motion(
    rng: np.random.Generator, width: int, height: int, profile: MotionProfile
) -> Character:
    """A character on a long arcing path (maybe in or out of frame), with limbs and hatching."""
    reach = profile.reach

    def point() -> tuple[float, float]:
        return (
            float(rng.uniform(-reach, 1 + reach) * width),
            float(rng.uniform(0.2, 0.9) * height),
        )

    start, end = point(), point()
    length = float(np.hypot(end[0] - start[0], end[1] - start[1]))
    size = float(rng.uniform(0.08, 0.16) * min(width, height))
    fill = _random_colour(rng, rng.uniform(0.55, 0.9), rng.uniform(0.7, 1.0))
    limbs = tuple(
        Limb(
            joint=(float(rng.uniform(-0.8, 0.8)), float(rng.uniform(-0.9, 0.6))),
            length=float(size * rng.uniform(0.9, 1.8)),
            thickness=int(rng.integers(1, 4)),
            angle=float(rng.uniform(0, 2 * np.pi)),
            amplitude=float(rng.uniform(0.5, 1.4)),
            swings=float(rng.uniform(0.5, 1.0) * profile.swings),
            phase=float(rng.uniform(0, 2 * np.pi)),
            in_front=bool(rng.random() < 0.5),
        )
        for _ in range(int(rng.integers(0, profile.limbs + 1)))
    )
    hatch = None
    if profile.hatching and rng.random() < 0.6:
        shade = tuple(int(v * 0.55) for v in fill)
        hatch = Hatch(float(rng.uniform(0, np.pi)), float(rng.uniform(2.5, 5.0)), shade)
    return Character(
        kind="blob" if rng.random() < 0.5 else "polygon",
        fill=fill,
        start=start,
        end=end,
        size=size,
        sides=int(rng.integers(3, 7)),
        spin=float(rng.uniform(-profile.spin, profile.spin)),
        ease=HARD_EASES[int(rng.integers(len(HARD_EASES)))],
        arc=float(rng.uniform(-profile.arc, profile.arc) * length),
        outline_px=1 if profile.hatching and rng.random() < 0.4 else None,
        limbs=limbs,
        hatch=hatch,
    )


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


def _draw_limbs(
    image: np.ndarray, c: Character, x: float, y: float, angle: float, u: float,
    outline_px: int, in_front: bool,
) -> None:
    """Each limb: a thick outline stroke, the fill stroke inside it, and a round end."""
    cos, sin = np.cos(angle), np.sin(angle)
    for limb in c.limbs:
        if limb.in_front != in_front:
            continue
        jx, jy = limb.joint[0] * c.size, limb.joint[1] * c.size
        joint = (x + jx * cos - jy * sin, y + jx * sin + jy * cos)
        swing = limb.angle + angle + limb.amplitude * np.sin(
            2 * np.pi * limb.swings * u + limb.phase
        )
        tip = (joint[0] + limb.length * np.cos(swing), joint[1] + limb.length * np.sin(swing))
        aa = cv2.LINE_AA
        cv2.line(image, _fixed(*joint), _fixed(*tip), OUTLINE_RGB, limb.thickness + 2 * outline_px,
                 aa, SUBPIXEL_BITS)
        cv2.line(image, _fixed(*joint), _fixed(*tip), c.fill, limb.thickness, aa, SUBPIXEL_BITS)
        radius = int((limb.thickness / 2 + outline_px + 1) * SUBPIXEL)
        cv2.circle(image, _fixed(*tip), radius, c.fill, -1, aa, SUBPIXEL_BITS)
        cv2.circle(image, _fixed(*tip), radius, OUTLINE_RGB, outline_px, aa, SUBPIXEL_BITS)


def _draw_hatch(image: np.ndarray, before: np.ndarray, hatch: Hatch, angle: float) -> None:
    """1 px lines over what the body just painted (the pixels that changed from `before`)."""
    h, w = image.shape[:2]
    body = np.any(image != before, axis=2)
    ys, xs = np.nonzero(body)
    if not len(xs):
        return
    lines = np.zeros((h, w), np.uint8)
    theta = hatch.angle + angle
    dx, dy = np.cos(theta), np.sin(theta)
    cx, cy = xs.mean(), ys.mean()
    reach = float(max(xs.max() - xs.min(), ys.max() - ys.min()) + 2)
    for offset in np.arange(-reach, reach, hatch.spacing):
        ox, oy = cx - dy * offset, cy + dx * offset
        cv2.line(lines, _fixed(ox - dx * reach, oy - dy * reach),
                 _fixed(ox + dx * reach, oy + dy * reach), 255, 1, cv2.LINE_AA, SUBPIXEL_BITS)
    # Inside the body only, and not over its outline: eroding keeps the hatching off the edge.
    inside = cv2.erode(body.astype(np.uint8), np.ones((3, 3), np.uint8))
    strength = (lines.astype(np.float32) / 255.0 * inside)[..., None]
    colour = np.array(hatch.colour, np.float32)
    image[...] = (image * (1 - strength) + colour * strength + 0.5).astype(np.uint8)


def _draw_character(
    image: np.ndarray, c: Character, u: float, camera_x: float, outline_px: int
) -> None:
    x, y, angle = c.position(u)
    x -= camera_x
    outline_px = c.outline_px or outline_px
    if c.limbs:
        _draw_limbs(image, c, x, y, angle, u, outline_px, in_front=False)
    before = image.copy() if c.hatch is not None else None
    _draw_body(image, c, x, y, angle, outline_px)
    if before is not None and c.hatch is not None:
        _draw_hatch(image, before, c.hatch, angle)
    if c.limbs:
        _draw_limbs(image, c, x, y, angle, u, outline_px, in_front=True)


def _draw_body(
    image: np.ndarray, c: Character, x: float, y: float, angle: float, outline_px: int
) -> None:
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
