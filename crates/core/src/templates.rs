//! Templates: the Create/Update/Get/List/DeleteEmailTemplate actions, the review workflow (automatic, or
//! automatic then an operator's manual queue), account content permissions, and rendering a template for
//! `SendEmail`. The rules themselves (review, TemplateData validation, escaping) live in `mailpush-template`.

use crate::Env;
use crate::accounts;
use crate::accounts::AccountContext;
use crate::cache::TtlCache;
use crate::error::CoreError;
use crate::send::{SendContent, SendRequest};
use crate::settings::Settings;
use mailpush_model::AccountId;
use mailpush_model::ErrorCode;
use mailpush_model::{
    TemplateId,
    templates::{AccountPolicy, StoredTemplate, TemplatePage, TemplateStatus, TemplateSummary},
};
use mailpush_store::{NewTemplate, TemplateContent};
use mailpush_template::{
    CompiledTemplate, DataPolicy, Lexicon, RenderError, ReviewInput, ReviewOutcome, ReviewPolicy, Reviewer,
    TemplateCache, TemplateCategory, TemplateData, TemplateDataError, TemplateKey,
};
use std::sync::Arc;
use std::time::Duration;

/// Most templates one `ListEmailTemplates` page returns.
pub const MAX_TEMPLATE_LIST_LIMIT: i64 = 100;
/// Longest `TemplateName`, in characters.
pub const MAX_TEMPLATE_NAME_CHARS: usize = 64;

/// How templates are reviewed (`template_review`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewMode {
    /// The automatic review decides at once: approved (0) or rejected (2).
    Auto,
    /// Templates passing the automatic review wait (1) for an operator's `mailpush template approve`.
    Manual,
}

/// A template's `(Html, Text)` bodies, decoded.
pub type TemplateBodies = (Option<String>, Option<String>);

/// A template as the account submits it (bodies already base64-decoded by the front end).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateInput {
    /// `TemplateName`; on update, `None` keeps the current name.
    pub name: Option<String>,
    /// `TemplateContent` as `(Html, Text)`; on update, `None` keeps the current content.
    pub content: Option<TemplateBodies>,
    /// `TemplateCategory` (mailpush extension); `None`: `notification` on create, unchanged on update.
    pub category: Option<String>,
}

/// The template part of the facade, built once per process from the settings.
pub(crate) struct TemplateEngine {
    reviewer: Reviewer,
    cache: TemplateCache,
    /// The bodies with a send's Subject attached, by template key and Subject: compiling the Subject was most of
    /// a cached send's template work (senders repeat their Subjects; a Subject seen once only takes an entry).
    with_subjects: TemplateCache<(TemplateKey, String)>,
    mode: ReviewMode,
    max_per_account: i64,
    max_bytes: usize,
    data_max_bytes: usize,
    pub(crate) data_policy: DataPolicy,
    /// Approved templates' summaries by (account, id), so a send does not read the review state every time.
    /// Only approved ones are kept: an approval (possibly by the operator's CLI in another process) is seen at
    /// once; an edit, rejection or deletion here clears the entry, and one elsewhere is seen within the TTL.
    sendable: TtlCache<(AccountId, TemplateId), TemplateSummary>,
}

/// How long an approved template's review state is trusted from memory (see [`crate::cache`]).
const SENDABLE_TTL: Duration = Duration::from_secs(1);

