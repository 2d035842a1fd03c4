//! `mailpush-smtp`'s command line. Having an integration test here also makes `cargo test --workspace` (and nextest)
//! build the `mailpush-smtp` executable, which the root package's end-to-end tests start as its own process.

use std::process::Command;

#[test]
fn an_invalid_log_filter_stops_it_at_start_with_the_key_named() {
    let out = Command::new(env!("CARGO_BIN_EXE_mailpush-smtp"))
        .env("MAILPUSH_LOG", "not[a]filter")
        .env("MAILPUSH_DATA_DIR", std::env::temp_dir().join("mailpush-smtp-cli-test"))
        .output()
        .expect("run mailpush-smtp");
    assert!(!out.status.success(), "it must not start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("log") && stderr.contains("not a valid filter"),
        "{stderr}"
    );
}

#[test]
fn help_names_the_binary() {
    let out = Command::new(env!("CARGO_BIN_EXE_mailpush-smtp"))
        .arg("--help")
        .output()
        .expect("run mailpush-smtp");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("mailpush-smtp"));
}
