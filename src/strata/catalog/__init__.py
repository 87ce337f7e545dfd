"""The catalog: workspaces, imports, segment definitions, fitted models, campaigns (SQLAlchemy)."""

from strata.catalog.db import open_catalog
from strata.catalog.models import Campaign, ImportRun, Model, Segment, Setting, Workspace

__all__ = ["Campaign", "ImportRun", "Model", "Segment", "Setting", "Workspace", "open_catalog"]
