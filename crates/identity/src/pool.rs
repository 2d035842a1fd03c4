//! DKIM signing off the async runtime, on a few threads of their own, optionally at a lower CPU priority.
//!
//! An RSA-2048 signature costs 0.3–0.7 ms of CPU (aws-lc; the slower figure on CPUs without AVX-512 IFMA).
//! Signed on a runtime thread, it stalls every task queued behind it there (API requests, SMTP sessions, the
//! queue's commits). ed25519 (≈ 70 µs) costs less than the hand-off to a thread and is signed by the caller.
//! With `nice` > 0 the threads run below the process's own priority, so under overload the kernel gives
//! admission (which must answer its clients) the CPU first and delivery takes the rest; on an idle machine they
//! sign at full speed. Trigger mail (codes, password resets) is signed before waiting marketing mail.
//!
//! The pool grows from its base size to its maximum while signatures wait longer than [`BEHIND`], and a thread
//! above the base leaves after [`IDLE_EXIT`] without work. Where a signature is slow (0.8 ms on a Zen 3 VM), one
//! thread per CPU waited behind the runtime threads for a core while mail waited for them, and two per CPU
//! delivered 20–40 % more; where it is fast (0.26 ms on Zen 4), signing keeps up with one per CPU, and two per
//! CPU only took CPU from admission (10 % fewer mails accepted and delivered).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::IdentityError;
use crate::keys::{KeyAlgorithm, SigningKey, sign};

/// A signature that waited this long means the threads are behind: the pool grows by one. Short waits come
/// with every burst (a hand-off of a few hundred mails keeps two threads busy for tens of milliseconds) and
/// are no reason to grow; a wait this long means mail is piling up behind signing.
pub const BEHIND: Duration = Duration::from_millis(250);

/// A thread above the base size that found no work for this long leaves.
pub const IDLE_EXIT: Duration = Duration::from_secs(10);

/// Which queue a signature waits in: urgent jobs are all taken before any normal one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignPriority {
    /// Trigger mail: signed first.
    Urgent,
    /// Everything else, in arrival order.
    Normal,
}

/// How many signing threads a pool runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSize {
    /// Threads always running (at least one).
    pub base: usize,
    /// Threads running at most while signatures wait longer than [`BEHIND`] (at least `base`).
    pub max: usize,
}

impl PoolSize {
    /// Exactly `threads` threads.
    pub fn fixed(threads: usize) -> PoolSize {
        PoolSize {
            base: threads,
            max: threads,
        }
    }
}

/// Signing threads; dropping the pool lets them finish the queued jobs and exit.
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
    queued: Instant,
}

#[derive(Default)]
struct Queues {
    urgent: VecDeque<SignJob>,
    normal: VecDeque<SignJob>,
    closed: bool,
    /// Threads running.
    threads: usize,
    /// Threads waiting for a job.
    idle: usize,
    /// Threads started so far (names them).
    started: usize,
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

    /// Whether the oldest waiting job has waited longer than `behind` with no thread free for it.
    fn behind(&self, now: Instant, behind: Duration) -> bool {
        self.idle == 0
            && [self.urgent.front(), self.normal.front()]
                .into_iter()
                .flatten()
                .any(|job| now.duration_since(job.queued) > behind)
    }
}

struct PoolShared {
    queues: Mutex<Queues>,
    ready: Condvar,
    size: PoolSize,
    nice: u8,
    /// [`BEHIND`] and [`IDLE_EXIT`], shorter in tests.
    behind: Duration,
    idle_exit: Duration,
}

impl PoolShared {
    fn lock(&self) -> MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SigningPool {
    /// Starts `size.base` signing threads (at least one), growing to `size.max` while signatures wait, each
    /// `nice` steps below the process's CPU priority (0 = the same; Linux only, where a thread's nice value
    /// is its own; elsewhere ignored).
    pub fn start(size: PoolSize, nice: u8) -> Result<SigningPool, IdentityError> {
        Self::start_with_timing(size, nice, BEHIND, IDLE_EXIT)
    }

    fn start_with_timing(
        size: PoolSize,
        nice: u8,
        behind: Duration,
        idle_exit: Duration,
    ) -> Result<SigningPool, IdentityError> {
        let base = size.base.max(1);
        let shared = Arc::new(PoolShared {
            queues: Mutex::new(Queues {
                threads: base,
                ..Queues::default()
            }),
            ready: Condvar::new(),
            size: PoolSize {
                base,
                max: size.max.max(base),
            },
            nice,
            behind,
            idle_exit,
        });
        for _ in 0..base {
            let name = next_name(&mut shared.lock());
            spawn_thread(&shared, name)?;
        }
        Ok(SigningPool { shared })
    }

    /// Threads running now.
    pub fn threads(&self) -> usize {
        self.shared.lock().threads
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
        // One clock read a job: its queueing time, and the moment the oldest job's wait is judged.
        let now = Instant::now();
        let job = SignJob {
            message: message.to_vec(),
            keys,
            reply,
            queued: now,
        };
        let grow = {
            let mut q = self.shared.lock();
            q.push(job, priority);
            (q.threads < self.shared.size.max && q.behind(now, self.shared.behind)).then(|| {
                q.threads += 1;
                next_name(&mut q)
            })
        };
        self.shared.ready.notify_one();
        if let Some(name) = grow
            && let Err(e) = spawn_thread(&self.shared, name)
        {
            self.shared.lock().threads -= 1;
            tracing::warn!(error = %e, "could not add a DKIM signing thread");
        }
        answer
            .await
            .map_err(|_| IdentityError::Key("the signing thread stopped".to_string()))?
    }
}

impl Drop for SigningPool {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
    }
}

