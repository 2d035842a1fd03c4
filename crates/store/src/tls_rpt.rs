//! TLS-RPT (RFC 8460) data (`tls_rpt_counts`, `tls_rpt_reports`, migration 0041): the TLS outcome of outbound
//! SMTP sessions counted per receiving policy domain and UTC day, and the daily reports sent from them.
//!
//! Counters are added, never written per session: each node folds its sessions in memory and adds the sums here
//! (an upsert per distinct row), so several nodes sharing one PostgreSQL database count into the same rows. A
//! domain's report of a day is claimed once ([`TlsRpt::claim_report`]): the node whose insert wins sends it.

use crate::sql::{builder, query};
use crate::{Store, StoreError};

/// Rows added per statement.
const ROWS_PER_STATEMENT: usize = 200;

/// One counter: sessions of a UTC day towards a policy domain under one policy, with one result.
#[derive(Debug, Clone, PartialEq, Eq, Hash, sqlx::FromRow)]
pub struct TlsRptCount {
    /// UTC day, days since 1970-01-01.
    pub day: i64,
    /// The receiving domain whose policy applied.
    pub policy_domain: String,
    /// `sts`, `tlsa` or `no-policy-found`.
    pub policy_type: String,
    /// The policy's strings (the MTA-STS policy's lines, the TLSA records), newline-separated.
    pub policy_strings: String,
    /// The MX host patterns (MTA-STS) or the MX host (DANE), newline-separated.
    pub mx_hosts: String,
    /// Empty for successful sessions, else the RFC 8460 §4.3 result type of the failure.
    pub result_type: String,
    /// The sending address of a failed session (empty when not known).
    pub sending_ip: String,
    /// The MX host of a failed session.
    pub receiving_mx: String,
    /// The MX address of a failed session (empty when not known).
    pub receiving_ip: String,
    /// What the failure said (empty when nothing more is known).
    pub reason_code: String,
    /// Sessions.
    pub sessions: i64,
}

/// A policy domain with counts on a day that has no report yet.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TlsRptPending {
    /// UTC day, days since 1970-01-01.
    pub day: i64,
    /// The policy domain.
    pub policy_domain: String,
}

/// TLS-RPT counters and reports ([`Store::tls_rpt`]).
#[derive(Debug, Clone, Copy)]
pub struct TlsRpt<'a> {
    store: &'a Store,
}

impl Store {
    /// TLS-RPT: session counters per policy domain and day, and the daily reports sent from them.
    pub fn tls_rpt(&self) -> TlsRpt<'_> {
        TlsRpt { store: self }
    }
}

impl TlsRpt<'_> {
    /// Adds `counts` (distinct keys) to the stored counters, in one transaction.
    pub async fn add(self, counts: &[TlsRptCount]) -> Result<(), StoreError> {
        if counts.is_empty() {
            return Ok(());
        }
        self.store
            .guarded(async {
                let mut tx = self.store.writer().begin_write().await?;
                let mut conn = tx.conn();
                for chunk in counts.chunks(ROWS_PER_STATEMENT) {
                    let mut qb = builder(
                        "INSERT INTO tls_rpt_counts (day, policy_domain, policy_type, policy_strings, mx_hosts, \
                         result_type, sending_ip, receiving_mx, receiving_ip, reason_code, sessions) ",
                    );
                    qb.push_values(chunk, |b, c| {
                        b.push_bind(c.day)
                            .push_bind(&c.policy_domain)
                            .push_bind(&c.policy_type)
                            .push_bind(&c.policy_strings)
                            .push_bind(&c.mx_hosts)
                            .push_bind(&c.result_type)
                            .push_bind(&c.sending_ip)
                            .push_bind(&c.receiving_mx)
                            .push_bind(&c.receiving_ip)
                            .push_bind(&c.reason_code)
                            .push_bind(c.sessions);
                    });
                    qb.push(
                        " ON CONFLICT (day, policy_domain, policy_type, policy_strings, mx_hosts, result_type, \
                         sending_ip, receiving_mx, receiving_ip, reason_code) \
                         DO UPDATE SET sessions = tls_rpt_counts.sessions + excluded.sessions",
                    );
                    qb.build().execute(&mut conn).await?;
                }
                tx.commit().await
            })
            .await
    }

    /// Up to `limit` (day, policy domain) pairs counted on a day before `before_day` whose report was not claimed
    /// yet, oldest first.
    pub async fn unreported(self, before_day: i64, limit: u32) -> Result<Vec<TlsRptPending>, StoreError> {
        query(
            "SELECT DISTINCT c.day, c.policy_domain FROM tls_rpt_counts c \
             WHERE c.day < $1 AND NOT EXISTS (SELECT 1 FROM tls_rpt_reports r \
                 WHERE r.day = c.day AND r.policy_domain = c.policy_domain) \
             ORDER BY c.day, c.policy_domain LIMIT $2",
        )
        .bind(before_day)
        .bind(i64::from(limit))
        .fetch_all(self.store.guarded_reader())
        .await
    }

    /// The counters of `policy_domain` on `day`, in key order.
    pub async fn counts(self, day: i64, policy_domain: &str) -> Result<Vec<TlsRptCount>, StoreError> {
        query(
            "SELECT day, policy_domain, policy_type, policy_strings, mx_hosts, result_type, sending_ip, \
             receiving_mx, receiving_ip, reason_code, sessions FROM tls_rpt_counts \
             WHERE day = $1 AND policy_domain = $2 \
             ORDER BY policy_type, policy_strings, mx_hosts, result_type, sending_ip, receiving_mx, receiving_ip, \
             reason_code",
        )
        .bind(day)
        .bind(policy_domain)
        .fetch_all(self.store.guarded_reader())
        .await
    }

    /// Claims the report of `policy_domain` on `day` under `report_id`; `false` when it was claimed before (by
    /// this node or another), so each report is sent once.
    pub async fn claim_report(
        self,
        day: i64,
        policy_domain: &str,
        report_id: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        query(
            "INSERT INTO tls_rpt_reports (day, policy_domain, report_id, outcome, claimed_ms) \
             VALUES ($1, $2, $3, '', $4) ON CONFLICT (day, policy_domain) DO NOTHING",
        )
        .bind(day)
        .bind(policy_domain)
        .bind(report_id)
        .bind(now_ms)
        .execute_changed(self.store.guarded_writer())
        .await
    }

    /// Notes what became of a claimed report (`sent`, `no policy`, or why it could not be delivered).
    pub async fn finish_report(self, day: i64, policy_domain: &str, outcome: &str) -> Result<(), StoreError> {
        query("UPDATE tls_rpt_reports SET outcome = $1 WHERE day = $2 AND policy_domain = $3")
            .bind(outcome)
            .bind(day)
            .bind(policy_domain)
            .execute_found(self.store.guarded_writer())
            .await
    }

    /// What became of the report of `policy_domain` on `day`: its id and outcome, `None` when not claimed.
    pub async fn report(self, day: i64, policy_domain: &str) -> Result<Option<(String, String)>, StoreError> {
        query("SELECT report_id, outcome FROM tls_rpt_reports WHERE day = $1 AND policy_domain = $2")
            .bind(day)
            .bind(policy_domain)
            .fetch_optional(self.store.guarded_reader())
            .await
    }
}
