//! [`JobRunner`]: one background thread that runs queued fine-tuning jobs one at a time
//! (training takes every core), oldest first, and cancels them on request.
//!
//! Invariant: a job is in the queue or running only while its stored status is `queued` or
//! `running`; cancelling a queued job stores `cancelled` at once, a running one stops after its
//! current step with a checkpoint. Dropping the runner cancels the running job (resumable) and
//! waits for it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use provdb_storage::{JobRecord, JobStatus};

use super::run::run_job;
use super::spec::JobId;
use crate::db::Db;
use crate::error::{Error, Result};

#[derive(Default)]
struct Queue {
    waiting: VecDeque<JobId>,
    running: Option<(JobId, Arc<AtomicBool>)>,
    stopping: bool,
}

struct Shared {
    db: Db,
    queue: Mutex<Queue>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs fine-tuning jobs in the background.
pub struct JobRunner {
    shared: Arc<Shared>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl JobRunner {
    /// Recovers jobs a dead process left running (they become cancelled, resumable), queues
    /// the queued ones, and starts the worker.
    pub fn start(db: Db) -> Result<Self> {
        db.recover_fine_tune_jobs()?;
        let waiting: VecDeque<JobId> = db
            .fine_tune_jobs()?
            .iter()
            .filter(|j| j.status == JobStatus::Queued)
            .map(|j| JobId(j.job_id))
            .collect();
        let shared = Arc::new(Shared {
            db,
            queue: Mutex::new(Queue {
                waiting,
                ..Queue::default()
            }),
            wake: Condvar::new(),
        });
        let worker_shared = Arc::clone(&shared);
        let worker = std::thread::Builder::new()
            .name("provdb-fine-tuning".into())
            .spawn(move || work(&worker_shared))
            .map_err(|e| Error::Internal(format!("cannot start the fine-tuning worker: {e}")))?;
        Ok(Self {
            shared,
            worker: Mutex::new(Some(worker)),
        })
    }

    /// Queues a job the database stores as queued (a new or a resumed one).
    pub fn submit(&self, id: JobId) {
        let mut queue = self.shared.lock();
        if !queue.waiting.contains(&id) && queue.running.as_ref().is_none_or(|(r, _)| *r != id) {
            queue.waiting.push_back(id);
        }
        drop(queue);
        self.shared.wake.notify_all();
    }

    /// Cancels a job: a queued one at once, a running one after its current step.
    pub fn cancel(&self, id: JobId) -> Result<JobRecord> {
        let mut queue = self.shared.lock();
        if let Some((running, flag)) = &queue.running
            && *running == id
        {
            flag.store(true, Ordering::Release);
            drop(queue);
            self.shared
                .db
                .job_event(id, serde_json::json!({"type": "cancel_requested"}))?;
            return self.shared.db.fine_tune_job(id);
        }
        queue.waiting.retain(|w| *w != id);
        drop(queue);
        let job = self.shared.db.fine_tune_job(id)?;
        if job.status.is_final() {
            return Err(Error::Invalid(format!(
                "job {id} is already {}",
                job.status.as_str()
            )));
        }
        self.shared.db.set_job_status(
            id,
            JobStatus::Cancelled,
            Some("cancelled before it ran".into()),
            None,
        )
    }

    /// The job running now, if any.
    pub fn running(&self) -> Option<JobId> {
        self.shared.lock().running.as_ref().map(|(id, _)| *id)
    }
}

fn work(shared: &Shared) {
    loop {
        let (id, flag) = {
            let mut queue = shared.lock();
            loop {
                if queue.stopping {
                    return;
                }
                if let Some(id) = queue.waiting.pop_front() {
                    let flag = Arc::new(AtomicBool::new(false));
                    queue.running = Some((id, Arc::clone(&flag)));
                    break (id, flag);
                }
                queue = shared.wake.wait(queue).unwrap_or_else(|p| p.into_inner());
            }
        };
        if let Err(e) = run_job(&shared.db, id, &flag, &|_| {}) {
            eprintln!("provdb: fine-tuning job {id} could not run: {e}");
        }
        shared.lock().running = None;
    }
}

impl JobRunner {
    /// Stops: cancels the running job (it checkpoints and stays resumable), leaves queued ones
    /// queued for the next runner, and waits for the worker. Idempotent.
    pub fn stop(&self) {
        {
            let mut queue = self.shared.lock();
            queue.stopping = true;
            if let Some((_, flag)) = &queue.running {
                flag.store(true, Ordering::Release);
            }
        }
        self.shared.wake.notify_all();
        let worker = self.worker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(worker) = worker {
            let _ = worker.join();
        }
    }
}

impl Drop for JobRunner {
    fn drop(&mut self) {
        self.stop();
    }
}
