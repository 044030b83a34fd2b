"""What the explorer page asks of the model, without any HTTP: decode an image, predict, explain a unit.

``ExploreApp`` holds one model (from a checkpoint) and answers with JSON-ready dicts. Every
problem the visitor can cause raises ``BadInput`` with a message meant for the page. One lock
serialises the model's use: feature maps are collected with forward hooks on the shared
modules, so two requests must not run the model at the same time.
"""
import base64
import binascii
import io
import threading
import time
import warnings

import numpy

MAX_IMAGE_BYTES = 8 * 2**20          # an uploaded or drawn image file
MAX_PIXELS = 16_000_000              # width × height, checked from the header before decoding
MAX_CHANNELS = 64                    # feature-map images sent per layer
_INK = 0.15                          # a drawn pixel counts as ink above this fraction of the brightest


class BadInput(ValueError):
    """A request the page can fix: its message is shown to the visitor. ``status`` is the HTTP status."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


def _colour_table(name="viridis"):
    """A ``(256, 3)`` uint8 lookup table of the matplotlib colour map, or grey levels without matplotlib."""
    try:
        from matplotlib import colormaps
    except ImportError:
        return numpy.repeat(numpy.arange(256, dtype=numpy.uint8)[:, None], 3, axis=1)
    return (colormaps[name](numpy.linspace(0, 1, 256))[:, :3] * 255).round().astype(numpy.uint8)


def png_data_url(pixels):
    """A uint8 ``(H, W)`` or ``(H, W, 3)`` array as a ``data:image/png;base64,...`` URL."""
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(numpy.ascontiguousarray(pixels)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def parse_data_url(text):
    """The bytes of a ``data:...;base64,...`` URL."""
    if not isinstance(text, str) or not text.startswith("data:") or ";base64," not in text[:100]:
        raise BadInput("expected the image as a data URL (data:image/png;base64,...)")
    try:
        return base64.b64decode(text.split(",", 1)[1], validate=True)
    except (binascii.Error, ValueError):
        raise BadInput("the image data URL is not valid base64") from None


def _open(data, max_bytes, max_pixels):
    """A Pillow image from file bytes, refusing empty, oversized or undecodable data before decoding pixels."""
    from PIL import Image, UnidentifiedImageError
    if not data:
        raise BadInput("the file is empty")
    if len(data) > max_bytes:
        raise BadInput(f"the image file is {len(data) / 2**20:.1f} MiB; the limit is {max_bytes / 2**20:.1f} MiB",
                       status=413)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadInput(f"the image is too large (Pillow refuses over {Image.MAX_IMAGE_PIXELS:,} pixels); "
                       f"the limit is {max_pixels:,} pixels", status=413) from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise BadInput("that file is not an image striate can read (try PNG, JPEG, GIF, BMP or WebP)") from None
    width, height = image.size
    if width * height > max_pixels:
        raise BadInput(f"the image is {width:,}×{height:,} = {width * height:,} pixels; the limit is "
                       f"{max_pixels:,}", status=413)
    if width == 0 or height == 0:
        raise BadInput("the image has no pixels")
    return image


def centre_digit(gray, height, width):
    """A drawing ``(H', W')`` uint8, light on dark, prepared as MNIST prepared its digits.

    MNIST's digits were scaled to fit a 20×20 box (keeping their aspect ratio) and placed in
    the 28×28 image with their centre of mass at the centre. A drawing on a large canvas
    done the same way looks to the network like its training data, whatever its size and
    place on the canvas. Sizes other than 28 scale the box by ``height / 28``.
    """
    from PIL import Image
    ink = gray > _INK * max(int(gray.max()), 1)
    if gray.max() < 32 or not ink.any():
        raise BadInput("the canvas is empty: draw a digit first")
    rows, cols = numpy.nonzero(ink)
    crop = gray[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    box = max(1, round(20 * min(height, width) / 28))
    factor = box / max(crop.shape)
    size = (max(1, round(crop.shape[1] * factor)), max(1, round(crop.shape[0] * factor)))   # (w, h) for Pillow
    small = numpy.asarray(Image.fromarray(crop).resize(size, Image.Resampling.LANCZOS), dtype=numpy.float64)
    mass = small.sum()
    cy = (small.sum(axis=1) * numpy.arange(small.shape[0])).sum() / mass
    cx = (small.sum(axis=0) * numpy.arange(small.shape[1])).sum() / mass
    top = int(round((height - 1) / 2 - cy))
    left = int(round((width - 1) / 2 - cx))
    top = min(max(top, 0), height - small.shape[0])
    left = min(max(left, 0), width - small.shape[1])
    out = numpy.zeros((height, width), dtype=numpy.float64)
    out[top:top + small.shape[0], left:left + small.shape[1]] = small
    return numpy.clip(out, 0, 255).round().astype(numpy.uint8)


def _light_on_dark(image):
    """A drawing as uint8 grayscale, light strokes on dark: transparent areas dark, dark-on-light inverted."""
    from PIL import Image, ImageOps
    with image:
        image.load()
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            # A transparent canvas: what was drawn is opaque; composite it on black.
            rgba = image.convert("RGBA")
            image = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
        gray = numpy.asarray(ImageOps.grayscale(image.convert("RGB")), dtype=numpy.uint8)
    border = numpy.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return 255 - gray if border.mean() > 127 else gray       # dark ink on a light canvas: invert


class ExploreApp:
    """One model from a checkpoint, answering the page's requests with JSON-ready dicts.

    Args:
        checkpoint: a run directory or checkpoint file (as ``striate predict`` takes).
        max_image_bytes: the largest image file accepted.
        max_pixels: the largest image (width × height) accepted.
    """

    def __init__(self, checkpoint, *, max_image_bytes=MAX_IMAGE_BYTES, max_pixels=MAX_PIXELS):
        from striate.tools.cli import _load_for_inference
        from striate.viz.features import feature_maps
        self.checkpoint, self.model, self.mean, self.std = _load_for_inference(checkpoint)
        meta = self.checkpoint.meta
        shape = meta.get("input") or {"channels": 1, "height": 28, "width": 28}
        self.channels, self.height, self.width = int(shape["channels"]), int(shape["height"]), int(shape["width"])
        self.classes = [str(c) for c in (meta.get("classes") or [])]
        self.max_image_bytes, self.max_pixels = max_image_bytes, max_pixels
        self.lock = threading.Lock()
        self.fields = {}
        self.colours = _colour_table()
        blank = self._model_input(numpy.zeros(self._pixel_shape(), dtype=numpy.uint8))
        with self.lock:
            maps = feature_maps(self.model, blank)
            scores = self._scores(blank)
        if not self.classes:
            self.classes = [str(i) for i in range(len(scores))]
        self.layers = [{"name": m.name, "label": m.label, "kind": m.kind, "shape": list(m.values.shape)}
                       for m in maps if m.values.ndim == 3]
        name = (meta.get("model") or {}).get("name") or type(self.model).__name__
        accuracy = (meta.get("metrics") or {}).get("val_accuracy")
        self.description = f"{name} (epoch {self.checkpoint.epoch}" + (
            f", {accuracy:.2%} held out)" if isinstance(accuracy, float) else ")")

    # ----- the model -------------------------------------------------------------------------------
    def _pixel_shape(self):
        return (self.height, self.width) if self.channels == 1 else (self.height, self.width, 3)

    def _model_input(self, pixels):
        from striate.tools.cli import to_model_input
        return to_model_input(pixels[None], self.mean, self.std)[0]

    def _scores(self, x):
        from striate.viz.saliency import class_scores
        return class_scores(self.model, x)

    def info(self):
        """The model: name, classes, input shape, layers, checkpoint."""
        meta = self.checkpoint.meta
        return {"description": self.description, "model": (meta.get("model") or {}).get("name"),
                "checkpoint": str(self.checkpoint.path), "epoch": self.checkpoint.epoch,
                "val_accuracy": (meta.get("metrics") or {}).get("val_accuracy"), "classes": self.classes,
                "input": {"channels": self.channels, "height": self.height, "width": self.width,
                          "foreground": meta.get("input", {}).get("foreground")},
                "layers": self.layers, "limits": {"image_bytes": self.max_image_bytes, "pixels": self.max_pixels}}

    # ----- images ----------------------------------------------------------------------------------
    def decode(self, data, source="file"):
        """File bytes → the prepared uint8 input pixels ``(H, W)`` (or ``(H, W, 3)``), as the model sees them.

        ``source="canvas"``: a drawing, light strokes on dark, centred and scaled as MNIST's
        digits were (one-channel models). ``"file"``: prepared as ``striate predict`` prepares
        files (grayscale or RGB, resized, inverted when dark on light).
        """
        from striate.tools.cli import read_image
        image = _open(data, self.max_image_bytes, self.max_pixels)
        try:
            if source == "canvas" and self.channels == 1:
                return centre_digit(_light_on_dark(image), self.height, self.width)
            image.close()
            pixels = read_image(io.BytesIO(data), self.channels, self.height, self.width, "auto")
        except (OSError, SyntaxError, EOFError):   # Pillow's ways of saying the data is truncated or broken
            raise BadInput("that image file is damaged or truncated: striate cannot decode it") from None
        if int(pixels.max()) - int(pixels.min()) < 8:
            raise BadInput("the image is blank (one flat colour): nothing to classify")
        return pixels

    def pixels_from(self, value):
        """Validate prepared pixels sent back by the page (``predict``'s ``input.pixels``)."""
        try:
            pixels = numpy.asarray(value, dtype=numpy.float64)
        except (TypeError, ValueError):
            raise BadInput("'pixels' must be the nested list of numbers the prediction returned") from None
        if pixels.shape != self._pixel_shape():
            raise BadInput(f"'pixels' must have shape {self._pixel_shape()}, got {pixels.shape}")
        if not numpy.isfinite(pixels).all() or pixels.min() < 0 or pixels.max() > 255:
            raise BadInput("'pixels' must be numbers in 0…255")
        return pixels.round().astype(numpy.uint8)

    # ----- answers ---------------------------------------------------------------------------------
    def predict(self, data, source="file"):
        """Probabilities, the prepared input and every layer's feature maps for one image file's bytes."""
        from striate.viz.features import feature_maps, layer_scale
        start = time.perf_counter()
        pixels = self.decode(data, source)
        x = self._model_input(pixels)
        with self.lock:
            scores = self._scores(x)
            maps = [m for m in feature_maps(self.model, x) if m.values.ndim == 3]
        probabilities = numpy.exp(scores - scores.max())
        probabilities /= probabilities.sum()
        layers = []
        for fmap in maps:
            lo, hi = layer_scale(fmap.values)
            shown = fmap.values[:MAX_CHANNELS]
            levels = numpy.zeros(shown.shape, dtype=numpy.uint8) if hi <= lo else \
                numpy.clip((shown - lo) / (hi - lo) * 255, 0, 255).round().astype(numpy.uint8)
            layers.append({"name": fmap.name, "label": fmap.label, "kind": fmap.kind,
                           "shape": list(fmap.values.shape), "min": lo, "max": hi,
                           "activation": type(fmap.activation).__name__ if fmap.activation is not None else None,
                           "channels": [png_data_url(self.colours[level]) for level in levels]})
        return {"prediction": int(numpy.argmax(probabilities)), "classes": self.classes,
                "probabilities": [float(p) for p in probabilities],
                "input": {"png": png_data_url(pixels), "pixels": pixels.tolist(),
                          "shape": [self.channels, self.height, self.width]},
                "layers": layers, "elapsed_ms": round((time.perf_counter() - start) * 1000, 1)}

    def unit(self, request):
        """The receptive field and the weighted sum of one unit: ``request`` has pixels, layer, channel, y, x."""
        from striate.viz.receptive import layer_field
        from striate.viz.units import explain_unit
        if not isinstance(request, dict):
            raise BadInput("expected a JSON object with pixels, layer, channel, y and x")
        missing = [key for key in ("pixels", "layer", "channel", "y", "x") if key not in request]
        if missing:
            raise BadInput("missing " + ", ".join(missing))
        layer = request["layer"]
        known = {entry["name"]: entry for entry in self.layers}
        if layer not in known:
            raise BadInput(f"no layer {layer!r}; the layers are " + ", ".join(known))
        channel, y, x = request["channel"], request["y"], request["x"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (channel, y, x)):
            raise BadInput("channel, y and x must be integers")
        c_max, h_max, w_max = known[layer]["shape"]
        if not (0 <= channel < c_max and 0 <= y < h_max and 0 <= x < w_max):
            raise BadInput(f"unit ({channel}, {y}, {x}) is outside layer {layer}'s maps of shape "
                           f"{c_max}×{h_max}×{w_max}")
        pixels = self.pixels_from(request["pixels"])
        inputs = self._model_input(pixels)
        with self.lock:
            if layer not in self.fields:
                self.fields[layer] = layer_field(self.model, inputs.shape, layer, "explore", strict=False)
            field = self.fields[layer]
            unit = explain_unit(self.model, inputs, layer, channel, (y, x), field=field)
        answer = unit.to_dict()
        answer["input_size"] = [self.height, self.width]
        answer["field"] = None if field is None else {"rf": [float(v) for v in field[0].rf],
                                                      "jump": [float(v) for v in field[0].jump]}
        return answer


__all__ = ["ExploreApp", "BadInput", "centre_digit", "png_data_url", "parse_data_url",
           "MAX_IMAGE_BYTES", "MAX_PIXELS", "MAX_CHANNELS"]
