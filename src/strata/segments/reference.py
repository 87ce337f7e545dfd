"""The reference time a segment is evaluated against: now, or ``--as-of DATE``.

Time-relative conditions count calendar days back from the reference *day*, and
events count only if they happened before the reference *instant*:

>>> ref = ReferenceTime.parse("2011-12-10")
>>> ref.day, ref.instant
(datetime.date(2011, 12, 10), datetime.datetime(2011, 12, 11, 0, 0))

A date means the end of that day (everything that happened on it is known); a
date and time means that instant. Times are UTC, as the warehouse stores them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from strata.errors import InputError


@dataclass(frozen=True)
class ReferenceTime:
    #: Events strictly before this instant count.
    instant: dt.datetime
    #: "Today": day-based conditions count from here.
    day: dt.date
    #: Given by the user (``--as-of``), as opposed to "now".
    fixed: bool = True

    @classmethod
    def now(cls) -> ReferenceTime:
        # Microseconds kept: an event received a moment ago counts at once (live ingest
        # updates memberships within a second, not after the second is over).
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        return cls(instant=now, day=now.date(), fixed=False)

    @classmethod
    def of(cls, value: dt.date | dt.datetime | None) -> ReferenceTime:
        if value is None:
            return cls.now()
        if isinstance(value, dt.datetime):
            if value.tzinfo is not None:
                value = value.astimezone(dt.UTC).replace(tzinfo=None)
            # Midnight is how a stored date comes back: the end of the previous day.
            if value.time() == dt.time(0):
                return cls(instant=value, day=value.date() - dt.timedelta(days=1))
            return cls(instant=value, day=value.date())
        return cls(instant=dt.datetime.combine(value + dt.timedelta(days=1), dt.time(0)), day=value)

    @classmethod
    def parse(cls, text: str | None) -> ReferenceTime:
        """``None`` or ``now`` → now; ``YYYY-MM-DD`` → the end of that day; ISO date-time →
        that instant."""
        if text is None or str(text).strip().lower() in {"", "now"}:
            return cls.now()
        text = str(text).strip()
        try:
            if len(text) == 10:
                return cls.of(dt.date.fromisoformat(text))
            return cls.of(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            raise InputError(
                f"--as-of {text!r} is not a date: use YYYY-MM-DD (the end of that day) "
                "or YYYY-MM-DDTHH:MM:SS (UTC)"
            ) from None

    def day_start(self, days_back: int) -> dt.datetime:
        """Midnight starting the day ``days_back`` days before the reference day."""
        return dt.datetime.combine(self.day - dt.timedelta(days=days_back), dt.time(0))

    def __str__(self) -> str:
        end_of_day = self.instant == dt.datetime.combine(
            self.day + dt.timedelta(days=1), dt.time(0)
        )
        if end_of_day:
            return self.day.isoformat()
        return self.instant.isoformat(sep=" ", timespec="seconds" if not self.fixed else "auto")
