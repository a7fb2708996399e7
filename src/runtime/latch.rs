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
    waiters: RefCell<Vec<Waker>>,
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
        for waker in self.inner.waiters.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    /// Completes once the latch is set.
    pub fn wait(&self) -> Wait {
        Wait {
            latch: self.clone(),
        }
    }
}

pub struct Wait {
    latch: Latch,
}

impl Future for Wait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.latch.is_set() {
            return Poll::Ready(());
        }
        let mut waiters = self.latch.inner.waiters.borrow_mut();
        // A task that polls again must not grow the list: keep one waker per distinct task.
        if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
            waiters.push(cx.waker().clone());
        }
        Poll::Pending
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
}
