//! Every rule of the decision, on a fixed clock.

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::error_class::ErrorClass;
use crate::token::{SourceKind, Token, TokenKind, ist};

/// An instant given as IST wall-clock time on 2026-12-DD.
fn ist_at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    ist()
        .with_ymd_and_hms(2026, 12, day, hour, minute, 0)
        .unwrap()
        .with_timezone(&Utc)
}

/// A token minted at `obtained`, living Dhan's 24 h.
fn minted(obtained: DateTime<Utc>) -> Token {
    // A value of its own, as every token Dhan mints differs.
    let mut t = Token::from_grant(
        &format!("a.{}.c", obtained.timestamp()),
        Some("1000000001"),
        Some("2099-01-01T00:00:00"),
        SourceKind::Totp,
        obtained,
    )
    .unwrap();
    t.expires_at = obtained + chrono::Duration::hours(24);
    t
}

fn daily(at: &str) -> Rules {
    Rules {
        margin: chrono::Duration::minutes(30),
        login_at: Some(at.parse().unwrap()),
        logins: Logins::Allowed,
    }
}

fn no_schedule() -> Rules {
    Rules {
        login_at: None,
        ..daily("08:00")
    }
}

const ASK: Ask<'static> = Ask {
    force: false,
    valid_until: None,
    refused: None,
    fresh_since: None,
};

#[test]
fn ist_times_parse_print_and_fall_on_ist_days() {
    let at: IstTime = "08:00".parse().unwrap();
    assert_eq!(at.to_string(), "08:00");
    assert_eq!(
        "07:05:30".parse::<IstTime>().unwrap().to_string(),
        "07:05:30"
    );
    for bad in ["8", "24:00", "08:60", "eight", ""] {
        assert!(bad.parse::<IstTime>().is_err(), "{bad}");
    }
    // 08:00 IST is 02:30 UTC.
    assert_eq!(at.latest(ist_at(6, 9, 0)), ist_at(6, 8, 0));
    assert_eq!(at.latest(ist_at(6, 8, 0)), ist_at(6, 8, 0));
    assert_eq!(at.latest(ist_at(6, 7, 59)), ist_at(5, 8, 0));
    assert_eq!(at.next(ist_at(6, 7, 59)), ist_at(6, 8, 0));
    assert_eq!(at.next(ist_at(6, 8, 0)), ist_at(7, 8, 0));
    // Past 05:30 IST the UTC date is still the day before's in the small hours.
    let late: IstTime = "01:00".parse().unwrap();
    assert_eq!(late.latest(ist_at(6, 2, 0)), ist_at(6, 1, 0));
}

#[test]
fn before_the_login_time_a_token_of_yesterday_morning_is_kept() {
    let t = minted(ist_at(5, 8, 3));
    assert_eq!(
        decide(Some(&t), &daily("08:00"), &ASK, ist_at(6, 7, 50)),
        Decision::Stored,
        "ten minutes before it dies, with a margin of 30: the schedule wins"
    );
}

#[test]
fn after_the_login_time_a_token_from_before_it_is_replaced_once() {
    let rules = daily("08:00");
    let old = minted(ist_at(5, 8, 3));
    assert_eq!(
        decide(Some(&old), &rules, &ASK, ist_at(6, 8, 1)),
        Decision::Replace(Why::BeforeLoginAt(ist_at(6, 8, 0)))
    );
    let new = minted(ist_at(6, 8, 1));
    for now in [ist_at(6, 8, 2), ist_at(6, 15, 0), ist_at(7, 7, 59)] {
        assert_eq!(
            decide(Some(&new), &rules, &ASK, now),
            Decision::Stored,
            "{now}"
        );
    }
    assert!(matches!(
        decide(Some(&new), &rules, &ASK, ist_at(7, 8, 0)),
        Decision::Replace(Why::BeforeLoginAt(_))
    ));
}

#[test]
fn a_token_minted_late_the_day_before_is_replaced_at_the_login_time_not_mid_session() {
    // A manual run at 14:00 made a token that would die at 14:00 today, mid-session.
    let late = minted(ist_at(5, 14, 0));
    let rules = daily("08:00");
    assert_eq!(
        decide(Some(&late), &rules, &ASK, ist_at(5, 20, 0)),
        Decision::Stored
    );
    assert!(matches!(
        decide(Some(&late), &rules, &ASK, ist_at(6, 8, 0)),
        Decision::Replace(Why::BeforeLoginAt(_))
    ));
    // Without a login time it lives until its margin, in the middle of the session.
    assert_eq!(
        decide(Some(&late), &no_schedule(), &ASK, ist_at(6, 13, 31)),
        Decision::Replace(Why::WithinMargin)
    );
    assert_eq!(
        decide(Some(&late), &no_schedule(), &ASK, ist_at(6, 13, 29)),
        Decision::Stored
    );
}

