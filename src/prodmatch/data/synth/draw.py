"""Product pictures for the synthetic Shopee data: one drawn look per product, one photo per posting.

A ``Look`` fixes what a product looks like (shape, colours, label); a ``Shot`` fixes how one
seller photographed it (background, framing, lighting, sticker, JPEG quality). Everything random
lives in those two frozen records, so rendering is a pure function and the JPEG bytes are
reproducible.
Long because it is mostly vocabulary and drawing rules, not logic.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, replace
from functools import lru_cache

import imagehash
import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from .vocab_id import BANNER_TEXTS, SHOP_WORDS, STICKER_TEXTS

# Width and height of each shape, as fractions of the picture side.
SHAPE_BOX = {
    "bottle": (0.38, 0.80), "tube": (0.30, 0.78), "jar": (0.56, 0.56), "box": (0.62, 0.64),
    "pouch": (0.56, 0.74), "pan": (0.86, 0.50), "handbag": (0.72, 0.62), "shirt": (0.78, 0.76),
    "shoe": (0.84, 0.44), "phone": (0.42, 0.78),
}
LOGOS = ("circle", "star", "diamond", "none")
BACKGROUNDS = ("white", "solid", "gradient", "table", "pattern")
BG_WEIGHTS = (0.40, 0.20, 0.15, 0.15, 0.10)

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Look:
    """What one product looks like; the quantity variants of a product share it."""

    shape: str
    body: RGB
    label: RGB
    accent: RGB
    width: float
    height: float
    initials: str
    logo: str
    stripes: int


@dataclass(frozen=True)
class Shot:
    """How one posting's photo was taken; equal shots of one look give identical JPEG bytes."""

    kind: str = "main"  # "main", "alt" (another photo: small, busy scene) or "banner"
    view: str = "front"  # "front" or "back" (no label text)
    background: str = "white"
    bg1: RGB = (255, 255, 255)
    bg2: RGB = (230, 230, 230)
    pattern: int = 0
    scale: float = 1.0
    dx: float = 0.0
    dy: float = 0.0
    angle: float = 0.0
    mirror: bool = False
    pair: bool = False
    companion: bool = False
    crop: tuple[float, float, float] = (0.0, 0.0, 1.0)  # x0, y0, side (fractions)
    brightness: float = 1.0
    contrast: float = 1.0
    cast: tuple[float, float, float] = (1.0, 1.0, 1.0)
    sticker: str = ""
    sticker_corner: int = 0
    sticker_color: RGB = (220, 30, 30)
    caption: str = ""
    banner_text: str = ""
    quality: int = 85
    noise_seed: int = 0


# ---------------------------------------------------------------- sampling looks and shots

def _jitter(rng: np.random.Generator, colour, amount: int) -> RGB:
    c = np.asarray(colour) + rng.integers(-amount, amount + 1, size=3)
    return tuple(int(v) for v in np.clip(c, 0, 255))


def _random_colour(rng: np.random.Generator, lo: int = 0, hi: int = 256) -> RGB:
    return tuple(int(v) for v in rng.integers(lo, hi, size=3))


def sample_look(rng: np.random.Generator, shapes, palette, initials: str) -> Look:
    """A product look from its category's shapes and palette, so neighbours look alike."""
    shape = str(shapes[rng.integers(len(shapes))])
    body = _jitter(rng, palette[rng.integers(len(palette))], 30)
    label = _jitter(rng, ((245, 245, 240), (30, 30, 30), (250, 220, 120))[rng.integers(3)], 12)
    accent = _jitter(rng, palette[rng.integers(len(palette))], 60)
    w, h = SHAPE_BOX[shape]
    return Look(shape, body, label, accent, w * float(rng.uniform(0.85, 1.12)),
                h * float(rng.uniform(0.88, 1.1)), initials, str(LOGOS[rng.integers(len(LOGOS))]),
                int(rng.integers(0, 4)))


