//! Engagement: unsubscribe links (footer, `List-Unsubscribe` + `List-Unsubscribe-Post`), open and click
//! tracking, the unsubscribe admission check, `GetSendEmailStatus` flags and callback settings.
//!
//! Per-recipient bodies: a token must name its recipient, so mail with tracking (HTML mail when
//! `public_base_url` is set and `tracking` on) or an unsubscribe link is built once per recipient at admission
//! and the bodies are stored in `recipient_bodies` (written before the message is enqueued); the worker
//! prefers them, sends such recipients one SMTP transaction each and DKIM-signs each body. Cost: one MIME
//! build + one stored copy per recipient (≤ 90) and no RCPT batching for those mails; mail without tracking
//! or unsubscribe is unchanged (one body, one signature, one transaction per domain).

use crate::AccountContext;
use crate::Env;
use crate::error::CoreError;
use crate::send::AdmittedMail;
use mailpush_model::queue::{DeliveryStatusRow, NewRecipient};
use mailpush_model::{ErrorCode, EventKind, MessageId, SendStatus};
use mailpush_store::NewEvent;
use mailpush_tracking::{FooterLanguage, Token, TokenKey, TokenKind};
use std::collections::HashMap;
use std::sync::Arc;

/// Master-key context of the tracking token key.
const TOKEN_KEY_CONTEXT: &str = "tracking-token";
/// Sealing context of callback secrets.
pub(crate) const CALLBACK_SECRET_CONTEXT: &str = "callback-secret";

/// Per-send options beyond [`crate::SendRequest`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// SendEmail's `Unsubscribe`: 0 = no link, 1–12 = footer language (see [`FooterLanguage`]); `None` = not
    /// given, so the sender address's `AddressUnsubscribeConfig` (if any) decides.
    pub unsubscribe: Option<u8>,
}

/// What an unsubscribe token is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubscribeInfo {
    /// The recipient.
    pub recipient: String,
    /// The sending domain it unsubscribes from.
    pub domain: String,
}

/// `GetSendEmailStatus` engagement flags of one recipient.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngagementFlags {
    /// An open was recorded.
    pub opened: bool,
    /// A click was recorded.
    pub clicked: bool,
    /// The recipient unsubscribed through this mail.
    pub unsubscribed: bool,
    /// A complaint (spamreport) was recorded.
    pub complained: bool,
}

/// The account's callback configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackConfig {
    /// The account-level URL, if any.
    pub account_url: Option<String>,
    /// Sender address → URL.
    pub sender_urls: Vec<(String, String)>,
    /// The secret callbacks are signed with.
    pub secret: String,
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> CoreError {
    CoreError::refused(code, message)
}

/// Tracking, unsubscribe links and callback settings.
pub struct Engagement {
    pub(crate) env: Env,
    pub(crate) secrets: Arc<crate::secrets::Secrets>,
    pub(crate) inbound: Arc<crate::inbound::Inbound>,
}

impl Engagement {
    pub(crate) fn token_key(&self) -> TokenKey {
        TokenKey::new(&self.secrets.subkey(TOKEN_KEY_CONTEXT))
    }

    fn public_base(&self) -> Option<&str> {
        let b = self.env.settings.public_base_url.trim().trim_end_matches('/');
        (!b.is_empty()).then_some(b)
    }

    /// The unsubscribe half of the admission screen (see `screen_recipients`): recipients in `gone` (who
    /// unsubscribed from the sending domain) get `SendStatus` 1013; if that is every recipient, the send is
    /// refused with `FailedOperation.ReceiverHasUnsubscribed`.
    pub(crate) fn mark_unsubscribed(
        &self,
        sender_domain: &str,
        gone: &[String],
        recipients: &mut [NewRecipient],
    ) -> Result<(), CoreError> {
        if gone.is_empty() {
            return Ok(());
        }
        if recipients.iter().all(|r| gone.contains(&r.address)) {
            return Err(refuse(
                ErrorCode::FailedOperationReceiverHasUnsubscribed,
                format!("{} unsubscribed from mail of {sender_domain}", gone.join(", ")),
            ));
        }
        for r in recipients.iter_mut() {
            if gone.contains(&r.address) {
                r.send_status = SendStatus::Unsubscribed;
                r.deliver_message = Some(format!("the recipient unsubscribed from mail of {sender_domain}"));
            }
        }
        Ok(())
    }

