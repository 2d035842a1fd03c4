//! "Send test event" of the console's settings: one signed callback of a sample `delivered` event to the
//! account's callback URL, through the same client (SSRF guard, timeout, signature) as real callbacks, so a
//! customer can check their endpoint before real mail flows.

use crate::accounts::AccountContext;
use crate::engage::Engagement;
use crate::error::CoreError;
use mailpush_model::ErrorCode;
use mailpush_webhook::CallbackPayload;

impl Engagement {
    pub(crate) async fn send_test_callback(&self, account: &AccountContext) -> Result<(), CoreError> {
        let config = self.callback_config(account).await?;
        let url = config
            .account_url
            .ok_or_else(|| CoreError::refused(ErrorCode::InvalidParameterValue, "the account has no callback URL"))?;
        let secret = self.callback_secret(account.id, false).await?;
        let client = crate::callbacks::client(&self.env.settings)?;
        let now = self.env.clock.now_ms() / 1000;
        let payload = CallbackPayload {
            event: "delivered".into(),
            event_id: 1,
            email: "test@example.com".into(),
            message_id: "mailpush-test-event".into(),
            timestamp: now,
            reason: "this is a test event sent from the mailpush console".into(),
            username: account.name.clone(),
            sent_timestamp: now,
            ..CallbackPayload::default()
        };
        client
            .post(&url, &secret, "test", now, payload.to_json())
            .await
            .map_err(|e| CoreError::refused(ErrorCode::FailedOperation, format!("{url}: {e}")))
    }
}