def sample_shot(rng: np.random.Generator, kind: str = "main") -> Shot:
    """Random photo conditions of one posting; 'alt' is a different photo, 'banner' a promo banner."""
    common = dict(
        brightness=float(rng.uniform(0.78, 1.2)), contrast=float(rng.uniform(0.78, 1.2)),
        cast=tuple(float(v) for v in rng.uniform(0.92, 1.08, size=3)),
        quality=int(rng.integers(60, 96)), noise_seed=int(rng.integers(2**31)),
        sticker=str(STICKER_TEXTS[rng.integers(len(STICKER_TEXTS))]) if rng.random() < 0.25 else "",
        sticker_corner=int(rng.integers(4)), sticker_color=_jitter(rng, (215, 35, 35), 40),
        caption=_caption(rng) if rng.random() < 0.15 else "",
        bg1=_random_colour(rng, 150), bg2=_random_colour(rng, 90), pattern=int(rng.integers(4)),
    )
    side = float(rng.uniform(0.8, 1.0))
    crop = (float(rng.uniform(0, 1 - side)), float(rng.uniform(0, 1 - side)), side)
    if kind == "banner":
        common.update(bg1=_random_colour(rng, 0, 200), bg2=_random_colour(rng, 60))
        return Shot(kind="banner", banner_text=str(BANNER_TEXTS[rng.integers(len(BANNER_TEXTS))]),
                    background="gradient", **common)
    if kind == "alt":
        common.update(bg1=_random_colour(rng), bg2=_random_colour(rng))
        return Shot(kind="alt", view="back" if rng.random() < 0.35 else "front", background="pattern",
                    scale=float(rng.uniform(0.38, 0.58)), dx=float(rng.uniform(-0.2, 0.2)),
                    dy=float(rng.uniform(-0.2, 0.2)), angle=float(rng.uniform(-25, 25)),
                    mirror=bool(rng.random() < 0.5), pair=bool(rng.random() < 0.35),
                    companion=bool(rng.random() < 0.6), crop=crop, **common)
    background = str(rng.choice(BACKGROUNDS, p=BG_WEIGHTS))
    if background == "white":
        grey = int(rng.integers(238, 256))
        common["bg1"] = (grey, grey, grey)
    return Shot(kind="main", background=background, scale=float(rng.uniform(0.72, 1.05)),
                dx=float(rng.uniform(-0.08, 0.08)), dy=float(rng.uniform(-0.08, 0.08)),
                angle=0.0 if rng.random() < 0.5 else float(rng.uniform(-10, 10)),
                mirror=bool(rng.random() < 0.1), crop=crop, **common)


def edit_shot(rng: np.random.Generator, base: Shot) -> Shot:
    """A reseller's light edit of a stock photo: a slight re-crop, new lighting, sticker, re-encoding."""
    x0, y0, side = base.crop
    new = side * float(rng.uniform(0.95, 1.0)) if rng.random() < 0.4 else side
    return replace(
        base,
        crop=(x0 + float(rng.uniform(0, side - new)), y0 + float(rng.uniform(0, side - new)), new),
        brightness=base.brightness * float(rng.uniform(0.92, 1.08)),
        contrast=base.contrast * float(rng.uniform(0.92, 1.08)),
        sticker=str(STICKER_TEXTS[rng.integers(len(STICKER_TEXTS))]) if rng.random() < 0.15 else "",
        sticker_corner=int(rng.integers(4)), sticker_color=_jitter(rng, (215, 35, 35), 40),
        caption=_caption(rng) if rng.random() < 0.1 else "",
        quality=int(rng.integers(60, 96)), noise_seed=int(rng.integers(2**31)),
    )


def _caption(rng: np.random.Generator) -> str:
    a, b = rng.integers(len(SHOP_WORDS), size=2)
    return f"{SHOP_WORDS[a]} {SHOP_WORDS[b]}".upper()


# ---------------------------------------------------------------- drawing primitives

@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(6, int(size)))


def _shade(c: RGB, f: float) -> RGB:
    return tuple(int(max(0, min(255, v * f))) for v in c)


def _contrast_ink(c: RGB) -> RGB:
    return (20, 20, 20) if sum(c) > 380 else (250, 250, 250)


def _text_centered(d: ImageDraw.ImageDraw, cx: float, cy: float, text: str, size: float, fill) -> None:
    d.text((cx, cy), text, font=_font(int(size)), fill=fill, anchor="mm")


