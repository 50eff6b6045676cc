"""Images of the synthetic CCKS items: one drawn product per product, perturbed per listing."""
from __future__ import annotations

import colorsys
import io
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont
from tqdm.auto import tqdm

from prodmatch.io import write_bytes

from .ccks_catalogue import _coin, _pick
from .vocab_ccks import _BANNERS, _COLOURS

# ----------------------------------------------------------------------------------------------
# Images: one drawn product per product, perturbed per listing.
# ----------------------------------------------------------------------------------------------
_CANVAS = 256
_FONTS: dict[int, ImageFont.ImageFont] = {}

# Unit polygons (x, y in 0..1 of the product box) for outline shapes.
_POLYGONS = {
    "shirt": ((0.3, 0.05), (0.7, 0.05), (1.0, 0.25), (0.88, 0.42), (0.78, 0.34), (0.78, 1.0), (0.22, 1.0),
              (0.22, 0.34), (0.12, 0.42), (0.0, 0.25)),
    "dress": ((0.36, 0.0), (0.64, 0.0), (0.7, 0.35), (1.0, 1.0), (0.0, 1.0), (0.3, 0.35)),
    "pants": ((0.12, 0.0), (0.88, 0.0), (0.98, 1.0), (0.58, 1.0), (0.5, 0.3), (0.42, 1.0), (0.02, 1.0)),
    "shoe": ((0.0, 0.55), (0.45, 0.5), (0.6, 0.15), (0.82, 0.15), (0.86, 0.5), (1.0, 0.68), (1.0, 0.92), (0.0, 0.92)),
    "bag": ((0.1, 0.22), (0.9, 0.22), (1.0, 1.0), (0.0, 1.0)),
    "tent": ((0.5, 0.0), (1.0, 1.0), (0.0, 1.0)),
    "kettle": ((0.2, 0.1), (0.75, 0.1), (0.85, 1.0), (0.1, 1.0)),
    "lamp": ((0.25, 0.0), (0.75, 0.0), (0.95, 0.35), (0.05, 0.35)),
}


def _font(size: int) -> ImageFont.ImageFont:
    if size not in _FONTS:
        _FONTS[size] = ImageFont.load_default(size=size)
    return _FONTS[size]


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    return tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))


def _scale(poly, box) -> list[tuple[float, float]]:
    x0, y0, x1, y1 = box
    return [(x0 + x * (x1 - x0), y0 + y * (y1 - y0)) for x, y in poly]