impl TemplateEngine {
    pub(crate) fn from_settings(s: &Settings) -> Result<Self, CoreError> {
        let mode = match s.template_review.as_str() {
            "auto" => ReviewMode::Auto,
            "manual" => ReviewMode::Manual,
            other => {
                return Err(CoreError::Config(format!(
                    "template_review {other:?}: use auto or manual"
                )));
            }
        };
        let lexicon = match &s.template_lexicon_file {
            None => Lexicon::builtin(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| CoreError::Config(format!("cannot read {}: {e}", path.display())))?;
                Lexicon::from_toml(&text).map_err(|e| CoreError::Config(format!("{}: {e}", path.display())))?
            }
        };
        Ok(TemplateEngine {
            reviewer: Reviewer::new(Default::default(), lexicon),
            cache: TemplateCache::new(s.template_cache_entries),
            with_subjects: TemplateCache::new(s.template_cache_entries),
            mode,
            max_per_account: i64::try_from(s.template_max_per_account).unwrap_or(i64::MAX),
            max_bytes: s.template_max_bytes,
            data_max_bytes: s.template_data_max_bytes,
            data_policy: DataPolicy {
                reject_html: !s.template_data_allow_html,
                allow_reserved_keys: false,
            },
            sendable: TtlCache::new(SENDABLE_TTL),
        })
    }

    /// Drops the compiled forms of template `id` (with and without Subjects), except those of `keep_version`.
    fn forget_compiled(&self, id: TemplateId, keep_version: Option<i64>) {
        let stale = |k: &TemplateKey| k.template_id == id as u64 && keep_version.is_none_or(|v| k.version != v as u64);
        self.cache.retain(|k| !stale(k));
        self.with_subjects.retain(|(k, _)| !stale(k));
    }

    /// The automatic review (screening applies its content rules to custom mail).
    pub(crate) fn reviewer(&self) -> &Reviewer {
        &self.reviewer
    }

    /// The review state of new content: `(status, ReviewReason)`.
    fn review(
        &self,
        html: Option<&str>,
        text: Option<&str>,
        category: TemplateCategory,
        links: bool,
    ) -> (TemplateStatus, String) {
        let input = ReviewInput {
            subject: None,
            html,
            text,
            category,
        };
        let policy = ReviewPolicy {
            allow_links: links,
            allow_redirect_links: false,
        };
        let outcome = self.reviewer.review(&input, &policy);
        match (outcome.approved, self.mode) {
            (false, _) => (TemplateStatus::Rejected, review_reason(&outcome)),
            (true, ReviewMode::Auto) => (TemplateStatus::Approved, String::new()),
            (true, ReviewMode::Manual) => (TemplateStatus::Reviewing, String::new()),
        }
    }
}

/// Every finding, one per line: `rule (part): English reason / 中文原因`.
pub(crate) fn review_reason(outcome: &ReviewOutcome) -> String {
    outcome
        .findings
        .iter()
        .map(|f| match f.part {
            Some(part) => format!("{} ({part}): {} / {}", f.rule, f.reason, f.reason_zh),
            None => format!("{}: {} / {}", f.rule, f.reason, f.reason_zh),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> CoreError {
    CoreError::refused(code, message)
}

fn check_name(raw: &str) -> Result<String, CoreError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(refuse(
            ErrorCode::InvalidParameterValueTemplateNameIsNULL,
            "TemplateName must not be empty",
        ));
    }
    if name.chars().count() > MAX_TEMPLATE_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(refuse(
            ErrorCode::InvalidParameterValueTemplateNameIllegal,
            format!("TemplateName must be 1-{MAX_TEMPLATE_NAME_CHARS} characters without control characters"),
        ));
    }
    Ok(name.to_string())
}

fn check_category(raw: Option<&str>) -> Result<Option<TemplateCategory>, CoreError> {
    raw.map(|c| {
        c.parse::<TemplateCategory>()
            .map_err(|e| refuse(ErrorCode::InvalidParameterValue, format!("TemplateCategory: {e}")))
    })
    .transpose()
}

/// A stored category name; an unknown one (database edited by hand) reviews as the default.
fn stored_category(name: &str) -> TemplateCategory {
    name.parse().unwrap_or_default()
}

impl TemplateEngine {
    fn check_content(
        &self,
        html: Option<String>,
        text: Option<String>,
    ) -> Result<(Option<String>, Option<String>), CoreError> {
        let html = html.filter(|h| !h.trim().is_empty());
        let text = text.filter(|t| !t.trim().is_empty());
        if html.is_none() && text.is_none() {
            return Err(refuse(
                ErrorCode::InvalidParameterValueTemplateContentIsNULL,
                "TemplateContent needs Html or Text",
            ));
        }
        let size = html.as_ref().map_or(0, String::len) + text.as_ref().map_or(0, String::len);
        if size > self.max_bytes {
            return Err(refuse(
                ErrorCode::FailedOperationTemplateContentToolarge,
                format!(
                    "TemplateContent is {size} bytes (Html + Text, decoded); at most {} are allowed",
                    self.max_bytes
                ),
            ));
        }
        Ok((html, text))
    }
}

fn status_name(status: TemplateStatus) -> &'static str {
    match status {
        TemplateStatus::Approved => "approved",
        TemplateStatus::Reviewing => "under review",
        TemplateStatus::Rejected => "rejected",
    }
}

pub(crate) fn data_error(e: TemplateDataError) -> CoreError {
    match e {
        TemplateDataError::NotJson(_) => refuse(
            ErrorCode::FailedOperationWrongContentJson,
            format!("Template.TemplateData: {e}"),
        ),
        _ => refuse(
            ErrorCode::InvalidParameterValueInValidTemplateData,
            format!("Template.TemplateData: {e}"),
        ),
    }
}

