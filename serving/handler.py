"""The framework-free request handler behind tools/serve.py (HTTP) and serverless/nuclio/main.py (CVAT's nuclio).

:class:`TrackHandler` turns one request body (bytes or an already decoded JSON object) into ``(status, payload)``:
validation and image decoding (:mod:`.protocol`), new targets initialised one by one (a template each), every
tracked target of the frame in one :meth:`SiamMaskTracker.track_many` call. It holds no per-request state, so any
number of threads may call it on one model. A client error is a 4xx with ``{"error": "<one line>"}``; anything else
is a 500 whose traceback goes to the log, not to the client.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Mapping, Optional

import numpy as np

from ..tracker.build import build_tracker
from ..tracker.siammask_tracker import SiamMaskTracker
from ..tracker.state import TrackerStateError
from ..utils.errors import SiamMaskError, one_line
from .protocol import Limits, RequestError, StateSpec, TrackRequest, encode_mask, parse_json, parse_request

LOG = logging.getLogger("siammask.serve")


class TrackHandler:
    """CVAT tracker-function requests -> responses, on one :class:`SiamMaskTracker` (thread-safe).

    Args:
        tracker: a tracker in mask mode (the polygon is the mask's rotated rectangle, as CVAT's SiamMask function).
        limits: body / pixel / target limits (:class:`.protocol.Limits`).

    The constructor initialises one target on a grey frame: it warms the model up and learns the shape of the
    template features, which every incoming state must match.
    """

    def __init__(self, tracker: SiamMaskTracker, limits: Optional[Limits] = None) -> None:
        self.tracker = tracker
        self.limits = limits or Limits()
        probe = tracker.init(np.full((64, 64, 3), 128, np.uint8), (16.0, 16.0, 32.0, 32.0))
        self.spec = StateSpec(zf_shape=tuple(int(v) for v in probe.zf.shape), fingerprint=tracker.fingerprint)
        self.seg_thr = float(tracker.hp.seg_thr)

    def handle_body(self, body: Any) -> tuple[int, dict[str, Any]]:
        """One request: `body` is the raw bytes/str, or the JSON object nuclio already decoded.

        Returns:
            (HTTP status, JSON-serialisable payload): 200 with the tracker's answer, 4xx with ``{"error"}`` for
            a request the server refuses, 500 ``{"error": "internal error"}`` for a bug (logged with traceback).
        """
        try:
            if isinstance(body, str):
                body = body.encode("utf-8")
            data = parse_json(bytes(body), self.limits) if isinstance(body, (bytes, bytearray, memoryview)) else body
            return 200, self.answer(parse_request(data, self.limits, self.spec))
        except RequestError as e:
            return e.status, {"error": one_line(e)}
        except (TrackerStateError, ValueError) as e:  # caught by validation already; kept as client errors
            return 400, {"error": one_line(e)}
        except SiamMaskError as e:
            return 400, {"error": one_line(e)}
        except Exception:  # a bug: the client gets no details, the log gets the traceback
            LOG.exception("internal error while handling a request")
            return 500, {"error": "internal error (see the server log)"}

    def answer(self, request: TrackRequest) -> dict[str, Any]:
        """The response to a validated request: all tracked targets in one network call.

        Returns:
            single form: ``{"shape", "state", "score", "lost"[, "mask"]}``; list form: ``{"shapes", "states",
            "scores", "lost"[, "masks"]}``. Shapes of new targets are echoed, tracked ones are 8 numbers.
        """
        tracker = self.tracker
        image = request.image
        shapes: list[Any] = [None] * len(request.targets)
        states: list[Any] = [None] * len(request.targets)
        scores = [1.0] * len(request.targets)
        lost = [False] * len(request.targets)
        masks: list[Optional[list[int]]] = [None] * len(request.targets)
        tracked = [(i, t.state) for i, t in enumerate(request.targets) if t.state is not None]
        for i, target in enumerate(request.targets):
            if target.state is None:
                xtl, ytl, xbr, ybr = target.shape  # type: ignore[misc]
                state = tracker.init(image, (xtl, ytl, xbr - xtl, ybr - ytl))
                shapes[i], states[i] = list(target.shape), state.to_dict()  # type: ignore[arg-type]
        if tracked:
            results = tracker.track_many([st for _, st in tracked], image)
            for (i, st), res in zip(tracked, results):
                shapes[i] = [float(v) for v in np.asarray(res.polygon, np.float64).ravel()]
                states[i] = st.to_dict()
                scores[i], lost[i] = float(res.score), bool(res.lost)
                if request.mask:
                    masks[i] = encode_mask(res.mask, self.seg_thr, request.mask)
        if request.list_form:
            out: dict[str, Any] = {"shapes": shapes, "states": states, "scores": scores, "lost": lost}
            if request.mask:
                out["masks"] = masks
            return out
        out = {"shape": shapes[0], "state": states[0], "score": scores[0], "lost": lost[0]}
        if request.mask:
            out["mask"] = masks[0]
        return out


def build_handler(config: str, resume: str, device: str = "auto", fast: bool = False, backend: str = "torch",
                  onnx_dir: Optional[str] = None, limits: Optional[Limits] = None,
                  lost_threshold: Optional[float] = None) -> TrackHandler:
    """A handler over :func:`tracker.build.build_tracker` (mask + refine as the config's model allows).

    Raises:
        SiamMaskError: ConfigError, CheckpointError, RuntimeSetupError with a one-line message.
    """
    kwargs: dict[str, Any] = {} if lost_threshold is None else {"lost_threshold": lost_threshold}
    tracker, _, _ = build_tracker(config, resume, device, mask=True, refine=None, fast=fast, backend=backend,
                                  onnx_dir=onnx_dir, **kwargs)
    return TrackHandler(tracker, limits)


def handler_from_env(env: Mapping[str, str] = os.environ) -> TrackHandler:
    """The handler the nuclio function builds: ``SIAMMASK_CONFIG``, ``SIAMMASK_WEIGHTS`` (required),
    ``SIAMMASK_DEVICE`` (auto), ``SIAMMASK_FAST`` (0/1), ``SIAMMASK_MAX_IMAGE_PIXELS``, ``SIAMMASK_MAX_TARGETS``.

    Raises:
        SiamMaskError: a missing or malformed variable, or what :func:`build_handler` raises.
    """
    weights = env.get("SIAMMASK_WEIGHTS", "")
    if not weights:
        raise SiamMaskError("environment variable SIAMMASK_WEIGHTS (the checkpoint path) is not set")
    defaults = Limits()
    limits = Limits(max_body_bytes=_env_int(env, "SIAMMASK_MAX_BODY_BYTES", defaults.max_body_bytes),
                    max_image_pixels=_env_int(env, "SIAMMASK_MAX_IMAGE_PIXELS", defaults.max_image_pixels),
                    max_targets=_env_int(env, "SIAMMASK_MAX_TARGETS", defaults.max_targets))
    fast = env.get("SIAMMASK_FAST", "0")
    if fast not in ("0", "1"):
        raise SiamMaskError(f"environment variable SIAMMASK_FAST must be 0 or 1, got {fast!r}")
    return build_handler(env.get("SIAMMASK_CONFIG", "experiments/siammask_sharp/config_davis.json"), weights,
                         env.get("SIAMMASK_DEVICE", "auto"), fast=fast == "1", limits=limits)


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name, "")
    if not text:
        return default
    if not text.isdigit() or int(text) <= 0:
        raise SiamMaskError(f"environment variable {name} must be a positive integer, got {text!r}")
    return int(text)
