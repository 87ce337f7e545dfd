"""Strata: customer segmentation.

The library is the product; the ``strata`` command, the REST API and the web app
are thin shells over it.
"""

__version__ = "0.1.0"
