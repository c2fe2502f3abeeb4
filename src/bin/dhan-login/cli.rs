//! Command-line interface: every command with an example in its help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use dhan_login::decide::IstTime;

#[derive(Debug, Parser)]
#[command(
    name = "dhan-login",
    version,
    about = "Gets a DhanHQ API access token without a human in the loop, and keeps it alive.",
    long_about = "Gets a DhanHQ API access token without a human in the loop, and keeps it alive.\n\n\
        The cheapest path wins: a cached token, then RenewToken, then PIN + TOTP, then a \
        headless browser on the consent page, then a manual login.",
    after_help = "Examples:\n  dhan-login demo                          # full login against a local stand-in of Dhan\n  \
        dhan-login token                         # print a valid token, logging in only if needed\n  \
        dhan-login exec -- python bot.py         # run a program with DHAN_ACCESS_TOKEN set\n\n\
        Exit codes: 0 ok, 1 other error, 2 usage or configuration error, 3 credentials rejected,\n\
        4 daily consent limit reached, 5 network or temporary failure (retry later),\n\
        6 no live token and logins are off on this host (login = \"never\")."
)]
pub struct Cli {
    /// Profile to use (a [profiles.NAME] table of the config file).
    #[arg(
        long,
        short = 'p',
        global = true,
        env = "DHAN_LOGIN_PROFILE",
        default_value = "default"
    )]
    pub profile: String,

    /// Config file (default: ~/.config/dhan-login/config.toml).
    #[arg(long, global = true, env = "DHAN_LOGIN_CONFIG")]
    pub config: Option<PathBuf>,

    /// More logging on stderr: -v info, -vv debug, -vvv trace. Secrets are never logged.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// No progress lines and no warnings; errors only.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,

    /// Print step lines with timings on stderr even when it is not a terminal.
    #[arg(long, global = true, conflicts_with = "quiet")]
    pub progress: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a profile: asks in a terminal; else takes DHAN_* variables and flags.
    #[command(
        after_help = "Examples:\n  dhan-login init                      # asks, checks each value, hides secrets\n  \
            dhan-login --profile work init\n  \
            DHAN_CLIENT_ID=1100000042 DHAN_PIN=… DHAN_TOTP_SECRET=… dhan-login init --no-input\n\n\
            Other profiles and the comments of an existing file are kept. Ends by saying which\n\
            login paths the profile can use and the command to run next."
    )]
    Init(crate::init::InitArgs),

    /// Print a valid access token, obtaining one only if the cached one is about to expire.
    #[command(
        after_help = "Examples:\n  dhan-login token\n  dhan-login token --valid-until 15:30     # a token that lasts the session\n  dhan-login token --json | jq -r .expires_at\n  eval \"$(dhan-login token --env | sed 's/^/export /')\""
    )]
    Token(TokenArgs),

    /// Obtain a new token now, even if the cached one is still valid.
    #[command(
        after_help = "Examples:\n  dhan-login login\n  dhan-login login --via browser --json\n  dhan-login login --via manual     # open the consent page yourself"
    )]
    Login(LoginArgs),

    /// Renew the stored token with RenewToken (only tokens created on Dhan Web, while live).
    #[command(after_help = "Example:\n  dhan-login renew --json")]
    Renew(OutputArgs),

    /// Show the stored token's expiry, kind and source, and the last error. Never the token.
    #[command(
        after_help = "Examples:\n  dhan-login status\n  dhan-login --profile work status --json"
    )]
    Status {
        #[arg(long)]
        json: bool,
    },

    /// Store a token created on Dhan Web (read from stdin), after checking it with Dhan.
    #[command(
        after_help = "Examples:\n  dhan-login import            # paste the token, then Enter (not echoed)\n  dhan-login import < token.txt"
    )]
    Import,

    /// Allow automatic logins again after Dhan rejected the credentials (check them first).
    #[command(
        after_help = "Example:\n  dhan-login unlock     # after fixing or double-checking the PIN and TOTP secret\n\nA changed configuration (another PIN, TOTP secret, …) unlocks by itself."
    )]
    Unlock,

    /// Forget the stored token (Dhan keeps it valid until it expires).
    #[command(after_help = "Example:\n  dhan-login logout")]
    Logout,

    /// Run a program with DHAN_ACCESS_TOKEN and DHAN_CLIENT_ID in its environment.
    #[command(
        after_help = "Examples:\n  dhan-login exec -- python3 bot.py --live\n  dhan-login exec -- java -jar bot.jar\n  dhan-login exec --pass-env DHAN_API_BASE_URL -- node bot.js\n\nNo other DHAN_* variable reaches the program unless named with --pass-env (the\nlogin secrets never do). The program replaces dhan-login, so its exit code is the exit code."
    )]
    Exec {
        /// Also pass this DHAN_* variable to the program (repeatable). Every other one
        /// (store URL, webhook, OTP command…) is removed; the login secrets always are.
        #[arg(long = "pass-env", value_name = "NAME")]
        pass_env: Vec<String>,
        /// The program and its arguments (after `--`).
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },

    /// Show or set the static IPs Dhan's order APIs accept requests from (with the live token).
    #[command(
        after_help = "Examples:\n  dhan-login ip show\n  dhan-login ip set primary 203.0.113.7\n  \
            dhan-login ip modify secondary 2001:db8::7\n\n\
            Since April 2026 Dhan accepts orders only from a whitelisted IP (a primary and a\n\
            secondary one). `set` fills an empty slot, `modify` replaces one; Dhan then freezes\n\
            that slot for seven days (`ip show` says from when it may change again). Each call\n\
            uses the token `dhan-login token` would print, logging in only when needed."
    )]
    Ip {
        #[command(subcommand)]
        action: IpAction,
    },

    /// Check the configuration: names every missing or bad field. Reads each secret once.
    #[command(
        after_help = "Examples:\n  dhan-login config check\n  DHAN_LOGIN_CONFIG=./dhan.toml dhan-login --profile work config check"
    )]
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },

    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  dhan-login completions bash > /etc/bash_completion.d/dhan-login\n  dhan-login completions zsh > \"${fpath[1]}/_dhan-login\""
    )]
    Completions { shell: clap_complete::Shell },

    /// Run a local stand-in of auth.dhan.co and api.dhan.co (for tests and SDKs).
    #[command(
        after_help = "Examples:\n  dhan-login mock-server --port 8700\n  dhan-login mock-server | head -1 | jq .   # the demo account and base URLs\n  \
            dhan-login mock-server --accounts 30 | head -1 | jq '.accounts[].client_id'\n  \
            dhan-login mock-server --markup tel-boxes --submission auto --skip-totp\n  \
            dhan-login mock-server --markup password-pin --server-rendered --no-tracker\n\n\
            The first line of stdout is one JSON object describing the demo account (with the SMS OTP);\n\
            with --accounts N > 1 its `accounts` array lists every account (client id, mobile, PIN,\n\
            TOTP secret, API key and secret), the demo account first.\n\
            Without page flags the login page is the stand-in's closest reproduction of Dhan's:\n\
            <code-input> boxes, a masked PIN, buttons to submit, one scripted page, an analytics iframe.\n\
            The last example is the stand-in's first page, which the benchmarks measure.\n\
            fixtures/README.md (in the source) says what each variant follows and what is invented."
    )]
    MockServer(MockArgs),

    /// A full login against a built-in local stand-in of Dhan, printing each step and the token.
    #[command(
        after_help = "Examples:\n  dhan-login demo\n  dhan-login demo --skip-totp --submission auto\n  dhan-login demo --via-totp\n\n\
            The page flags pick the stand-in's login page, as for `dhan-login mock-server`."
    )]
    Demo {
        /// Use the PIN + TOTP API path instead of the browser.
        #[arg(long)]
        via_totp: bool,
        #[command(flatten)]
        page: PageArgs,
    },

    /// Check the browser path without logging in: the API key, and which screen the consent page shows.
    #[command(after_help = "Example:\n  dhan-login doctor\n\n\
            Gets a consent with generate-consent (reusing the pending one of an earlier attempt,\n\
            so at most one of the day's 25 is spent), opens the consent page in headless\n\
            Chromium and reports the screen the classifier sees and why. It types nothing: no\n\
            mobile number, code or PIN reaches Dhan, and the consent stays pending for the next\n\
            login. Exit 0 when the page shows the mobile screen a login starts on; 1 otherwise,\n\
            with a screenshot, the page and a step log saved for a bug report (secrets masked).")]
    Doctor {
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },

    /// Log in with the browser and save every screen met (scrubbed), to refresh fixtures.
    #[command(after_help = "Example:\n  dhan-login record --out ./recording")]
    Record {
        /// Folder for the screens' HTML and the selectors that matched.
        #[arg(long)]
        out: PathBuf,
    },

    /// Keep tokens fresh and hand them to other programs (files and a loopback endpoint).
    #[command(
        after_help = "Examples:\n  dhan-login serve --all\n  dhan-login serve work personal --listen 127.0.0.1:7787\n  \
            curl -H \"Authorization: Bearer $(cat ~/.local/state/dhan-login/serve.key)\" \\\n    \
            http://127.0.0.1:7787/v1/profiles/default/token\n\n\
            Refreshes each token ahead of expiry (renew first), writes it to a token file and an\n\
            env file per profile, and serves GET /v1/profiles/NAME/token, /v1/profiles, /healthz\n\
            and /metrics. SIGTERM or Ctrl-C stops it (exit 0). The first line of stdout is a JSON\n\
            object saying where it listens."
    )]
    Serve(ServeArgs),

    /// Print the man page (roff), or write one page per command into a folder.
    #[command(
        hide = true,
        after_help = "Examples:\n  dhan-login man | man -l -\n  dhan-login man --out ~/.local/share/man/man1"
    )]
    Man {
        /// Folder for dhan-login.1 and a page per subcommand.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Profiles to keep fresh (default: the --profile one).
    #[arg(value_name = "PROFILE", conflicts_with = "all")]
    pub profiles: Vec<String>,
    /// Every profile of the config file.
    #[arg(long)]
    pub all: bool,
    /// Address of the HTTP endpoint (default 127.0.0.1:7787, or serve.listen).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// Permit a --listen address other than loopback (the token route still needs the key).
    #[arg(long)]
    pub allow_remote: bool,
    /// Also serve the same routes on this Unix socket (mode 0600).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Validate the profile and list what is wrong.
    #[command(
        after_help = "Examples:\n  dhan-login config check\n  dhan-login --profile work --config ./dhan.toml config check"
    )]
    Check,
    /// Print where the config file and the state live.
    #[command(after_help = "Example:\n  dhan-login config path")]
    Path,
    /// Print the built-in page profile (words and hints the browser login reads the page with).
    #[command(
        after_help = "Example:\n  dhan-login config page-profile > ~/.config/dhan-login/selectors.toml\n\n\
            Edit the copy where Dhan's page says things differently, keep only the fields you\n\
            change, and set `browser.selectors` to its path. `dhan-login doctor` shows what the\n\
            page looks like to the driver with it."
    )]
    PageProfile,
}

