//! Identities: `CreateEmailIdentity`, `GetEmailIdentity`, `ListEmailIdentities`, `DeleteEmailIdentity`. A domain
//! identity is core's sending domain (its DKIM keys, records and DNS verification); an email-address identity is
//! a sender address of such a domain. DKIM is mailpush's: `DkimAttributes.Tokens` are the selectors, and the
//! records to publish (TXT keys, SPF, MX, DMARC) are in the extension field `DnsRecords`.

use axum::Json;
use axum::extract::RawQuery;
use mailpush_core::{AccountContext, IdentityView, Mailpush};
use mailpush_model::identity::IdentityTag;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{AwsError, Named, Signed, paged_reply};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Tag {
    key: String,
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateInput {
    email_identity: String,
    #[serde(default)]
    tags: Vec<Tag>,
}

fn dkim_status(v: &IdentityView) -> &'static str {
    let dkim: Vec<bool> = v
        .records
        .iter()
        .filter(|r| r.spec.name.contains("._domainkey."))
        .map(|r| r.pass)
        .collect();
    if !dkim.is_empty() && dkim.iter().all(|p| *p) {
        "SUCCESS"
    } else if v.checked_ms == 0 {
        "PENDING"
    } else {
        "FAILED"
    }
}

fn verification_status(v: &IdentityView) -> &'static str {
    if v.verified {
        "SUCCESS"
    } else if v.checked_ms == 0 {
        "PENDING"
    } else {
        "FAILED"
    }
}

fn dkim_attributes(v: &IdentityView) -> Value {
    let tokens: Vec<&str> = v
        .records
        .iter()
        .filter_map(|r| r.spec.name.split_once("._domainkey.").map(|(selector, _)| selector))
        .collect();
    json!({
        "SigningEnabled": true,
        "Status": dkim_status(v),
        "Tokens": tokens,
        "SigningAttributesOrigin": "AWS_SES",
        "NextSigningKeyLength": if v.dkim_option == 0 { "RSA_1024_BIT" } else { "RSA_2048_BIT" },
        "CurrentSigningKeyLength": if v.dkim_option == 0 { "RSA_1024_BIT" } else { "RSA_2048_BIT" },
    })
}

fn dns_records(v: &IdentityView) -> Value {
    v.records
        .iter()
        .map(|r| {
            json!({
                "Type": r.spec.record_type,
                "Name": r.spec.name,
                "Value": r.spec.expected,
                "Status": if r.pass { "SUCCESS" } else { "PENDING" },
            })
        })
        .collect()
}

fn is_address(identity: &str) -> bool {
    identity.contains('@')
}

fn domain_of(identity: &str) -> &str {
    identity.rsplit_once('@').map_or(identity, |(_, d)| d)
}

pub(crate) async fn create(signed: Signed) -> Result<Json<Value>, AwsError> {
    let input: CreateInput = signed.json()?;
    let (core, ctx) = (&signed.core, &signed.ctx);
    let identity = input.email_identity.trim().to_string();
    if is_address(&identity) {
        let domain = core.get_identity(ctx, domain_of(&identity)).await.map_err(|_| {
            AwsError::bad_request(format!(
                "create the domain identity {} first: mailpush verifies domains, not single addresses",
                domain_of(&identity)
            ))
        })?;
        core.create_sender(ctx, &identity, None)
            .await
            .map_err(AwsError::from_core)?;
        return Ok(Json(json!({
            "IdentityType": "EMAIL_ADDRESS",
            "VerifiedForSendingStatus": domain.verified,
        })));
    }
    let v = core
        .create_identity(ctx, &identity, None)
        .await
        .map_err(AwsError::from_core)?;
    let tags: Vec<IdentityTag> = input
        .tags
        .into_iter()
        .map(|t| IdentityTag {
            key: t.key,
            value: t.value.unwrap_or_default(),
        })
        .collect();
    core.set_identity_tags(ctx, &v.domain, &tags)
        .await
        .map_err(AwsError::from_core)?;
    Ok(Json(json!({
        "IdentityType": "DOMAIN",
        "VerifiedForSendingStatus": v.verified,
        "DkimAttributes": dkim_attributes(&v),
        "DnsRecords": dns_records(&v),
    })))
}

/// The identity as SES shows it; an unverified domain is checked against DNS now (SES verifies on its own).
async fn domain_view(core: &Mailpush, ctx: &AccountContext, domain: &str) -> Result<IdentityView, AwsError> {
    let v = core.get_identity(ctx, domain).await.map_err(not_found)?;
    if v.verified {
        return Ok(v);
    }
    core.update_identity(ctx, domain, None)
        .await
        .map_err(AwsError::from_core)
}

fn not_found(e: mailpush_core::CoreError) -> AwsError {
    let aws = AwsError::from_core(e);
    if aws.kind == "NotFoundException" {
        return aws;
    }
    AwsError::not_found(aws.message)
}

