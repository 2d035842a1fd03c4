//! `mailpush-worker`'s command line (see `mailpush_suite::check_server_cli`; this test also makes `cargo test --workspace`
//! and nextest build the `mailpush-worker` executable, which the root package's end-to-end tests start).

#[test]
fn help_and_an_invalid_log_filter() {
    mailpush_suite::check_server_cli(env!("CARGO_BIN_EXE_mailpush-worker"), "mailpush-worker");
}
