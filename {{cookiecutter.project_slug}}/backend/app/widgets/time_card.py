"""The time card: the time in a zone, built from ``time_card.widget``.

A ``.widget`` file is a Jinja template of the widget's JSON (the format of
``chatkit.widgets.WidgetTemplate``); its Refresh button is the server action
``time.refresh`` (app/extensions.py) and its Copy button the client action ``time.copy``,
which the page handles itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chatkit.widgets import WidgetRoot, WidgetTemplate
from pydantic import AfterValidator

TEMPLATE = WidgetTemplate.from_file(str(Path(__file__).with_name("time_card.widget")))
MAX_ZONE_CHARS = 64  # the longest IANA name is 32 characters


def now(zone: ZoneInfo) -> datetime:
    """The clock the card reads (a test sets it to a known time)."""
    return datetime.now(zone)


def zone_named(name: str) -> ZoneInfo:
    """The zone; ValueError naming the problem for anything but an IANA zone name."""
    try:
        if len(name) > MAX_ZONE_CHARS:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        shown = name if len(name) <= MAX_ZONE_CHARS else name[:MAX_ZONE_CHARS] + "..."
        raise ValueError(
            f"Unknown time zone {shown!r}; use an IANA name such as Europe/Paris."
        ) from None


def _check_zone(name: str) -> str:
    zone_named(name)
    return name


# A payload field that must hold an IANA zone name.
ZoneName = Annotated[str, AfterValidator(_check_zone)]


@dataclass(frozen=True)
class TimeReading:
    """The time in one zone at one moment."""

    zone: str
    at: datetime

    @property
    def offset(self) -> str:
        return "UTC" + self.at.isoformat()[-6:] if self.at.utcoffset() else "UTC"

    @property
    def time(self) -> str:
        return f"{self.at:%H:%M}"

    @property
    def date(self) -> str:
        return f"{self.at:%A} {self.at.day} {self.at:%B %Y}"

    @property
    def summary(self) -> str:
        """One line for people: the Copy button's text and the card's copy_text."""
        return f"{self.time} on {self.date} in {self.zone} ({self.offset})"

    @property
    def for_model(self) -> str:
        return f"{self.summary}; ISO 8601: {self.at.isoformat(timespec='seconds')}"


def read_clock(zone_name: str) -> TimeReading:
    """The time now in ``zone_name``; ValueError for an unknown zone."""
    return TimeReading(zone=zone_name, at=now(zone_named(zone_name)))


def time_card(reading: TimeReading) -> WidgetRoot:
    return TEMPLATE.build(
        {
            "zone": reading.zone,
            "time": reading.time,
            "date": reading.date,
            "text": reading.summary,
        }
    )
