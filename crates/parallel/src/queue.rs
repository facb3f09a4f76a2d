//! Collectives in the background, in order. A worker thread owns the communicator and runs
//! submitted jobs one after another (every rank submits the same collectives in the same
//! order, so they pair up), while the caller goes on computing: the data-parallel gradient
//! buckets are reduced during the backward that produces the next ones.

use crate::{Communicator, Error, Result};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce(&mut dyn Communicator) -> Result<()> + Send>;

#[derive(Default)]
struct Progress {
    done: u64,
    /// The first failure: every later wait reports it (the ranks are out of step after one).
    failed: Option<Error>,
}

pub struct CommQueue {
    rank: usize,
    world: usize,
    tx: Option<Sender<Job>>,
    progress: Arc<(Mutex<Progress>, Condvar)>,
    issued: u64,
    worker: Option<JoinHandle<()>>,
}

impl CommQueue {
    pub fn new(mut comm: Box<dyn Communicator>) -> CommQueue {
        let (rank, world) = (comm.rank(), comm.world());
        let (tx, rx) = channel::<Job>();
        let progress = Arc::new((Mutex::new(Progress::default()), Condvar::new()));
        let p = progress.clone();
        let worker = std::thread::spawn(move || {
            for job in rx {
                let failed = p.0.lock().unwrap_or_else(|e| e.into_inner()).failed.is_some();
                let r = if failed { Ok(()) } else { job(&mut *comm) };
                let mut g = p.0.lock().unwrap_or_else(|e| e.into_inner());
                g.done += 1;
                if let Err(e) = r {
                    g.failed.get_or_insert(e);
                }
                p.1.notify_all();
            }
        });
        CommQueue { rank, world, tx: Some(tx), progress, issued: 0, worker: Some(worker) }
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn world(&self) -> usize {
        self.world
    }

    /// Queues `job`; returns its ticket for [`CommQueue::wait`].
    pub fn submit(&mut self, job: impl FnOnce(&mut dyn Communicator) -> Result<()> + Send + 'static) -> u64 {
        self.issued += 1;
        if let Some(tx) = &self.tx {
            // The worker only stops when the queue is dropped.
            let _ = tx.send(Box::new(job));
        }
        self.issued
    }

    /// Blocks until job `ticket` and every job before it have run.
    pub fn wait(&self, ticket: u64) -> Result<()> {
        let (lock, cv) = &*self.progress;
        let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
        while g.done < ticket && g.failed.is_none() {
            g = cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
        g.failed.clone().map_or(Ok(()), Err)
    }

    /// Runs `f` on the communicator after everything queued, and waits for it.
    pub fn run<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut dyn Communicator) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let out = Arc::new(Mutex::new(None));
        let slot = out.clone();
        let ticket = self.submit(move |c| {
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(f(c)?);
            Ok(())
        });
        self.wait(ticket)?;
        let value = out.lock().unwrap_or_else(|e| e.into_inner()).take();
        value.ok_or_else(|| Error("comm: a queued collective produced nothing".into()))
    }
}

impl Drop for CommQueue {
    fn drop(&mut self) {
        self.tx = None; // ends the worker's loop
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}