pub(crate) fn render_error(e: RenderError) -> CoreError {
    match e {
        RenderError::MissingVariable(ref name) if name == mailpush_template::UNSUBSCRIBE_PLACEHOLDER => refuse(
            ErrorCode::InvalidParameterValueTemplateNotMatchData,
            format!("the template uses {{{{{name}}}}}, which mailpush fills only once unsubscribe links are available"),
        ),
        RenderError::MissingVariable(_) => refuse(
            ErrorCode::InvalidParameterValueTemplateNotMatchData,
            format!("Template.TemplateData: {e}"),
        ),
        RenderError::SubjectTooLong { .. } | RenderError::SubjectHasLineBreak => refuse(
            ErrorCode::InvalidParameterValueSubjectLengthError,
            format!("Subject: {e}"),
        ),
        RenderError::Engine { .. } => refuse(ErrorCode::InternalError, format!("rendering failed: {e}")),
    }
}

/// Templates, their review and the accounts' review policy.
pub struct Templates {
    pub(crate) env: Env,
    pub(crate) engine: TemplateEngine,
    pub(crate) accounts: Arc<crate::accounts::Accounts>,
}

impl Templates {
    fn engine(&self) -> &TemplateEngine {
        &self.engine
    }

    async fn policy_of(&self, account: &AccountContext) -> Result<AccountPolicy, CoreError> {
        Ok(self
            .env
            .store
            .templates()
            .account_policy(account.id)
            .await?
            .unwrap_or_default())
    }

    pub(crate) fn template_review_mode(&self) -> ReviewMode {
        self.engine().mode
    }

    pub(crate) async fn create_template(
        &self,
        account: &AccountContext,
        input: TemplateInput,
    ) -> Result<TemplateId, CoreError> {
        let name = check_name(input.name.as_deref().unwrap_or(""))?;
        let category = check_category(input.category.as_deref())?.unwrap_or_default();
        let (html, text) = input.content.ok_or_else(|| {
            refuse(
                ErrorCode::InvalidParameterValueTemplateContentIsNULL,
                "TemplateContent is required",
            )
        })?;
        let (html, text) = self.engine().check_content(html, text)?;
        let content = self.reviewed(account, name, category, html, text).await?;
        let created = self
            .env
            .store
            .templates()
            .create_template(
                NewTemplate {
                    account_id: account.id,
                    content,
                },
                self.engine().max_per_account,
            )
            .await?;
        match created {
            Some(t) => Ok(t.id),
            None => Err(refuse(
                ErrorCode::FailedOperationExceedTemplateLimit,
                format!(
                    "the account already has {} templates, the most allowed; delete one first",
                    self.engine().max_per_account
                ),
            )),
        }
    }

    /// Checked content under its automatic review under the account's policy: with the status to store and the
    /// reasons, stamped now.
    async fn reviewed(
        &self,
        account: &AccountContext,
        name: String,
        category: TemplateCategory,
        html: Option<String>,
        text: Option<String>,
    ) -> Result<TemplateContent, CoreError> {
        let policy = self.policy_of(account).await?;
        let (status, review_reason) =
            self.engine()
                .review(html.as_deref(), text.as_deref(), category, policy.allow_links);
        Ok(TemplateContent {
            name,
            category: category.as_str().to_string(),
            html,
            text,
            status,
            review_reason,
            now_ms: self.env.clock.now_ms(),
        })
    }

    pub(crate) async fn update_template(
        &self,
        account: &AccountContext,
        id: TemplateId,
        input: TemplateInput,
    ) -> Result<StoredTemplate, CoreError> {
        let current = self.template(account, id).await?;
        let name = match input.name.as_deref() {
            Some(n) => check_name(n)?,
            None => current.name.clone(),
        };
        let category = check_category(input.category.as_deref())?.unwrap_or_else(|| stored_category(&current.category));
        let (html, text) = match input.content {
            Some((html, text)) => self.engine().check_content(html, text)?,
            None => (current.html.clone(), current.text.clone()),
        };
        let content = self.reviewed(account, name, category, html, text).await?;
        let updated = self
            .env
            .store
            .templates()
            .update_template(account.id, id, content)
            .await?
            .ok_or_else(|| not_exist(id))?;
        self.engine().sendable.remove(&(account.id, id));
        // Older versions can no longer be sent; free their compiled form now rather than when they age out.
        self.engine().forget_compiled(id, Some(updated.version));
        Ok(updated)
    }

