//! Times of day in IST: the daily login time, `--valid-until`, and how IST clocks show
//! an instant.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Days, NaiveTime, TimeZone, Utc};

use crate::token::ist;

/// A time of day in IST (`HH:MM`, seconds optional): the daily login time, or the time a
/// token must still be alive at (`token --valid-until`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct IstTime(NaiveTime);

impl IstTime {
    /// The time of day `hour:minute` in IST; `None` outside 00:00..=23:59.
    pub fn hm(hour: u32, minute: u32) -> Option<IstTime> {
        NaiveTime::from_hms_opt(hour, minute, 0).map(IstTime)
    }

    /// The latest instant at or before `now` when IST clocks showed this time.
    pub fn latest(self, now: DateTime<Utc>) -> DateTime<Utc> {
        let today = now.with_timezone(&ist()).date_naive();
        let at = |day: chrono::NaiveDate| {
            ist()
                .from_local_datetime(&day.and_time(self.0))
                .single()
                .map_or(now, |d| d.with_timezone(&Utc))
        };
        let candidate = at(today);
        if candidate <= now {
            candidate
        } else {
            today.checked_sub_days(Days::new(1)).map_or(now, at)
        }
    }

    /// The first instant after `now` when IST clocks show this time.
    pub fn next(self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.latest(now) + chrono::Duration::days(1)
    }
}

impl FromStr for IstTime {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        NaiveTime::parse_from_str(s, "%H:%M")
            .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M:%S"))
            .map(IstTime)
            .map_err(|_| format!("`{s}` is not a time of day as HH:MM (IST, 24-hour clock)"))
    }
}

impl fmt::Display for IstTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use chrono::Timelike;
        if self.0.second() == 0 {
            write!(f, "{}", self.0.format("%H:%M"))
        } else {
            write!(f, "{}", self.0.format("%H:%M:%S"))
        }
    }
}

/// `at` as IST clocks show it: `2026-12-06 08:00 IST`.
pub fn ist_wall_clock(at: DateTime<Utc>) -> String {
    at.with_timezone(&ist())
        .format("%Y-%m-%d %H:%M IST")
        .to_string()
}

/// When the daily login replaces a token obtained at `obtained_at`: the first `login_at`
/// after it. The daemon sleeps until then (plus its jitter), so its schedule stays
/// anchored to `login_at` instead of drifting earlier with each token.
#[cfg(feature = "serve")]
pub(crate) fn daily_login_after(login_at: IstTime, obtained_at: DateTime<Utc>) -> DateTime<Utc> {
    login_at.next(obtained_at)
}