    /// Builds the per-recipient bodies of a mail with tracking or an unsubscribe link (empty when neither).
    pub(crate) fn personal_bodies(
        &self,
        account: &AccountContext,
        mail: &AdmittedMail,
        unsubscribe: u8,
        recipients: &[NewRecipient],
    ) -> Result<Vec<(String, Vec<u8>)>, CoreError> {
        let lang = match unsubscribe {
            0 => None,
            code => Some(FooterLanguage::from_code(code).ok_or_else(|| {
                refuse(
                    ErrorCode::InvalidParameterValue,
                    format!("Unsubscribe {code} must be 0 (none) or 1-12 (footer language)"),
                )
            })?),
        };
        let base = self.public_base();
        if lang.is_some() && base.is_none() {
            return Err(refuse(
                ErrorCode::InvalidParameterValue,
                "Unsubscribe links need the public_base_url setting; use Unsubscribe 0",
            ));
        }
        let track = self.env.settings.tracking && mail.spec.html.is_some();
        let Some(base) = base else { return Ok(Vec::new()) };
        if lang.is_none() && !track {
            return Ok(Vec::new());
        }
        let key = self.token_key();
        let domain = mail.sender.domain().to_string();
        let mut out = Vec::with_capacity(recipients.len());
        for r in recipients.iter().filter(|r| r.send_status.is_ok()) {
            let token = |kind| {
                key.encode(&Token {
                    kind,
                    account_id: account.id,
                    message_id: mail.id.as_str().to_string(),
                    recipient: r.address.clone(),
                })
            };
            let mut spec = mail.spec.clone();
            if track && let Some(html) = &spec.html {
                let (rewritten, _) = mailpush_tracking::rewrite_links(html, |url| {
                    format!("{base}/t/c/{}", token(TokenKind::Click(url.to_string())))
                });
                spec.html = Some(mailpush_tracking::add_open_pixel(
                    &rewritten,
                    &format!("{base}/t/o/{}", token(TokenKind::Open)),
                ));
            }
            if let Some(lang) = lang {
                let unsub_token = token(TokenKind::Unsubscribe(domain.clone()));
                let url = format!("{base}/u/{unsub_token}");
                if let Some(html) = &spec.html {
                    spec.html = Some(mailpush_tracking::html::insert_before_body_end(
                        html,
                        &mailpush_tracking::footer_html(lang, &url),
                    ));
                }
                if let Some(text) = &spec.text {
                    spec.text = Some(format!("{text}{}", mailpush_tracking::footer_text(lang, &url)));
                }
                // The mailto address is signed and bound to this recipient: mail to it unsubscribes them
                // (core::inbound, through the inbound MX).
                let list_unsubscribe = match self.inbound.unsubscribe_mailto(&mail.id, &r.address) {
                    Some(mailto) => format!("<{url}>, <mailto:{mailto}?subject=unsubscribe>"),
                    None => format!("<{url}>"),
                };
                spec.headers.push(("List-Unsubscribe".to_string(), list_unsubscribe));
                spec.headers.push((
                    "List-Unsubscribe-Post".to_string(),
                    "List-Unsubscribe=One-Click".to_string(),
                ));
            }
            let received =
                crate::submit::received_header(None, &self.env.settings.helo_name, &mail.id, mail.spec.date_ms, false);
            let mime = mailpush_delivery::build_mime(&spec)?;
            out.push((r.address.clone(), crate::submit::prepend(&received, mime)));
        }
        Ok(out)
    }

    fn decode_token(&self, token: &str) -> Option<Token> {
        self.token_key().decode(token)
    }

    async fn record_engagement(
        &self,
        t: &Token,
        kind: EventKind,
        link: Option<String>,
        ua: Option<&str>,
    ) -> Result<(), CoreError> {
        self.env
            .store
            .events()
            .record_events(&[NewEvent {
                account_id: t.account_id,
                message_id: MessageId::from_stored(t.message_id.clone()),
                recipient: t.recipient.clone(),
                kind,
                at_ms: self.env.clock.now_ms(),
                reason: String::new(),
                bounce_type: None,
                link,
                user_agent: ua.map(|u| u.chars().take(512).collect()),
            }])
            .await?;
        Ok(())
    }

