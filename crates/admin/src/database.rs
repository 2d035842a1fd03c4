//! `mailpush db prune` and `mailpush db vacuum`: a retention pass now, and the one-off conversion of an older
//! SQLite file to incremental auto-vacuum.

use crate::{AdminError, Report};
use mailpush_core::Mailpush;
use serde_json::json;

/// Prunes now what the retention service would prune (mail final more than `retention_days` ago) and gives the
/// SQLite file's free pages back.
pub async fn prune(core: &Mailpush) -> Result<Report, AdminError> {
    let Some(cutoff) = core.retention_cutoff_ms() else {
        return Ok(Report::new(
            "retention_days is 0: mail is kept forever, nothing pruned".into(),
            json!({ "Messages": 0, "Deliveries": 0, "Attempts": 0, "Events": 0, "SesMessages": 0, "PagesReleased": 0 }),
        ));
    };
    let pass = core.run_retention(None).await?;
    let p = &pass.pruned;
    Ok(Report::new(
        format!(
            "pruned mail final before {}: {} messages, {} recipients, {} attempts, {} events, {} SES message rows; \
             {} pages given back",
            crate::datetime(cutoff),
            p.messages,
            p.deliveries,
            p.attempts,
            p.events,
            p.ses_messages,
            pass.pages_released
        ),
        json!({
            "Cutoff": crate::datetime(cutoff), "Messages": p.messages, "Deliveries": p.deliveries,
            "Attempts": p.attempts, "Events": p.events, "SesMessages": p.ses_messages,
            "PagesReleased": pass.pages_released,
        }),
    ))
}

/// SQLite: converts the file to incremental auto-vacuum and rewrites it (run with mailpush stopped: it holds
/// the write lock throughout and needs free disk for a copy). PostgreSQL: nothing to do (autovacuum).
pub async fn vacuum(core: &Mailpush) -> Result<Report, AdminError> {
    let Some((before, after)) = core.vacuum_database().await? else {
        return Ok(Report::new(
            "PostgreSQL: space is reclaimed by autovacuum; nothing to do".into(),
            json!({ "Backend": "postgres" }),
        ));
    };
    let bytes = |p: &mailpush_model::retention::FilePages| p.pages * p.page_size;
    Ok(Report::new(
        format!(
            "SQLite file rewritten with incremental auto-vacuum: {} bytes → {} bytes",
            bytes(&before),
            bytes(&after)
        ),
        json!({ "Backend": "sqlite", "BytesBefore": bytes(&before), "BytesAfter": bytes(&after),
                "AutoVacuum": after.auto_vacuum }),
    ))
}