def _label(d, box, look: Look, view: str) -> None:
    """The product label: initials and logo on the front, barcode-like bars on the back."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    d.rectangle(box, fill=look.label)
    ink = _contrast_ink(look.label)
    if view == "back":
        for i in range(7):
            bx = x0 + w * (0.15 + 0.1 * i)
            d.rectangle((bx, y0 + 0.55 * h, bx + w * 0.04 * (1 + i % 2), y1 - 0.1 * h), fill=ink)
        d.line((x0 + 0.1 * w, y0 + 0.3 * h, x1 - 0.1 * w, y0 + 0.3 * h), fill=ink, width=max(1, int(h * 0.05)))
        return
    for i in range(look.stripes):
        sy = y0 + h * (0.08 + 0.1 * i)
        d.rectangle((x0, sy, x1, sy + h * 0.05), fill=look.accent)
    _text_centered(d, (x0 + x1) / 2, y0 + h * 0.62, look.initials, min(h * 0.42, w * 0.8 / max(1, len(look.initials)) * 1.6), ink)
    r = min(w, h) * 0.12
    cx, cy = x0 + w * 0.8, y0 + h * 0.22
    if look.logo == "circle":
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=look.accent)
    elif look.logo == "star":
        pts = [(cx + r * (1 if k % 2 == 0 else 0.45) * np.sin(k * np.pi / 5),
                cy - r * (1 if k % 2 == 0 else 0.45) * np.cos(k * np.pi / 5)) for k in range(10)]
        d.polygon(pts, fill=look.accent)
    elif look.logo == "diamond":
        d.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=look.accent)


def _draw_bottle(d, x0, y0, w, h, L, view):
    d.rectangle((x0 + 0.36 * w, y0, x0 + 0.64 * w, y0 + 0.12 * h), fill=L.accent)
    d.rectangle((x0 + 0.39 * w, y0 + 0.11 * h, x0 + 0.61 * w, y0 + 0.24 * h), fill=_shade(L.body, 0.8))
    d.rounded_rectangle((x0, y0 + 0.2 * h, x0 + w, y0 + h), radius=0.18 * w, fill=L.body)
    _label(d, (x0 + 0.08 * w, y0 + 0.44 * h, x0 + 0.92 * w, y0 + 0.82 * h), L, view)


def _draw_tube(d, x0, y0, w, h, L, view):
    d.polygon([(x0 + 0.08 * w, y0), (x0 + 0.92 * w, y0), (x0 + w, y0 + 0.85 * h), (x0, y0 + 0.85 * h)], fill=L.body)
    d.rectangle((x0 + 0.06 * w, y0, x0 + 0.94 * w, y0 + 0.05 * h), fill=_shade(L.body, 0.75))
    d.rectangle((x0 + 0.28 * w, y0 + 0.85 * h, x0 + 0.72 * w, y0 + h), fill=L.accent)
    _label(d, (x0 + 0.12 * w, y0 + 0.25 * h, x0 + 0.88 * w, y0 + 0.7 * h), L, view)


def _draw_jar(d, x0, y0, w, h, L, view):
    d.rounded_rectangle((x0 + 0.03 * w, y0 + 0.16 * h, x0 + 0.97 * w, y0 + h), radius=0.12 * w, fill=L.body)
    d.rounded_rectangle((x0, y0, x0 + w, y0 + 0.22 * h), radius=0.05 * w, fill=L.accent)
    _label(d, (x0 + 0.03 * w, y0 + 0.38 * h, x0 + 0.97 * w, y0 + 0.82 * h), L, view)


def _draw_box(d, x0, y0, w, h, L, view):
    d.polygon([(x0, y0 + 0.2 * h), (x0 + 0.2 * w, y0), (x0 + w, y0), (x0 + 0.8 * w, y0 + 0.2 * h)], fill=_shade(L.body, 1.2))
    d.polygon([(x0 + 0.8 * w, y0 + 0.2 * h), (x0 + w, y0), (x0 + w, y0 + 0.8 * h), (x0 + 0.8 * w, y0 + h)], fill=_shade(L.body, 0.7))
    d.rectangle((x0, y0 + 0.2 * h, x0 + 0.8 * w, y0 + h), fill=L.body)
    _label(d, (x0 + 0.06 * w, y0 + 0.36 * h, x0 + 0.74 * w, y0 + 0.84 * h), L, view)


def _draw_pouch(d, x0, y0, w, h, L, view):
    top = [(x0 + 0.05 * w + k * 0.9 * w / 12, y0 + (0.0 if k % 2 else 0.03 * h)) for k in range(13)]
    d.polygon(top + [(x0 + w, y0 + 0.5 * h), (x0 + 0.95 * w, y0 + h), (x0 + 0.05 * w, y0 + h), (x0, y0 + 0.5 * h)], fill=L.body)
    d.rectangle((x0 + 0.05 * w, y0 + 0.04 * h, x0 + 0.95 * w, y0 + 0.1 * h), fill=_shade(L.body, 0.8))
    d.ellipse((x0 + 0.25 * w, y0 + 0.66 * h, x0 + 0.75 * w, y0 + 0.94 * h), fill=_shade(L.accent, 1.15))
    _label(d, (x0 + 0.1 * w, y0 + 0.18 * h, x0 + 0.9 * w, y0 + 0.6 * h), L, view)


def _draw_pan(d, x0, y0, w, h, L, view):
    d.rounded_rectangle((x0 + 0.62 * w, y0 + 0.42 * h, x0 + w, y0 + 0.58 * h), radius=0.04 * w, fill=L.accent)
    d.ellipse((x0, y0, x0 + 0.7 * w, y0 + h), fill=L.body)
    d.ellipse((x0 + 0.07 * w, y0 + 0.1 * h, x0 + 0.63 * w, y0 + 0.9 * h), fill=_shade(L.body, 0.7))
    if view == "front":
        _text_centered(d, x0 + 0.35 * w, y0 + 0.5 * h, L.initials, 0.3 * h, L.label)


def _draw_handbag(d, x0, y0, w, h, L, view):
    lw = max(2, int(0.06 * w))
    d.arc((x0 + 0.25 * w, y0, x0 + 0.75 * w, y0 + 0.6 * h), 180, 360, fill=_shade(L.body, 0.7), width=lw)
    d.polygon([(x0 + 0.1 * w, y0 + 0.3 * h), (x0 + 0.9 * w, y0 + 0.3 * h), (x0 + w, y0 + h), (x0, y0 + h)], fill=L.body)
    if view == "front":
        d.polygon([(x0 + 0.1 * w, y0 + 0.3 * h), (x0 + 0.9 * w, y0 + 0.3 * h), (x0 + 0.8 * w, y0 + 0.62 * h),
                   (x0 + 0.2 * w, y0 + 0.62 * h)], fill=_shade(L.body, 0.82))
        r = 0.05 * w
        d.ellipse((x0 + 0.5 * w - r, y0 + 0.6 * h - r, x0 + 0.5 * w + r, y0 + 0.6 * h + r), fill=L.accent)
        _text_centered(d, x0 + 0.5 * w, y0 + 0.8 * h, L.initials, 0.16 * h, L.label)


def _draw_shirt(d, x0, y0, w, h, L, view):
    d.polygon([(x0 + 0.36 * w, y0), (x0 + 0.15 * w, y0 + 0.06 * h), (x0, y0 + 0.3 * h), (x0 + 0.14 * w, y0 + 0.4 * h),
               (x0 + 0.22 * w, y0 + 0.33 * h), (x0 + 0.22 * w, y0 + h), (x0 + 0.78 * w, y0 + h),
               (x0 + 0.78 * w, y0 + 0.33 * h), (x0 + 0.86 * w, y0 + 0.4 * h), (x0 + w, y0 + 0.3 * h),
               (x0 + 0.85 * w, y0 + 0.06 * h), (x0 + 0.64 * w, y0)], fill=L.body)
    d.chord((x0 + 0.36 * w, y0 - 0.08 * h, x0 + 0.64 * w, y0 + 0.1 * h), 0, 180, fill=_shade(L.body, 0.7))
    if view == "front":
        _label(d, (x0 + 0.33 * w, y0 + 0.3 * h, x0 + 0.67 * w, y0 + 0.58 * h), L, view)


def _draw_shoe(d, x0, y0, w, h, L, view):
    d.polygon([(x0 + 0.02 * w, y0 + 0.82 * h), (x0 + 0.04 * w, y0 + 0.4 * h), (x0 + 0.34 * w, y0 + 0.3 * h),
               (x0 + 0.46 * w, y0), (x0 + 0.7 * w, y0), (x0 + 0.74 * w, y0 + 0.3 * h), (x0 + w, y0 + 0.6 * h),
               (x0 + w, y0 + 0.82 * h)], fill=L.body)
    d.rounded_rectangle((x0, y0 + 0.78 * h, x0 + w, y0 + h), radius=0.08 * h, fill=L.label)
    if view == "front":
        d.polygon([(x0 + 0.25 * w, y0 + 0.7 * h), (x0 + 0.8 * w, y0 + 0.45 * h), (x0 + 0.45 * w, y0 + 0.75 * h)], fill=L.accent)
        for k in range(4):
            lx = x0 + (0.4 + 0.07 * k) * w
            d.line((lx, y0 + 0.12 * h + k * 0.06 * h, lx + 0.08 * w, y0 + 0.2 * h + k * 0.06 * h),
                   fill=L.label, width=max(1, int(0.04 * h)))


def _draw_phone(d, x0, y0, w, h, L, view):
    d.rounded_rectangle((x0, y0, x0 + w, y0 + h), radius=0.15 * w, fill=L.body)
    if view == "back":
        r = 0.12 * w
        for k in range(2):
            cy = y0 + (0.1 + 0.12 * k) * h
            d.ellipse((x0 + 0.15 * w, cy, x0 + 0.15 * w + 2 * r, cy + 2 * r), fill=L.accent)
        return
    d.rectangle((x0 + 0.08 * w, y0 + 0.08 * h, x0 + 0.92 * w, y0 + 0.9 * h), fill=L.label)
    d.ellipse((x0 + 0.46 * w, y0 + 0.02 * h, x0 + 0.54 * w, y0 + 0.02 * h + 0.08 * w), fill=L.accent)
    _label(d, (x0 + 0.08 * w, y0 + 0.3 * h, x0 + 0.92 * w, y0 + 0.7 * h), L, view)


DRAWERS = {
    "bottle": _draw_bottle, "tube": _draw_tube, "jar": _draw_jar, "box": _draw_box, "pouch": _draw_pouch,
    "pan": _draw_pan, "handbag": _draw_handbag, "shirt": _draw_shirt, "shoe": _draw_shoe, "phone": _draw_phone,
}


@lru_cache(maxsize=32)
def product_layer(look: Look, view: str, size: int) -> Image.Image:
    """The product alone, centred on a transparent square of side `size` (cached per product)."""
    im = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    w, h = look.width * size, look.height * size
    DRAWERS[look.shape](ImageDraw.Draw(im), (size - w) / 2, (size - h) / 2, w, h, look, view)
    return im


# ---------------------------------------------------------------- backgrounds and the photo

def _background(shot: Shot, size: int, rng: np.random.Generator) -> Image.Image:
    """Backdrop of one photo: plain, gradient, a table against a wall, or a pattern."""
    c1, c2 = np.asarray(shot.bg1, float), np.asarray(shot.bg2, float)
    if shot.background in ("white", "solid"):
        return Image.new("RGB", (size, size), shot.bg1)
    t = np.linspace(0, 1, size)[:, None, None]
    if shot.background == "gradient":
        arr = np.broadcast_to(c1 * (1 - t) + c2 * t, (size, size, 3))
    elif shot.background == "table":
        arr = np.where(t < 0.6, c1, c2 * 0.8) + np.zeros((size, size, 3))
    else:
        yy, xx = np.mgrid[0:size, 0:size]
        period = size / (4 + 3 * shot.pattern)
        if shot.pattern % 2 == 0:
            mask = ((xx + yy) // period) % 2 == 0
        else:
            mask = ((xx // period) + (yy // period)) % 2 == 0
        arr = np.where(mask[..., None], c1, c2)
    im = Image.fromarray(np.ascontiguousarray(arr).astype(np.uint8))
    if shot.kind == "alt":
        _props(ImageDraw.Draw(im), size, rng)
    return im


def _props(d: ImageDraw.ImageDraw, size: int, rng: np.random.Generator) -> None:
    """Clutter of a lifestyle photo: random blobs and bars around the product."""
    for _ in range(int(rng.integers(4, 9))):
        x, y = rng.uniform(0, size, 2)
        r = rng.uniform(0.05, 0.2) * size
        fill = _random_colour(rng)
        if rng.random() < 0.5:
            d.ellipse((x - r, y - r, x + r, y + r), fill=fill)
        else:
            d.rectangle((x - r, y - r / 3, x + r, y + r / 3), fill=fill)


def _paste_product(canvas: Image.Image, look: Look, shot: Shot, size: int, scale: float, dx: float, dy: float) -> None:
    layer = product_layer(look, shot.view, size)
    if shot.mirror:
        layer = ImageOps.mirror(layer)
    side = max(8, int(size * scale))
    layer = layer.resize((side, side), Image.BILINEAR)
    if shot.angle:
        layer = layer.rotate(shot.angle, resample=Image.BILINEAR)
    canvas.paste(layer, (int((size - side) / 2 + dx * size), int((size - side) / 2 + dy * size)), layer)


def _banner(shot: Shot, size: int, rng: np.random.Generator) -> Image.Image:
    """A seller's promo banner: saturated gradient, big text, confetti; unrelated to the product."""
    im = _background(shot, size, rng)
    d = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(3, 8))):
        x, y = rng.uniform(0, size, 2)
        r = rng.uniform(0.03, 0.12) * size
        d.ellipse((x - r, y - r, x + r, y + r), fill=_random_colour(rng, 120))
    words = shot.banner_text.split()
    step = 0.8 / max(3, len(words))
    for i, word in enumerate(words):
        y = size * (0.5 + (i - (len(words) - 1) / 2) * step)
        _text_centered(d, size / 2, y, word, size * step * 0.8, (255, 255, 255))
    return im


