//! `dhan-login ip`: the static IP whitelist, read and changed with the live token, and
//! the last answer kept in the state folder for `status`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use dhan_login::{
    ErrorClass, Request, TokenManager,
    api::{IpFlag, StaticIps},
};
use serde::{Deserialize, Serialize};

use crate::cli::{IpAction, IpSlot};
use crate::interrupt::interruptible;
use crate::output::StepPrinter;

/// What `ip show` last saw, kept for `status` (which sends no request).
#[derive(Debug, Serialize, Deserialize)]
pub struct Seen {
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub ips: StaticIps,
}

fn seen_file(m: &TokenManager) -> PathBuf {
    let p = m.profile();
    p.state_dir.join("ip").join(format!("{}.json", p.name))
}

/// The last whitelist seen for this profile; None when never asked or unreadable.
pub fn last_seen(m: &TokenManager) -> Option<Seen> {
    let text = std::fs::read_to_string(seen_file(m)).ok()?;
    serde_json::from_str(&text).ok()
}

fn remember(path: &Path, ips: &StaticIps) -> Result<()> {
    let dir = path.parent().context("the state folder has no parent")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let seen = Seen {
        at: Utc::now(),
        ips: ips.clone(),
    };
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer(&mut file, &seen)?;
    file.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// `m` asks a running daemon first, as `token` does.
pub async fn run(m: &TokenManager, action: IpAction, quiet: bool) -> Result<u8> {
    let progress = StepPrinter::for_terminal(quiet);
    let mut got = interruptible(m.token(&Request::default(), progress.as_ref())).await??;
    let json = matches!(action, IpAction::Show { json: true });
    let write = match action {
        IpAction::Show { .. } => None,
        IpAction::Set(w) => Some((false, w)),
        IpAction::Modify(w) => Some((true, w)),
    };
    let api = m.api();
    let ips = loop {
        let token = got.token.access_token.secret();
        let result = async {
            if let Some((modify, w)) = &write {
                let flag = match w.slot {
                    IpSlot::Primary => IpFlag::Primary,
                    IpSlot::Secondary => IpFlag::Secondary,
                };
                let addr = w.addr.to_string();
                let said = if *modify {
                    api.modify_ip(token, &got.token.client_id, flag, &addr)
                        .await?
                } else {
                    api.set_ip(token, &got.token.client_id, flag, &addr).await?
                };
                if !quiet {
                    eprintln!(
                        "{}",
                        said.unwrap_or_else(|| format!("{flag} IP is now {addr}"))
                    );
                }
            }
            api.get_ip(token).await
        }
        .await
        .map_err(dhan_login::Error::from);
        match result {
            // A cached token can be ended elsewhere (a login on Dhan Web): report it as
            // refused, which replaces it unless another process already has, and ask
            // once more. A write refused with it was not applied.
            Err(e) if got.cached && e.class() == ErrorClass::TokenInvalid => {
                tracing::warn!("Dhan rejected the cached token ({e}); obtaining a new one");
                let again = Request {
                    refused: Some(got.token.clone()),
                    ..Request::default()
                };
                got = interruptible(m.token(&again, progress.as_ref())).await??;
            }
            other => break other.context("Dhan's static IP call failed")?,
        }
    };
    if let Err(e) = remember(&seen_file(m), &ips) {
        tracing::warn!("the whitelist is not kept for `status`: {e:#}");
    }
    if json {
        println!("{}", serde_json::to_string(&ips)?);
    } else {
        print!("{}", describe(&ips));
    }
    Ok(0)
}

/// Two lines, one per slot, with the day each may change.
pub fn describe(ips: &StaticIps) -> String {
    let slot = |ip: &Option<String>, from: &Option<chrono::NaiveDate>| match (ip, from) {
        (Some(ip), Some(d)) => format!("{ip} (may change from {d})"),
        (Some(ip), None) => ip.clone(),
        (None, _) => "none".to_owned(),
    };
    format!(
        "primary:    {}\nsecondary:  {}\n",
        slot(&ips.primary, &ips.modify_date_primary),
        slot(&ips.secondary, &ips.modify_date_secondary)
    )
}
