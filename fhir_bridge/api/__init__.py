"""The HTTP service: for now the subscription webhook that triggers targeted pulls."""

from ._app import create_app
from ._webhook import SECRET_HEADER, secret_of

__all__ = ["SECRET_HEADER", "create_app", "secret_of"]
