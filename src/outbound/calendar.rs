//! A list's calendar in its own time zone: calling windows (days of week and hours of the local
//! wall clock), holiday dates, and the local calendar day that daily quotas count.
//!
//! Pure: takes unix ms, returns unix ms. Uses jiff's bundled tz database, so a host without
//! `/usr/share/zoneinfo` behaves the same. On the day clocks change a window is still read on the
//! wall clock (09:00–17:00 means 09:00–17:00 local, whatever the offset), and the "day" of a quota
//! is the real local day (23 or 25 hours long).

use super::{ms_from_sql, sql_ms, OutboundError, Result};
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use std::collections::BTreeSet;

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// One calling window: on the days in `days` (bit 0 = Monday … bit 6 = Sunday), local minutes
/// `start_min` (inclusive) to `end_min` (exclusive, 1440 = midnight at the end of the day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WindowRule {
    pub days: u8,
    pub start_min: u16,
    pub end_min: u16,
}

/// Is the list allowed to dial right now?
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    Open,
    /// Outside every window. `opens_at_ms`: the next opening within about a year, if any.
    Closed {
        opens_at_ms: Option<u64>,
    },
    /// Today (local) is one of the list's holiday dates.
    Holiday {
        date: Date,
        opens_at_ms: Option<u64>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Calendar {
    tz: TimeZone,
    rules: Vec<WindowRule>,
    holidays: BTreeSet<Date>,
}

/// How far ahead to look for the next opening (holiday runs, a window on one weekday only).
const LOOKAHEAD_DAYS: usize = 400;

impl Calendar {
    pub fn new(time_zone: &str, rules: Vec<WindowRule>, holidays: BTreeSet<Date>) -> Result<Self> {
        let tz = time_zone_named(time_zone).map_err(OutboundError::Corrupt)?;
        Ok(Calendar {
            tz,
            rules,
            holidays,
        })
    }

    fn zoned(&self, now_ms: u64) -> Result<Zoned> {
        let ts = Timestamp::from_millisecond(sql_ms(now_ms)?)
            .map_err(|e| OutboundError::Invalid(format!("time {now_ms} ms: {e}")))?;
        Ok(ts.to_zoned(self.tz.clone()))
    }

    pub fn status(&self, now_ms: u64) -> Result<Status> {
        let now = self.zoned(now_ms)?;
        let date = now.date();
        if self.holidays.contains(&date) {
            return Ok(Status::Holiday {
                date,
                opens_at_ms: self.next_opening(&now)?,
            });
        }
        let minute =
            u16::from(now.hour().unsigned_abs()) * 60 + u16::from(now.minute().unsigned_abs());
        let bit = day_bit(date);
        let open = self
            .rules
            .iter()
            .any(|r| r.days & bit != 0 && r.start_min <= minute && minute < r.end_min);
        if open {
            Ok(Status::Open)
        } else {
            Ok(Status::Closed {
                opens_at_ms: self.next_opening(&now)?,
            })
        }
    }

    /// The first window start after `now` on a day that is not a holiday.
    fn next_opening(&self, now: &Zoned) -> Result<Option<u64>> {
        let now_ts = now.timestamp();
        let mut date = now.date();
        for _ in 0..LOOKAHEAD_DAYS {
            if !self.holidays.contains(&date) {
                let bit = day_bit(date);
                let mut starts: Vec<u16> = self
                    .rules
                    .iter()
                    .filter(|r| r.days & bit != 0)
                    .map(|r| r.start_min)
                    .collect();
                starts.sort_unstable();
                for start in starts {
                    let (h, m) = (start / 60, start % 60);
                    let time = Time::new(h as i8, m as i8, 0, 0).map_err(jiff_err)?;
                    // In a DST gap ("compatible") this moves to the first instant after it.
                    let at = date
                        .to_datetime(time)
                        .to_zoned(self.tz.clone())
                        .map_err(jiff_err)?;
                    if at.timestamp() > now_ts {
                        return Ok(Some(ms_from_sql(at.timestamp().as_millisecond())));
                    }
                }
            }
            date = match date.tomorrow() {
                Ok(d) => d,
                Err(_) => return Ok(None),
            };
        }
        Ok(None)
    }

    /// The local calendar day containing `now_ms`: `[start, end)` in unix ms.
    pub fn day_bounds(&self, now_ms: u64) -> Result<(u64, u64)> {
        let now = self.zoned(now_ms)?;
        let start = now.date().to_zoned(self.tz.clone()).map_err(jiff_err)?;
        let end = now
            .date()
            .tomorrow()
            .and_then(|d| d.to_zoned(self.tz.clone()))
            .map_err(jiff_err)?;
        Ok((
            ms_from_sql(start.timestamp().as_millisecond()),
            ms_from_sql(end.timestamp().as_millisecond()),
        ))
    }
}

fn jiff_err(e: jiff::Error) -> OutboundError {
    OutboundError::Invalid(format!("time computation: {e}"))
}

fn day_bit(date: Date) -> u8 {
    1 << (date.weekday().to_monday_zero_offset() as u8)
}

/// An IANA time zone from jiff's bundled database.
pub(crate) fn time_zone_named(name: &str) -> Result<TimeZone, String> {
    if name.trim().is_empty() {
        return Err("time_zone is empty (use an IANA name such as \"Europe/London\")".into());
    }
    TimeZone::get(name).map_err(|_| {
        format!("time_zone {name:?} is not a known IANA time zone (e.g. \"Europe/London\")")
    })
}

/// Day names (`mon` … `sun`, full names, any case) and ranges (`mon-fri`) to a bit mask.
pub(crate) fn parse_days(days: &[String]) -> Result<u8, String> {
    if days.is_empty() {
        return Err("days is empty".into());
    }
    let mut mask = 0u8;
    for spec in days {
        let lower = spec.trim().to_ascii_lowercase();
        let (from, to) = match lower.split_once('-') {
            Some((a, b)) => (day_index(a.trim(), spec)?, day_index(b.trim(), spec)?),
            None => {
                let d = day_index(&lower, spec)?;
                (d, d)
            }
        };
        if from > to {
            return Err(format!("day range {spec:?} runs backwards"));
        }
        for d in from..=to {
            mask |= 1 << d;
        }
    }
    Ok(mask)
}

fn day_index(name: &str, spec: &str) -> Result<usize, String> {
    DAY_NAMES
        .iter()
        .position(|d| name.len() >= 3 && (name == *d || full_day_name(d) == name))
        .ok_or_else(|| format!("{spec:?} is not a day of the week (mon, tue, … sun, or mon-fri)"))
}

fn full_day_name(short: &str) -> &'static str {
    match short {
        "mon" => "monday",
        "tue" => "tuesday",
        "wed" => "wednesday",
        "thu" => "thursday",
        "fri" => "friday",
        "sat" => "saturday",
        _ => "sunday",
    }
}

