"""The JSON of CVAT's tracker functions: strict validation of requests and states, and encoding of responses.

CVAT talks to a tracker function (``metadata.annotations.type: tracker``) in one of two forms:

* single (CVAT up to 2.2, the form ``serverless/pytorch/foolwood/siammask/nuclio/main.py`` reads):
  ``{"image": <base64>, "shape": [xtl, ytl, xbr, ybr], "state": null | <state>}`` ->
  ``{"shape": ..., "state": ...}``;
* list (later CVAT: ``cvat/apps/lambda_manager/views.py`` sends ``"shapes"`` and ``"states"`` of every tracked
  object of a frame): ``{"image", "shapes": [...], "states": [...]}`` -> ``{"shapes": [...], "states": [...]}``;
  ``states`` may be shorter than ``shapes`` (the missing ones are new targets).

A target without a state is initialised on its rectangle and its shape comes back unchanged (as CVAT's SiamMask
function does); a target with a state is tracked and its shape is the rotated rectangle of the mask, 8 numbers
``[x1, y1, ..., x4, y4]``. Responses add ``score`` / ``lost`` (``scores`` / ``lost`` in the list form) and, when
the request asks (``"mask": true`` or ``"rle"``), the mask in CVAT's encodings (:func:`encode_mask`).

The state is the plain JSON of :meth:`tracker.state.TargetState.to_dict`; :func:`parse_state` checks every key,
type, range and the size of the base64 tensor before anything is decoded into the tracker, and refuses strings
(the jsonpickle states of CVAT's own function), unknown keys and states of another model (``fingerprint``).
Nothing from a request is ever evaluated: JSON is parsed by :func:`json.loads` with NaN/Infinity refused, images
are decoded by OpenCV after their header passed the pixel limit.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import cv2
import numpy as np

from ..tracker.state import STATE_VERSION, TargetState
from ..utils.errors import SiamMaskError
from ..utils.images import ImageDecodeError
from ..utils.images import decode_image as decode_strict

#: Request keys of each form; ``threshold`` is sent by CVAT when the user sets one and is ignored by a tracker.
SINGLE_KEYS = frozenset({"image", "shape", "state", "mask", "threshold"})
LIST_KEYS = frozenset({"image", "shapes", "states", "mask", "threshold"})
#: Keys of a state (:meth:`TargetState.to_dict`).
STATE_KEYS = frozenset({"version", "target_pos", "target_sz", "avg_chans", "im_h", "im_w", "score", "lost",
                        "frames", "zf", "fingerprint"})
#: Values of the request's ``mask`` key: the flat 0/1 crop + box (what CVAT's functions return), or CVAT's RLE + box.
MASK_FORMATS = {True: "bitmap", "bitmap": "bitmap", "rle": "rle"}


class RequestError(SiamMaskError):
    """A request the server refuses; `status` is the HTTP status (400 malformed, 413 too large, ...)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    """What one request may hold.

    Attributes:
        max_body_bytes: request body (base64 image + states); CVAT's own function allows 32 MiB.
        max_image_pixels: width x height of the decoded frame, read from the header before decoding.
        max_targets: targets (shapes) in one request.
    """

    max_body_bytes: int = 32 << 20
    max_image_pixels: int = 40_000_000
    max_targets: int = 100


@dataclass(frozen=True)
class StateSpec:
    """What a state must match to be tracked by this server.

    Attributes:
        zf_shape: the template features' shape this model produces, e.g. (1, 256, 7, 7).
        fingerprint: the tracker's fingerprint (None: not checked; a state's own fingerprint is then optional).
    """

    zf_shape: tuple[int, ...]
    fingerprint: Optional[str] = None


@dataclass(frozen=True)
class Target:
    """One target of a request: its shape (xtl, ytl, xbr, ybr; or a polygon when tracked) and its state or None."""

    shape: Optional[list[float]]
    state: Optional[TargetState]


@dataclass(frozen=True)
class TrackRequest:
    """A validated request.

    Attributes:
        image: (H, W, 3) BGR uint8 frame, decoded as ``cv2.imread`` decodes the file.
        targets: the targets in request order.
        list_form: the request used ``shapes`` / ``states`` (and gets them back).
        mask: None, ``"bitmap"`` or ``"rle"``.
    """

    image: np.ndarray
    targets: list[Target]
    list_form: bool
    mask: Optional[str]


