"""Segment analysis: the numbers behind every segment, computed in the warehouse.

Each analysis is a library function returning pandas DataFrames (see the modules of
this package); :func:`analyses` lists them with their parameters, for the API and CLI.
"""

from strata.analysis.base import (
    REGISTRY,
    Analyst,
    Params,
    PeriodParams,
    Spec,
    Tables,
    analyses,
    csv_text,
    file_stem,
    records,
    run_analysis,
)

__all__ = [
    "REGISTRY",
    "Analyst",
    "Params",
    "PeriodParams",
    "Spec",
    "Tables",
    "analyses",
    "csv_text",
    "file_stem",
    "records",
    "run_analysis",
]