#[test]
fn between_two_login_times_a_dead_token_is_replaced_at_once() {
    let rules = daily("08:00");
    let t = minted(ist_at(6, 8, 1));
    let refused = Ask {
        refused: Some(&t),
        ..ASK
    };
    assert_eq!(
        decide(Some(&t), &rules, &refused, ist_at(6, 11, 0)),
        Decision::Replace(Why::Refused)
    );
    // Refused was another token (already replaced by someone else): this one stays.
    let other = minted(ist_at(6, 9, 0));
    assert_eq!(
        decide(Some(&other), &rules, &refused, ist_at(6, 11, 0)),
        Decision::Stored
    );
    let mut short = minted(ist_at(6, 8, 1));
    short.expires_at = ist_at(6, 10, 0);
    assert_eq!(
        decide(Some(&short), &rules, &ASK, ist_at(6, 10, 0)),
        Decision::Replace(Why::Expired)
    );
    assert_eq!(
        decide(None, &rules, &ASK, ist_at(6, 11, 0)),
        Decision::Replace(Why::NoToken)
    );
}

#[test]
fn valid_until_replaces_a_token_that_dies_first() {
    let t = minted(ist_at(5, 14, 0));
    let until = |hhmm: &str| Ask {
        valid_until: Some(hhmm.parse().unwrap()),
        ..ASK
    };
    let at = ist_at(6, 9, 0);
    assert_eq!(
        decide(Some(&t), &no_schedule(), &until("15:30"), at),
        Decision::Replace(Why::DiesBefore(ist_at(6, 15, 30)))
    );
    assert_eq!(
        decide(Some(&t), &no_schedule(), &until("13:00"), at),
        Decision::Stored
    );
}

#[test]
fn a_forced_request_replaces_unless_someone_else_just_did() {
    let rules = daily("08:00");
    let t = minted(ist_at(6, 9, 0));
    let forced = Ask { force: true, ..ASK };
    assert_eq!(
        decide(Some(&t), &rules, &forced, ist_at(6, 9, 5)),
        Decision::Replace(Why::Forced)
    );
    let waited = Ask {
        fresh_since: Some(ist_at(6, 8, 59)),
        ..forced
    };
    assert_eq!(
        decide(Some(&t), &rules, &waited, ist_at(6, 9, 5)),
        Decision::Stored
    );
}

#[test]
fn a_host_that_never_logs_in_uses_a_live_token_and_refuses_otherwise() {
    let never = Rules {
        logins: Logins::Never,
        ..daily("08:00")
    };
    let old = minted(ist_at(5, 8, 3));
    assert_eq!(
        decide(Some(&old), &never, &ASK, ist_at(6, 8, 1)),
        Decision::Stored
    );
    assert_eq!(
        decide(Some(&old), &never, &ASK, ist_at(6, 8, 4)),
        Decision::LoginsOff(Why::Expired)
    );
    assert_eq!(
        decide(None, &never, &ASK, ist_at(6, 8, 4)),
        Decision::LoginsOff(Why::NoToken)
    );
    let forced = Ask { force: true, ..ASK };
    assert_eq!(
        decide(Some(&old), &never, &forced, ist_at(6, 8, 1)),
        Decision::LoginsOff(Why::Forced)
    );
}

#[test]
fn a_daemon_is_asked_unless_the_caller_forces_or_reports_a_token() {
    let t = minted(ist_at(6, 9, 0));
    assert!(asks_daemon(&ASK));
    assert!(!asks_daemon(&Ask { force: true, ..ASK }));
    assert!(!asks_daemon(&Ask {
        refused: Some(&t),
        ..ASK
    }));
}

