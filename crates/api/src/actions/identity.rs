//! Sending-identity actions: domains (`*EmailIdentity*`) and sender addresses (`*EmailAddress`,
//! `UpdateEmailSmtpPassWord`). Field names from the SDK's `models.py`.

use super::parse;
use mailpush_core::tags_match;
use mailpush_core::{AccountContext, IdentityView, Mailpush, SenderView};
use mailpush_model::identity::IdentityTag;
use mailpush_model::{ApiError, ErrorCode};
use serde::Deserialize;
use serde_json::{Value, json};

/// `DNSAttributes[]` plus the identity's summary fields shared by Create/Get/Update replies.
fn identity_reply(v: &IdentityView) -> Value {
    let attributes: Vec<Value> = v
        .records
        .iter()
        .map(|r| {
            json!({
                "Type": r.spec.record_type,
                "SendDomain": r.spec.host,
                "ExpectedValue": r.spec.expected,
                "CurrentValue": r.current,
                "Status": r.pass,
            })
        })
        .collect();
    json!({
        "IdentityType": mailpush_core::IDENTITY_TYPE,
        "VerifiedForSendingStatus": v.verified,
        "Attributes": attributes,
        "DKIMOption": v.dkim_option,
        // mailpush extension: why the domain may not send ("" when it may).
        "SendingDisabledReason": v.reason.clone().unwrap_or_default(),
        // mailpush extension: the return-path domain, where SPF and the bounce MX live.
        "MailFromDomain": v.mail_from_domain,
    })
}

/// `TagList[]` element.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct TagParam {
    tag_key: String,
    tag_value: Option<String>,
}

fn tags_of(list: Option<Vec<TagParam>>) -> Vec<IdentityTag> {
    list.unwrap_or_default()
        .into_iter()
        .map(|t| IdentityTag {
            key: t.tag_key,
            value: t.tag_value.unwrap_or_default(),
        })
        .collect()
}

