//! A one-way, core-local latch: once set it stays set, and every task waiting on it wakes.
//! Used for shutdown (set by a job the main thread sends to each core). Not `Send`: each core
//! has its own.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Clone, Default)]
pub struct Latch {
    inner: Rc<Inner>,
}

#[derive(Default)]
struct Inner {
    set: Cell<bool>,
    /// One slot per live `Wait`; a dropped `Wait` frees its slot, so the list is bounded by
    /// the waits alive now, not by every poll ever made.
    waiters: RefCell<Slots>,
}

#[derive(Default)]
struct Slots {
    wakers: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl Latch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_set(&self) -> bool {
        self.inner.set.get()
    }

    /// Sets the latch and wakes every waiter. Setting it again does nothing.
    pub fn set(&self) {
        if self.inner.set.replace(true) {
            return;
        }
        let wakers = std::mem::take(&mut self.inner.waiters.borrow_mut().wakers);
        for waker in wakers.into_iter().flatten() {
            waker.wake();
        }
    }

    /// Completes once the latch is set.
    pub fn wait(&self) -> Wait {
        Wait {
            latch: self.clone(),
            slot: None,
        }
    }
}

pub struct Wait {
    latch: Latch,
    slot: Option<usize>,
}

impl Future for Wait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.latch.is_set() {
            return Poll::Ready(());
        }
        let latch = self.latch.clone();
        let mut slots = latch.inner.waiters.borrow_mut();
        match self.slot {
            Some(i) => match &mut slots.wakers[i] {
                Some(w) if w.will_wake(cx.waker()) => {}
                other => *other = Some(cx.waker().clone()),
            },
            None => {
                let waker = Some(cx.waker().clone());
                let i = match slots.free.pop() {
                    Some(i) => {
                        slots.wakers[i] = waker;
                        i
                    }
                    None => {
                        slots.wakers.push(waker);
                        slots.wakers.len() - 1
                    }
                };
                self.slot = Some(i);
            }
        }
        Poll::Pending
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        let Some(i) = self.slot else { return };
        if self.latch.is_set() {
            return;
        }
        let mut slots = self.latch.inner.waiters.borrow_mut();
        slots.wakers[i] = None;
        slots.free.push(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakes_waiters_once_set() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(async {
            let latch = Latch::new();
            let waiter = monoio::spawn({
                let latch = latch.clone();
                async move {
                    latch.wait().await;
                    7
                }
            });
            monoio::time::sleep(std::time::Duration::from_millis(5)).await;
            assert!(!latch.is_set());
            latch.set();
            assert_eq!(waiter.await, 7);
            latch.wait().await; // already set: ready at once
        });
    }

    /// Connections wait on the shutdown latch in a `select!` on every read: a wait that is
    /// dropped unfinished must give its slot back, or the list grows with every read and
    /// keeps every finished task alive.
    #[test]
    fn dropped_waits_leave_no_waker_behind() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(async {
            let latch = Latch::new();
            let tasks: Vec<_> = (0..100)
                .map(|_| {
                    let latch = latch.clone();
                    monoio::spawn(async move {
                        for _ in 0..10 {
                            monoio::select! {
                                _ = latch.wait() => {}
                                _ = monoio::time::sleep(std::time::Duration::from_micros(1)) => {}
                            }
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await;
            }
            let slots = latch.inner.waiters.borrow();
            assert_eq!(slots.wakers.iter().flatten().count(), 0);
            assert!(slots.wakers.len() <= 100, "{} slots", slots.wakers.len());
        });
    }
}