#[test]
fn the_daemons_token_is_taken_inside_this_hosts_margin_and_after_its_login_time() {
    let eager = Rules {
        margin: chrono::Duration::hours(24),
        ..daily("08:00")
    };
    // Minted yesterday before the login time, an hour left: this host would replace
    // its own token (twice over), and takes the daemon's.
    let t = minted(ist_at(5, 7, 0));
    let now = ist_at(6, 6, 0);
    assert!(matches!(
        decide(Some(&t), &eager, &ASK, now),
        Decision::Replace(Why::BeforeLoginAt(_))
    ));
    assert!(takes_daemons(&t, &eager, &ASK, now));
    // Dead at 07:00: not for a caller that needs it until 07:30, nor once expired.
    let until = |hhmm: &str| Ask {
        valid_until: Some(hhmm.parse().unwrap()),
        ..ASK
    };
    assert!(takes_daemons(&t, &eager, &until("06:45"), now));
    assert!(!takes_daemons(&t, &eager, &until("07:30"), now));
    assert!(!takes_daemons(&t, &eager, &ASK, ist_at(6, 7, 0)));
    // Forced or refused asks never reach the daemon; were they passed, the daemon's
    // schedule would still decide, not this caller's force.
    assert!(takes_daemons(&t, &eager, &Ask { force: true, ..ASK }, now));
    // A host that never logs in takes a live token whatever it needs it until.
    let never = Rules {
        logins: Logins::Never,
        ..eager
    };
    assert!(takes_daemons(&t, &never, &until("07:30"), now));
}

/// What the owner read: `token`, renewable, no TOTP step; not waited, not taken over.
fn owned(token: Option<&Token>) -> Owned<'_> {
    Owned {
        token,
        renewable: true,
        totp_last_step: None,
        waited_since: None,
        took_over: false,
    }
}

fn obtain<'a>(p: OwnerPlan<'a>) -> Obtain<'a> {
    match p {
        OwnerPlan::Obtain(go) => go,
        other => panic!("not a login: {other:?}"),
    }
}

#[test]
fn a_known_daemon_is_asked_first_and_its_token_taken_when_it_does() {
    let rules = daily("08:00");
    let now = ist_at(6, 9, 0);
    let known = Facts {
        daemon: Daemon::Known,
        ..Facts::default()
    };
    assert_eq!(plan(&known, &rules, &ASK, now), Plan::AskDaemon);
    // Forcing or reporting a refused token logs in here, as asked.
    let forced = Ask { force: true, ..ASK };
    assert_eq!(plan(&known, &rules, &forced, now), Plan::Own(Why::Forced));
    let t = minted(ist_at(6, 8, 1));
    let refused = Ask {
        refused: Some(&t),
        ..ASK
    };
    assert_eq!(plan(&known, &rules, &refused, now), Plan::ReadStore);
    // No daemon known: the store.
    assert_eq!(plan(&Facts::default(), &rules, &ASK, now), Plan::ReadStore);

    let answered = |t| Facts {
        daemon: Daemon::Answered(t),
        ..Facts::default()
    };
    assert_eq!(
        plan(&answered(Some(&t)), &rules, &ASK, now),
        Plan::TakeDaemons(&t)
    );
    // No answer, or a token that dies before the time asked for: the store.
    assert_eq!(plan(&answered(None), &rules, &ASK, now), Plan::ReadStore);
    let until = Ask {
        valid_until: Some("08:30".parse().unwrap()),
        ..ASK
    };
    assert_eq!(
        plan(&answered(Some(&t)), &rules, &until, now),
        Plan::ReadStore
    );
}

#[test]
fn before_owning_the_stored_token_is_handed_out_refused_or_sent_to_the_owner() {
    let rules = daily("08:00");
    let t = minted(ist_at(6, 8, 1));
    let read = |t| Facts {
        stored: Some(t),
        ..Facts::default()
    };
    assert_eq!(
        plan(&read(Some(&t)), &rules, &ASK, ist_at(6, 9, 0)),
        Plan::HandOut(&t)
    );
    assert_eq!(
        plan(&read(Some(&t)), &rules, &ASK, ist_at(7, 8, 0)),
        Plan::Own(Why::BeforeLoginAt(ist_at(7, 8, 0)))
    );
    assert_eq!(
        plan(&read(None), &rules, &ASK, ist_at(6, 9, 0)),
        Plan::Own(Why::NoToken)
    );
    let never = Rules {
        logins: Logins::Never,
        ..rules
    };
    assert_eq!(
        plan(&read(None), &never, &ASK, ist_at(6, 9, 0)),
        Plan::LoginsOff(Why::NoToken)
    );
    // A forced login owns the profile without reading the store first; a host that
    // never logs in reads it, to refuse.
    let forced = Ask { force: true, ..ASK };
    assert_eq!(
        plan(&Facts::default(), &rules, &forced, ist_at(6, 9, 0)),
        Plan::Own(Why::Forced)
    );
    assert_eq!(
        plan(&Facts::default(), &never, &forced, ist_at(6, 9, 0)),
        Plan::ReadStore
    );
    assert_eq!(
        plan(&read(Some(&t)), &never, &forced, ist_at(6, 9, 0)),
        Plan::LoginsOff(Why::Forced)
    );
}

