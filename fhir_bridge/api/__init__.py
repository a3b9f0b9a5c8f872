"""The HTTP service (FastAPI): ``create_app`` builds it from the routers in ``routes/``; the
webhook's secret header and lookup are shared with ``fhir-bridge subscribe``."""

from ._app import create_app
from .routes.webhook import SECRET_HEADER, secret_of

__all__ = ["SECRET_HEADER", "create_app", "secret_of"]
