//! One owner per client id: two profiles that resolve to one client id would log each
//! other out (Dhan keeps one live token per client), so `serve` and `config check` refuse
//! them, naming both.

use dhan_login::mock::Endpoint;

use common::Stand;

use crate::common;
use dhan_login::ErrorClass;

const TWO_PROFILES: &str = "[profiles.alpha]\n[profiles.beta]\n";

/// The stand-in's account in the environment: `DHAN_CLIENT_ID` applies to both profiles.
async fn two_profiles_one_client() -> Stand {
    let stand = Stand::start().await;
    stand.sandbox.write_config(TWO_PROFILES);
    stand
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_all_refuses_two_profiles_on_one_client_id_naming_both() {
    let stand = two_profiles_one_client().await;
    let mut cmd = stand.cli(["serve", "--all", "--listen", "127.0.0.1:0"]);
    cmd.env("DHAN_LOGIN_CONFIG", stand.sandbox.config_path());
    let run = common::run(cmd, None).await;
    run.assert_class(ErrorClass::Config);
    assert!(
        run.stderr.contains("`alpha`") && run.stderr.contains("`beta`"),
        "{run}"
    );
    assert!(
        run.stderr.contains(&stand.server.account().client_id),
        "{run}"
    );
    assert_eq!(stand.server.calls(Endpoint::GenerateAccessToken), 0);
    assert_eq!(stand.server.logins(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn config_check_names_the_other_profile_on_the_same_client_id() {
    let stand = two_profiles_one_client().await;
    let mut cmd = stand.cli(["--profile", "alpha", "config", "check"]);
    cmd.env("DHAN_LOGIN_CONFIG", stand.sandbox.config_path());
    let run = common::run(cmd, None).await;
    run.assert_class(ErrorClass::Config);
    assert!(run.stderr.contains("`beta`"), "{run}");

    // Each profile on a client id of its own: nothing to say about client ids.
    let own = format!(
        "[profiles.alpha]\nclient_id = \"{}\"\n[profiles.beta]\nclient_id = \"1100000099\"\n",
        stand.server.account().client_id
    );
    stand.sandbox.write_config(&own);
    let mut cmd = stand.cli(["--profile", "alpha", "config", "check"]);
    cmd.env("DHAN_LOGIN_CONFIG", stand.sandbox.config_path())
        .env_remove("DHAN_CLIENT_ID");
    let run = common::run(cmd, None).await;
    run.assert_ok();
}
