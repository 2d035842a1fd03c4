//! The CLI as an operator uses it. (Also makes `cargo test`/`nextest` build the `mailpush` binary that the
//! workspace's end-to-end tests start.)

use std::process::Command;

const MASTER_KEY: &str = "cli-test-master-key-0123456789";

#[test]
fn account_create_prints_credentials_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mailpush"))
            .args(args)
            .env("MAILPUSH_DATA_DIR", dir.path())
            .env("MAILPUSH_MASTER_KEY", MASTER_KEY)
            .env("MAILPUSH_LOG", "error")
            .output()
            .unwrap()
    };
    let out = run(&["account", "create", "shop", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["AppId"].is_i64());
    let secret_id = v["SecretId"].as_str().unwrap();
    assert!(secret_id.starts_with("AKID") && secret_id.len() == 36);
    assert_eq!(v["SecretKey"].as_str().unwrap().len(), 32);
    // The secret is not stored in clear.
    let db = std::fs::read(dir.path().join("mailpush.db")).unwrap_or_default();
    let wal = std::fs::read(dir.path().join("mailpush.db-wal")).unwrap_or_default();
    let key = v["SecretKey"].as_str().unwrap().as_bytes();
    for file in [&db, &wal] {
        assert!(
            !file.windows(key.len()).any(|w| w == key),
            "SecretKey found in clear in the database"
        );
    }
    let dup = run(&["account", "create", "shop", "--json"]);
    assert!(!dup.status.success(), "a second account with the same name is refused");
    let list = run(&["account", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_mailpush"))
        .args(["account", "list"])
        .env("MAILPUSH_DELIVERY_PORT", "not-a-port")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid configuration"));
}