#[test]
fn an_owner_that_waited_takes_the_token_the_login_before_it_made() {
    let rules = daily("08:00");
    let started = ist_at(6, 9, 0);
    let theirs = minted(ist_at(6, 9, 1));
    let forced = Ask { force: true, ..ASK };
    let waited = Owned {
        waited_since: Some(started),
        ..owned(Some(&theirs))
    };
    assert_eq!(
        as_owner(&waited, &rules, &forced, ist_at(6, 9, 2)),
        OwnerPlan::HandOut(&theirs)
    );
    // Without waiting, the stored token is not the login it came for.
    assert_eq!(
        obtain(as_owner(
            &owned(Some(&theirs)),
            &rules,
            &forced,
            ist_at(6, 9, 2)
        ))
        .why,
        Why::Forced
    );
    // A token from before the wait began is not one made for it.
    let older = Owned {
        waited_since: Some(ist_at(6, 9, 5)),
        ..waited
    };
    assert_eq!(
        obtain(as_owner(&older, &rules, &forced, ist_at(6, 9, 6))).why,
        Why::Forced
    );
    let never = Rules {
        logins: Logins::Never,
        ..rules
    };
    assert_eq!(
        as_owner(&owned(None), &never, &ASK, started),
        OwnerPlan::LoginsOff(Why::NoToken)
    );
}

#[test]
fn an_owner_that_took_over_counts_the_current_totp_step_as_spent() {
    let rules = daily("08:00");
    let now = ist_at(6, 9, 0);
    let step = now.timestamp().div_euclid(30);
    let before = Owned {
        totp_last_step: Some(step - 10),
        ..owned(None)
    };
    assert_eq!(
        obtain(as_owner(&before, &rules, &ASK, now)).totp_floor,
        Some(step - 10)
    );
    let took_over = Owned {
        took_over: true,
        ..before
    };
    assert_eq!(
        obtain(as_owner(&took_over, &rules, &ASK, now)).totp_floor,
        Some(step)
    );
    // Never lowered: a later step already recorded stays.
    let ahead = Owned {
        totp_last_step: Some(step + 1),
        ..took_over
    };
    assert_eq!(
        obtain(as_owner(&ahead, &rules, &ASK, now)).totp_floor,
        Some(step + 1)
    );
    assert_eq!(spent_step_floor(None, now), Some(step));
    assert_eq!(spent_step_floor(Some(step - 3), now), Some(step));
}

#[test]
fn renew_is_tried_only_on_a_live_self_token_dhan_did_not_refuse() {
    let mut t = minted(ist_at(5, 10, 0));
    t.kind = TokenKind::SelfWeb;
    let now = ist_at(6, 9, 0);
    fn renew<'a>(o: &Owned<'a>, now: DateTime<Utc>) -> Renewal<'a> {
        let rules = Rules {
            margin: chrono::Duration::hours(2),
            ..no_schedule()
        };
        obtain(as_owner(o, &rules, &ASK, now)).renew
    }
    assert_eq!(renew(&owned(Some(&t)), now), Renewal::Try(&t));
    // A token of unknown kind is tried: only the claim APP says Dhan refuses.
    let mut unknown = t.clone();
    unknown.kind = TokenKind::Unknown;
    assert_eq!(renew(&owned(Some(&unknown)), now), Renewal::Try(&unknown));
    let skipped = [
        (renew(&owned(None), now), NoRenewal::NoToken),
        (
            renew(&owned(Some(&t)), ist_at(6, 10, 0)),
            NoRenewal::Expired,
        ),
        (
            renew(
                &Owned {
                    renewable: false,
                    ..owned(Some(&t))
                },
                now,
            ),
            NoRenewal::RefusedBefore,
        ),
    ];
    for (got, want) in skipped {
        assert_eq!(got, Renewal::Skip(want));
    }
    let mut app = t.clone();
    app.kind = TokenKind::App;
    assert_eq!(
        renew(&owned(Some(&app)), now),
        Renewal::Skip(NoRenewal::AppToken)
    );
    // The chain's report says these words (tests match some of them).
    assert_eq!(NoRenewal::NoToken.to_string(), "no stored token to renew");
    assert_eq!(
        NoRenewal::Expired.to_string(),
        "the stored token has expired; Dhan renews only live tokens"
    );
    assert_eq!(
        NoRenewal::AppToken.to_string(),
        "the stored token was made by an API login (APP): Dhan renews only Dhan Web (SELF) tokens"
    );
    assert_eq!(
        NoRenewal::RefusedBefore.to_string(),
        "Dhan refused to renew this token before"
    );
}

