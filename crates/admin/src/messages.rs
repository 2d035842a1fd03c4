//! `mailpush send`, `mailpush message show` and `mailpush queue summary`: a test mail, what became of a mail, and
//! the queue's depth.

use crate::table::render;
use crate::{AdminError, Report, account_context, datetime};
use mailpush_core::{Mailpush, SendContent, SendRequest, StatusRequest};
use mailpush_model::TriggerType;
use serde_json::json;

/// A test mail from the sender address `from` of `account` to `to`, as trigger mail (it goes first).
pub async fn send(
    core: &Mailpush,
    account: &str,
    from: &str,
    to: &str,
    subject: &str,
    text: &str,
) -> Result<Report, AdminError> {
    let ctx = account_context(core, account).await?;
    let req = SendRequest {
        from: from.to_string(),
        destination: vec![to.to_string()],
        subject: subject.to_string(),
        content: Some(SendContent::Simple {
            html: None,
            text: Some(text.to_string()),
        }),
        trigger: TriggerType::Trigger,
        ..SendRequest::default()
    };
    let id = core.send_email(&ctx, req).await?;
    Ok(Report::new(
        format!("accepted: {}", id.as_str()),
        json!({ "MessageId": id.as_str() }),
    ))
}

/// What became of `account`'s message `message_id`, accepted on the UTC day `date` (`YYYY-MM-DD`): one line per
/// recipient with its status, the receiver's last reply and the attempts made.
pub async fn show(core: &Mailpush, account: &str, message_id: &str, date: &str) -> Result<Report, AdminError> {
    let ctx = account_context(core, account).await?;
    let rows = core
        .send_status(
            &ctx,
            StatusRequest {
                request_date: date.to_string(),
                message_id: Some(message_id.to_string()),
                to: None,
                offset: 0,
                limit: 100,
            },
        )
        .await?;
    if rows.is_empty() {
        return Err(AdminError::Invalid(format!(
            "no message {message_id} of {account} accepted on {date}"
        )));
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.recipient.clone(),
                format!("{:?}", r.deliver_status).to_lowercase(),
                r.attempts.to_string(),
                r.deliver_ms.map(datetime).unwrap_or_else(|| "-".into()),
                r.deliver_message.clone(),
            ]
        })
        .collect();
    let text = format!(
        "message {message_id} from {} accepted {}\n{}",
        rows[0].from_address,
        datetime(rows[0].request_ms),
        render(&["RECIPIENT", "STATUS", "ATTEMPTS", "LAST CHANGE", "REPLY"], &table, 40)
    );
    let json = rows
        .iter()
        .map(|r| {
            json!({
                "ToEmailAddress": r.recipient, "DeliverStatus": r.deliver_status.code(),
                "DeliverMessage": r.deliver_message, "Attempts": r.attempts,
                "RequestTime": datetime(r.request_ms), "DeliverTime": r.deliver_ms.map(datetime),
            })
        })
        .collect();
    Ok(Report::new(text, serde_json::Value::Array(json)))
}

/// Makes the waiting deliveries of a receiving domain or of a message due now (`queue retry`).
pub async fn queue_retry(core: &Mailpush, domain: Option<&str>, message: Option<&str>) -> Result<Report, AdminError> {
    if domain.is_some() == message.is_some() {
        return Err(AdminError::Invalid("give --domain DOMAIN or --message ID".into()));
    }
    let n = core.retry_queued(domain, message).await?;
    Ok(Report::new(format!("{n} deliveries due now"), json!({ "Retried": n })))
}

/// Gives up the waiting deliveries of a receiving domain or of a message (`queue drop`).
pub async fn queue_drop(core: &Mailpush, domain: Option<&str>, message: Option<&str>) -> Result<Report, AdminError> {
    if domain.is_some() == message.is_some() {
        return Err(AdminError::Invalid("give --domain DOMAIN or --message ID".into()));
    }
    let n = core.drop_queued(domain, message).await?;
    Ok(Report::new(format!("{n} deliveries dropped"), json!({ "Dropped": n })))
}

/// The queue's deliveries by state.
pub async fn queue_summary(core: &Mailpush) -> Result<Report, AdminError> {
    let c = core.queue_counts().await?;
    Ok(Report::new(
        format!(
            "pending {}\ndeferred {}\nin delivery {}\nfinal {}",
            c.pending, c.deferred, c.leased, c.done
        ),
        json!({ "Pending": c.pending, "Deferred": c.deferred, "InDelivery": c.leased, "Final": c.done }),
    ))
}
