//! `GetAccount`: the account's sending quota, rate and state, from core's quota (the same numbers as Tencent's
//! `GetSendQuota`).

use axum::Json;
use serde_json::{Value, json};

use crate::{AwsError, Signed};

pub(crate) async fn get_account(signed: Signed) -> Result<Json<Value>, AwsError> {
    let q = signed.core.send_quota(&signed.ctx).await.map_err(AwsError::from_core)?;
    let sending = !signed.ctx.suspended;
    Ok(Json(json!({
        "DedicatedIpAutoWarmupEnabled": false,
        "EnforcementStatus": if sending { "HEALTHY" } else { "SHUTDOWN" },
        "ProductionAccessEnabled": true,
        "SendingEnabled": sending,
        "SendQuota": {
            "Max24HourSend": q.daily_quota as f64,
            "MaxSendRate": q.sends_per_second as f64,
            "SentLast24Hours": q.sent_today as f64,
        },
        "SuppressionAttributes": { "SuppressedReasons": ["BOUNCE", "COMPLAINT"] },
    })))
}
