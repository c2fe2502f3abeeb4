//! A database of its own for each test, on the throwaway PostgreSQL that
//! scripts/with-postgres starts and names in DHAN_LOGIN_TEST_PG_URL.

/// The server's superuser URL, or None (said on stderr) when DHAN_LOGIN_SKIP_PG_TESTS=1.
/// Without either, the test fails: a PostgreSQL test never skips itself silently.
pub fn admin_url() -> Option<String> {
    if let Ok(url) = std::env::var("DHAN_LOGIN_TEST_PG_URL")
        && !url.is_empty()
    {
        return Some(url);
    }
    if std::env::var("DHAN_LOGIN_SKIP_PG_TESTS").as_deref() == Ok("1") {
        use std::io::Write;
        // Straight to stderr: the test harness would swallow eprintln! of a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "PostgreSQL test skipped because DHAN_LOGIN_SKIP_PG_TESTS=1"
        );
        return None;
    }
    panic!(
        "DHAN_LOGIN_TEST_PG_URL is not set: run the tests through scripts/with-postgres \
         (scripts/test does), or set DHAN_LOGIN_SKIP_PG_TESTS=1 to skip the PostgreSQL tests"
    );
}

/// The URL of a new, empty database.
pub async fn database() -> Option<String> {
    let admin = admin_url()?;
    let name = format!("dl_test_{:016x}", rand::random::<u64>());
    let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .expect("connect to the test server");
    tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&name);
    Some(url.to_string())
}

/// A fresh store key (32 random bytes, base64) in `dir`.
pub fn key_file(dir: &std::path::Path) -> std::path::PathBuf {
    use base64::Engine;
    let path = dir.join("store.key");
    std::fs::write(
        &path,
        base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>()),
    )
    .unwrap();
    path
}
