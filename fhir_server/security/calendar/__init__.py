"""Kazakhstan working-day calendar for data-subject request deadlines (AC-16, AC-17, AC-27)."""

from fhir_server.security.calendar._calendar import (
    KZ_TZ,
    CalendarDataError,
    WorkingCalendar,
    YearRules,
    add_working_days,
    default_calendar,
    is_working_day,
    merge_override,
    working_deadline,
)
from fhir_server.security.calendar.generate import generate_year

__all__ = [
    "KZ_TZ",
    "CalendarDataError",
    "WorkingCalendar",
    "YearRules",
    "add_working_days",
    "default_calendar",
    "generate_year",
    "is_working_day",
    "merge_override",
    "working_deadline",
]
