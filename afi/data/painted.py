"""A second synthetic generator, made differently from the cel cartoons on purpose.

A model tuned on one generator can learn the generator (flat fills, black 2 px outlines, eased
straight paths) rather than interpolation; the project's held-out material is hand-made vector
animation and camera moves over painted artwork. This generator imitates those, and shares no
painting or motion code with afi/data/synth.py's cel scenes (only the clip timing: cadence, holds,
cuts). Each clip is one of:

  pan     a camera moving over painted artwork: fractal noise coloured through a palette, brush
          strokes that follow a flow field, film grain; no flat region anywhere. The camera
          translates at constant speed with a slow linear zoom (bicubic resampling).
  vector  vector-style animation: shapes with smooth outlines that change shape over time, filled
          with linear gradients, 1-2 px lines in a colour of their own (a darker shade, white,
          or none), over a gradient backdrop; they move by springs, orbits, bobbing and constant
          velocity, squash and stretch, and turn about an off-centre pivot.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Sub-pixel drawing precision of cv2's fixed-point coordinates (fraction bits).
SHIFT = 6
SCALE = 1 << SHIFT
CLIP_KINDS = ("pan", "vector")
# (hue range in OpenCV's 0-180, saturation range, value range)
Palette = tuple[tuple[float, float], tuple[float, float], tuple[float, float]]
# Vector animation and painting in several looks, none the cel generator's random vivid hues.
PALETTES: tuple[Palette, ...] = (
    ((0, 30), (0.25, 0.55), (0.55, 0.95)),  # warm, earthy
    ((85, 130), (0.3, 0.7), (0.35, 0.9)),  # cool blues and teals
    ((130, 180), (0.2, 0.5), (0.6, 1.0)),  # pastel violets and pinks
    ((20, 90), (0.4, 0.8), (0.3, 0.85)),  # greens and olives
)
LAWS = ("spring", "orbit", "bob", "glide")


def _hsv_colour(rng: np.random.Generator, palette: Palette) -> np.ndarray:
    (h0, h1), (s0, s1), (v0, v1) = palette
    hsv = np.uint8([[[rng.uniform(h0, h1), 255 * rng.uniform(s0, s1), 255 * rng.uniform(v0, v1)]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def fractal_noise(rng: np.random.Generator, width: int, height: int, octaves: int = 6) -> np.ndarray:
    """Smoothed random noise summed over octaves (amplitude halving with each), in [0, 1]:
    (H, W) float32."""
    total = np.zeros((height, width), np.float32)
    amplitude, weight = 1.0, 0.0
    for octave in range(octaves):
        cells = 2 ** (octave + 2)
        small = rng.random((max(2, cells * height // width), cells)).astype(np.float32)
        total += amplitude * cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
        weight += amplitude
        amplitude *= 0.55
    total /= weight
    return (total - total.min()) / max(float(total.max() - total.min()), 1e-6)


def paint_artwork(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A painted backdrop: (H, W, 3) uint8, textured everywhere."""
    palette = PALETTES[int(rng.integers(len(PALETTES)))]
    stops = np.stack([_hsv_colour(rng, palette) for _ in range(5)])  # (5, 3), dark to light
    stops = stops[np.argsort(stops.sum(axis=1))]
    # Large forms (noise) plus a vertical light gradient (sky above, ground below).
    field = 0.7 * fractal_noise(rng, width, height) + 0.3 * np.linspace(
        float(rng.uniform(0.6, 1.0)), float(rng.uniform(0.0, 0.4)), height, dtype=np.float32
    )[:, None]
    field = np.clip(field, 0, 1) * (len(stops) - 1)
    low = np.floor(field).astype(np.int64).clip(0, len(stops) - 2)
    frac = (field - low)[..., None]
    image = stops[low] * (1 - frac) + stops[low + 1] * frac
    # Hue variation, independent of the value: painted colour is never one flat tint.
    tint = fractal_noise(rng, width, height, octaves=4)[..., None] - 0.5
    image += tint * rng.uniform(20, 50) * (rng.random(3).astype(np.float32) - 0.5) * 2
    for _ in range(int(rng.integers(3, 8))):
        image = _painted_form(rng, image, stops)
    image = _brush_strokes(rng, np.clip(image, 0, 255).astype(np.uint8))
    _dark_accents(rng, image, stops[0] * 0.35)
    grain = rng.normal(0.0, rng.uniform(2.0, 5.0), image.shape).astype(np.float32)
    return np.clip(image.astype(np.float32) + grain, 0, 255).astype(np.uint8)


