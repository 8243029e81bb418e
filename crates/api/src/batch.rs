//! Group commit for small writes: requests that arrive while a batch is being written wait for
//! the next one, so many requests share one statement and one commit. Each caller still waits
//! for its own write to commit before it answers: durability is that of a write per request.

use std::future::Future;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};

type Reply<O> = oneshot::Sender<Result<O, String>>;

pub struct Batcher<I, O> {
    tx: mpsc::Sender<(I, Reply<O>)>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Batcher {
            tx: self.tx.clone(),
        }
    }
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// `write` gets up to `max_batch` items and returns one result per item, in order; at most
    /// `writers` batches are written at once.
    pub fn start<F, Fut>(max_batch: usize, writers: usize, write: F) -> Batcher<I, O>
    where
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<O>, String>> + Send + 'static,
    {
        let (tx, mut rx) = mpsc::channel::<(I, Reply<O>)>(8192);
        let write = Arc::new(write);
        tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(writers));
            while let Some(first) = rx.recv().await {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    break;
                };
                let mut batch = vec![first];
                while batch.len() < max_batch {
                    match rx.try_recv() {
                        Ok(r) => batch.push(r),
                        Err(_) => break,
                    }
                }
                let write = write.clone();
                tokio::spawn(async move {
                    let (items, replies): (Vec<I>, Vec<Reply<O>>) = batch.into_iter().unzip();
                    let n = items.len();
                    match write(items).await {
                        Ok(out) if out.len() == n => {
                            for (reply, o) in replies.into_iter().zip(out) {
                                let _ = reply.send(Ok(o));
                            }
                        }
                        Ok(_) => {
                            for reply in replies {
                                let _ = reply.send(Err(
                                    "a batch write returned the wrong number of results".into(),
                                ));
                            }
                        }
                        Err(e) => {
                            for reply in replies {
                                let _ = reply.send(Err(e.clone()));
                            }
                        }
                    }
                    drop(slot);
                });
            }
        });
        Batcher { tx }
    }

    /// Queues `item` and waits for its batch to be written.
    pub async fn submit(&self, item: I) -> Result<O, String> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((item, reply))
            .await
            .map_err(|_| "the batch writer stopped".to_string())?;
        rx.await
            .map_err(|_| "the batch writer dropped the request".to_string())?
    }
}