#[test]
fn only_dhans_refusal_to_renew_stops_later_renewals() {
    let t = minted(ist_at(6, 8, 1));
    let now = ist_at(6, 9, 0);
    let renewable_after = |renewable, renew_failed| {
        after_failure(
            Why::Forced,
            Some(&t),
            renewable,
            renew_failed,
            ErrorClass::Transient,
            now,
        )
        .renewable
    };
    assert!(renewable_after(true, None), "renew not tried or worked");
    assert!(renewable_after(true, Some(ErrorClass::Transient)));
    assert!(renewable_after(true, Some(ErrorClass::RateLimited)));
    for refusal in [ErrorClass::UnexpectedBody, ErrorClass::TokenInvalid] {
        assert!(!renewable_after(true, Some(refusal)), "{refusal:?}");
    }
    assert!(!renewable_after(false, None), "a refusal before stays");
}

#[test]
fn after_a_failure_the_old_token_is_handed_out_only_when_due_for_the_schedule_and_waiting_may_help()
{
    let t = minted(ist_at(5, 8, 3));
    let now = ist_at(6, 8, 1);
    let handed = |why, stored, failed, now| {
        after_failure(why, stored, true, None, failed, now).hand_out_stored
    };
    let due = Why::BeforeLoginAt(ist_at(6, 8, 0));
    for why in [due, Why::WithinMargin] {
        assert!(handed(why, Some(&t), ErrorClass::Transient, now), "{why}");
        assert!(handed(why, Some(&t), ErrorClass::RateLimited, now), "{why}");
        // A rejection or a configuration error is the user's to see.
        for class in [ErrorClass::CredentialRejected, ErrorClass::Config] {
            assert!(!handed(why, Some(&t), class, now), "{why} {class:?}");
        }
        // Dead meanwhile, or nothing stored.
        assert!(!handed(
            why,
            Some(&t),
            ErrorClass::Transient,
            ist_at(6, 8, 3)
        ));
        assert!(!handed(why, None, ErrorClass::Transient, now));
    }
    // Asked for, needed until later, refused by Dhan, expired: never.
    for why in [
        Why::Forced,
        Why::DiesBefore(ist_at(6, 15, 30)),
        Why::Refused,
        Why::Expired,
        Why::NoToken,
    ] {
        assert!(!handed(why, Some(&t), ErrorClass::Transient, now), "{why}");
    }
}

#[test]
fn a_caller_that_does_not_log_in_is_served_until_the_owners_daily_login() {
    let t = minted(ist_at(5, 8, 3));
    // Due for the daily login at 08:00 but alive until 08:03: served.
    assert!(serves_cached(&t, &daily("08:00"), ist_at(6, 8, 1)));
    assert!(serves_cached(&t, &daily("08:00"), ist_at(6, 7, 0)));
    assert!(!serves_cached(&t, &daily("08:00"), ist_at(6, 8, 3)));
    // Inside the margin without a daily login time: not served.
    assert!(!serves_cached(&t, &no_schedule(), ist_at(6, 7, 40)));
    assert!(serves_cached(&t, &no_schedule(), ist_at(6, 7, 0)));
}

#[test]
fn a_report_is_answered_by_a_live_token_stored_since() {
    let reported = minted(ist_at(6, 8, 1));
    let newer = minted(ist_at(6, 9, 0));
    let now = ist_at(6, 9, 5);
    assert!(replaced_meanwhile(&newer, &reported, now));
    assert!(!replaced_meanwhile(&reported, &reported, now), "the same");
    assert!(
        !replaced_meanwhile(&newer, &reported, ist_at(7, 9, 0)),
        "dead by now"
    );
}

#[test]
fn only_a_refusal_makes_a_checked_token_dead() {
    assert_eq!(verdict(None), Some(Verdict::Alive));
    assert_eq!(
        verdict(Some(ErrorClass::TokenInvalid)),
        Some(Verdict::Replaced)
    );
    for passing in [ErrorClass::Transient, ErrorClass::RateLimited] {
        assert_eq!(verdict(Some(passing)), Some(Verdict::Unverified));
    }
    for other in [ErrorClass::Config, ErrorClass::UnexpectedBody] {
        assert_eq!(verdict(Some(other)), None, "{other:?}");
    }
}

#[cfg(feature = "serve")]
#[test]
fn the_daily_login_stays_anchored_day_after_day() {
    let at: IstTime = "08:00".parse().unwrap();
    let mut obtained = ist_at(1, 8, 4);
    for day in 2..=20 {
        let due = daily_login_after(at, obtained);
        assert_eq!(due, ist_at(day, 8, 0));
        // The daemon logs in a few minutes after the time (its jitter).
        obtained = due + chrono::Duration::minutes(4);
    }
}
