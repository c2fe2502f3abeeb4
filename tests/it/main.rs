//! The integration tests, one binary: each module guards one behaviour, and `common`
//! holds what they share.

mod common;

mod api;
mod browser;
mod browser_matrix;
mod careless_input;
mod chain;
mod cli_config;
mod cli_exit_codes;
mod cli_help;
mod cli_ip;
mod cli_login;
mod cli_token;
mod client_ids;
mod consent_budget;
mod doctor;
mod failing_disks;
mod fuzz;
mod generated_pages;
mod init;
mod layers;
mod leaks;
mod lockouts;
mod mint_window;
mod mock_api;
mod mock_faults;
mod mock_pages;
mod otp_cli;
mod postgres;
mod postgres_tls;
mod process_hardening;
mod readme;
mod rejected;
mod secrets;
mod serve_api;
mod serve_refresh;
mod serve_replicas;
mod single_login;
mod untrusted_answers;
