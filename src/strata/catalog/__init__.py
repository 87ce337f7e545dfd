"""The catalog: workspaces, accounts, imports, segment definitions, fitted models, jobs."""

from strata.catalog.db import open_catalog
from strata.catalog.models import (
    ApiKey,
    AuthSession,
    Campaign,
    ImportRun,
    IngestBatch,
    Job,
    LoginFailure,
    Member,
    Model,
    Segment,
    Setting,
    User,
    Workspace,
)

__all__ = [
    "ApiKey",
    "AuthSession",
    "Campaign",
    "ImportRun",
    "IngestBatch",
    "Job",
    "LoginFailure",
    "Member",
    "Model",
    "Segment",
    "Setting",
    "User",
    "Workspace",
    "open_catalog",
]