def _overlays(im: Image.Image, shot: Shot, size: int) -> None:
    """Seller additions on top of the photo: a corner sticker and a shop-name caption band."""
    d = ImageDraw.Draw(im)
    if shot.sticker:
        r = size * 0.13
        cx = r * 1.1 if shot.sticker_corner % 2 == 0 else size - r * 1.1
        cy = r * 1.1 if shot.sticker_corner < 2 else size - r * 1.1
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=shot.sticker_color)
        _text_centered(d, cx, cy, shot.sticker, r * 1.6 / max(2, len(shot.sticker)) * 1.6, (255, 255, 255))
    if shot.caption:
        d.rectangle((0, size * 0.88, size, size), fill=(20, 20, 20))
        _text_centered(d, size / 2, size * 0.94, shot.caption, size * 0.07, (255, 210, 0))


def _lighting(im: Image.Image, shot: Shot, rng: np.random.Generator) -> Image.Image:
    """Brightness, contrast, colour cast and a little sensor noise."""
    arr = np.asarray(im, dtype=np.float32) * np.asarray(shot.cast, np.float32)
    arr = ((arr - 128.0) * shot.contrast + 128.0) * shot.brightness
    arr += rng.normal(0.0, 3.0, size=arr.shape).astype(np.float32)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def render(look: Look, shot: Shot, size: int) -> Image.Image:
    """The posting's photo as a PIL image (before JPEG compression)."""
    rng = np.random.default_rng(shot.noise_seed)
    if shot.kind == "banner":
        im = _banner(shot, size, rng)
    else:
        im = _background(shot, size, rng)
        if shot.kind == "alt" and shot.companion:
            box = replace(look, shape="box", body=look.label, label=look.body)
            _paste_product(im, box, replace(shot, mirror=False), size, shot.scale * 0.9, -shot.dx, -shot.dy * 0.5)
        if shot.pair:
            _paste_product(im, look, shot, size, shot.scale, shot.dx - 0.15, shot.dy)
            _paste_product(im, look, shot, size, shot.scale, shot.dx + 0.15, shot.dy)
        else:
            _paste_product(im, look, shot, size, shot.scale, shot.dx, shot.dy)
        x0, y0, side = shot.crop
        im = im.crop((int(x0 * size), int(y0 * size), int((x0 + side) * size), int((y0 + side) * size)))
        im = im.resize((size, size), Image.BILINEAR)
    im = _lighting(im, shot, rng)
    _overlays(im, shot, size)
    return im


def jpeg_bytes(im: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()


def render_jpeg(look: Look, shot: Shot, size: int) -> bytes:
    """Render and compress one posting's photo."""
    return jpeg_bytes(render(look, shot, size), shot.quality)


def phash_hex(jpeg: bytes) -> str:
    """imagehash.phash of the JPEG as written (decoded again), as 16 hex digits."""
    with Image.open(io.BytesIO(jpeg)) as im:
        return str(imagehash.phash(im))
