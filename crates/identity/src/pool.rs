//! DKIM signing off the async runtime, on a few threads of their own, optionally at a lower CPU priority.
//!
//! An RSA-2048 signature costs 0.3–0.7 ms of CPU (aws-lc; the slower figure on CPUs without AVX-512 IFMA).
//! Signed on a runtime thread, it stalls every task queued behind it there (API requests, SMTP sessions, the
//! queue's commits). ed25519 (≈ 70 µs) costs less than the hand-off to a thread and is signed by the caller.
//! With `nice` > 0 the threads run below the process's own priority, so under overload the kernel gives
//! admission (which must answer its clients) the CPU first and delivery takes the rest; on an idle machine they
//! sign at full speed. Trigger mail (codes, password resets) is signed before waiting marketing mail.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use tokio::sync::oneshot;

use crate::IdentityError;
use crate::keys::{KeyAlgorithm, SigningKey, sign};

/// Which queue a signature waits in: urgent jobs are all taken before any normal one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignPriority {
    /// Trigger mail: signed first.
    Urgent,
    /// Everything else, in arrival order.
    Normal,
}

/// A fixed set of signing threads; dropping the pool lets them finish the queued jobs and exit.
pub struct SigningPool {
    shared: Arc<PoolShared>,
}

impl std::fmt::Debug for SigningPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningPool").finish_non_exhaustive()
    }
}

struct SignJob {
    message: Vec<u8>,
    keys: Arc<Vec<SigningKey>>,
    reply: oneshot::Sender<Result<Vec<u8>, IdentityError>>,
}

#[derive(Default)]
struct Queues {
    urgent: VecDeque<SignJob>,
    normal: VecDeque<SignJob>,
    closed: bool,
}

impl Queues {
    fn push(&mut self, job: SignJob, priority: SignPriority) {
        match priority {
            SignPriority::Urgent => self.urgent.push_back(job),
            SignPriority::Normal => self.normal.push_back(job),
        }
        mailpush_telemetry::dkim_sign_queue(self.urgent.len() + self.normal.len());
    }

    fn pop(&mut self) -> Option<SignJob> {
        let job = self.urgent.pop_front().or_else(|| self.normal.pop_front());
        if job.is_some() {
            mailpush_telemetry::dkim_sign_queue(self.urgent.len() + self.normal.len());
        }
        job
    }
}

#[derive(Default)]
struct PoolShared {
    queues: Mutex<Queues>,
    ready: Condvar,
}

impl SigningPool {
    /// Starts `threads` signing threads (at least one), each `nice` steps below the process's CPU priority
    /// (0 = the same; Linux only, where a thread's nice value is its own; elsewhere ignored).
    pub fn start(threads: usize, nice: u8) -> Result<SigningPool, IdentityError> {
        let shared = Arc::new(PoolShared::default());
        for i in 0..threads.max(1) {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("dkim-sign-{i}"))
                .spawn(move || {
                    lower_priority(nice);
                    work(&shared);
                })
                .map_err(|e| IdentityError::Key(format!("starting a signing thread: {e}")))?;
        }
        Ok(SigningPool { shared })
    }

    /// The `DKIM-Signature` header fields of `message` for every key, as [`sign`] makes them: on a pool thread
    /// when a key is RSA, on the calling thread when every key is ed25519.
    pub async fn sign(
        &self,
        message: &[u8],
        keys: Arc<Vec<SigningKey>>,
        priority: SignPriority,
    ) -> Result<Vec<u8>, IdentityError> {
        if keys.iter().all(|k| k.algorithm() == KeyAlgorithm::Ed25519) {
            return sign(message, &keys);
        }
        let (reply, answer) = oneshot::channel();
        let job = SignJob {
            message: message.to_vec(),
            keys,
            reply,
        };
        self.shared
            .queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(job, priority);
        self.shared.ready.notify_one();
        answer
            .await
            .map_err(|_| IdentityError::Key("the signing thread stopped".to_string()))?
    }
}

impl Drop for SigningPool {
    fn drop(&mut self) {
        self.shared.queues.lock().unwrap_or_else(PoisonError::into_inner).closed = true;
        self.shared.ready.notify_all();
    }
}

