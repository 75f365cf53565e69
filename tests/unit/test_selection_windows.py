"""Time-of-week windows on a buyer's wall clock: parsing, edges (end exclusive), wrapping past
Sunday midnight, DST changes in America/New_York and America/Chicago, and time zone names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from leadx.auction.selection.windows import (
    MINUTES_PER_WEEK,
    WeeklyWindow,
    WindowError,
    is_active,
    local_minute_of_week,
    minute_of_week,
    zone,
)

UTC_ZONE = ZoneInfo("UTC")
CHICAGO = ZoneInfo("America/Chicago")
NEW_YORK = ZoneInfo("America/New_York")


def utc_ms(year, month, day, hour=0, minute=0, second=0, ms=0) -> int:
    moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    return int(moment.timestamp()) * 1000 + ms


def windows(*pairs: tuple[str, str]) -> tuple[WeeklyWindow, ...]:
    return tuple(WeeklyWindow.parse({"from": start, "to": end}) for start, end in pairs)


# minute_of_week


@pytest.mark.parametrize("text, minute", [
    ("mon 00:00", 0),
    ("mon 00:01", 1),
    ("tue 00:00", 1440),
    ("fri 08:00", 4 * 1440 + 8 * 60),
    ("sun 21:00", 6 * 1440 + 21 * 60),
    ("sun 23:59", MINUTES_PER_WEEK - 1),
    ("sun 24:00", MINUTES_PER_WEEK),
    ("fri 8:00", 4 * 1440 + 8 * 60),
    ("FRI 08:00", 4 * 1440 + 8 * 60),
    ("Friday 08:00", 4 * 1440 + 8 * 60),
    ("  fri   08:00  ", 4 * 1440 + 8 * 60),
])
def test_a_time_of_week_is_the_minutes_since_monday_midnight(text, minute):
    assert minute_of_week(text) == minute


@pytest.mark.parametrize("text", [
    "fri 8", "fri 08", "fri 08:0", "fri 08:000", "fri08:00", "fri 08:00 pm", "", "fri", "08:00",
    "xyz 08:00", "fr 08:00", "fri -1:00", "fri 08:-1", "fri :30", "fri 0x:00",
])
def test_a_malformed_time_of_week_is_refused_with_an_example(text):
    with pytest.raises(WindowError, match="is not a time of week like 'fri 08:00'"):
        minute_of_week(text)


@pytest.mark.parametrize("text", ["fri 25:00", "fri 24:01", "fri 08:60", "fri 99:99"])
def test_a_time_of_day_that_does_not_exist_is_refused(text):
    with pytest.raises(WindowError, match="has no such time of day"):
        minute_of_week(text)


def test_the_error_names_the_text_that_was_refused():
    with pytest.raises(WindowError) as caught:
        minute_of_week("xyz 08:00")
    assert "'xyz 08:00'" in str(caught.value)
    with pytest.raises(WindowError) as caught:
        minute_of_week("fri 25:00")
    assert "'fri 25:00'" in str(caught.value)


def test_window_errors_are_value_errors():
    assert issubclass(WindowError, ValueError)


def test_a_superscript_digit_is_refused_as_a_window_error_not_a_bare_value_error():
    with pytest.raises(WindowError):
        minute_of_week("fri ²:00")


# WeeklyWindow.parse


def test_a_window_parses_from_and_to_into_minutes_of_the_week():
    window = WeeklyWindow.parse({"from": "fri 08:00", "to": "sun 21:00"})
    assert window == WeeklyWindow(4 * 1440 + 480, 6 * 1440 + 1260)


@pytest.mark.parametrize("spec", [
    None, "fri 08:00 to sun 21:00", ["fri 08:00", "sun 21:00"], {}, {"from": "fri 08:00"},
    {"to": "sun 21:00"}, {"start": "fri 08:00", "end": "sun 21:00"},
])
def test_a_window_must_be_a_mapping_with_from_and_to(spec):
    with pytest.raises(WindowError, match="a window is {from: 'fri 08:00', to: 'sun 21:00'}"):
        WeeklyWindow.parse(spec)


@pytest.mark.parametrize("start, end", [
    ("fri 08:00", "fri 08:00"),
    ("fri 08:00", "FRI 8:00"),
    ("fri 24:00", "sat 00:00"),  # the same minute of the week, written two ways
])
def test_a_window_whose_start_and_end_are_the_same_is_refused(start, end):
    with pytest.raises(WindowError, match="start and end must differ"):
        WeeklyWindow.parse({"from": start, "to": end})


def test_sun_24_00_to_mon_00_00_is_refused_as_a_window_that_starts_where_it_ends():
    with pytest.raises(WindowError):
        WeeklyWindow.parse({"from": "sun 24:00", "to": "mon 00:00"})


@pytest.mark.parametrize("spec", [{"from": "fri 8", "to": "sun 21:00"}, {"from": "fri 08:00", "to": "xyz 21:00"}])
def test_a_window_with_a_bad_end_is_refused(spec):
    with pytest.raises(WindowError):
        WeeklyWindow.parse(spec)


def test_a_window_from_monday_midnight_to_sunday_24_00_covers_the_whole_week():
    (window,) = windows(("mon 00:00", "sun 24:00"))
    assert all(window.contains(minute) for minute in range(MINUTES_PER_WEEK))


def test_a_window_ending_at_sunday_24_00_includes_the_last_minute_of_the_week():
    (window,) = windows(("sun 22:00", "sun 24:00"))
    assert window.contains(MINUTES_PER_WEEK - 1) and window.contains(minute_of_week("sun 22:00"))
    assert not window.contains(0) and not window.contains(minute_of_week("sun 21:59"))


def test_a_window_starting_at_sunday_24_00_is_the_same_as_one_starting_at_monday_midnight():
    (late,), (early,) = windows(("sun 24:00", "mon 06:00")), windows(("mon 00:00", "mon 06:00"))
    assert [late.contains(m) for m in range(MINUTES_PER_WEEK)] == [early.contains(m) for m in range(MINUTES_PER_WEEK)]


# contains: the start is inclusive, the end exclusive


def test_the_start_minute_is_in_the_window_and_the_end_minute_is_not():
    (window,) = windows(("tue 09:00", "tue 17:00"))
    assert not window.contains(minute_of_week("tue 08:59"))
    assert window.contains(minute_of_week("tue 09:00"))
    assert window.contains(minute_of_week("tue 16:59"))
    assert not window.contains(minute_of_week("tue 17:00"))
    assert sum(window.contains(m) for m in range(MINUTES_PER_WEEK)) == 8 * 60


def test_a_window_wrapping_past_sunday_midnight_covers_both_ends_of_the_week():
    (window,) = windows(("sun 22:00", "mon 06:00"))
    assert window.start > window.end
    assert not window.contains(minute_of_week("sun 21:59"))
    assert window.contains(minute_of_week("sun 22:00"))
    assert window.contains(minute_of_week("sun 23:59"))
    assert window.contains(minute_of_week("mon 00:00"))
    assert window.contains(minute_of_week("mon 05:59"))
    assert not window.contains(minute_of_week("mon 06:00"))
    assert not window.contains(minute_of_week("wed 12:00"))
    assert sum(window.contains(m) for m in range(MINUTES_PER_WEEK)) == 8 * 60


def test_a_window_wrapping_past_sunday_midnight_is_active_on_the_real_clock():
    active = windows(("sun 22:00", "mon 06:00"))
    # 2026-01-11 is a Sunday, 2026-01-12 a Monday.
    assert not is_active(active, UTC_ZONE, utc_ms(2026, 1, 11, 21, 59, 59, 999))
    assert is_active(active, UTC_ZONE, utc_ms(2026, 1, 11, 22))
    assert is_active(active, UTC_ZONE, utc_ms(2026, 1, 12, 0))
    assert is_active(active, UTC_ZONE, utc_ms(2026, 1, 12, 5, 59, 59, 999))
    assert not is_active(active, UTC_ZONE, utc_ms(2026, 1, 12, 6))


# local_minute_of_week and is_active


def test_the_local_minute_of_the_week_is_read_on_the_buyers_clock():
    # Friday 2026-01-09 14:00 UTC is 08:00 CST (UTC-6).
    assert local_minute_of_week(utc_ms(2026, 1, 9, 14), CHICAGO) == minute_of_week("fri 08:00")
    assert local_minute_of_week(utc_ms(2026, 1, 9, 14), UTC_ZONE) == minute_of_week("fri 14:00")
    # Monday 2026-01-12 03:00 UTC is still Sunday 21:00 in Chicago.
    assert local_minute_of_week(utc_ms(2026, 1, 12, 3), CHICAGO) == minute_of_week("sun 21:00")


def test_seconds_and_milliseconds_do_not_move_the_minute():
    assert local_minute_of_week(utc_ms(2026, 1, 5, 0, 0, 59, 999), UTC_ZONE) == 0
    assert local_minute_of_week(utc_ms(2026, 1, 11, 23, 59, 59, 999), UTC_ZONE) == MINUTES_PER_WEEK - 1


def test_no_windows_means_always_active():
    for moment in (0, utc_ms(2026, 3, 8, 7), utc_ms(2026, 11, 1, 6, 30), utc_ms(2030, 12, 31, 23, 59)):
        assert is_active((), CHICAGO, moment)
        assert is_active((), UTC_ZONE, moment)


WEEKEND = windows(("fri 08:00", "sun 21:00"))


@pytest.mark.parametrize("when, active", [
    # Winter, CST (UTC-6): Friday 2026-01-09 08:00 local is 14:00 UTC.
    (utc_ms(2026, 1, 9, 13, 59, 59, 999), False),
    (utc_ms(2026, 1, 9, 14), True),
    (utc_ms(2026, 1, 10, 12), True),  # Saturday noon
    # Sunday 2026-01-11 21:00 CST is Monday 03:00 UTC: the end is exclusive.
    (utc_ms(2026, 1, 12, 2, 59), True),
    (utc_ms(2026, 1, 12, 3), False),
    (utc_ms(2026, 1, 8, 14), False),  # Thursday
    (utc_ms(2026, 1, 12, 14), False),  # Monday
    # Summer, CDT (UTC-5): Friday 2026-07-10 08:00 local is 13:00 UTC.
    (utc_ms(2026, 7, 10, 12, 59), False),
    (utc_ms(2026, 7, 10, 13), True),
    (utc_ms(2026, 7, 10, 13, 59), True),  # would be 07:59 if the buyer's clock were still CST
    # Sunday 2026-07-12 21:00 CDT is Monday 02:00 UTC.
    (utc_ms(2026, 7, 13, 1, 59), True),
    (utc_ms(2026, 7, 13, 2), False),
    (utc_ms(2026, 7, 13, 2, 30), False),  # would still be active on CST
])
def test_friday_08_00_to_sunday_21_00_in_chicago_is_judged_on_chicago_time(when, active):
    assert is_active(WEEKEND, CHICAGO, when) is active


def test_the_same_window_in_another_zone_is_active_at_other_instants():
    # Friday 2026-01-09 08:00 UTC: the window is open in UTC but it is 02:00 in Chicago.
    assert is_active(WEEKEND, UTC_ZONE, utc_ms(2026, 1, 9, 8))
    assert not is_active(WEEKEND, CHICAGO, utc_ms(2026, 1, 9, 8))


def test_several_windows_are_active_when_any_one_is():
    both = windows(("mon 09:00", "mon 12:00"), ("wed 13:00", "wed 14:00"))
    # 2026-01-05 is a Monday, 2026-01-07 a Wednesday.
    assert is_active(both, UTC_ZONE, utc_ms(2026, 1, 5, 9))
    assert is_active(both, UTC_ZONE, utc_ms(2026, 1, 7, 13, 30))
    assert not is_active(both, UTC_ZONE, utc_ms(2026, 1, 5, 12))
    assert not is_active(both, UTC_ZONE, utc_ms(2026, 1, 6, 10))
    assert not is_active(both, UTC_ZONE, utc_ms(2026, 1, 7, 14))


# DST in America/New_York: spring forward on Sunday 2026-03-08, fall back on Sunday 2026-11-01.

FRIDAY_DAY = windows(("fri 08:00", "fri 17:00"))


def test_a_friday_window_opens_at_08_00_local_on_both_sides_of_spring_forward():
    # Friday 2026-03-06 is on EST (UTC-5): 08:00 local is 13:00 UTC.
    assert is_active(FRIDAY_DAY, NEW_YORK, utc_ms(2026, 3, 6, 13))
    assert not is_active(FRIDAY_DAY, NEW_YORK, utc_ms(2026, 3, 6, 12, 30))  # 07:30 EST
    assert not is_active(FRIDAY_DAY, NEW_YORK, utc_ms(2026, 3, 6, 12, 59))
    assert is_active(FRIDAY_DAY, NEW_YORK, utc_ms(2026, 3, 6, 21, 59))  # 16:59 EST
    assert not is_active(FRIDAY_DAY, NEW_YORK, utc_ms(2026, 3, 6, 22))  # 17:00 EST
    # Friday 2026-03-13 is on EDT (UTC-4): 08:00 local is 12:00 UTC.
    assert is_active(FRIDAY_DAY, NEW_YORK, utc_ms(2026, 3, 13, 12))
    assert is_active(FRIDAY_DAY, NEW_YORK, utc_ms(2026, 3, 13, 12, 30))  # 08:30 EDT
    assert not is_active(FRIDAY_DAY, NEW_YORK, utc_ms(2026, 3, 13, 11, 59))
    assert is_active(FRIDAY_DAY, NEW_YORK, utc_ms(2026, 3, 13, 20, 59))  # 16:59 EDT
    assert not is_active(FRIDAY_DAY, NEW_YORK, utc_ms(2026, 3, 13, 21))  # 17:00 EDT


def test_a_friday_window_opens_at_08_00_local_on_both_sides_of_fall_back():
    # Friday 2026-10-30 is on EDT (UTC-4), Friday 2026-11-06 on EST (UTC-5).
    assert is_active(FRIDAY_DAY, NEW_YORK, utc_ms(2026, 10, 30, 12))
    assert not is_active(FRIDAY_DAY, NEW_YORK, utc_ms(2026, 10, 30, 11, 59))
    assert is_active(FRIDAY_DAY, NEW_YORK, utc_ms(2026, 11, 6, 13))
    assert not is_active(FRIDAY_DAY, NEW_YORK, utc_ms(2026, 11, 6, 12, 30))


def active_minutes(active: tuple[WeeklyWindow, ...], tz: ZoneInfo, start_ms: int, hours: int) -> list[int]:
    """The UTC instants, a minute apart, at which the windows are active."""
    return [start_ms + m * 60_000 for m in range(hours * 60) if is_active(active, tz, start_ms + m * 60_000)]


def test_a_window_across_the_skipped_spring_forward_hour_lasts_two_real_hours():
    night = windows(("sun 01:00", "sun 04:00"))
    # Sunday 2026-03-08: 01:00 EST is 06:00 UTC; 02:00 EST becomes 03:00 EDT at 07:00 UTC;
    # 04:00 EDT is 08:00 UTC.
    assert not is_active(night, NEW_YORK, utc_ms(2026, 3, 8, 5, 59))  # 00:59 EST
    assert is_active(night, NEW_YORK, utc_ms(2026, 3, 8, 6))  # 01:00 EST
    assert is_active(night, NEW_YORK, utc_ms(2026, 3, 8, 6, 59))  # 01:59 EST
    assert is_active(night, NEW_YORK, utc_ms(2026, 3, 8, 7))  # 03:00 EDT, no 02:00 that night
    assert is_active(night, NEW_YORK, utc_ms(2026, 3, 8, 7, 59))  # 03:59 EDT
    assert not is_active(night, NEW_YORK, utc_ms(2026, 3, 8, 8))  # 04:00 EDT
    on = active_minutes(night, NEW_YORK, utc_ms(2026, 3, 8, 0), 24)
    assert len(on) == 2 * 60
    assert on[0] == utc_ms(2026, 3, 8, 6) and on[-1] == utc_ms(2026, 3, 8, 7, 59)


def test_a_window_inside_the_skipped_hour_never_opens_that_night_but_does_a_week_later():
    skipped = windows(("sun 02:00", "sun 02:30"))
    assert active_minutes(skipped, NEW_YORK, utc_ms(2026, 3, 8, 0), 24) == []
    # Sunday 2026-03-15 02:00 EDT is 06:00 UTC.
    assert len(active_minutes(skipped, NEW_YORK, utc_ms(2026, 3, 15, 0), 24)) == 30
    assert is_active(skipped, NEW_YORK, utc_ms(2026, 3, 15, 6))


def test_a_window_over_the_repeated_fall_back_hour_is_open_through_both_of_them():
    repeated = windows(("sun 01:00", "sun 02:00"))
    # Sunday 2026-11-01: 01:00 EDT is 05:00 UTC, and 01:00 EST (the second one) is 06:00 UTC.
    assert not is_active(repeated, NEW_YORK, utc_ms(2026, 11, 1, 4, 59))
    assert is_active(repeated, NEW_YORK, utc_ms(2026, 11, 1, 5))
    assert is_active(repeated, NEW_YORK, utc_ms(2026, 11, 1, 6, 30))
    assert not is_active(repeated, NEW_YORK, utc_ms(2026, 11, 1, 7))  # 02:00 EST
    on = active_minutes(repeated, NEW_YORK, utc_ms(2026, 11, 1, 0), 24)
    assert len(on) == 2 * 60


def test_a_whole_week_of_minutes_keeps_its_length_away_from_dst():
    (weekend,) = WEEKEND
    start = utc_ms(2026, 1, 5)  # Monday 00:00 UTC, far from any DST change in Chicago
    minutes = [local_minute_of_week(start + m * 60_000, CHICAGO) for m in range(MINUTES_PER_WEEK)]
    assert sorted(minutes) == list(range(MINUTES_PER_WEEK))
    assert sum(weekend.contains(m) for m in minutes) == 2 * 1440 + 13 * 60


# time zones


@pytest.mark.parametrize("name", ["America/Chicago", "America/New_York", "Europe/London", "UTC"])
def test_an_iana_zone_name_gives_its_zone(name):
    assert zone(name) == ZoneInfo(name)


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "america/chicago", "CST6", "../etc/passwd", "Chicago"])
def test_a_name_that_is_not_an_iana_zone_raises_a_window_error(name):
    with pytest.raises(WindowError, match="is not an IANA time zone such as 'America/Chicago'"):
        zone(name)


def test_a_zone_converts_a_utc_instant_exactly():
    # Sanity of the helper used above: the test's UTC instants line up with the zone's offsets.
    assert datetime(2026, 3, 6, 13, tzinfo=UTC).astimezone(NEW_YORK).hour == 8
    assert datetime(2026, 3, 13, 12, tzinfo=UTC).astimezone(NEW_YORK).hour == 8
    assert NEW_YORK.utcoffset(datetime(2026, 3, 8, 1)) == timedelta(hours=-5)
    assert NEW_YORK.utcoffset(datetime(2026, 3, 8, 3)) == timedelta(hours=-4)