def _reject_constant(name: str) -> Any:
    raise RequestError(f"request body: {name} is not a number this server accepts (finite numbers only)")


def parse_json(body: bytes, limits: Limits) -> Any:
    """Parse a request body as JSON; NaN/Infinity, non-UTF-8 text and a body over the limit are refused.

    Raises:
        RequestError: 413 over `limits.max_body_bytes`, else 400.
    """
    if len(body) > limits.max_body_bytes:
        raise RequestError(f"request body is {len(body)} bytes, the limit is {limits.max_body_bytes}", 413)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError("request body is not UTF-8 text (JSON expected)") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RequestError:
        raise
    except (ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError; so are int-digit limits
        raise RequestError(f"request body is not valid JSON: {str(e).splitlines()[0][:200]}") from None


def parse_request(data: Any, limits: Limits, spec: StateSpec) -> TrackRequest:
    """Validate a decoded request of either form, decode its image and restore its states.

    Raises:
        RequestError: anything malformed, too large or of another model; the message names the key.
    """
    if not isinstance(data, Mapping):
        raise RequestError(f"request must be a JSON object, got {_json_type(data)}")
    list_form = "shapes" in data or "states" in data
    if list_form and ("shape" in data or "state" in data):
        raise RequestError("request mixes the single form (shape, state) and the list form (shapes, states)")
    allowed = LIST_KEYS if list_form else SINGLE_KEYS
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise RequestError(f"request: unknown key '{unknown[0]}' (expected {', '.join(sorted(allowed))})")
    threshold = data.get("threshold")
    if threshold is not None and not _is_number(threshold):
        raise RequestError(f"request: key 'threshold' must be a number, got {_json_type(threshold)}")
    mask = data.get("mask")
    if mask is None or mask is False:
        mask_format = None
    elif isinstance(mask, (bool, str)) and mask in MASK_FORMATS:
        mask_format = MASK_FORMATS[mask]
    else:
        raise RequestError(f"request: key 'mask' must be true, false, \"bitmap\" or \"rle\", got {mask!r:.40}")
    if "image" not in data:
        raise RequestError("request: missing key 'image' (base64 JPEG or PNG)")
    if list_form:
        shapes, states = data.get("shapes"), data.get("states", [])
        if not isinstance(shapes, list):
            raise RequestError(f"request: key 'shapes' must be a list, got {_json_type(shapes)}")
        if states is None:
            states = []
        if not isinstance(states, list):
            raise RequestError(f"request: key 'states' must be a list, got {_json_type(states)}")
        if len(shapes) > limits.max_targets:
            raise RequestError(f"request: {len(shapes)} shapes, the limit is {limits.max_targets}", 413)
        if len(states) > len(shapes):
            raise RequestError(f"request: {len(states)} states for {len(shapes)} shapes")
        pairs = [(shapes[i], states[i] if i < len(states) else None, f"shapes[{i}]", f"states[{i}]")
                 for i in range(len(shapes))]
    else:
        if "shape" not in data and data.get("state") is None:
            raise RequestError("request: missing key 'shape' (or 'shapes' for the list form)")
        pairs = [(data.get("shape"), data.get("state"), "shape", "state")]
    # Everything cheap is checked before the image is decoded.
    for shape, state, shape_key, state_key in pairs:
        check_shape(shape, shape_key, tracked=state is not None)
        if state is not None:
            check_state_dict(state, state_key, spec)
    image = decode_image(data["image"], limits)
    height, width = image.shape[:2]
    targets = []
    for shape, state, shape_key, state_key in pairs:
        if state is None:
            check_init_box(shape, shape_key, width, height)
            targets.append(Target([float(v) for v in shape], None))
            continue
        if (state["im_w"], state["im_h"]) != (width, height):
            raise RequestError(f"request: {state_key} was initialised on a {state['im_w']}x{state['im_h']} frame, "
                               f"this image is {width}x{height}")
        check_state_geometry(state, state_key, width, height)
        targets.append(Target(None if shape is None else [float(v) for v in shape], TargetState.from_dict(state)))
    return TrackRequest(image=image, targets=targets, list_form=list_form, mask=mask_format)


# ---------------------------------------------------------------------------------------------------------- shapes
def check_shape(shape: Any, key: str, tracked: bool) -> None:
    """A shape is 4 finite numbers (xtl, ytl, xbr, ybr); a tracked target's may also be 8 (a polygon) or null."""
    if tracked and shape is None:
        return
    sizes = (4, 8) if tracked else (4,)
    if not isinstance(shape, list) or len(shape) not in sizes or not all(_is_number(v) for v in shape):
        what = " or 8 (polygon)" if tracked else ""
        raise RequestError(f"request: {key} must be 4{what} finite numbers [xtl, ytl, xbr, ybr], got "
                           f"{_describe(shape)}")


def check_init_box(shape: Sequence[float], key: str, width: int, height: int) -> None:
    """An init rectangle has xbr > xtl, ybr > ytl, overlaps the frame and is at most twice the frame's size."""
    xtl, ytl, xbr, ybr = (float(v) for v in shape)
    if not (xbr > xtl and ybr > ytl):
        raise RequestError(f"request: {key} needs xbr > xtl and ybr > ytl, got {list(shape)}")
    if xbr <= 0 or ybr <= 0 or xtl >= width or ytl >= height:
        raise RequestError(f"request: {key} {list(shape)} lies outside the {width}x{height} image")
    if xbr - xtl > 2 * width or ybr - ytl > 2 * height:
        raise RequestError(f"request: {key} {list(shape)} is more than twice the {width}x{height} image")


# ---------------------------------------------------------------------------------------------------------- states
def check_state_dict(state: Any, key: str, spec: StateSpec) -> None:
    """Every key, type and range of a state (the JSON of :meth:`TargetState.to_dict`), and its tensor's size.

    Raises:
        RequestError: a string state (e.g. CVAT's jsonpickle ones), an unknown or missing key, a wrong type or
            range, a `zf` of another shape or size, or a `fingerprint` of another model.
    """
    if not isinstance(state, Mapping):
        hint = " (jsonpickle/pickle states are not accepted)" if isinstance(state, str) else ""
        raise RequestError(f"request: {key} must be the JSON object this server returned, got "
                           f"{_json_type(state)}{hint}")
    unknown = sorted(str(k) for k in state if k not in STATE_KEYS)
    if unknown:
        raise RequestError(f"request: {key} has an unknown key '{unknown[0]}'")
    version = state.get("version")
    if type(version) is not int or version != STATE_VERSION:
        raise RequestError(f"request: {key}: version {version!r:.20} is not the supported {STATE_VERSION}")
    required = STATE_KEYS - ({"fingerprint"} if spec.fingerprint is None else set())
    missing = sorted(required - set(state))
    if missing:
        raise RequestError(f"request: {key}: missing key '{missing[0]}'")
    if "fingerprint" in state:
        fingerprint = state["fingerprint"]
        if not isinstance(fingerprint, str) or len(fingerprint) > 64:
            raise RequestError(f"request: {key}: key 'fingerprint' must be a string, got {_describe(fingerprint)}")
        if spec.fingerprint is not None and fingerprint != spec.fingerprint:
            raise RequestError(f"request: {key} was made by another model, config or weights (fingerprint "
                               f"{fingerprint}, this server's is {spec.fingerprint}); initialise the target again")
    _numbers(state["target_pos"], 2, f"{key}.target_pos")
    _numbers(state["target_sz"], 2, f"{key}.target_sz")
    _numbers(state["avg_chans"], 3, f"{key}.avg_chans")
    if not all(0.0 <= v <= 255.0 for v in state["avg_chans"]):
        raise RequestError(f"request: {key}.avg_chans must lie in [0, 255]")
    for name in ("im_h", "im_w", "frames"):
        value = state[name]
        if type(value) is not int or not 0 <= value < 2 ** 31:
            raise RequestError(f"request: {key}.{name} must be a non-negative integer, got {_describe(value)}")
    if state["im_h"] == 0 or state["im_w"] == 0:
        raise RequestError(f"request: {key}: im_h and im_w must be positive")
    score = state["score"]
    if not _is_number(score) or not 0.0 <= score <= 1.0:
        raise RequestError(f"request: {key}.score must be a number in [0, 1], got {_describe(score)}")
    if type(state["lost"]) is not bool:
        raise RequestError(f"request: {key}.lost must be true or false, got {_describe(state['lost'])}")
    _check_zf(state["zf"], f"{key}.zf", spec.zf_shape)


def check_state_geometry(state: Mapping[str, Any], key: str, width: int, height: int) -> None:
    """The state's box is one this tracker can produce on a `width` x `height` frame (bounds the crops' memory).

    Tracking clamps the centre into the frame and the size to [10, frame]; an init box is at most twice the frame
    and overlaps it, so its centre lies within one frame size of the frame.
    """
    (cx, cy), (w, h) = state["target_pos"], state["target_sz"]
    if not (0 < w <= 2 * width and 0 < h <= 2 * height):
        raise RequestError(f"request: {key}.target_sz {[w, h]} is not a size in (0, 2 x the {width}x{height} "
                           f"image]")
    if not (-width <= cx <= 2 * width and -height <= cy <= 2 * height):
        raise RequestError(f"request: {key}.target_pos {[cx, cy]} is too far outside the {width}x{height} image")


def _check_zf(zf: Any, key: str, expected: tuple[int, ...]) -> None:
    if not isinstance(zf, Mapping) or set(zf) != {"shape", "float32_base64"}:
        raise RequestError(f"request: {key} must be an object with exactly 'shape' and 'float32_base64'")
    shape = zf["shape"]
    if not isinstance(shape, list) or not all(type(v) is int for v in shape) or tuple(shape) != tuple(expected):
        raise RequestError(f"request: {key}.shape must be {list(expected)} (this model's template features), got "
                           f"{_describe(shape)}")
    text = zf["float32_base64"]
    need = 4 * math.prod(expected)
    if not isinstance(text, str) or len(text) != 4 * math.ceil(need / 3):
        length = len(text) if isinstance(text, str) else _json_type(text)
        raise RequestError(f"request: {key}.float32_base64 must be the base64 of {need} bytes "
                           f"({4 * math.ceil(need / 3)} characters), got {length}")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(f"request: {key}.float32_base64 is not valid base64") from None
    if len(raw) != need:
        raise RequestError(f"request: {key}.float32_base64 holds {len(raw)} bytes, shape {list(expected)} needs "
                           f"{need}")
    if not np.isfinite(np.frombuffer(raw, dtype=np.float32)).all():
        raise RequestError(f"request: {key} holds NaN or infinite values")


# ---------------------------------------------------------------------------------------------------------- image
def image_size(raw: bytes) -> tuple[int, int]:
    """(width, height) from a PNG or JPEG header, without decoding the pixels.

    Raises:
        RequestError: neither a PNG nor a JPEG, or a header without a size.
    """
    if raw[:8] == b"\x89PNG\r\n\x1a\n":
        if len(raw) < 24 or raw[12:16] != b"IHDR":
            raise RequestError("image: truncated PNG header")
        width, height = struct.unpack(">II", raw[16:24])
        return width, height
    if raw[:2] == b"\xff\xd8":
        pos = 2
        while pos + 4 <= len(raw):
            if raw[pos] != 0xFF:
                raise RequestError("image: corrupt JPEG header")
            marker = raw[pos + 1]
            if marker == 0xFF:  # fill byte
                pos += 1
                continue
            if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
                pos += 2
                continue
            (length,) = struct.unpack(">H", raw[pos + 2:pos + 4])
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
                if pos + 9 > len(raw):
                    break
                height, width = struct.unpack(">HH", raw[pos + 5:pos + 9])
                return width, height
            if marker == 0xDA or length < 2:  # scan data before any frame header
                break
            pos += 2 + length
        raise RequestError("image: JPEG without a frame header")
    raise RequestError("image: not a JPEG or PNG file")


def decode_image(value: Any, limits: Limits) -> np.ndarray:
    """A base64 JPEG/PNG -> (H, W, 3) BGR uint8, as ``cv2.imread`` decodes the same file (IMREAD_COLOR).

    The size is read from the header first: a frame over `limits.max_image_pixels` (a decompression bomb) is
    refused before any pixel is decoded.

    Raises:
        RequestError: not a string, not base64, not a JPEG/PNG, too many pixels (413), or undecodable.
    """
    if not isinstance(value, str):
        raise RequestError(f"request: key 'image' must be a base64 string, got {_json_type(value)}")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("request: key 'image' is not valid base64") from None
    width, height = image_size(raw)
    if width == 0 or height == 0:
        raise RequestError(f"image: empty ({width}x{height})")
    if width * height > limits.max_image_pixels:
        raise RequestError(f"image: {width}x{height} = {width * height} pixels, the limit is "
                           f"{limits.max_image_pixels} (--max-image-pixels)", 413)
    try:  # strict: a damaged JPEG/PNG is refused (cv2.imdecode would track a half-grey frame); same pixels
        image = decode_strict(raw, cv2.IMREAD_COLOR)
    except ImageDecodeError as e:
        raise RequestError(f"image: {e}") from None
    if image.ndim != 3 or image.shape[2] != 3:
        raise RequestError("image: cannot decode this JPEG/PNG")
    # The header lied (an EXIF orientation may swap the sides: OpenCV applies it, in imread and imdecode alike).
    if (image.shape[1], image.shape[0]) not in ((width, height), (height, width)):
        raise RequestError(f"image: header says {width}x{height}, decoded {image.shape[1]}x{image.shape[0]}")
    return image


# ---------------------------------------------------------------------------------------------------------- masks
def mask_box(binary: np.ndarray) -> Optional[tuple[int, int, int, int]]:
    """Inclusive (xtl, ytl, xbr, ybr) of the non-zero pixels of an (H, W) mask, None when empty."""
    rows, cols = np.nonzero(binary.any(axis=1))[0], np.nonzero(binary.any(axis=0))[0]
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def rle_counts(flat: np.ndarray) -> list[int]:
    """Run lengths of a flat 0/1 array, starting with a run of zeros (0 when it starts with a one), as CVAT's RLE."""
    flat = np.asarray(flat, dtype=np.uint8).ravel()
    if flat.size == 0:
        return []
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    return ([0] + counts) if flat[0] else counts


def encode_mask(mask: Optional[np.ndarray], threshold: float, fmt: str) -> Optional[list[int]]:
    """A tracker mask in CVAT's encoding, or None without a mask (or an empty one).

    Args:
        mask: (H, W) float32 probabilities in the frame (TrackResult.mask).
        threshold: foreground = mask > threshold (the config's hp.seg_thr, as the polygon).
        fmt: ``"bitmap"``: the flat row-major 0/1 crop of the mask's box, then ``[xtl, ytl, xbr, ybr]`` (inclusive;
            what CVAT's functions return as ``mask``); ``"rle"``: the run lengths of that crop, then the box (what
            CVAT stores as a mask shape's ``points``).
    """
    if mask is None:
        return None
    binary = np.asarray(mask) > threshold
    box = mask_box(binary)
    if box is None:
        return None
    xtl, ytl, xbr, ybr = box
    crop = binary[ytl:ybr + 1, xtl:xbr + 1].astype(np.uint8).ravel()
    values = crop.tolist() if fmt == "bitmap" else rle_counts(crop)
    return values + [xtl, ytl, xbr, ybr]


# ---------------------------------------------------------------------------------------------------------- helpers
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _numbers(value: Any, count: int, key: str) -> None:
    if not isinstance(value, list) or len(value) != count or not all(_is_number(v) for v in value):
        raise RequestError(f"request: {key} must be {count} finite numbers, got {_describe(value)}")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _describe(value: Any) -> str:
    """A short description of a JSON value for an error message (never the whole value)."""
    if isinstance(value, list):
        return f"a list of {len(value)}" if len(value) > 8 else repr(value)[:80]
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    return repr(value)[:40] if not isinstance(value, Mapping) else "an object"
