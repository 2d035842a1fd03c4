//! A receiver that accepts TCP connections and never says a word: the hostile MX of delivery tests (a tarpit,
//! or a host whose SMTP service hangs).

use crate::TestkitError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Accepts every connection and keeps it open, silent, until the client closes it. Stops when dropped.
pub struct Tarpit {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Tarpit {
    /// Listens on `addr` (port 0 picks a free port). Must be called inside a tokio runtime.
    pub async fn start(addr: SocketAddr) -> Result<Tarpit, TestkitError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| TestkitError::Bind { addr, source })?;
        let addr = listener.local_addr()?;
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                counter.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    let mut buf = [0u8; 512];
                    // Read and ignore until the client hangs up.
                    while let Ok(n) = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                });
            }
        });
        Ok(Tarpit { addr, accepted, task })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for Tarpit {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for Tarpit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tarpit")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}
