"""The REST API: a FastAPI app over the library (``strata serve``).

>>> from strata.api import create_app
>>> app = create_app()  # doctest: +SKIP
"""

from strata.api.app import create_app

__all__ = ["create_app"]
