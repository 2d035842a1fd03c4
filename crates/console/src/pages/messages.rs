//! A test mail from the console, the message search and one message's timeline.

use super::{after, day};
use crate::ConsoleError;
use crate::auth::Page;
use axum::Form;
use axum::extract::{Path, Query};
use axum::response::Response;
use mailpush_core::MessageQuery;
use mailpush_core::{SendContent, SendRequest};
use mailpush_model::TriggerType;
use serde::Deserialize;
use serde_json::json;

/// The form of a test mail.
pub(crate) async fn send_form(page: Page) -> Result<Response, ConsoleError> {
    let account = page.account()?;
    let (senders, templates) = super::senders_and_templates(page.core(), account).await?;
    page.render(
        "send.html",
        "send",
        json!({ "senders": senders, "templates": templates }),
    )
    .await
}

#[derive(Deserialize)]
pub(crate) struct SendForm {
    from: String,
    to: String,
    subject: String,
    template: Option<String>,
    data: Option<String>,
    text: Option<String>,
}

/// Sends the test mail (trigger mail, through SendEmail's admission) and opens its timeline.
pub(crate) async fn send(page: Page, Form(f): Form<SendForm>) -> Result<Response, ConsoleError> {
    let account = page.account()?;
    let content = match f.template.as_deref().and_then(|t| t.parse::<i64>().ok()) {
        Some(id) => SendContent::Template {
            id,
            data: f.data.clone().unwrap_or_else(|| "{}".into()),
        },
        None => SendContent::Simple {
            html: None,
            text: Some(f.text.clone().unwrap_or_default()),
        },
    };
    let req = SendRequest {
        from: f.from,
        destination: vec![f.to],
        subject: f.subject,
        content: Some(content),
        trigger: TriggerType::Trigger,
        ..SendRequest::default()
    };
    match page.core().send_email(account, req).await {
        Ok(id) => after(
            &format!("/messages/{}", id.as_str()),
            Ok(format!("MessageId {}", id.as_str())),
        ),
        Err(e) => after("/send", Err(e)),
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct SearchQuery {
    date: Option<String>,
    message_id: Option<String>,
    recipient: Option<String>,
    sender: Option<String>,
}

/// Searches the account's messages of one day.
pub(crate) async fn search(page: Page, Query(q): Query<SearchQuery>) -> Result<Response, ConsoleError> {
    let account = page.account()?;
    let q = MessageQuery {
        date: q
            .date
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| day(page.core().now_ms())),
        message_id: q.message_id,
        recipient: q.recipient,
        sender: q.sender,
    };
    let (hits, error) = match page.core().search_messages(account, &q).await {
        Ok(h) => (h, None),
        Err(e) => (Vec::new(), Some(e.to_api().message)),
    };
    let hits: Vec<_> = hits
        .iter()
        .map(|h| json!({ "message_id": h.message_id, "recipient": h.recipient, "from_address": h.from_address, "subject": h.subject, "request_ms": h.request_ms, "deliver_status": h.deliver_status }))
        .collect();
    let q = json!({ "date": q.date, "message_id": q.message_id, "recipient": q.recipient, "sender": q.sender });
    page.render(
        "messages.html",
        "messages",
        json!({ "hits": hits, "q": q, "error": error }),
    )
    .await
}

/// One message start to end: accepted, each attempt with the receiver's reply, the final state, opens, clicks,
/// unsubscribes, complaints.
pub(crate) async fn timeline(page: Page, Path(id): Path<String>) -> Result<Response, ConsoleError> {
    let account = page.account()?;
    let t = page
        .core()
        .message_timeline(account, &id)
        .await
        .map_err(|_| ConsoleError::NotFound)?;
    let lang = page.lang;
    let first = &t.recipients[0];
    let mut items = vec![
        json!({ "at_ms": first.request_ms, "label": lang.t("accepted"), "class": "", "recipient": "", "detail": format!("{} → {}", first.from_address, t.recipients.iter().map(|r| r.recipient.as_str()).collect::<Vec<_>>().join(", ")) }),
    ];
    for a in &t.attempts {
        let class = match a.deliver_status {
            1 => "ok",
            2 | 3 => "bad",
            _ => "warn",
        };
        let label = format!(
            "{} #{} · {}",
            lang.t("attempt"),
            a.attempt,
            lang.t(&format!("ds_{}", a.deliver_status))
        );
        let detail = match &a.remote {
            Some(r) => format!("{r}: {}", a.reply),
            None => a.reply.clone(),
        };
        items.push(
            json!({ "at_ms": a.at_ms, "label": label, "class": class, "recipient": a.recipient, "detail": detail }),
        );
    }
    for e in &t.events {
        // Delivery outcomes are shown by their attempts; events add what happened after (and bounces reported
        // later by the receiver).
        if t.attempts.iter().any(|a| a.recipient == e.recipient) && matches!(e.kind, 1 | 8) {
            continue;
        }
        let class = match e.kind {
            1 | 4 | 5 | 9 => "ok",
            2 | 3 | 6 | 10 | 11 => "bad",
            _ => "warn",
        };
        let detail = e.link.clone().unwrap_or_else(|| {
            let mut d = e.reason.clone();
            if let Some(b) = &e.bounce_type {
                d = format!("[{b}] {d}");
            }
            d
        });
        items.push(json!({ "at_ms": e.at_ms, "label": lang.t(&format!("ev_{}", e.kind)), "class": class, "recipient": e.recipient, "detail": detail }));
    }
    items.sort_by_key(|i| i["at_ms"].as_i64().unwrap_or(0));
    let open = t.recipients.iter().any(|r| matches!(r.deliver_status, 0 | 8));
    let recipients: Vec<_> = t
        .recipients
        .iter()
        .map(|r| json!({ "recipient": r.recipient, "deliver_status": r.deliver_status, "attempts": r.attempts, "deliver_message": r.deliver_message }))
        .collect();
    let ctx = json!({
        "id": first.message_id, "first": { "from_address": first.from_address, "subject": first.subject },
        "recipients": recipients, "timeline": items, "open": open,
    });
    page.render("message.html", "messages", ctx).await
}
