"""The demo segments its business twice, four weeks apart, so trends and RFM migration
show real movement; run again, it moves the segments on to now without complaint."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from strata.analysis.base import Analyst
from strata.analysis.rfm_migration import rfm_migration
from strata.demo import HISTORY_DAYS, generate_and_load, segment_business
from strata.segments.engine import Segments
from strata.segments.reference import ReferenceTime

EXAMPLES = Path(__file__).parent.parent / "examples" / "segments"


def test_the_demo_segments_its_business_a_month_ago_and_now(duck_app):
    generate_and_load(duck_app, customers=300, seed=3, workspace="demo")
    summary = segment_business(duck_app, workspace="demo", examples=EXAMPLES)
    then = ReferenceTime.now().day - dt.timedelta(days=HISTORY_DAYS)
    assert summary["since"] == str(then)
    segs = Segments(duck_app, "demo")
    for name in ("Champions", "Champions holdout"):
        steps = segs.history(name)
        assert len(steps) == 2, name
        assert steps[0]["as_of"] == summary["since"]
    moves = rfm_migration(Analyst(duck_app, "demo"), then)
    moved = moves[moves.from_segment != moves.to_segment].customers.sum()
    assert summary["moved"] == moved > 0
    assert summary["customers"] == sum(s["customers"] for s in summary["segments"])

    again = segment_business(duck_app, workspace="demo", examples=EXAMPLES)
    assert again["since"] is None and again["customers"] == summary["customers"]
    assert len(segs.history("Champions")) >= 2