    pub(crate) async fn template(&self, account: &AccountContext, id: TemplateId) -> Result<StoredTemplate, CoreError> {
        self.env
            .store
            .templates()
            .template(account.id, id)
            .await?
            .ok_or_else(|| not_exist(id))
    }

    pub(crate) async fn list_templates(
        &self,
        account: &AccountContext,
        offset: i64,
        limit: i64,
    ) -> Result<TemplatePage, CoreError> {
        crate::error::check_page(offset, limit, MAX_TEMPLATE_LIST_LIMIT)?;
        Ok(self
            .env
            .store
            .templates()
            .list_templates(account.id, offset, limit)
            .await?)
    }

    pub(crate) async fn delete_template(&self, account: &AccountContext, id: TemplateId) -> Result<(), CoreError> {
        if !self.env.store.templates().delete_template(account.id, id).await? {
            return Err(not_exist(id));
        }
        self.engine().sendable.remove(&(account.id, id));
        self.engine().forget_compiled(id, None);
        Ok(())
    }

    /// Turns a `Template` send into rendered content and checks the account may send what it asks:
    /// `Simple` needs `allow_simple_content` (else `FailedOperation.WithOutPermission`). Runs before
    /// `send::admit`, which then checks the rendered Subject like any other.
    pub(crate) async fn resolve_content(
        &self,
        account: &AccountContext,
        mut req: SendRequest,
    ) -> Result<SendRequest, CoreError> {
        match req.content.take() {
            Some(SendContent::Simple { html, text }) => {
                if !self.policy_of(account).await?.allow_simple_content {
                    return Err(refuse(
                        ErrorCode::FailedOperationWithOutPermission,
                        "this account may only send approved templates (Template); custom content (Simple) needs the allow_simple_content permission",
                    ));
                }
                req.content = Some(SendContent::Simple { html, text });
            }
            Some(SendContent::Template { id, data }) => {
                let rendered = self.render_template(account, id, &data, &req.subject).await?;
                req.subject = rendered.subject;
                req.content = Some(SendContent::Simple {
                    html: rendered.html,
                    text: rendered.text,
                });
            }
            None => {}
        }
        Ok(req)
    }

    async fn render_template(
        &self,
        account: &AccountContext,
        id: TemplateId,
        data: &str,
        subject: &str,
    ) -> Result<mailpush_template::RenderedContent, CoreError> {
        let engine = self.engine();
        if data.len() > engine.data_max_bytes {
            return Err(refuse(
                ErrorCode::InvalidParameterValueTemplateDataLenLimit,
                format!(
                    "Template.TemplateData is {} bytes; at most {} are allowed",
                    data.len(),
                    engine.data_max_bytes
                ),
            ));
        }
        let summary = match engine.sendable.get(&(account.id, id)) {
            Some(hit) => hit,
            None => {
                let summary = self
                    .env
                    .store
                    .templates()
                    .template_summary(account.id, id)
                    .await?
                    .ok_or_else(|| {
                        refuse(
                            ErrorCode::FailedOperationInvalidTemplateID,
                            format!("Template.TemplateID {id} does not exist"),
                        )
                    })?;
                check_sendable(&summary)?;
                engine.sendable.put((account.id, id), summary.clone());
                summary
            }
        };
        let data = TemplateData::parse(data, &engine.data_policy).map_err(data_error)?;
        let key = TemplateKey::new(id as u64, summary.version as u64);
        let subject_key = (key, subject.to_owned());
        if let Some(compiled) = engine.with_subjects.get(&subject_key) {
            return compiled.render(&data).map_err(render_error);
        }
        let bodies = match engine.cache.get(&key) {
            Some(hit) => hit,
            None => {
                let Some(t) = self.env.store.templates().template(account.id, id).await? else {
                    return Err(refuse(
                        ErrorCode::FailedOperationInvalidTemplateID,
                        format!("Template.TemplateID {id} does not exist"),
                    ));
                };
                if t.version != summary.version {
                    // Edited between the two reads: its new review state decides.
                    check_sendable(&TemplateSummary {
                        status: t.status,
                        ..summary.clone()
                    })?;
                }
                // Review refuses anything that does not compile, so an approved template always does.
                let compiled = CompiledTemplate::compile("", t.html.as_deref(), t.text.as_deref()).map_err(|e| {
                    refuse(
                        ErrorCode::FailedOperationInvalidTemplateID,
                        format!("template {id} cannot be used: {e}"),
                    )
                })?;
                engine
                    .cache
                    .insert(TemplateKey::new(id as u64, t.version as u64), compiled.clone());
                compiled
            }
        };
        let compiled = bodies
            .with_subject(subject)
            .map_err(|e| refuse(ErrorCode::InvalidParameterValue, format!("Subject: {e}")))?;
        engine.with_subjects.insert(subject_key, compiled.clone());
        compiled.render(&data).map_err(render_error)
    }

