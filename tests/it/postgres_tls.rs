//! TLS to the state database: a cluster of the test's own with `ssl=on`, a CA and a
//! server certificate made at test time with openssl, and a pg_hba that only accepts TLS
//! (`hostssl`), so a connection that works went over TLS.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chrono::Utc;
use dhan_login::{
    ErrorClass, Paths, Profile, SourceKind, Token,
    store::{ProfileState, StateBackend},
};

use crate::common;
use common::cli::exit_of;

/// In every URL: trust auth ignores it, and no error may show it.
const PASSWORD: &str = "Sup3rTlsStorePw";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("/usr/bin/openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run /usr/bin/openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`{name}.pem`, `{name}.key`).
fn ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

/// Certificates and a pg_hba for the cluster, readable by the user it runs as.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn make() -> Files {
        let dir = tempfile::Builder::new()
            .prefix("dhan-login-pg-tls-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        ca(d, "ca");
        ca(d, "other-ca");
        // The server's certificate names `localhost` only, not 127.0.0.1.
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(
            d,
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-subj",
                "/CN=localhost",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
        );
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "server.pem",
            ],
        );
        std::fs::write(
            d.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostssl all all ::1/128 trust\n",
        )
        .unwrap();
        // PostgreSQL refuses a key others can read.
        std::fs::set_permissions(d.join("server.key"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        if let Ok(owner) = std::env::var("DHAN_LOGIN_TEST_PG_OWNER")
            && !owner.is_empty()
        {
            let status = Command::new("chown")
                .args(["-R", &owner])
                .arg(d)
                .status()
                .unwrap();
            assert!(status.success(), "chown {owner}");
        }
        Files { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    fn settings(&self) -> Vec<String> {
        vec![
            "ssl=on".into(),
            format!("ssl_cert_file={}", self.path("server.pem")),
            format!("ssl_key_file={}", self.path("server.key")),
            format!("hba_file={}", self.path("pg_hba.conf")),
        ]
    }
}

/// A state backend on `url`, with a state folder and key of its own.
struct Machine {
    backend: StateBackend,
    _state: tempfile::TempDir,
}

fn machine(url: &str) -> Machine {
    let state = tempfile::tempdir().unwrap();
    let config: PathBuf = state.path().join("config.toml");
    std::fs::write(&config, "").unwrap();
    let key = common::pg::key_file(state.path());
    let env = [
        ("DHAN_LOGIN_STORE_URL", url.to_owned()),
        (
            "DHAN_LOGIN_STORE_KEY_FILE",
            key.to_string_lossy().into_owned(),
        ),
        (
            "DHAN_LOGIN_STATE_DIR",
            state.path().to_string_lossy().into_owned(),
        ),
        ("DHAN_LOGIN_CONFIG", config.to_string_lossy().into_owned()),
    ];
    let lookup = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    let paths = Paths::from_env(&lookup).unwrap();
    let p = Profile::load("default", &paths, &lookup).unwrap();
    Machine {
        backend: StateBackend::for_settings(&p.state_dir, &p.store),
        _state: state,
    }
}

/// Stores a token for profile `p` and reads it back.
async fn round_trip(url: &str, value: &str) -> Result<(), String> {
    let m = machine(url);
    let b = &m.backend;
    let owner = b
        .own("p", Duration::from_secs(10))
        .await
        .map_err(|e| e.to_string())?;
    let state = ProfileState {
        token: Some(
            Token::from_grant(
                value,
                Some("1100000001"),
                Some("2099-01-01T00:00:00"),
                SourceKind::Totp,
                Utc::now(),
            )
            .unwrap(),
        ),
        renewable: true,
        ..Default::default()
    };
    b.save("p", &state, Some(&owner))
        .await
        .map_err(|e| e.to_string())?;
    drop(owner);
    let read = b.load("p").await.map_err(|e| e.to_string())?;
    assert_eq!(
        read.token.expect("the token stored").access_token.secret(),
        value
    );
    Ok(())
}

/// The refusal of `url`: its message, checked to hold no password, and its class: a
/// certificate problem is transient, a refusal by the server's pg_hba (the fix is the
/// user's: sslmode or the server's rules) a configuration error.
async fn refusal(url: &str) -> String {
    refusal_as(url, ErrorClass::Transient).await
}

async fn refusal_as(url: &str, class: ErrorClass) -> String {
    let m = machine(url);
    let e = m
        .backend
        .load("p")
        .await
        .expect_err("this connection must be refused");
    let shown = e.to_string();
    assert!(!shown.contains(PASSWORD), "the password shows: {shown}");
    assert_eq!(e.class(), class, "{shown}");
    shown
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_speaks_tls_and_checks_the_certificate_as_sslmode_says() {
    let files = Files::make();
    let settings = files.settings();
    let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
    let Some(cluster) = common::pg::Cluster::start(&settings) else {
        return;
    };
    let port = cluster
        .url()
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next().map(str::to_owned))
        .unwrap();
    let url = |host: &str, query: &str| {
        format!("postgres://postgres:{PASSWORD}@{host}:{port}/postgres?{query}")
    };
    let ca = files.path("ca.pem");
    let other = files.path("other-ca.pem");

    // pg_hba takes TLS only: in clear, the server refuses.
    let plain = tokio_postgres::connect(&url("127.0.0.1", ""), tokio_postgres::NoTls).await;
    let plain = plain.err().expect("a connection in clear must be refused");
    let plain = format!("{plain:?}");
    assert!(plain.contains("no encryption"), "{plain}");
    let shown = refusal_as(&url("127.0.0.1", "sslmode=disable"), ErrorClass::Config).await;
    assert!(shown.contains("no encryption"), "sslmode=disable: {shown}");

    // verify-full with the right CA and the name in the certificate.
    round_trip(
        &url(
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        ),
        "eyJ.verify-full.token",
    )
    .await
    .expect("verify-full with the right CA");

    // A CA that did not sign the server's certificate.
    let shown = refusal(&url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={other}"),
    ))
    .await;
    assert!(
        shown.contains(&format!(
            "the server's certificate is not signed by the CA in sslrootcert={other}"
        )),
        "wrong CA: {shown}"
    );
    let shown = refusal(&url(
        "localhost",
        &format!("sslmode=require&sslrootcert={other}"),
    ))
    .await;
    assert!(
        shown.contains("is not signed by"),
        "require + wrong CA: {shown}"
    );

    // The certificate names `localhost`, not 127.0.0.1: verify-full refuses, verify-ca
    // (which checks the chain only) connects.
    let shown = refusal(&url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .await;
    assert!(
        shown.contains("the server's certificate is not for host `127.0.0.1`"),
        "host name mismatch: {shown}"
    );
    round_trip(
        &url("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}")),
        "eyJ.verify-ca.token",
    )
    .await
    .expect("verify-ca checks no host name");

    // require and prefer (the default) encrypt without checking the certificate.
    round_trip(&url("127.0.0.1", "sslmode=require"), "eyJ.require.token")
        .await
        .expect("sslmode=require");
    round_trip(&url("127.0.0.1", "application_name=x"), "eyJ.prefer.token")
        .await
        .expect("no sslmode: prefer");
    drop(cluster);
}

/// A `[store] url` that cannot work as written is a config error (exit 2) naming the
/// field, and never shows the password.
#[test]
fn a_bad_tls_setting_is_a_config_error_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let key = common::pg::key_file(dir.path());
    for (query, expected) in [
        (
            "sslmode=verify-everything",
            "[store] url: sslmode=verify-everything is not one of",
        ),
        (
            "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
            "[store] url: sslrootcert=/nonexistent/ca.pem",
        ),
        (
            "sslmode=disable&sslrootcert=/ca.pem",
            "[store] url: sslrootcert= is given but sslmode=disable",
        ),
    ] {
        let url = format!("postgres://dhan:{PASSWORD}@127.0.0.1:1/dhan?{query}");
        let (code, all) = common::pg::run_on_store(&["-vvv", "token"], dir.path(), &url, &key);
        assert_eq!(code, Some(exit_of(ErrorClass::Config)), "{query}: {all}");
        assert!(all.contains(expected), "{query}: {all}");
        assert!(
            !all.contains(PASSWORD),
            "{query} printed the password: {all}"
        );
    }
}