pub(crate) async fn get(signed: Named) -> Result<Json<Value>, AwsError> {
    let (core, ctx) = (&signed.core, &signed.ctx);
    let identity = &signed.name;
    let v = domain_view(core, ctx, domain_of(identity)).await?;
    if is_address(identity) {
        let senders = core.list_senders(ctx).await.map_err(AwsError::from_core)?;
        if !senders.iter().any(|s| s.address.eq_ignore_ascii_case(identity)) {
            return Err(AwsError::not_found(format!("Email identity {identity} does not exist")));
        }
    }
    let tags = core.identity_tags(ctx).await.map_err(AwsError::from_core)?;
    let tags: Vec<Value> = tags
        .get(&v.domain)
        .map(|list| list.iter().map(|t| json!({"Key": t.key, "Value": t.value})).collect())
        .unwrap_or_default();
    Ok(Json(json!({
        "IdentityType": if is_address(identity) { "EMAIL_ADDRESS" } else { "DOMAIN" },
        "FeedbackForwardingStatus": true,
        "VerifiedForSendingStatus": v.verified,
        "VerificationStatus": verification_status(&v),
        "DkimAttributes": dkim_attributes(&v),
        "MailFromAttributes": mail_from_attributes(&v),
        "Policies": {},
        "Tags": tags,
        "DnsRecords": dns_records(&v),
    })))
}

pub(crate) async fn list(RawQuery(query): RawQuery, signed: Signed) -> Result<Json<Value>, AwsError> {
    let (core, ctx) = (&signed.core, &signed.ctx);
    let (domains, _) = core
        .list_identities(ctx, 0, i64::MAX)
        .await
        .map_err(AwsError::from_core)?;
    let senders = core.list_senders(ctx).await.map_err(AwsError::from_core)?;
    let mut all: Vec<Value> = Vec::new();
    for v in &domains {
        all.push(json!({
            "IdentityType": "DOMAIN",
            "IdentityName": v.domain,
            "SendingEnabled": v.verified,
            "VerificationStatus": verification_status(v),
        }));
    }
    for s in &senders {
        let verified = domains
            .iter()
            .any(|v| v.verified && v.domain.eq_ignore_ascii_case(domain_of(&s.address)));
        all.push(json!({
            "IdentityType": "EMAIL_ADDRESS",
            "IdentityName": s.address,
            "SendingEnabled": verified,
            "VerificationStatus": if verified { "SUCCESS" } else { "PENDING" },
        }));
    }
    Ok(Json(paged_reply("EmailIdentities", all, query.as_deref())?))
}

pub(crate) async fn delete(signed: Named) -> Result<Json<Value>, AwsError> {
    let (core, ctx) = (&signed.core, &signed.ctx);
    let identity = &signed.name;
    if is_address(identity) {
        core.delete_sender(ctx, identity).await.map_err(not_found)?;
    } else {
        core.delete_identity(ctx, identity).await.map_err(not_found)?;
    }
    Ok(Json(json!({})))
}

/// `MailFromAttributes`: the domain's return-path domain and whether its SPF and MX records pass.
fn mail_from_attributes(v: &IdentityView) -> Value {
    let records: Vec<_> = v
        .records
        .iter()
        .filter(|r| r.spec.name.eq_ignore_ascii_case(&v.mail_from_domain) && r.spec.name != v.domain)
        .collect();
    let status = if records.is_empty() || records.iter().all(|r| r.pass) {
        "SUCCESS"
    } else if records.iter().any(|r| !r.current.is_empty()) {
        "FAILED"
    } else {
        "PENDING"
    };
    json!({
        "MailFromDomain": v.mail_from_domain,
        "MailFromDomainStatus": status,
        // mailpush never falls back to another MAIL FROM: mail waits until the records pass.
        "BehaviorOnMxFailure": "REJECT_MESSAGE",
    })
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MailFromRequest {
    /// Empty or absent: back to the default, `bounce.<domain>`.
    mail_from_domain: Option<String>,
    /// Accepted; mailpush always waits for the records (`REJECT_MESSAGE`).
    #[allow(dead_code)]
    behavior_on_mx_failure: Option<String>,
}

/// `PutEmailIdentityMailFromAttributes`: the identity's return-path (custom MAIL FROM) domain.
pub(crate) async fn put_mail_from(signed: Named) -> Result<Json<Value>, AwsError> {
    let (core, ctx) = (&signed.core, &signed.ctx);
    let identity = &signed.name;
    if is_address(identity) {
        return Err(AwsError::bad_request(
            "a MAIL FROM domain belongs to a domain identity, not to an address",
        ));
    }
    let req: MailFromRequest = signed.json()?;
    core.set_mail_from_domain(ctx, identity, req.mail_from_domain.as_deref())
        .await
        .map_err(AwsError::from_core)?;
    Ok(Json(json!({})))
}