    // ---- account permissions (admin CLI) ----

    pub(crate) async fn create_account_with_policy(
        &self,
        name: &str,
        policy: AccountPolicy,
    ) -> Result<accounts::AccountCredentials, CoreError> {
        let creds = self.accounts.create_account(name).await?;
        if policy != AccountPolicy::default() {
            let account = self.account_named(name).await?;
            self.env
                .store
                .templates()
                .set_account_policy(account.id, policy)
                .await?;
        }
        Ok(creds)
    }

    async fn account_named(&self, name: &str) -> Result<AccountContext, CoreError> {
        self.env
            .store
            .accounts()
            .account_by_name(name)
            .await?
            .map(|a| AccountContext::from(&a))
            .ok_or_else(|| {
                refuse(
                    ErrorCode::InvalidParameterValue,
                    format!("there is no account named {name}"),
                )
            })
    }

    pub(crate) async fn account_policy(&self, name: &str) -> Result<AccountPolicy, CoreError> {
        let account = self.account_named(name).await?;
        self.policy_of(&account).await
    }

    pub(crate) async fn set_account_policy(
        &self,
        name: &str,
        allow_simple_content: Option<bool>,
        allow_links: Option<bool>,
    ) -> Result<AccountPolicy, CoreError> {
        let account = self.account_named(name).await?;
        let mut policy = self.policy_of(&account).await?;
        if let Some(v) = allow_simple_content {
            policy.allow_simple_content = v;
        }
        if let Some(v) = allow_links {
            policy.allow_links = v;
        }
        self.env
            .store
            .templates()
            .set_account_policy(account.id, policy)
            .await?;
        Ok(policy)
    }

    // ---- operator review queue (admin CLI; spans accounts) ----

    pub(crate) async fn admin_templates(&self, pending_only: bool) -> Result<Vec<TemplateSummary>, CoreError> {
        let status = pending_only.then_some(TemplateStatus::Reviewing);
        Ok(self.env.store.templates().admin_list_templates(status).await?)
    }

    pub(crate) async fn admin_template(&self, id: TemplateId) -> Result<StoredTemplate, CoreError> {
        self.env
            .store
            .templates()
            .admin_template(id)
            .await?
            .ok_or_else(|| not_exist(id))
    }

    pub(crate) async fn approve_template(
        &self,
        id: TemplateId,
        version: Option<i64>,
    ) -> Result<StoredTemplate, CoreError> {
        let t = self.admin_template(id).await?;
        if t.status != TemplateStatus::Reviewing {
            return Err(refuse(
                ErrorCode::OperationDeniedTemplateStatusError,
                format!(
                    "template {id} is {}; only templates under review can be approved",
                    status_name(t.status)
                ),
            ));
        }
        self.set_review(t, version, TemplateStatus::Approved, "").await
    }

    pub(crate) async fn reject_template(
        &self,
        id: TemplateId,
        version: Option<i64>,
        reason: &str,
    ) -> Result<StoredTemplate, CoreError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(refuse(ErrorCode::InvalidParameterValue, "a rejection needs a reason"));
        }
        let t = self.admin_template(id).await?;
        if t.status == TemplateStatus::Rejected {
            return Err(refuse(
                ErrorCode::OperationDeniedTemplateStatusError,
                format!("template {id} is already rejected"),
            ));
        }
        self.set_review(t, version, TemplateStatus::Rejected, reason).await
    }

    async fn set_review(
        &self,
        t: StoredTemplate,
        version: Option<i64>,
        status: TemplateStatus,
        reason: &str,
    ) -> Result<StoredTemplate, CoreError> {
        let version = version.unwrap_or(t.version);
        if !self
            .env
            .store
            .templates()
            .admin_set_template_review(t.id, version, status, reason)
            .await?
        {
            return Err(refuse(
                ErrorCode::OperationDeniedTemplateStatusError,
                format!(
                    "template {} changed (now version {}) since version {version}; review it again",
                    t.id, t.version
                ),
            ));
        }
        self.engine().sendable.remove(&(t.account_id, t.id));
        self.admin_template(t.id).await
    }
}

