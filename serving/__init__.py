"""The annotation server: CVAT's tracker-function protocol over the stateless tracker (docs/annotation-server.md).

* :mod:`.protocol` — strict JSON validation of both CVAT request forms and of the states, image decoding under
  limits, mask encodings;
* :mod:`.handler` — :class:`TrackHandler`, the framework-free handler used by ``tools/serve.py`` and by the nuclio
  function in ``serverless/nuclio/main.py``;
* :mod:`.app` — the Starlette app (the ``serve`` extra: starlette + uvicorn), imported only when serving HTTP.
"""
from .handler import TrackHandler, build_handler, handler_from_env
from .protocol import Limits, RequestError, StateSpec, encode_mask, parse_json, parse_request

__all__ = ["Limits", "RequestError", "StateSpec", "TrackHandler", "build_handler", "encode_mask",
           "handler_from_env", "parse_json", "parse_request"]