def _painted_form(rng: np.random.Generator, image: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """A mountain ridge, a building or a tree crown with a soft painted edge, its colour mottled
    by noise: the large shapes a background painter lays in."""
    h, w = image.shape[:2]
    mask = np.zeros((h, w), np.float32)
    kind = int(rng.integers(3))
    if kind == 0:  # a ridge across the picture
        xs = np.linspace(-10, w + 10, int(rng.integers(5, 12)))
        ys = rng.uniform(0.3, 0.8) * h + rng.normal(0, 0.08 * h, len(xs))
        ridge = np.concatenate([np.stack([xs, ys], 1), [[w + 10, h + 10], [-10, h + 10]]])
        cv2.fillPoly(mask, [np.round(ridge * SCALE).astype(np.int32)], 1.0, cv2.LINE_AA, SHIFT)
    elif kind == 1:  # a building: a block with a few window rows
        x0, bw = rng.uniform(0, w), rng.uniform(0.05, 0.2) * w
        top = rng.uniform(0.2, 0.6) * h
        cv2.rectangle(mask, (int(x0 * SCALE), int(top * SCALE)),
                      (int((x0 + bw) * SCALE), int(h * SCALE)), 1.0, -1, cv2.LINE_AA, SHIFT)
    else:  # a crown of foliage
        centre = (int(rng.uniform(0, w) * SCALE), int(rng.uniform(0.2, 0.8) * h * SCALE))
        axes = (int(rng.uniform(0.05, 0.2) * w * SCALE), int(rng.uniform(0.08, 0.25) * h * SCALE))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1,
                    cv2.LINE_AA, SHIFT)
    # A ragged, brushed edge: the mask's border eaten by noise, then softened a little.
    mask *= fractal_noise(rng, w, h, octaves=5) > rng.uniform(0.0, 0.25)
    mask = cv2.GaussianBlur(mask, (0, 0), float(rng.uniform(0.6, 1.6)))[..., None]
    colour = stops[int(rng.integers(len(stops)))] * rng.uniform(0.6, 1.1)
    mottle = (fractal_noise(rng, w, h, octaves=5)[..., None] - 0.5) * rng.uniform(30, 70)
    return image * (1 - mask) + np.clip(colour + mottle, 0, 255) * mask


