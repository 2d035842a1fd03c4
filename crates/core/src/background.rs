//! Background tasks of a node (worker, identity re-check, level evaluation, batch runner, …) share one handle
//! type, so each stops the same way: signal, then wait for the round in progress to finish.

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running background task; dropping the handle does not stop it, `shutdown` does.
pub struct BackgroundTask {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl BackgroundTask {
    /// A handle over `task`, which watches the receiving side of `stop` and returns once it reads `true`.
    pub fn new(stop: watch::Sender<bool>, task: JoinHandle<()>) -> BackgroundTask {
        BackgroundTask { stop, task }
    }

    /// Tells the task to stop and waits until it has (work in progress finishes first).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}