fn next_name(q: &mut Queues) -> String {
    q.started += 1;
    format!("dkim-sign-{}", q.started - 1)
}

/// Starts one thread; the caller has counted it in `threads`.
fn spawn_thread(shared: &Arc<PoolShared>, name: String) -> Result<(), IdentityError> {
    let thread_shared = shared.clone();
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            lower_priority(thread_shared.nice);
            work(&thread_shared);
        })
        .map(drop)
        .map_err(|e| IdentityError::Key(format!("starting a signing thread: {e}")))
}

fn work(shared: &PoolShared) {
    loop {
        let job = {
            let mut q = shared.lock();
            loop {
                if let Some(job) = q.pop() {
                    break job;
                }
                if q.closed {
                    q.threads -= 1;
                    return;
                }
                q.idle += 1;
                let (next, waited) = shared
                    .ready
                    .wait_timeout(q, shared.idle_exit)
                    .unwrap_or_else(PoisonError::into_inner);
                q = next;
                q.idle -= 1;
                if waited.timed_out() && q.threads > shared.size.base && q.urgent.is_empty() && q.normal.is_empty() {
                    q.threads -= 1;
                    return;
                }
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
        let pool = SigningPool::start(PoolSize::fixed(2), 5).unwrap();
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
        let pool = Arc::new(SigningPool::start(PoolSize::fixed(2), 0).unwrap());
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn grows_while_signatures_wait_and_shrinks_when_idle() {
        let (behind, idle_exit) = (Duration::from_millis(20), Duration::from_millis(300));
        let pool =
            Arc::new(SigningPool::start_with_timing(PoolSize { base: 1, max: 3 }, 0, behind, idle_exit).unwrap());
        assert_eq!(pool.threads(), 1);
        // Twenty RSA signatures a job, a job a millisecond for many times `behind`: far more than one thread
        // signs, on any machine.
        let tasks = sign_steadily(&pool, heavy_keys(), 200).await;
        let grown = pool.threads();
        for t in tasks {
            assert!(t.await.unwrap().starts_with(b"DKIM-Signature:"));
        }
        assert!(grown > 1, "signatures waited, so the pool grew: {grown} threads");
        assert!(pool.threads() <= 3, "never beyond its maximum");
        // Without work, the threads above the base leave.
        let deadline = Instant::now() + Duration::from_secs(30);
        while pool.threads() > 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(pool.threads(), 1, "back to its base size");
        // And it still signs.
        let one = pool
            .sign(MSG, key(KeyAlgorithm::Rsa2048), SignPriority::Urgent)
            .await
            .unwrap();
        assert!(one.starts_with(b"DKIM-Signature:"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fixed_pool_does_not_grow() {
        // The same load as above, with signatures waiting far longer than `behind`.
        let pool = Arc::new(
            SigningPool::start_with_timing(PoolSize::fixed(1), 0, Duration::from_millis(20), IDLE_EXIT).unwrap(),
        );
        for t in sign_steadily(&pool, heavy_keys(), 100).await {
            t.await.unwrap();
        }
        assert_eq!(pool.threads(), 1);
    }

    /// Twenty RSA-2048 keys: each job signs twenty times.
    fn heavy_keys() -> Arc<Vec<SigningKey>> {
        let kp = generate(KeyAlgorithm::Rsa2048, "s1".to_string()).unwrap();
        Arc::new(
            (0..20)
                .map(|_| {
                    SigningKey::from_der("example.com", &kp.selector, KeyAlgorithm::Rsa2048, &kp.private_der).unwrap()
                })
                .collect(),
        )
    }

    /// Submits `jobs` jobs, one a millisecond, and returns their tasks.
    async fn sign_steadily(
        pool: &Arc<SigningPool>,
        keys: Arc<Vec<SigningKey>>,
        jobs: usize,
    ) -> Vec<tokio::task::JoinHandle<Vec<u8>>> {
        let mut tasks = Vec::new();
        for _ in 0..jobs {
            let (pool, keys) = (pool.clone(), keys.clone());
            tasks.push(tokio::spawn(async move {
                pool.sign(MSG, keys, SignPriority::Normal).await.unwrap()
            }));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tasks
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
                queued: Instant::now(),
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
