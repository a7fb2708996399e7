//! The cross-core hop: a job for another core goes into that core's bounded, lock-free inbox
//! (crossbeam's array queue, `try_send`/`try_recv` only), and the core is woken by one byte on
//! its doorbell (a socket pair its loop reads) only when it sleeps. The answer comes back the
//! same way, as a job for the asking core that completes a oneshot there.
//!
//! Why not an async channel and a oneshot woken across threads: flume's channel and monoio's
//! cross-thread wake (which sends the waker over another flume channel) each take a mutex the
//! two cores share. On a machine with more runnable threads than CPUs (the load generator,
//! flush threads), a core preempted while holding one left the other blocked in `futex_wait`
//! for the rest of its time slice: 5-17 ms stalls of a whole event loop, seen with
//! `perf sched timehist` (932 such waits in 10 s of SET load), and the largest part of the
//! SET tail that remained once journal writeback was fixed.
//!
//! Must not import `http`, `api`, `replication` or `storage`.

use std::cell::Cell;
use std::future::Future;
use std::io::Write;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::rc::Rc;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use monoio::io::AsyncReadRent;

use crate::limits::{CORE_INBOX_FULL_POLL_US, CORE_INBOX_JOBS_MAX};

/// A unit of work sent to another core; it receives that core's state.
pub type Job<L> = Box<dyn FnOnce(&Rc<L>) + Send>;

/// The target core has stopped (shutdown): the job was not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("core {core} has stopped")]
pub struct CoreGone {
    pub core: usize,
}

thread_local! {
    /// The core this thread runs, once its inbox runs: where answers to its jobs come back.
    static HOME: Cell<Option<usize>> = const { Cell::new(None) };
}

/// One core's way in: its inbox and its doorbell.
struct Door<L> {
    jobs: Sender<Job<L>>,
    /// Set by the core before it sleeps on its doorbell; a sender that clears it rings.
    asleep: AtomicBool,
    bell: StdUnixStream,
}

impl<L> Door<L> {
    /// Queues `job`; rings when the core sleeps. `Err` gives the job back (full or gone).
    fn push(&self, job: Job<L>) -> Result<(), TrySendError<Job<L>>> {
        self.jobs.try_send(job)?;
        // Pairs with the fence in `Inbox::run`: either the core sees the job before it
        // sleeps, or this sees `asleep` and rings.
        fence(Ordering::SeqCst);
        if self.asleep.swap(false, Ordering::SeqCst) {
            // Non-blocking; a full socket buffer means a ring is already pending.
            let _ = (&self.bell).write(&[1]);
        }
        Ok(())
    }
}

/// Every core's door, and whether the hub that sends through them is gone.
struct Doors<L> {
    doors: Vec<Door<L>>,
    /// Set when the [`Hub`] is dropped: the inboxes end once drained.
    closed: AtomicBool,
}

/// The doors of every core. Shared by all cores (`Arc`); dropping it ends every inbox.
pub struct Hub<L> {
    doors: Arc<Doors<L>>,
}

/// The receiving side of one core's inbox; its core drains it with [`Inbox::run`].
pub struct Inbox<L> {
    core: usize,
    doors: Arc<Doors<L>>,
    jobs: Receiver<Job<L>>,
    bell: StdUnixStream,
}

impl<L: 'static> Hub<L> {
    /// A hub for `threads` cores and the inbox of each, in core order.
    pub fn new(threads: usize) -> std::io::Result<(Hub<L>, Vec<Inbox<L>>)> {
        let mut doors = Vec::with_capacity(threads);
        let mut ends = Vec::with_capacity(threads);
        for _ in 0..threads {
            let (tx, rx) = crossbeam_channel::bounded(CORE_INBOX_JOBS_MAX);
            let (ring, bell) = StdUnixStream::pair()?;
            ring.set_nonblocking(true)?;
            bell.set_nonblocking(true)?;
            doors.push(Door {
                jobs: tx,
                asleep: AtomicBool::new(false),
                bell: ring,
            });
            ends.push((rx, bell));
        }
        let doors = Arc::new(Doors {
            doors,
            closed: AtomicBool::new(false),
        });
        let inboxes = ends
            .into_iter()
            .enumerate()
            .map(|(core, (jobs, bell))| Inbox {
                core,
                doors: doors.clone(),
                jobs,
                bell,
            })
            .collect();
        Ok((Hub { doors }, inboxes))
    }

    pub fn threads(&self) -> usize {
        self.doors.doors.len()
    }

    /// Runs `f` on `core` with that core's state and returns its answer. Waits while the
    /// core's inbox is full (backpressure, not an unbounded queue).
    pub async fn run_on<T, F, Fut>(&self, core: usize, f: F) -> Result<T, CoreGone>
    where
        T: Send + 'static,
        F: FnOnce(Rc<L>) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let (tx, rx) = futures_channel::oneshot::channel();
        let home = HOME.with(Cell::get);
        let doors = self.doors.clone();
        let mut job: Job<L> = Box::new(move |local: &Rc<L>| {
            let local = local.clone();
            monoio::spawn(async move {
                let answer = f(local.clone()).await;
                answer_home(&doors, home, &local, tx, answer);
            });
        });
        loop {
            match self.doors.doors[core].push(job) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) => {
                    job = back;
                    monoio::time::sleep(Duration::from_micros(CORE_INBOX_FULL_POLL_US)).await;
                }
                Err(TrySendError::Disconnected(_)) => return Err(CoreGone { core }),
            }
        }
        rx.await.map_err(|_| CoreGone { core })
    }
}

