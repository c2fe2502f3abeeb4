//! The token store: private files, atomic replacement, corrupt files kept aside.

use std::os::unix::fs::PermissionsExt;

use chrono::Utc;
use dhan_login::{
    SourceKind, Token,
    store::{ProfileState, StoreError, TokenStore},
};

fn state_with(value: &str) -> ProfileState {
    ProfileState {
        token: Some(
            Token::from_grant(
                value,
                Some("1100000042"),
                Some("2030-01-01T00:00:00"),
                SourceKind::Totp,
                Utc::now(),
            )
            .unwrap(),
        ),
        renewable: true,
        updated_at: Some(Utc::now()),
        ..Default::default()
    }
}

#[test]
fn saved_state_is_private_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let store = TokenStore::new(dir.path());
    let state = state_with("token.one.1");
    store.save("default", &state).unwrap();
    let path = store.path("default").unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "file mode {mode:o}");
    let dir_mode = std::fs::metadata(path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700, "dir mode {dir_mode:o}");
    assert_eq!(store.load("default").unwrap(), state);
}

#[test]
fn a_missing_file_is_an_empty_renewable_state() {
    let dir = tempfile::tempdir().unwrap();
    let state = TokenStore::new(dir.path()).load("default").unwrap();
    assert!(state.token.is_none());
    assert!(state.renewable);
}

#[test]
fn replacement_is_atomic_for_a_concurrent_reader() {
    let dir = tempfile::tempdir().unwrap();
    let store = TokenStore::new(dir.path());
    store.save("p", &state_with("a.a.a")).unwrap();
    let path = store.path("p").unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut reads = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let bytes = std::fs::read(&path).unwrap();
                let parsed: Result<ProfileState, _> = serde_json::from_slice(&bytes);
                assert!(parsed.is_ok(), "torn read after {reads} reads");
                reads += 1;
            }
            reads
        })
    };
    for i in 0..300 {
        // Values of different lengths, so a torn write would show.
        store
            .save("p", &state_with(&format!("x.x.{}", "x".repeat(1 + i % 97))))
            .unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let reads = reader.join().unwrap();
    assert!(reads > 0);
    // No temp files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("tokens"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn a_corrupt_file_is_moved_aside_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = TokenStore::new(dir.path());
    store.save("default", &state_with("a.a.a")).unwrap();
    let path = store.path("default").unwrap();
    std::fs::write(&path, b"{\"token\": {\"access_token\": \"half").unwrap();
    let err = store.load("default").err().unwrap();
    let StoreError::Corrupt { moved_to, .. } = &err else {
        panic!("expected Corrupt, got {err}");
    };
    assert!(moved_to.exists());
    assert!(!path.exists());
    let text = err.to_string();
    assert!(
        text.contains("corrupt") && text.contains("moved aside"),
        "{text}"
    );
    assert!(
        !text.contains("half"),
        "the message must not quote the content: {text}"
    );
    // The next load starts clean.
    assert!(store.load("default").unwrap().token.is_none());
}

#[test]
fn profile_names_cannot_escape_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let store = TokenStore::new(dir.path());
    for bad in ["../x", "a/b", "", ".hidden"] {
        assert!(
            matches!(store.path(bad), Err(StoreError::BadProfileName(_))),
            "{bad}"
        );
    }
}
