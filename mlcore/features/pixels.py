"""Decoded images to 8-bit RGB, without torch: the model's input (mlcore/features/images.py) and the web thumbnails
(labeling/services/imports/images.py) convert alike, so people see what the model sees, and making a thumbnail does not
load torch."""

import numpy as np
from PIL import Image

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def to_rgb(image: Image.Image) -> Image.Image:
    """A decoded image as 8-bit RGB.

    Greyscale is copied to the three channels; transparency (RGBA, LA, palette with a transparent colour) is
    composited on black, the sky background; 16-bit and 32-bit images are scaled to 8 bits by their own range;
    CMYK and other modes go through Pillow's conversion.
    """
    if image.mode == "RGB":
        return image
    if image.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
        return Image.fromarray(np.rint(scaled).astype(np.uint8)).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (0, 0, 0))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")
