//! The load tool's command line. Having an integration test here also makes `cargo test --workspace` build the
//! `mailpush-bench` executable, which the root package's smoke tests (tests/bench_smoke.rs) run.

use std::process::Command;

#[test]
fn help_lists_the_modes() {
    let out = Command::new(env!("CARGO_BIN_EXE_mailpush-bench"))
        .arg("--help")
        .output()
        .expect("run mailpush-bench");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("run"), "{help}");
    assert!(help.contains("serve"), "{help}");
}
