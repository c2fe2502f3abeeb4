//! What the binary's tests share: its exit code per class of failure and what a printed
//! token looks like.

use dhan_login::ErrorClass;

use super::{Run, jwt_claims};

/// The binary's exit code for a failure of `class`: the library's table, which README
/// and `--help` document.
pub fn exit_of(class: ErrorClass) -> i32 {
    i32::from(class.exit_code())
}

/// The single token line `token` / `login` / `renew` print, checked to be JWT-shaped.
#[track_caller]
pub fn printed_token(run: &Run) -> String {
    run.assert_ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "expected exactly one line (the token):\n{run}"
    );
    let token = lines[0].to_owned();
    assert!(
        jwt_claims(&token).is_some(),
        "stdout is not a JWT-shaped token:\n{run}"
    );
    token
}

/// A loopback port nobody listens on: bound, then released.
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let port = listener.local_addr().expect("its address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}