def _draw_shape(d: ImageDraw.ImageDraw, shape: str, box, main, accent) -> None:
    """Draw a rough silhouette of `shape` filling `box` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    outline = tuple(max(0, c - 60) for c in main)
    if shape in _POLYGONS:
        d.polygon(_scale(_POLYGONS[shape], box), fill=main, outline=outline)
        if shape == "bag":
            d.arc((x0 + 0.3 * w, y0, x1 - 0.3 * w, y0 + 0.45 * h), 180, 360, fill=accent, width=max(2, int(w / 18)))
        elif shape == "kettle":
            d.arc((x1 - 0.35 * w, y0 + 0.25 * h, x1 + 0.1 * w, y0 + 0.75 * h), 270, 90, fill=accent, width=max(2, int(w / 14)))
        elif shape == "lamp":
            d.rectangle((x0 + 0.47 * w, y0 + 0.35 * h, x0 + 0.53 * w, y0 + 0.9 * h), fill=accent)
            d.ellipse((x0 + 0.25 * w, y0 + 0.85 * h, x0 + 0.75 * w, y1), fill=accent)
    elif shape in ("phone", "tv"):
        d.rounded_rectangle(box, radius=int(min(w, h) * 0.12), fill=main, outline=outline, width=2)
        m = 0.07 * min(w, h)
        d.rectangle((x0 + m, y0 + 2 * m, x1 - m, y1 - 2 * m), fill=accent)
    elif shape == "bottle":
        d.rectangle((x0 + 0.38 * w, y0, x0 + 0.62 * w, y0 + 0.18 * h), fill=accent)
        d.rounded_rectangle((x0, y0 + 0.15 * h, x1, y1), radius=int(w * 0.2), fill=main, outline=outline, width=2)
    elif shape in ("jar", "can", "cylinder"):
        d.rectangle((x0, y0 + 0.12 * h, x1, y1 - 0.12 * h), fill=main)
        d.ellipse((x0, y1 - 0.24 * h, x1, y1), fill=main, outline=outline)
        d.ellipse((x0, y0, x1, y0 + 0.24 * h), fill=accent, outline=outline)
    elif shape == "tube":
        d.rectangle((x0 + 0.3 * w, y0 + 0.45 * h, x1 - 0.3 * w, y1), fill=main)
        d.polygon(_scale(((0.35, 0.45), (0.65, 0.45), (0.65, 0.1), (0.35, 0.22)), box), fill=accent)
    elif shape == "earbuds":
        for cx in (0.3, 0.7):
            d.ellipse((x0 + (cx - 0.2) * w, y0 + 0.1 * h, x0 + (cx + 0.2) * w, y0 + 0.5 * h), fill=main, outline=outline)
            d.rectangle((x0 + (cx - 0.05) * w, y0 + 0.45 * h, x0 + (cx + 0.05) * w, y1), fill=accent)
    elif shape == "fan":
        d.ellipse((x0, y0, x1, y0 + 0.7 * h), outline=main, width=max(2, int(w / 20)))
        d.ellipse((x0 + 0.4 * w, y0 + 0.27 * h, x0 + 0.6 * w, y0 + 0.43 * h), fill=accent)
        d.rectangle((x0 + 0.47 * w, y0 + 0.7 * h, x0 + 0.53 * w, y1), fill=main)
    elif shape == "dumbbell":
        d.rectangle((x0 + 0.2 * w, y0 + 0.45 * h, x1 - 0.2 * w, y0 + 0.55 * h), fill=accent)
        for xa in (0.0, 0.75):
            d.rounded_rectangle((x0 + xa * w, y0 + 0.2 * h, x0 + (xa + 0.25) * w, y0 + 0.8 * h), radius=4, fill=main)
    elif shape == "cable":
        d.arc(box, 20, 340, fill=main, width=max(3, int(w / 12)))
        d.rectangle((x1 - 0.25 * w, y0 + 0.4 * h, x1, y0 + 0.6 * h), fill=accent)
    elif shape == "pillow":
        d.rounded_rectangle(box, radius=int(min(w, h) * 0.35), fill=main, outline=outline, width=2)
    else:  # box
        d.rectangle(box, fill=main, outline=outline, width=2)
        d.line((x0, y0 + 0.2 * h, x1, y0 + 0.2 * h), fill=accent, width=max(2, int(h / 25)))


def _draw_pattern(d: ImageDraw.ImageDraw, pattern: str, box, colour) -> None:
    x0, y0, x1, y1 = box
    if pattern == "stripes":
        for y in np.arange(y0 + 0.3 * (y1 - y0), y1, (y1 - y0) / 9):
            d.line((x0 + 0.2 * (x1 - x0), y, x1 - 0.2 * (x1 - x0), y), fill=colour, width=2)
    elif pattern == "dots":
        for y in np.arange(y0 + 0.35 * (y1 - y0), y1 - 8, (y1 - y0) / 6):
            for x in np.arange(x0 + 0.3 * (x1 - x0), x1 - 0.25 * (x1 - x0), (x1 - x0) / 6):
                d.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)
    elif pattern == "band":
        d.rectangle((x0 + 0.22 * (x1 - x0), y0 + 0.62 * (y1 - y0), x1 - 0.22 * (x1 - x0), y0 + 0.7 * (y1 - y0)), fill=colour)


def _draw_product(row) -> Image.Image:
    """The product itself (RGBA, transparent background): model silhouette, look colours, label text."""
    design, colours = row["design"], row["colours"]
    img = Image.new("RGBA", (_CANVAS, _CANVAS), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    aw, ah = design["aspect"]
    w, h = _CANVAS * min(aw, 0.92), _CANVAS * min(ah, 0.92)
    box = ((_CANVAS - w) / 2, (_CANVAS - h) / 2, (_CANVAS + w) / 2, (_CANVAS + h) / 2)
    main = _COLOURS[row["image_colour"] if isinstance(row["image_colour"], str) else colours[0]]
    accent = _hsv(design["hue"], design["sat"], design["val"])
    _draw_shape(d, row["shape"], box, main, accent)
    ink = (20, 20, 20) if sum(main) > 380 else (245, 245, 245)
    _draw_pattern(d, design["pattern"], box, accent)
    # no spec on the drawing: spec variants share one image, so only their texts tell them apart
    lines = [row["brand_en"][:9], row["model_name"] if row["model_name"].isascii() else ""]
    y = box[1] + 0.3 * h
    for text, size in zip(lines, (22, 18, 16)):
        if text:
            d.text((_CANVAS / 2, y), text, fill=ink, font=_font(size), anchor="mm")
            y += size + 4
    return img


def _background(rng: np.random.Generator) -> Image.Image:
    """A listing background: plain white, a light colour, a gradient or a noisy 'scene'."""
    r = rng.random()
    if r < 0.5:
        return Image.new("RGB", (_CANVAS, _CANVAS), (255, 255, 255))
    c0 = rng.integers(150, 256, size=3)
    if r < 0.75:
        return Image.new("RGB", (_CANVAS, _CANVAS), tuple(int(c) for c in c0))
    c1 = rng.integers(60, 256, size=3)
    t = np.linspace(0, 1, _CANVAS)[:, None, None]
    grad = (c0 * (1 - t) + c1 * t) * np.ones((1, _CANVAS, 1))
    if r > 0.9:
        grad = grad + rng.normal(0, 18, size=grad.shape)
    return Image.fromarray(np.clip(grad, 0, 255).astype(np.uint8), "RGB")


def _render_listing(product: Image.Image, rng: np.random.Generator, size: int) -> bytes:
    """A seller's photo of `product`: background, scale, shift, rotation, flip, light, crop, banner, JPEG."""
    img = _background(rng)
    s = float(rng.uniform(0.6, 1.0))
    layer = product.resize((max(8, int(_CANVAS * s)),) * 2, Image.BILINEAR)
    if _coin(rng, 0.15):
        layer = layer.transpose(Image.FLIP_LEFT_RIGHT)
    layer = layer.rotate(float(np.clip(rng.normal(0, 7), -20, 20)), resample=Image.BILINEAR)
    slack = _CANVAS - layer.width
    img.paste(layer, (int(rng.integers(0, slack + 1)), int(rng.integers(0, slack + 1))), layer)
    img = ImageEnhance.Brightness(img).enhance(float(rng.uniform(0.75, 1.25)))
    img = ImageEnhance.Contrast(img).enhance(float(rng.uniform(0.8, 1.2)))
    img = ImageEnhance.Color(img).enhance(float(rng.uniform(0.7, 1.3)))
    crop = int(_CANVAS * float(rng.uniform(0.0, 0.15)))
    cx, cy = int(rng.integers(0, crop + 1)), int(rng.integers(0, crop + 1))
    img = img.crop((cx, cy, cx + _CANVAS - crop, cy + _CANVAS - crop)).resize((size, size), Image.BILINEAR)
    if _coin(rng, 0.25):
        d = ImageDraw.Draw(img)
        bh = max(10, size // 7)
        d.rectangle((0, size - bh, size, size), fill=_hsv(float(rng.random()), 0.8, 0.85))
        d.text((size / 2, size - bh / 2), _pick(rng, _BANNERS), fill=(255, 255, 255), font=_font(max(8, bh - 4)), anchor="mm")
    if _coin(rng, 0.1):
        img = img.filter(ImageFilter.GaussianBlur(0.8))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(rng.integers(55, 96)))
    return buf.getvalue()


def _write_images(items: pd.DataFrame, out: Path, seed: int, cfg) -> int:
    """Draw each (model, look) once and write one JPEG per listing that names an image; returns the count."""
    rows = items.assign(_image=[r.get("item_image_name") or "" for r in items["record"]])
    rows = rows[rows["_image"] != ""]
    lo, hi = cfg.image_px
    drawings = rows.groupby(["model", "look"], sort=True)
    for _, group in tqdm(drawings, total=drawings.ngroups, desc="ccks images", unit="drawing", disable=None):
        drawn = _draw_product(group.iloc[0])
        for _, row in group.iterrows():
            rng = np.random.default_rng([seed, 2, int(row["product"]), int(row.name)])
            size = int(rng.integers(lo, hi + 1))
            write_bytes(out / f"item_{row['split']}_images" / row["_image"], _render_listing(drawn, rng, size))
    return len(rows)