def _brush_strokes(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Short translucent strokes in the colour under them, lighter or darker, along a flow field
    taken from another noise's gradient: the look of brushwork."""
    h, w = image.shape[:2]
    direction = fractal_noise(rng, w, h, octaves=3) * 2 * np.pi
    strokes = image.copy()
    for _ in range(int(w * h / 60)):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        theta = float(direction[y, x])
        length = rng.uniform(3, 18)
        dx, dy = np.cos(theta) * length / 2, np.sin(theta) * length / 2
        colour = image[y, x].astype(np.float32) * rng.uniform(0.8, 1.2) + rng.normal(0, 8, 3)
        cv2.line(
            strokes,
            (int((x - dx) * SCALE), int((y - dy) * SCALE)),
            (int((x + dx) * SCALE), int((y + dy) * SCALE)),
            tuple(float(c) for c in np.clip(colour, 0, 255)),
            int(rng.integers(1, 5)),
            cv2.LINE_AA,
            SHIFT,
        )
    return cv2.addWeighted(image, 0.5, strokes, 0.5, 0.0)


def _dark_accents(rng: np.random.Generator, image: np.ndarray, colour: np.ndarray) -> None:
    """Thin dark strokes wandering over the painting (branches, cracks, contour accents), in
    place: the few ink-like lines a painted background has."""
    h, w = image.shape[:2]
    for _ in range(int(rng.integers(8, 9 + w * h // 8000))):
        steps = int(rng.integers(4, 14))
        heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.4, steps))
        step = rng.uniform(3, 8)
        xs = rng.uniform(0, w) + np.cumsum(np.cos(heading) * step)
        ys = rng.uniform(0, h) + np.cumsum(np.sin(heading) * step)
        points = np.round(np.stack([xs, ys], axis=1) * SCALE).astype(np.int32)
        tone = tuple(float(c) for c in np.clip(colour * rng.uniform(0.6, 1.4), 0, 255))
        cv2.polylines(image, [points], False, tone, int(rng.integers(1, 3)), cv2.LINE_AA, SHIFT)


@dataclass(frozen=True)
class CameraMove:
    """Constant-speed translation and a linear zoom: how a rostrum camera moves over artwork."""

    start: tuple[float, float]  # canvas point at the view's centre
    end: tuple[float, float]
    zoom: tuple[float, float]  # at the start and at the end

    def matrix(self, u: float, width: int, height: int) -> np.ndarray:
        cx = self.start[0] + (self.end[0] - self.start[0]) * u
        cy = self.start[1] + (self.end[1] - self.start[1]) * u
        zoom = self.zoom[0] + (self.zoom[1] - self.zoom[0]) * u
        # canvas -> view: scale about the centre point, then put it at the view's centre.
        return np.float32([[zoom, 0, width / 2 - zoom * cx], [0, zoom, height / 2 - zoom * cy]])


@dataclass(frozen=True)
class Shape:
    """A vector-style shape: a closed smooth outline r(theta) whose harmonics drift over time."""

    radius: float  # pixels
    harmonics: np.ndarray  # (K, 3): order, amplitude, phase speed (radians per clip)
    phases: np.ndarray  # (K,)
    colours: tuple[np.ndarray, np.ndarray]  # gradient ends
    gradient_angle: float
    line: np.ndarray | None  # outline colour, or None for none
    line_px: int
    law: str  # one of LAWS
    anchor: tuple[float, float]  # pixels
    extent: tuple[float, float]  # how far the law takes it, pixels
    rate: float  # cycles (orbit, bob) or stiffness (spring) per clip
    squash: float  # squash-and-stretch amount
    turn: float  # radians over the clip, about the pivot
    pivot: tuple[float, float]  # offset of the turning point from the centre, in radii
    details: tuple[tuple[float, float, float], ...]  # inner 1 px arcs: (scale, start, sweep)

    def centre(self, u: float) -> tuple[float, float]:
        ax, ay = self.anchor
        ex, ey = self.extent
        if self.law == "spring":  # released from an offset: a damped oscillation about the anchor
            decay = np.exp(-3.0 * u) * np.cos(2 * np.pi * self.rate * u)
            return ax + ex * decay, ay + ey * decay
        if self.law == "orbit":
            phase = 2 * np.pi * self.rate * u
            return ax + ex * np.cos(phase), ay + ey * np.sin(phase)
        if self.law == "bob":  # sideways drift and a bounce
            return ax + ex * (u - 0.5), ay - ey * abs(np.sin(np.pi * self.rate * u))
        return ax + ex * (u - 0.5), ay + ey * (u - 0.5)  # glide: constant velocity

    def outline(self, u: float, scale: float = 1.0, start: float = 0.0,
                sweep: float = 2 * np.pi) -> np.ndarray:
        """(N, 2) float points of the outline at time u; `scale`, `start` and `sweep` give a
        part of a smaller copy inside it (a detail line that deforms with the shape)."""
        theta = start + np.linspace(0, sweep, 96, endpoint=sweep < 2 * np.pi)
        order, amplitude, speed = self.harmonics.T
        wobble = (amplitude[:, None] * np.cos(
            order[:, None] * theta[None] + (self.phases + speed * u)[:, None]
        )).sum(axis=0)
        r = self.radius * scale * (1 + wobble)
        stretch = 1 + self.squash * np.sin(2 * np.pi * self.rate * u)
        points = np.stack([r * np.cos(theta) * stretch, r * np.sin(theta) / stretch], axis=1)
        pivot = np.array(self.pivot) * self.radius
        angle = self.turn * u
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        points = (points - pivot) @ rotation.T + pivot
        return points + np.array(self.centre(u))


def _random_shape(rng: np.random.Generator, width: int, height: int, palette: Palette) -> Shape:
    side = min(width, height)
    orders = rng.choice(np.arange(2, 7), size=3, replace=False)
    harmonics = np.stack(
        [orders, rng.uniform(0.02, 0.18, 3), rng.uniform(-3, 3, 3)], axis=1
    ).astype(np.float64)
    line_kind = rng.random()
    first = _hsv_colour(rng, palette)
    # Mostly a deep shade of the fill (vector art rarely inks in black), else white or no line.
    line = None if line_kind < 0.1 else (
        np.float32([250, 250, 245]) if line_kind < 0.2 else first * rng.uniform(0.12, 0.35)
    )
    return Shape(
        radius=float(rng.uniform(0.08, 0.22) * side),
        harmonics=harmonics,
        phases=rng.uniform(0, 2 * np.pi, 3),
        colours=(first, _hsv_colour(rng, palette)),
        gradient_angle=float(rng.uniform(0, 2 * np.pi)),
        line=line,
        line_px=int(rng.integers(1, 3)),
        law=str(rng.choice(LAWS)),
        anchor=(float(rng.uniform(0.2, 0.8) * width), float(rng.uniform(0.25, 0.75) * height)),
        extent=(float(rng.uniform(-0.35, 0.35) * width), float(rng.uniform(-0.3, 0.3) * height)),
        rate=float(rng.uniform(0.5, 2.0)),
        squash=float(rng.uniform(0.0, 0.25)),
        turn=float(rng.uniform(-2.0, 2.0)),
        pivot=(float(rng.uniform(-0.6, 0.6)), float(rng.uniform(-0.6, 0.6))),
        details=tuple(
            (float(rng.uniform(0.3, 0.75)), float(rng.uniform(0, 2 * np.pi)),
             float(rng.uniform(0.5, 2.0)))
            for _ in range(int(rng.integers(0, 4)))
        ),
    )


def _gradient(width: int, height: int, colours: tuple[np.ndarray, np.ndarray],
              angle: float, origin: tuple[float, float], length: float) -> np.ndarray:
    """A linear gradient between two colours along `angle`, over `length` pixels around
    `origin`: (H, W, 3) float32."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    along = (xs - origin[0]) * np.cos(angle) + (ys - origin[1]) * np.sin(angle)
    mix = np.clip(along / max(length, 1.0) + 0.5, 0, 1)[..., None]
    return colours[0] * (1 - mix) + colours[1] * mix


def _backdrop(rng: np.random.Generator, width: int, height: int, palette: Palette) -> np.ndarray:
    """A soft two-colour gradient with a vignette and a few blurred gradient forms."""
    colours = (_hsv_colour(rng, palette), _hsv_colour(rng, palette))
    image = _gradient(width, height, colours, float(rng.uniform(0, 2 * np.pi)),
                      (width / 2, height / 2), float(np.hypot(width, height)))
    for _ in range(int(rng.integers(2, 5))):
        mask = np.zeros((height, width), np.float32)
        centre = (int(rng.uniform(0, width) * SCALE), int(rng.uniform(0, height) * SCALE))
        axes = (int(rng.uniform(0.1, 0.4) * width * SCALE), int(rng.uniform(0.1, 0.4) * height * SCALE))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1, cv2.LINE_AA, SHIFT)
        mask = cv2.GaussianBlur(mask, (0, 0), rng.uniform(2, 8))[..., None]
        image = image * (1 - 0.5 * mask) + _hsv_colour(rng, palette) * 0.5 * mask
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    vignette = 1 - 0.25 * (((xs / width - 0.5) ** 2 + (ys / height - 0.5) ** 2) * 2)
    return image * vignette[..., None]


@dataclass(frozen=True)
class PaintedScene:
    """One clip of the painted generator: a camera move over artwork, or vector animation."""

    kind: str  # pan | vector
    width: int
    height: int
    canvas: np.ndarray  # pan: the artwork, larger than the view; vector: the backdrop (float32)
    camera: CameraMove | None
    shapes: tuple[Shape, ...]

    @classmethod
    def random(cls, rng: np.random.Generator, width: int, height: int) -> PaintedScene:
        kind = CLIP_KINDS[int(rng.integers(len(CLIP_KINDS)))]
        if kind == "pan":
            # Room around the view for the travel (at most 0.35 of the width) and the zoom.
            canvas_w, canvas_h = int(width * 1.8), int(height * 1.8)
            travel = rng.uniform(0.05, 0.35) * width * rng.choice([-1, 1])
            drift = rng.uniform(-0.1, 0.1) * height
            cx, cy = canvas_w / 2, canvas_h / 2
            zoom = float(rng.uniform(1.0, 1.12))
            zooms = (1.0, zoom) if rng.random() < 0.5 else (zoom, 1.0)
            camera = CameraMove(
                start=(cx - travel / 2, cy - drift / 2), end=(cx + travel / 2, cy + drift / 2),
                zoom=zooms,
            )
            return cls(kind, width, height, paint_artwork(rng, canvas_w, canvas_h), camera, ())
        palette = PALETTES[int(rng.integers(len(PALETTES)))]
        shapes = tuple(_random_shape(rng, width, height, palette)
                       for _ in range(int(rng.integers(2, 6))))
        return cls(kind, width, height, _backdrop(rng, width, height, palette), None, shapes)

    def render(self, u: float) -> np.ndarray:
        if self.camera is not None:
            return cv2.warpAffine(
                self.canvas, self.camera.matrix(u, self.width, self.height),
                (self.width, self.height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT,
            )
        image = self.canvas.copy()
        for shape in self.shapes:
            _draw_shape(image, shape, u)
        return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def _draw_shape(image: np.ndarray, shape: Shape, u: float) -> None:
    """Composite a gradient-filled shape and its line over `image` (float32), in place."""
    h, w = image.shape[:2]
    points = np.round(shape.outline(u) * SCALE).astype(np.int32)
    mask = np.zeros((h, w), np.float32)
    cv2.fillPoly(mask, [points], 1.0, cv2.LINE_AA, SHIFT)
    fill = _gradient(w, h, shape.colours, shape.gradient_angle, shape.centre(u), 2 * shape.radius)
    alpha = mask[..., None]
    image[...] = image * (1 - alpha) + fill * alpha
    if shape.line is None:
        return
    line = np.zeros((h, w), np.float32)
    cv2.polylines(line, [points], True, 1.0, shape.line_px, cv2.LINE_AA, SHIFT)
    details = [np.round(shape.outline(u, *d) * SCALE).astype(np.int32) for d in shape.details]
    cv2.polylines(line, details, False, 1.0, 1, cv2.LINE_AA, SHIFT)
    alpha = line[..., None]
    image[...] = image * (1 - alpha) + shape.line * alpha
