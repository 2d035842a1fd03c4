//! Background tasks of a node (worker, identity re-check, level evaluation, batch runner, …) share one handle
//! type, so each stops the same way: signal, then wait for the round in progress to finish.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running background task; dropping the handle does not stop it, `shutdown` does.
pub struct BackgroundTask {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// Tasks that only serve this one (e.g. a listener that wakes it), aborted once it has stopped.
    helpers: Vec<JoinHandle<()>>,
}

impl BackgroundTask {
    /// A handle over `task`, which watches the receiving side of `stop` and returns once it reads `true`.
    pub fn new(stop: watch::Sender<bool>, task: JoinHandle<()>) -> BackgroundTask {
        BackgroundTask {
            stop,
            task,
            helpers: Vec::new(),
        }
    }

    /// The same handle, aborting `helper` once the task has stopped.
    pub(crate) fn with_helper(mut self, helper: JoinHandle<()>) -> BackgroundTask {
        self.helpers.push(helper);
        self
    }

    /// Tells the task to stop and waits until it has (work in progress finishes first).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        for helper in self.helpers {
            helper.abort();
        }
    }
}

/// When a periodic task runs its first pass.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum FirstPass {
    /// At once, then after every period.
    Now,
    /// After the first period.
    AfterPeriod,
}

/// Spawns a task that runs `pass` over `service` every `every_secs` seconds until the handle stops it (a pass
/// in progress finishes first). `pass` gets the stop signal's receiver, to end a long pass early. With a period
/// of 0 the task does nothing but wait for the stop.
pub(crate) fn spawn_periodic<S, F, Fut>(service: &Arc<S>, every_secs: u64, first: FirstPass, pass: F) -> BackgroundTask
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, watch::Receiver<bool>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let (stop, mut stop_rx) = watch::channel(false);
    let service = service.clone();
    let task = tokio::spawn(async move {
        if every_secs == 0 {
            let _ = stop_rx.changed().await;
            return;
        }
        if first == FirstPass::Now {
            pass(service.clone(), stop_rx.clone()).await;
        }
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(every_secs)) => {}
                _ = stop_rx.changed() => return,
            }
            if *stop_rx.borrow() {
                return;
            }
            pass(service.clone(), stop_rx.clone()).await;
        }
    });
    BackgroundTask::new(stop, task)
}
