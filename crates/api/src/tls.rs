//! HTTPS on the API listener: the certificate and key of `api_tls_cert` / `api_tls_key` (PEM), re-read on
//! SIGHUP so a renewed certificate is served without a restart (a failed reload keeps the one in force).

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use tokio_rustls::TlsAcceptor;

/// The API's TLS configuration in force and where it is read from.
pub struct ApiTls {
    cert: PathBuf,
    key: PathBuf,
    config: RwLock<Arc<rustls::ServerConfig>>,
}

impl std::fmt::Debug for ApiTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiTls")
            .field("cert", &self.cert)
            .finish_non_exhaustive()
    }
}

impl ApiTls {
    /// The TLS of the settings: `None` for plain HTTP; an error when only one of the two files is set or one
    /// cannot be used.
    pub fn from_settings(s: &mailpush_core::Settings) -> Result<Option<Arc<ApiTls>>, String> {
        match (&s.api_tls_cert, &s.api_tls_key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Ok(Some(Arc::new(ApiTls {
                config: RwLock::new(mailpush_core::tls::server_config_from_pem(cert, key)?),
                cert: cert.clone(),
                key: key.clone(),
            }))),
            _ => Err("api_tls_cert and api_tls_key must be set together".to_string()),
        }
    }

    /// Re-reads both files; on an error the configuration in force stays.
    pub fn reload(&self) -> Result<(), String> {
        let config = mailpush_core::tls::server_config_from_pem(&self.cert, &self.key)?;
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = config;
        Ok(())
    }

    /// An acceptor with the configuration in force now (a reload applies to the next connections).
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.read().unwrap_or_else(PoisonError::into_inner).clone())
    }

    /// Reloads on every SIGHUP until the task is aborted.
    pub(crate) fn reload_on_sighup(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let tls = self.clone();
        tokio::spawn(async move {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{SignalKind, signal};
                let Ok(mut hangups) = signal(SignalKind::hangup()) else {
                    tracing::warn!("api: cannot watch SIGHUP; the TLS certificate is not reloaded");
                    return;
                };
                while hangups.recv().await.is_some() {
                    match tls.reload() {
                        Ok(()) => tracing::info!(cert = %tls.cert.display(), "api: TLS certificate reloaded"),
                        Err(e) => tracing::error!(error = %e, "api: TLS reload failed; the previous certificate stays"),
                    }
                }
            }
            #[cfg(not(unix))]
            std::future::pending::<()>().await
        })
    }
}
