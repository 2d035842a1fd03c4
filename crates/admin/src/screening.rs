//! `mailpush check` (the quality report of a mail) and `mailpush screening` (an account's screening settings).

use crate::{AdminError, Report, account_context};
use mailpush_core::{CheckStatus, QualityInput, QualityReport, QualityRequest};
use mailpush_core::{Mailpush, SendContent, SendRequest};
use mailpush_model::TriggerType;
use mailpush_model::account::ScreeningPolicy;
use std::fmt::Write;

/// What `mailpush check` judges.
#[derive(Debug, Clone)]
pub enum CheckSource {
    /// A MIME message in a file.
    File(std::path::PathBuf),
    /// An account's template with its TemplateData, sent as `from` with `subject`.
    Template {
        /// TemplateID.
        id: i64,
        /// TemplateData (a JSON object).
        data: String,
        /// The sender address.
        from: String,
        /// The Subject.
        subject: String,
    },
}

/// The quality report of a mail of `account`. `marketing`: judge it as marketing mail (List-Unsubscribe
/// needed). The report is unsuccessful (exit status 2) below `min_score`.
pub async fn check(
    core: &Mailpush,
    account: &str,
    source: CheckSource,
    marketing: bool,
    min_score: f64,
) -> Result<Report, AdminError> {
    let ctx = account_context(core, account).await?;
    let input = match source {
        CheckSource::File(path) => QualityInput::Raw(std::fs::read(&path).map_err(|source| AdminError::Io {
            path: path.display().to_string(),
            source,
        })?),
        CheckSource::Template {
            id,
            data,
            from,
            subject,
        } => QualityInput::Send(Box::new(SendRequest {
            from,
            subject,
            content: Some(SendContent::Template { id, data }),
            trigger: if marketing {
                TriggerType::Batch
            } else {
                TriggerType::Trigger
            },
            ..Default::default()
        })),
    };
    let report = core
        .check_email_quality(
            &ctx,
            QualityRequest {
                input,
                marketing: Some(marketing),
                unsubscribe: false,
            },
        )
        .await?;
    let json = serde_json::to_value(&report).map_err(|e| AdminError::Invalid(e.to_string()))?;
    Ok(Report {
        text: render(&report),
        json,
        success: report.score >= min_score,
    })
}

fn render(r: &QualityReport) -> String {
    let mut out = format!("score: {:.1}/10\n", r.score);
    match (&r.filter_score, &r.filter_error) {
        (Some(s), _) => {
            let _ = writeln!(
                out,
                "spam filter: {s:.2} ({})",
                r.filter_action.as_deref().unwrap_or("")
            );
        }
        (None, Some(e)) => {
            let _ = writeln!(out, "spam filter: none ({e})");
        }
        (None, None) => {}
    }
    for s in &r.symbols {
        let _ = writeln!(out, "  {:+6.2}  {:<24} {}", s.weight, s.name, s.sentence);
    }
    out.push_str("checks:\n");
    for c in &r.checks {
        let mark = match c.status {
            CheckStatus::Pass => "pass",
            CheckStatus::Fail => "FAIL",
            CheckStatus::Skipped => "skip",
        };
        let _ = writeln!(out, "  {mark}  {:<17} {}", c.name, c.message);
    }
    if !r.fix_first.is_empty() {
        out.push_str("fix first:\n");
        for (i, f) in r.fix_first.iter().enumerate() {
            let _ = writeln!(out, "  {}. {f}", i + 1);
        }
    }
    out.trim_end().to_string()
}

/// Shows, and with `min_score` / `review_content` changes, the screening settings of `account`.
/// `min_score`: `Some(None)` removes the threshold.
pub async fn settings(
    core: &Mailpush,
    account: &str,
    min_score: Option<Option<f64>>,
    review_content: Option<bool>,
) -> Result<Report, AdminError> {
    let ctx = account_context(core, account).await?;
    let mut policy = core.screening_policy(&ctx).await?;
    if min_score.is_some() || review_content.is_some() {
        policy = ScreeningPolicy {
            min_score: min_score.unwrap_or(policy.min_score),
            review_content: review_content.unwrap_or(policy.review_content),
        };
        core.set_screening_policy(&ctx, policy).await?;
    }
    let score = policy.min_score.map_or("none".to_string(), |s| format!("{s:.1}"));
    Ok(Report::new(
        format!(
            "{account}: minimum score {score}, content review of custom and SMTP mail {}",
            if policy.review_content { "on" } else { "off" }
        ),
        serde_json::json!({ "Account": account, "MinScore": policy.min_score, "ReviewContent": policy.review_content }),
    ))
}

/// Parses `--min-score`: a number 0–10, or `none`.
pub fn parse_min_score(raw: &str) -> Result<Option<f64>, AdminError> {
    if raw.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    raw.parse::<f64>()
        .ok()
        .filter(|s| (0.0..=10.0).contains(s))
        .map(Some)
        .ok_or_else(|| AdminError::Invalid(format!("--min-score {raw:?}: give a number from 0 to 10, or none")))
}