/// The bit mask back to short day names.
pub(crate) fn day_names(mask: u8) -> Vec<String> {
    (0..7)
        .filter(|d| mask & (1 << d) != 0)
        .map(|d| DAY_NAMES[d].to_string())
        .collect()
}

/// `HH:MM` (24-hour) to minutes of the day; `24:00` only when `end` is set.
pub(crate) fn parse_hhmm(s: &str, end: bool) -> Result<u16, String> {
    let bad = || format!("{s:?} is not a time of day HH:MM (00:00 to 24:00)");
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if m >= 60 || h > 24 || (h == 24 && (m != 0 || !end)) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

pub(crate) fn fmt_hhmm(min: u16) -> String {
    format!("{:02}:{:02}", min / 60, min % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::testutil::ms;

    fn london(rules: Vec<WindowRule>, holidays: &[&str]) -> Calendar {
        let holidays = holidays.iter().map(|d| d.parse().unwrap()).collect();
        Calendar::new("Europe/London", rules, holidays).unwrap()
    }

    fn weekdays_9_to_17() -> Vec<WindowRule> {
        vec![WindowRule {
            days: parse_days(&["mon-fri".into()]).unwrap(),
            start_min: 9 * 60,
            end_min: 17 * 60,
        }]
    }

    #[test]
    fn windows_follow_the_local_wall_clock_across_dst() {
        let cal = london(weekdays_9_to_17(), &[]);
        // Friday 2024-03-29, GMT (UTC+0): 16:30Z is 16:30 local, open.
        assert_eq!(
            cal.status(ms("2024-03-29T16:30:00Z")).unwrap(),
            Status::Open
        );
        // Monday 2024-04-01, BST (UTC+1): 16:30Z is 17:30 local, closed; 07:30Z is 08:30 closed,
        // 08:00Z is 09:00 open.
        assert!(matches!(
            cal.status(ms("2024-04-01T16:30:00Z")).unwrap(),
            Status::Closed { opens_at_ms: Some(t) } if t == ms("2024-04-02T08:00:00Z")
        ));
        assert!(matches!(
            cal.status(ms("2024-04-01T07:30:00Z")).unwrap(),
            Status::Closed { opens_at_ms: Some(t) } if t == ms("2024-04-01T08:00:00Z")
        ));
        assert_eq!(
            cal.status(ms("2024-04-01T08:00:00Z")).unwrap(),
            Status::Open
        );
        // Friday evening: next opening is Monday, which is in BST.
        assert!(matches!(
            cal.status(ms("2024-03-29T18:00:00Z")).unwrap(),
            Status::Closed { opens_at_ms: Some(t) } if t == ms("2024-04-01T08:00:00Z")
        ));
    }

    #[test]
    fn the_quota_day_is_the_local_day_23_hours_on_the_spring_change() {
        let cal = london(weekdays_9_to_17(), &[]);
        let (start, end) = cal.day_bounds(ms("2024-03-31T12:00:00Z")).unwrap();
        assert_eq!(start, ms("2024-03-31T00:00:00Z"));
        assert_eq!(end, ms("2024-03-30T23:00:00Z") + 24 * 3_600_000);
        assert_eq!(end - start, 23 * 3_600_000);
        // 23:30Z on the 31st is already April 1st, 00:30 BST.
        let (start, _) = cal.day_bounds(ms("2024-03-31T23:30:00Z")).unwrap();
        assert_eq!(start, ms("2024-03-31T23:00:00Z"));
        let (start, end) = cal.day_bounds(ms("2024-10-27T12:00:00Z")).unwrap();
        assert_eq!(end - start, 25 * 3_600_000);
    }

    #[test]
    fn a_window_starting_inside_the_spring_gap_opens_after_it() {
        let rules = vec![WindowRule {
            days: 0x7f,
            start_min: 60 + 30,
            end_min: 3 * 60,
        }];
        let cal = london(rules, &[]);
        // 01:30 does not exist on 2024-03-31 (01:00 GMT → 02:00 BST).
        assert!(matches!(
            cal.status(ms("2024-03-31T00:10:00Z")).unwrap(),
            Status::Closed { opens_at_ms: Some(t) } if t == ms("2024-03-31T01:30:00Z")
        ));
    }

    #[test]
    fn holidays_close_the_whole_day() {
        let cal = london(weekdays_9_to_17(), &["2024-12-25", "2024-12-26"]);
        assert!(matches!(
            cal.status(ms("2024-12-25T10:00:00Z")).unwrap(),
            Status::Holiday { opens_at_ms: Some(t), .. } if t == ms("2024-12-27T09:00:00Z")
        ));
        assert_eq!(
            cal.status(ms("2024-12-24T10:00:00Z")).unwrap(),
            Status::Open
        );
    }

    #[test]
    fn parsing_days_and_times() {
        assert_eq!(parse_days(&["Mon-Fri".into()]).unwrap(), 0b001_1111);
        assert_eq!(
            parse_days(&["saturday".into(), "sun".into()]).unwrap(),
            0b110_0000
        );
        assert!(parse_days(&["fri-mon".into()]).is_err());
        assert!(parse_days(&["mo".into()]).is_err());
        assert!(parse_days(&[]).is_err());
        assert_eq!(day_names(0b100_0001), ["mon", "sun"]);
        assert_eq!(parse_hhmm("09:30", false).unwrap(), 570);
        assert_eq!(parse_hhmm("24:00", true).unwrap(), 1440);
        assert!(parse_hhmm("24:00", false).is_err());
        assert!(parse_hhmm("9", false).is_err());
        assert!(parse_hhmm("12:60", true).is_err());
        assert_eq!(fmt_hhmm(570), "09:30");
        assert!(time_zone_named("Mars/Olympus").is_err());
    }
}