fn tags_json(tags: &[IdentityTag]) -> Value {
    tags.iter()
        .map(|t| json!({"TagKey": t.key, "TagValue": t.value}))
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct CreateIdentityParams {
    email_identity: String,
    #[serde(rename = "DKIMOption")]
    dkim_option: Option<i64>,
    /// mailpush extension: the return-path domain (default `bounce.<domain>`).
    mail_from_domain: Option<String>,
    tag_list: Option<Vec<TagParam>>,
}

pub(super) async fn create_identity(core: &Mailpush, ctx: &AccountContext, params: Value) -> Result<Value, ApiError> {
    let p: CreateIdentityParams = parse(params)?;
    let tags = tags_of(p.tag_list);
    let mut v = core.create_identity(ctx, &p.email_identity, p.dkim_option).await?;
    // A domain created again starts with the tags of this request, not those of an earlier life.
    core.set_identity_tags(ctx, &v.domain, &tags).await?;
    if let Some(m) = p.mail_from_domain.as_deref() {
        v = core.set_mail_from_domain(ctx, &p.email_identity, Some(m)).await?;
    }
    let mut reply = identity_reply(&v);
    reply["TagList"] = tags_json(&tags);
    Ok(reply)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct IdentityParams {
    email_identity: String,
}

pub(super) async fn get_identity(core: &Mailpush, ctx: &AccountContext, params: Value) -> Result<Value, ApiError> {
    let p: IdentityParams = parse(params)?;
    let v = core.get_identity(ctx, &p.email_identity).await?;
    let tags = core.identity_tags(ctx).await?;
    let mut reply = identity_reply(&v);
    reply["TagList"] = tags_json(tags.get(&v.domain).map_or(&[], Vec::as_slice));
    Ok(reply)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct UpdateIdentityParams {
    email_identity: String,
    /// The console's old/new API switch: meaningless here.
    #[serde(rename = "NewAPI")]
    #[allow(dead_code)]
    new_api: Option<bool>,
    #[serde(rename = "DKIMOption")]
    dkim_option: Option<i64>,
    /// mailpush extension: a new return-path domain (`""` = back to `bounce.<domain>`).
    mail_from_domain: Option<String>,
}

pub(super) async fn update_identity(core: &Mailpush, ctx: &AccountContext, params: Value) -> Result<Value, ApiError> {
    let p: UpdateIdentityParams = parse(params)?;
    if let Some(m) = p.mail_from_domain.as_deref() {
        core.set_mail_from_domain(ctx, &p.email_identity, Some(m)).await?;
    }
    let v = core.update_identity(ctx, &p.email_identity, p.dkim_option).await?;
    Ok(identity_reply(&v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct ListIdentitiesParams {
    tag_list: Option<Vec<TagParam>>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// Most domains one `ListEmailIdentities` page returns.
const MAX_LIST_LIMIT: i64 = 100;

pub(super) async fn list_identities(core: &Mailpush, ctx: &AccountContext, params: Value) -> Result<Value, ApiError> {
    let p: ListIdentitiesParams = parse(params)?;
    let limit = p.limit.unwrap_or(MAX_LIST_LIMIT);
    if !(0..=MAX_LIST_LIMIT).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidParameterValue,
            format!("Limit must be between 0 and {MAX_LIST_LIMIT}"),
        ));
    }
    let offset = p.offset.unwrap_or(0);
    let wanted = tags_of(p.tag_list);
    let tags = core.identity_tags(ctx).await?;
    let no_tags: &[IdentityTag] = &[];
    let tags_of_domain = |d: &str| tags.get(d).map_or(no_tags, Vec::as_slice);
    let (list, total) = if wanted.is_empty() {
        core.list_identities(ctx, offset, limit).await?
    } else {
        // Filtered by tags: an identity matches when it carries every (TagKey, TagValue) asked for.
        let (all, _) = core.list_identities(ctx, 0, i64::MAX).await?;
        let matching: Vec<IdentityView> = all
            .into_iter()
            .filter(|v| tags_match(tags_of_domain(&v.domain), &wanted))
            .collect();
        let total = i64::try_from(matching.len()).unwrap_or(i64::MAX);
        let page = matching
            .into_iter()
            .skip(usize::try_from(offset.max(0)).unwrap_or(usize::MAX))
            .take(usize::try_from(limit).unwrap_or(0))
            .collect();
        (page, total)
    };
    let mut send_ips = Vec::with_capacity(list.len());
    for v in &list {
        send_ips.push(core.identity_send_ips(ctx, &v.domain).await?);
    }
    let names: Vec<&str> = list.iter().map(|v| v.domain.as_str()).collect();
    let levels = core.reputations(ctx, &names).await?;
    let identities: Vec<Value> = list
        .iter()
        .zip(&levels)
        .zip(&send_ips)
        .map(|((v, r), ips)| {
            json!({
                "IdentityName": v.domain,
                "IdentityType": mailpush_core::IDENTITY_TYPE,
                "SendingEnabled": v.verified,
                "CurrentReputationLevel": r.level,
                "DailyQuota": r.daily_quota,
                "SendIp": ips,
                "TagList": tags_json(tags_of_domain(&v.domain)),
                "DKIMOption": v.dkim_option,
                "SendingDisabledReason": v.reason.clone().unwrap_or_default(),
            })
        })
        .collect();
    // The highest level among the listed domains and its quota (0 without domains).
    let max = levels.iter().max_by_key(|r| r.level);
    Ok(json!({
        "EmailIdentities": identities,
        "MaxReputationLevel": max.map_or(0, |r| r.level),
        "MaxDailyQuota": max.map_or(0, |r| r.daily_quota),
        "Total": total,
    }))
}

pub(super) async fn delete_identity(core: &Mailpush, ctx: &AccountContext, params: Value) -> Result<Value, ApiError> {
    let p: IdentityParams = parse(params)?;
    core.delete_identity(ctx, &p.email_identity).await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct CreateAddressParams {
    email_address: String,
    email_sender_name: Option<String>,
}

pub(super) async fn create_address(core: &Mailpush, ctx: &AccountContext, params: Value) -> Result<Value, ApiError> {
    let p: CreateAddressParams = parse(params)?;
    core.create_sender(ctx, &p.email_address, p.email_sender_name.as_deref())
        .await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

fn sender_json(s: &SenderView) -> Value {
    json!({
        "EmailAddress": s.address,
        "EmailSenderName": s.sender_name,
        "CreatedTimestamp": s.created_ms / 1000,
        "SmtpPwdType": i32::from(s.has_smtp_password),
    })
}

pub(super) async fn list_addresses(core: &Mailpush, ctx: &AccountContext, params: Value) -> Result<Value, ApiError> {
    let _: NoParams = parse(params)?;
    let list = core.list_senders(ctx).await?;
    Ok(json!({ "EmailSenders": list.iter().map(sender_json).collect::<Vec<_>>() }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct AddressParams {
    email_address: String,
}

pub(super) async fn delete_address(core: &Mailpush, ctx: &AccountContext, params: Value) -> Result<Value, ApiError> {
    let p: AddressParams = parse(params)?;
    core.delete_sender(ctx, &p.email_address).await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct PasswordParams {
    password: String,
    email_address: String,
}

pub(super) async fn update_password(core: &Mailpush, ctx: &AccountContext, params: Value) -> Result<Value, ApiError> {
    let p: PasswordParams = parse(params)?;
    core.update_smtp_password(ctx, &p.email_address, &p.password).await?;
    Ok(json!({}))
}
