//! Waiting for many futures of one core at once.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;

/// A future of this core, boxed so that futures of different types can wait together.
pub type Local<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Polls every future until all are done; their outputs, in the order given. Dropping it drops
/// them (whoever stops waiting stops the work).
pub async fn join_all<T>(futures: Vec<Local<'_, T>>) -> Vec<T> {
    let mut slots: Vec<(Option<Local<'_, T>>, Option<T>)> =
        futures.into_iter().map(|f| (Some(f), None)).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (future, out) in &mut slots {
            if let Some(f) = future {
                match f.as_mut().poll(cx) {
                    Poll::Ready(value) => {
                        *out = Some(value);
                        *future = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    slots.into_iter().filter_map(|(_, out)| out).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::time::Duration;

    #[test]
    fn waits_for_every_future_and_keeps_their_order() {
        let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime");
        let done = Cell::new(0);
        let outputs = rt.block_on(async {
            let futures = (0..5u64)
                .map(|i| {
                    let done = &done;
                    Box::pin(async move {
                        monoio::time::sleep(Duration::from_millis(5 * (5 - i))).await;
                        done.set(done.get() + 1);
                        i * 10
                    }) as Local<'_, u64>
                })
                .collect();
            join_all(futures).await
        });
        assert_eq!(done.get(), 5);
        assert_eq!(outputs, vec![0, 10, 20, 30, 40]);
    }
}
