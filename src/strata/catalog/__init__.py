"""The catalog: workspaces, import runs, segment definitions, campaigns (SQLAlchemy 2)."""

from strata.catalog.db import open_catalog
from strata.catalog.models import Campaign, ImportRun, Segment, Setting, Workspace

__all__ = ["Campaign", "ImportRun", "Segment", "Setting", "Workspace", "open_catalog"]