fn not_exist(id: TemplateId) -> CoreError {
    refuse(
        ErrorCode::InvalidParameterValueTemplateNotExist,
        format!("TemplateID {id} does not exist"),
    )
}

pub(crate) fn check_sendable(t: &TemplateSummary) -> Result<(), CoreError> {
    if t.status == TemplateStatus::Approved {
        return Ok(());
    }
    let why = if t.review_reason.is_empty() {
        String::new()
    } else {
        format!(": {}", t.review_reason.lines().next().unwrap_or(""))
    };
    Err(refuse(
        ErrorCode::OperationDeniedTemplateStatusError,
        format!(
            "template {} is {}{why}; only approved templates can send",
            t.id,
            status_name(t.status)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(mode: &str) -> TemplateEngine {
        let s = Settings {
            template_review: mode.into(),
            ..Settings::default()
        };
        TemplateEngine::from_settings(&s).expect("engine")
    }

    const GOOD: &str = "<p>Dear {{name}}, your monthly account statement is ready. It covers every transaction made during the period and shows your current balance.</p>";

    #[test]
    fn review_modes_and_reasons() {
        let cat = TemplateCategory::Notification;
        assert_eq!(
            engine("auto").review(Some(GOOD), None, cat, false).0,
            TemplateStatus::Approved
        );
        assert_eq!(
            engine("manual").review(Some(GOOD), None, cat, false).0,
            TemplateStatus::Reviewing
        );
        // Two rules fail at once: both are in the reason, in both languages.
        let (status, reason) = engine("manual").review(
            Some("<p>{{a}} <a href=\"https://x.example\">x</a></p>"),
            None,
            cat,
            false,
        );
        assert_eq!(status, TemplateStatus::Rejected);
        assert!(reason.contains("min_text_length (Html)"), "{reason}");
        assert!(reason.contains("link_not_allowed (Html)"), "{reason}");
        assert!(reason.contains("可见文字"), "{reason}");
        assert!(
            TemplateEngine::from_settings(&Settings {
                template_review: "sometimes".into(),
                ..Settings::default()
            })
            .is_err()
        );
    }

    #[test]
    fn names_and_content() {
        let code = |r: Result<String, CoreError>| r.err().map(|e| e.to_api().code);
        assert_eq!(
            code(check_name("  ")),
            Some(ErrorCode::InvalidParameterValueTemplateNameIsNULL)
        );
        assert_eq!(
            code(check_name(&"x".repeat(65))),
            Some(ErrorCode::InvalidParameterValueTemplateNameIllegal)
        );
        assert_eq!(
            code(check_name("a\u{7}b")),
            Some(ErrorCode::InvalidParameterValueTemplateNameIllegal)
        );
        assert_eq!(check_name(" 订单通知 ").ok().as_deref(), Some("订单通知"));
        let e = engine("auto");
        let code = |r: Result<(Option<String>, Option<String>), CoreError>| r.err().map(|e| e.to_api().code);
        assert_eq!(
            code(e.check_content(Some(" ".into()), None)),
            Some(ErrorCode::InvalidParameterValueTemplateContentIsNULL)
        );
        assert_eq!(
            code(e.check_content(None, Some("x".repeat(e.max_bytes + 1)))),
            Some(ErrorCode::FailedOperationTemplateContentToolarge)
        );
    }

    #[test]
    fn data_and_render_errors_map_to_tencent_codes() {
        let code = |e: CoreError| e.to_api().code;
        let parse = |s: &str| {
            TemplateData::parse(s, &DataPolicy::default())
                .map_err(data_error)
                .err()
                .map(code)
        };
        assert_eq!(parse("{nope"), Some(ErrorCode::FailedOperationWrongContentJson));
        assert_eq!(
            parse(r#"{"a":"<script>x</script>"}"#),
            Some(ErrorCode::InvalidParameterValueInValidTemplateData)
        );
        assert_eq!(parse("[1]"), Some(ErrorCode::InvalidParameterValueInValidTemplateData));
        assert_eq!(
            code(render_error(RenderError::MissingVariable("x".into()))),
            ErrorCode::InvalidParameterValueTemplateNotMatchData
        );
        assert_eq!(
            code(render_error(RenderError::SubjectHasLineBreak)),
            ErrorCode::InvalidParameterValueSubjectLengthError
        );
    }
}
