//! The API's metrics: each request counted by action and reply code, with its latency
//! (`mailpush_api_requests_total`, `mailpush_api_request_duration_seconds`).

use std::time::Instant;

/// Every action name `actions::dispatch` answers: a label is one of these or `unknown`, so a client sending
/// made-up names cannot grow the number of series.
const ACTIONS: &[&str] = &[
    "SendEmail",
    "GetSendEmailStatus",
    "GetSendQuota",
    "CreateEmailTemplate",
    "UpdateEmailTemplate",
    "GetEmailTemplate",
    "ListEmailTemplates",
    "DeleteEmailTemplate",
    "ListBlackEmailAddress",
    "DeleteBlackList",
    "CreateCustomBlacklist",
    "ListCustomBlacklist",
    "UpdateCustomBlackList",
    "DeleteCustomBlackList",
    "CreateReceiver",
    "CreateReceiverDetail",
    "CreateReceiverDetailWithData",
    "ListReceivers",
    "ListReceiverDetails",
    "DeleteReceiver",
    "BatchSendEmail",
    "ListSendTasks",
    "GetStatisticsReport",
    "GetAbuseReport",
    "CreateAddressUnsubscribeConfig",
    "UpdateAddressUnsubscribeConfig",
    "DeleteAddressUnsubscribeConfig",
    "ListAddressUnsubscribeConfig",
    "ListReputationWarnings",
    "GetDmarcReport",
    "SetCallbackUrl",
    "GetCallbackConfig",
    "ResetCallbackSecret",
    "CreateEmailIdentity",
    "GetEmailIdentity",
    "UpdateEmailIdentity",
    "ListEmailIdentities",
    "DeleteEmailIdentity",
    "CreateEmailAddress",
    "ListEmailAddress",
    "DeleteEmailAddress",
    "UpdateEmailSmtpPassWord",
    "GetTlsPolicy",
    "UpdateTlsPolicy",
];

/// The label of the `X-TC-Action` header value.
pub(crate) fn action_label(name: Option<&str>) -> &'static str {
    name.and_then(|n| ACTIONS.iter().find(|a| **a == n).copied())
        .unwrap_or("unknown")
}

/// Records a request answered with `code` (`None` = success).
pub(crate) fn request(action: Option<&str>, code: Option<mailpush_model::ErrorCode>, started: Instant) {
    mailpush_telemetry::api_request(
        action_label(action),
        code.map_or("Success", mailpush_model::ErrorCode::as_str),
        started.elapsed(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_actions_are_unknown() {
        assert_eq!(action_label(Some("SendEmail")), "SendEmail");
        assert_eq!(action_label(Some("SendEmail2")), "unknown");
        assert_eq!(action_label(None), "unknown");
        assert!(ACTIONS.len() >= 40, "{}", ACTIONS.len());
    }
}