    pub(crate) async fn track_open(&self, token: &str, user_agent: Option<&str>) -> Result<bool, CoreError> {
        match self.decode_token(token) {
            Some(t) if t.kind == TokenKind::Open => {
                self.record_engagement(&t, EventKind::Open, None, user_agent).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    pub(crate) async fn track_click(&self, token: &str, user_agent: Option<&str>) -> Result<Option<String>, CoreError> {
        match self.decode_token(token) {
            Some(t) => match &t.kind {
                TokenKind::Click(url) => {
                    let url = url.clone();
                    self.record_engagement(&t, EventKind::Click, Some(url.clone()), user_agent)
                        .await?;
                    Ok(Some(url))
                }
                _ => Ok(None),
            },
            None => Ok(None),
        }
    }

    pub(crate) fn unsubscribe_info(&self, token: &str) -> Option<UnsubscribeInfo> {
        match self.decode_token(token)?.kind {
            TokenKind::Unsubscribe(domain) => Some(UnsubscribeInfo {
                recipient: self.decode_token(token)?.recipient,
                domain,
            }),
            _ => None,
        }
    }

    pub(crate) async fn unsubscribe(&self, token: &str) -> Result<Option<UnsubscribeInfo>, CoreError> {
        let Some(t) = self.decode_token(token) else {
            return Ok(None);
        };
        let TokenKind::Unsubscribe(domain) = &t.kind else {
            return Ok(None);
        };
        let new = self
            .env
            .store
            .suppression()
            .unsubscribe(t.account_id, domain, &t.recipient, self.env.clock.now_ms())
            .await?;
        if new {
            self.record_engagement(&t, EventKind::Unsubscribe, None, None).await?;
        }
        Ok(Some(UnsubscribeInfo {
            recipient: t.recipient.clone(),
            domain: domain.clone(),
        }))
    }

    pub(crate) async fn engagement_flags(
        &self,
        account: &AccountContext,
        rows: &[DeliveryStatusRow],
    ) -> Result<HashMap<(String, String), EngagementFlags>, CoreError> {
        let mut ids: Vec<MessageId> = rows.iter().map(|r| r.message_id.clone()).collect();
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        ids.dedup();
        let mut out: HashMap<(String, String), EngagementFlags> = HashMap::new();
        for (m, r, kind) in self.env.store.events().engagement_kinds(account.id, &ids).await? {
            let f = out.entry((m, r)).or_default();
            match kind {
                k if k == EventKind::Open.id() => f.opened = true,
                k if k == EventKind::Click.id() => f.clicked = true,
                k if k == EventKind::Unsubscribe.id() => f.unsubscribed = true,
                k if k == EventKind::SpamReport.id() => f.complained = true,
                _ => {}
            }
        }
        Ok(out)
    }

    pub(crate) async fn set_callback_url(
        &self,
        account: &AccountContext,
        sender: Option<&str>,
        url: Option<&str>,
    ) -> Result<(), CoreError> {
        let sender = match sender.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => mailpush_model::EmailAddress::parse(s)
                .map_err(|e| {
                    refuse(
                        ErrorCode::InvalidParameterValueIllegalEmailAddress,
                        format!("EmailAddress: {e}"),
                    )
                })?
                .as_str()
                .to_string(),
            None => String::new(),
        };
        // Only the account's own sender addresses, as every other action on an address: another tenant's
        // address is refused like one nobody created.
        if !sender.is_empty() && self.env.store.identities().sender(account.id, &sender).await?.is_none() {
            return Err(crate::identity::Identities::no_such_sender(&sender));
        }
        let url = url.map(str::trim).filter(|u| !u.is_empty());
        if let Some(u) = url {
            if u.len() > 2048 {
                return Err(refuse(
                    ErrorCode::InvalidParameterValue,
                    "CallbackUrl is longer than 2048 characters",
                ));
            }
            crate::callbacks::client(&self.env.settings)?
                .check_url(u)
                .map_err(|e| refuse(ErrorCode::InvalidParameterValue, format!("CallbackUrl: {e}")))?;
        }
        self.env
            .store
            .callbacks()
            .set_callback_target(account.id, &sender, url)
            .await?;
        Ok(())
    }

    pub(crate) async fn callback_config(&self, account: &AccountContext) -> Result<CallbackConfig, CoreError> {
        let targets = self.env.store.callbacks().callback_targets(account.id).await?;
        let secret = self.callback_secret(account.id, false).await?;
        let mut cfg = CallbackConfig {
            account_url: None,
            sender_urls: Vec::new(),
            secret: String::from_utf8_lossy(&secret).into_owned(),
        };
        for (sender, url) in targets {
            if sender.is_empty() {
                cfg.account_url = Some(url);
            } else {
                cfg.sender_urls.push((sender, url));
            }
        }
        Ok(cfg)
    }

    pub(crate) async fn reset_callback_secret(&self, account: &AccountContext) -> Result<String, CoreError> {
        let s = self.callback_secret(account.id, true).await?;
        Ok(String::from_utf8_lossy(&s).into_owned())
    }

    /// The account's callback secret, created if missing (or replaced with `reset`).
    pub(crate) async fn callback_secret(
        &self,
        account: mailpush_model::AccountId,
        reset: bool,
    ) -> Result<Vec<u8>, CoreError> {
        if !reset && let Some(sealed) = self.env.store.callbacks().callback_secret(account).await? {
            return Ok(self.secrets.open(CALLBACK_SECRET_CONTEXT, &sealed)?);
        }
        let fresh = crate::secrets::random_string(40, crate::secrets::ALPHANUMERIC);
        let sealed = self.secrets.seal(CALLBACK_SECRET_CONTEXT, fresh.as_bytes())?;
        self.env
            .store
            .callbacks()
            .put_callback_secret(account, &sealed, reset)
            .await?;
        // Another process may have created one first: read back the winner.
        let sealed = self
            .env
            .store
            .callbacks()
            .callback_secret(account)
            .await?
            .ok_or_else(|| CoreError::Config("callback secret vanished".into()))?;
        Ok(self.secrets.open(CALLBACK_SECRET_CONTEXT, &sealed)?)
    }
}