/// Hands `answer` to the task that asked: as a job on its own core (`home`), so that its
/// oneshot is completed and its task woken there without a cross-thread wake. When the asker
/// has no core (a test's thread), or its inbox is full or gone, the delivery runs here
/// (`local`, this core's state, is only there because a job takes one; delivery ignores it):
/// an answer never waits, as two cores waiting for room in each other's full inbox would
/// never move again.
fn answer_home<L: 'static, T: Send + 'static>(
    doors: &Doors<L>,
    home: Option<usize>,
    local: &Rc<L>,
    tx: futures_channel::oneshot::Sender<T>,
    answer: T,
) {
    let deliver: Job<L> = Box::new(move |_| {
        let _ = tx.send(answer);
    });
    match home.and_then(|h| doors.doors.get(h)) {
        Some(door) => {
            if let Err(e) = door.push(deliver) {
                (e.into_inner())(local);
            }
        }
        None => deliver(local),
    }
}

impl<L> Drop for Hub<L> {
    fn drop(&mut self) {
        self.doors.closed.store(true, Ordering::SeqCst);
        for door in &self.doors.doors {
            let _ = (&door.bell).write(&[1]);
        }
    }
}

impl<L: 'static> Inbox<L> {
    /// Runs every job sent to this core until all senders are gone.
    pub async fn run(self, local: Rc<L>) {
        HOME.with(|h| h.set(Some(self.core)));
        let door = &self.doors.doors[self.core];
        let bell = match monoio::net::UnixStream::from_std(self.bell) {
            Ok(bell) => bell,
            Err(err) => {
                tracing::error!(core = self.core, %err, "core inbox cannot watch its doorbell");
                return;
            }
        };
        let mut bell = bell;
        let mut buf = vec![0u8; 64];
        loop {
            loop {
                match self.jobs.try_recv() {
                    Ok(job) => job(&local),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            if self.doors.closed.load(Ordering::SeqCst) {
                return;
            }
            door.asleep.store(true, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if !self.jobs.is_empty() {
                door.asleep.store(false, Ordering::SeqCst);
                continue;
            }
            let (read, back) = bell.read(buf).await;
            buf = back;
            if matches!(read, Ok(0)) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{join_all, CoreRuntime, Local};
    use std::sync::atomic::AtomicUsize;

    /// One core's side: runs its inbox, asks the other core `n` things at once, then keeps
    /// answering until the other core is done too. A lost doorbell ring hangs it: bounded.
    fn core_side(
        core: usize,
        inbox: Inbox<usize>,
        hub: Arc<Hub<usize>>,
        done: Arc<AtomicUsize>,
    ) -> Vec<(usize, u64)> {
        let mut rt = CoreRuntime::build().unwrap();
        rt.block_on(async move {
            monoio::spawn(inbox.run(Rc::new(core)));
            // The inbox runs once polled: from then on answers come home through it.
            monoio::time::sleep(Duration::from_millis(5)).await;
            assert_eq!(HOME.with(Cell::get), Some(core));
            let other = 1 - core;
            let asks: Vec<Local<'_, (usize, u64)>> = (0..2_000u64)
                .map(|i| {
                    let hub = hub.clone();
                    Box::pin(async move {
                        hub.run_on(other, move |local: Rc<usize>| async move { (*local, i) })
                            .await
                            .unwrap()
                    }) as Local<'_, (usize, u64)>
                })
                .collect();
            let answers = monoio::time::timeout(Duration::from_secs(20), join_all(asks))
                .await
                .expect("every answer came home");
            done.fetch_add(1, Ordering::SeqCst);
            while done.load(Ordering::SeqCst) < 2 {
                monoio::time::sleep(Duration::from_millis(1)).await;
            }
            answers
        })
    }

    #[test]
    fn two_cores_asking_each_other_at_once_get_every_answer_at_home() {
        let (hub, mut inboxes) = Hub::<usize>::new(2).unwrap();
        let hub = Arc::new(hub);
        let done = Arc::new(AtomicUsize::new(0));
        let (inbox1, inbox0) = (inboxes.pop().unwrap(), inboxes.pop().unwrap());
        let (hub1, done1) = (hub.clone(), done.clone());
        let core1 = std::thread::spawn(move || core_side(1, inbox1, hub1, done1));
        let answers0 = core_side(0, inbox0, hub, done);
        let answers1 = core1.join().unwrap();
        assert!(answers0
            .iter()
            .enumerate()
            .all(|(i, a)| *a == (1, i as u64)));
        assert!(answers1
            .iter()
            .enumerate()
            .all(|(i, a)| *a == (0, i as u64)));
    }
}
