//! The configuration is documented where operators look: every setting is a row of README.md's configuration
//! table and a key of `contrib/mailpush.toml` (which holds the defaults and parses), and nothing else is.

use mailpush_core::Settings;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn setting_keys() -> BTreeSet<String> {
    match serde_json::to_value(Settings::default()).expect("settings as JSON") {
        serde_json::Value::Object(m) => m.keys().cloned().collect(),
        other => panic!("settings are not an object: {other}"),
    }
}

/// The keys named in the first column of README.md's configuration table.
fn readme_keys() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let table = &readme[readme.find("## Configuration").expect("a Configuration section")..];
    let mut keys = BTreeSet::new();
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let first = line.trim_matches('|').split('|').next().unwrap_or_default();
        for part in first.split('`').skip(1).step_by(2) {
            if !part.starts_with("MAILPUSH_") {
                keys.insert(part.to_string());
            }
        }
    }
    keys
}

#[test]
fn every_setting_is_in_the_readme_table_and_nothing_else() {
    let settings = setting_keys();
    let readme = readme_keys();
    let undocumented: Vec<_> = settings.difference(&readme).collect();
    let unknown: Vec<_> = readme.difference(&settings).collect();
    assert!(
        undocumented.is_empty(),
        "settings missing from README.md: {undocumented:?}"
    );
    assert!(
        unknown.is_empty(),
        "README.md documents keys that are no setting: {unknown:?}"
    );
}

#[test]
fn the_example_configuration_holds_every_setting_and_parses_to_the_defaults() {
    let path = root().join("contrib/mailpush.toml");
    let text = std::fs::read_to_string(&path).expect("contrib/mailpush.toml");
    let mut keys = BTreeSet::new();
    for line in text.lines() {
        let line = line.strip_prefix("# ").unwrap_or(line);
        if let Some((key, _)) = line.split_once(" = ")
            && !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            keys.insert(key.to_string());
        }
    }
    let settings = setting_keys();
    let missing: Vec<_> = settings.difference(&keys).collect();
    let unknown: Vec<_> = keys.difference(&settings).collect();
    assert!(
        missing.is_empty(),
        "settings missing from contrib/mailpush.toml: {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "contrib/mailpush.toml has keys that are no setting: {unknown:?}"
    );
    let loaded = Settings::load(Some(&path), &HashMap::new()).expect("the example parses");
    assert_eq!(
        serde_json::to_value(&loaded).expect("json"),
        serde_json::to_value(Settings::default()).expect("json"),
        "the example's values are the defaults"
    );
}