fn work(shared: &PoolShared) {
    loop {
        let job = {
            let mut q = shared.queues.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                if let Some(job) = q.pop() {
                    break job;
                }
                if q.closed {
                    return;
                }
                q = shared.ready.wait(q).unwrap_or_else(PoisonError::into_inner);
            }
        };
        // A caller that went away (its task was cancelled) no longer wants the signature: skip the work.
        if job.reply.is_closed() {
            continue;
        }
        // A panic must not take a thread out of the pool (each one lost would slow every later signature).
        let signed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sign(&job.message, &job.keys)))
            .unwrap_or_else(|_| Err(IdentityError::Key("signing panicked".to_string())));
        let _ = job.reply.send(signed);
    }
}

/// Raises the calling thread's nice value by `nice` (lower priority). Best effort: a failure only leaves the
/// thread at the process's priority.
#[cfg(target_os = "linux")]
fn lower_priority(nice: u8) {
    if nice == 0 {
        return;
    }
    // SAFETY: plain system calls on the calling thread; no memory is shared with them.
    let (tid, current) = unsafe { (libc::gettid(), libc::getpriority(libc::PRIO_PROCESS, 0)) };
    let target = current.saturating_add(i32::from(nice)).min(19);
    // SAFETY: as above; on Linux PRIO_PROCESS with a thread id sets that thread's nice value only.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, target) } != 0 {
        tracing::warn!(nice, "could not lower the DKIM signing thread's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_nice: u8) {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::generate;

    fn key(alg: KeyAlgorithm) -> Arc<Vec<SigningKey>> {
        let kp = generate(alg, "s1".to_string()).unwrap();
        Arc::new(vec![
            SigningKey::from_der("example.com", &kp.selector, alg, &kp.private_der).unwrap(),
        ])
    }

    const MSG: &[u8] = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nbody\r\n";

    #[tokio::test]
    async fn signs_as_the_inline_signer_does() {
        let pool = SigningPool::start(2, 5).unwrap();
        // The pool (RSA) and the caller's thread (ed25519) give the header the inline signer gives: same
        // fields, same signature length (the `t=` timestamp may differ by a second, so not byte for byte).
        for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::Ed25519] {
            let keys = key(alg);
            let pooled = pool.sign(MSG, keys.clone(), SignPriority::Urgent).await.unwrap();
            let inline = sign(MSG, &keys).unwrap();
            assert!(pooled.starts_with(b"DKIM-Signature:"));
            assert_eq!(pooled.len(), inline.len(), "{alg:?}");
        }
    }

    #[tokio::test]
    async fn many_concurrent_jobs_all_answered() {
        let pool = Arc::new(SigningPool::start(2, 0).unwrap());
        let keys = key(KeyAlgorithm::Rsa2048);
        let mut tasks = Vec::new();
        for i in 0..60 {
            let (pool, keys) = (pool.clone(), keys.clone());
            let priority = if i % 7 == 0 {
                SignPriority::Urgent
            } else {
                SignPriority::Normal
            };
            tasks.push(tokio::spawn(
                async move { pool.sign(MSG, keys, priority).await.unwrap() },
            ));
        }
        for t in tasks {
            assert!(t.await.unwrap().starts_with(b"DKIM-Signature:"));
        }
    }

    #[test]
    fn urgent_jobs_are_taken_first() {
        let mut q = Queues::default();
        let keys = Arc::new(Vec::new());
        let mut push = |urgent: bool, tag: u8| {
            let (reply, _) = oneshot::channel();
            let job = SignJob {
                message: vec![tag],
                keys: keys.clone(),
                reply,
            };
            q.push(
                job,
                if urgent {
                    SignPriority::Urgent
                } else {
                    SignPriority::Normal
                },
            );
        };
        push(false, 1);
        push(true, 2);
        push(false, 3);
        push(true, 4);
        let order: Vec<u8> = std::iter::from_fn(|| q.pop().map(|j| j.message[0])).collect();
        assert_eq!(order, [2, 4, 1, 3]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn threads_run_at_the_lower_priority() {
        let nice = std::thread::spawn(|| {
            lower_priority(3);
            // SAFETY: a plain system call.
            unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
        })
        .join()
        .unwrap();
        // SAFETY: a plain system call.
        let base = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        assert_eq!(nice, (base + 3).min(19));
    }
}
