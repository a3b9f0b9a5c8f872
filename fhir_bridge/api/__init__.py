"""The HTTP service (FastAPI): ``create_app`` builds it from the routers in ``routes/``."""

from ._app import create_app

__all__ = ["create_app"]
