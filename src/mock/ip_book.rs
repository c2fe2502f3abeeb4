//! The stand-in's static IP whitelist: two slots per account, each frozen for seven days
//! after it is set or changed, as Dhan's docs and DhanHQ-py 2.3 describe it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

use chrono::{NaiveDate, TimeDelta};

use crate::sync::lock;

/// How long a slot stays as it is after a set or a change.
const FROZEN_DAYS: i64 = 7;

/// One whitelisted address and the first day it may change.
#[derive(Clone)]
pub(crate) struct Slot {
    pub(crate) ip: String,
    pub(crate) modify_from: NaiveDate,
}

/// An account's two slots.
#[derive(Clone, Default)]
pub(crate) struct Slots {
    pub(crate) primary: Option<Slot>,
    pub(crate) secondary: Option<Slot>,
}

#[derive(Default)]
pub(crate) struct IpBook {
    slots: Mutex<HashMap<usize, Slots>>,
}

impl IpBook {
    fn lock(&self) -> MutexGuard<'_, HashMap<usize, Slots>> {
        // Every update is one assignment: nothing half-done to refuse to read.
        lock(&self.slots)
    }

    pub(crate) fn get(&self, acct: usize) -> Slots {
        self.lock().get(&acct).cloned().unwrap_or_default()
    }

    /// `setIP` (`modify` false) fills an empty slot; `modifyIP` replaces a set one once
    /// its date has come. `secondary` picks the slot; `today` is the IST date.
    pub(crate) fn write(
        &self,
        acct: usize,
        secondary: bool,
        ip: &str,
        modify: bool,
        today: NaiveDate,
    ) -> Result<(), String> {
        // Refusals are in the words the stand-in answers with.
        let refuse = |m: &str| Err(m.to_owned());
        if ip.trim().parse::<IpAddr>().is_err() {
            return refuse("Invalid IP address");
        }
        let mut book = self.lock();
        let slots = book.entry(acct).or_default();
        let (slot, other) = if secondary {
            (&mut slots.secondary, &slots.primary)
        } else {
            (&mut slots.primary, &slots.secondary)
        };
        if other.as_ref().is_some_and(|o| o.ip == ip.trim()) {
            return refuse("The same IP cannot be both primary and secondary");
        }
        match (slot.as_ref(), modify) {
            (Some(_), false) => return refuse("IP is already set for this flag; use modifyIP"),
            (None, true) => return refuse("No IP is set for this flag; use setIP"),
            (Some(s), true) if today < s.modify_from => {
                return refuse(&format!(
                    "IP can be modified only on or after {}",
                    s.modify_from.format("%Y-%m-%d")
                ));
            }
            _ => {}
        }
        *slot = Some(Slot {
            ip: ip.trim().to_owned(),
            modify_from: today + TimeDelta::days(FROZEN_DAYS),
        });
        Ok(())
    }

    /// Lets a test move a slot's date, standing for a week that has passed.
    pub(crate) fn unfreeze(&self, acct: usize, today: NaiveDate) {
        if let Some(slots) = self.lock().get_mut(&acct) {
            for s in [&mut slots.primary, &mut slots.secondary]
                .into_iter()
                .flatten()
            {
                s.modify_from = today;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 4, d).unwrap()
    }

    #[test]
    fn a_slot_is_set_once_then_frozen_for_a_week() {
        let book = IpBook::default();
        assert!(book.write(0, false, "203.0.113.7", true, day(1)).is_err());
        book.write(0, false, "203.0.113.7", false, day(1)).unwrap();
        assert!(book.write(0, false, "203.0.113.8", false, day(1)).is_err());
        assert_eq!(
            book.write(0, false, "203.0.113.8", true, day(7)),
            Err("IP can be modified only on or after 2026-04-08".to_owned())
        );
        book.write(0, false, "203.0.113.8", true, day(8)).unwrap();
        let s = book.get(0);
        assert_eq!(
            s.primary.as_ref().map(|s| s.ip.as_str()),
            Some("203.0.113.8")
        );
        assert_eq!(s.primary.map(|s| s.modify_from), Some(day(15)));
        assert!(s.secondary.is_none());
        assert!(book.get(1).primary.is_none(), "slots are per account");
    }

    #[test]
    fn nonsense_and_duplicates_are_refused() {
        let book = IpBook::default();
        assert!(book.write(0, false, "not an ip", false, day(1)).is_err());
        book.write(0, false, "2001:db8::1", false, day(1)).unwrap();
        assert!(book.write(0, true, "2001:db8::1", false, day(1)).is_err());
    }
}