#[derive(Debug, Subcommand)]
pub enum IpAction {
    /// Print the whitelisted IPs and when each may change (`GET /v2/ip/getIP`).
    #[command(after_help = "Examples:\n  dhan-login ip show\n  dhan-login ip show --json")]
    Show {
        /// Print {"primary","secondary","modify_date_primary","modify_date_secondary"}.
        #[arg(long)]
        json: bool,
    },
    /// Whitelist an address in an empty slot (`POST /v2/ip/setIP`).
    #[command(after_help = "Example:\n  dhan-login ip set primary 203.0.113.7")]
    Set(IpWrite),
    /// Replace the address of a slot, once Dhan allows it (`PUT /v2/ip/modifyIP`).
    #[command(after_help = "Example:\n  dhan-login ip modify primary 203.0.113.8")]
    Modify(IpWrite),
}

#[derive(Debug, Args)]
pub struct IpWrite {
    /// Which slot.
    #[arg(value_enum)]
    pub slot: IpSlot,
    /// The address (IPv4 or IPv6).
    pub addr: std::net::IpAddr,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum IpSlot {
    Primary,
    Secondary,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print {"access_token","client_id","expires_at","kind","source"}.
    #[arg(long, conflicts_with = "env")]
    pub json: bool,
    /// Print DHAN_ACCESS_TOKEN=… and DHAN_CLIENT_ID=… lines.
    #[arg(long)]
    pub env: bool,
    /// Also check the token with Dhan's profile endpoint (costs one request).
    #[arg(long)]
    pub verify: bool,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub output: OutputArgs,
    /// Replace a stored token that would expire before the next HH:MM (IST), for a
    /// one-off run that must last until then.
    #[arg(long, value_name = "HH:MM")]
    pub valid_until: Option<IstTime>,
    /// Dhan refused the token (DH-901): check it with Dhan's profile endpoint and get a
    /// new one only if it is dead; a live one is printed again. Asks the running serve
    /// when there is one.
    #[arg(long, conflicts_with = "verify")]
    pub rejected: bool,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Use only this way of logging in.
    #[arg(long, value_enum)]
    pub via: Option<Via>,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Show the browser window (debugging the browser login).
    #[arg(long)]
    pub headed: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Via {
    Renew,
    Totp,
    Browser,
    Manual,
}

#[derive(Debug, Args)]
pub struct MockArgs {
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Consents allowed per IST day before CONSENT_LIMIT_EXCEED.
    #[arg(long, default_value_t = 25)]
    pub consent_cap: u32,
    /// Accounts to serve: the demo account, then accounts 2..N, each with its own client
    /// id, mobile, PIN, TOTP secret and API key (its own consent cap and live token too).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub accounts: u32,
    /// Lifetime of issued tokens, in seconds.
    #[arg(long, default_value_t = 86_400)]
    pub token_lifetime_secs: u64,
    #[command(flatten)]
    pub page: PageArgs,
    /// Accept a TOTP code more than once (benchmarks that log in many times a minute).
    #[arg(long)]
    pub allow_totp_reuse: bool,
    /// Refuse a generateAccessToken attempt within this many seconds of the account's
    /// last one, restarting the wait, as Dhan does with its 2 minutes (0 = never).
    #[arg(long, default_value_t = 120)]
    pub mint_interval_secs: u64,
}

/// Which consent login page the stand-in serves.
#[derive(Debug, Args)]
#[command(next_help_heading = "Login page")]
pub struct PageArgs {
    /// The DOM of the code screens.
    #[arg(long, value_enum, default_value = "code-input")]
    pub markup: MarkupArg,
    /// How a code screen sends its code.
    #[arg(long, value_enum, default_value = "button")]
    pub submission: SubmissionArg,
    /// No TOTP screen, as on a device Dhan trusts: mobile, then straight to the PIN.
    #[arg(long)]
    pub skip_totp: bool,
    /// One document per screen, posted as forms, instead of one page whose script swaps
    /// the screens.
    #[arg(long)]
    pub server_rendered: bool,
    /// An OTP "sent by SMS" instead of the TOTP screen (mock-server prints it as sms_otp).
    #[arg(long)]
    pub sms_otp: bool,
    /// The first Proceed on the mobile screen does nothing; the second works.
    #[arg(long)]
    pub proceed_ignored_once: bool,
    /// No analytics iframe (which carries a decoy tokenId) and no third-party tag script.
    #[arg(long)]
    pub no_tracker: bool,
    /// A generated page: every screen composed from dimensions drawn from this seed (the
    /// other page flags are then ignored); the first JSON line says what was drawn.
    #[arg(long, value_name = "N")]
    pub page_seed: Option<u64>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MarkupArg {
    /// <code-input> boxes; the PIN masked by CSS (class code-hidden), as reported for Dhan.
    CodeInput,
    /// One-character tel boxes for both codes, the PIN unmasked.
    TelBoxes,
    /// One-character tel boxes for the TOTP, password boxes for the PIN.
    PasswordPin,
    /// One six-digit field per code screen.
    SingleField,
    /// The PIN screen has no boxes (a login must fail and leave artifacts).
    MissingPinBoxes,
    /// The first code screen shows a masked and an unmasked group (nothing may be typed).
    Ambiguous,
    /// After Proceed, a "Verify it's you" screen that fits no code.
    Unrecognisable,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SubmissionArg {
    /// By itself 0-150 ms after the sixth digit; the button stays on screen.
    Auto,
    /// Only on its button (Proceed, Verify, Continue) or Enter.
    Button,
    /// Auto or button, picked anew for every screen shown.
    Random,
    /// By itself after a random 0-600 ms timer; a press meanwhile sends it twice.
    Deferred,
    /// By itself, within the sixth digit's own key event.
    OnKey,
    /// Only on its button, which stays enabled while the stand-in takes 300-800 ms to
    /// answer: every press sends again.
    BusyButton,
}
