//! Logging of every binary: the `log` filter (an invalid one is an error at start, not a silent fallback) and
//! `log_format` (`text` for people, `json` for log pipelines: one object per line), always to stderr, whose
//! stdout carries machine-readable output (JSON credentials, the listen lines).

use crate::settings::{Settings, SettingsError, process_variables};

/// Installs the process's log subscriber from `settings`. Fails on an invalid `log` filter or `log_format`.
pub fn init(settings: &Settings) -> Result<(), SettingsError> {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log)
        .map_err(|e| SettingsError::Invalid(format!("log {:?} is not a valid filter: {e}", settings.log)))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests starting several servers in one process) keeps the first subscriber.
    let _ = match settings.log_format.as_str() {
        "text" => builder.try_init(),
        "json" => builder.json().flatten_event(true).try_init(),
        other => {
            return Err(SettingsError::Invalid(format!(
                "log_format {other:?}: use text or json"
            )));
        }
    };
    Ok(())
}

/// Logs [`Settings::warnings`] for this process's environment: what a server should say at start.
pub fn warn_about(settings: &Settings) {
    for warning in settings.warnings(&process_variables()) {
        tracing::warn!("{warning}");
    }
}
