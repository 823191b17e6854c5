"""CVAT's nuclio entry point for the SiamMask tracker: the same handler as tools/serve.py (siammask.serving).

nuclio calls ``init_context`` once per worker and ``handler`` per request. The model comes from the environment
(``function.yaml``: ``SIAMMASK_CONFIG``, ``SIAMMASK_WEIGHTS``, ``SIAMMASK_DEVICE``, ...). nuclio hands over the body
already decoded when CVAT sends ``application/json``; the handler validates it as strictly as the HTTP server does:
plain JSON states only, never jsonpickle, a state of another model refused, frames decoded as BGR.
"""
import json

from siammask.serving.handler import handler_from_env


def init_context(context):
    """Load the model once per nuclio worker."""
    context.logger.info("Init context...  0%")
    context.user_data.model_handler = handler_from_env()
    context.logger.info("Init context...100%")


def handler(context, event):
    """One CVAT tracker request (single or list form) -> JSON response with its HTTP status."""
    status, payload = context.user_data.model_handler.handle_body(event.body)
    if status != 200:
        context.logger.warn(f"request refused ({status}): {payload.get('error', '')}")
    return context.Response(body=json.dumps(payload), headers={}, content_type="application/json",
                            status_code=status)
