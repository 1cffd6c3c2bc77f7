//! Dynamic micro-batching. Requests wait in a bounded queue; one worker thread takes the first,
//! then up to `max_batch - 1` more that arrive within `max_wait`, and runs them through
//! [`Model::run_batch`] as one batch. The model computes on its own rayon pool, so the async
//! executor never blocks on inference.

use std::num::NonZeroUsize;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::error::ApiError;
use super::metrics::Metrics;
use crate::{Model, RuntimeError};

/// One sample's logits, or the error of the batch it ran in.
pub(super) type Logits = Result<Vec<f32>, Arc<RuntimeError>>;

/// How requests are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPolicy {
    /// The most samples in one model run.
    pub max_batch: NonZeroUsize,
    /// How long the first request of a batch waits for others.
    pub max_wait: Duration,
    /// Requests that may wait for the worker; more are refused (503).
    pub queue: NonZeroUsize,
}

/// A preprocessed sample and where its logits go.
struct Job {
    input: Vec<f32>,
    reply: oneshot::Sender<Logits>,
}

/// The sending side of the queue, shared by the request handlers. When every clone is dropped,
/// the worker finishes the queued jobs and stops.
#[derive(Debug, Clone)]
pub(super) struct BatchQueue {
    sender: SyncSender<Job>,
    capacity: usize,
    input_len: usize,
    metrics: Arc<Metrics>,
}

impl BatchQueue {
    /// Queues one sample (`C * H * W` values), or refuses it when the queue is full.
    pub(super) fn submit(&self, input: Vec<f32>) -> Result<oneshot::Receiver<Logits>, ApiError> {
        // Checked here so that one bad sample cannot fail the batch it would join.
        if input.len() != self.input_len {
            return Err(ApiError::BadTensor(format!(
                "{} values, the model takes {}",
                input.len(),
                self.input_len
            )));
        }
        let (reply, receiver) = oneshot::channel();
        // Counted before sending, so the worker's decrement never comes first.
        self.metrics.enqueued();
        match self.sender.try_send(Job { input, reply }) {
            Ok(()) => Ok(receiver),
            Err(refused) => {
                self.metrics.dequeued();
                Err(match refused {
                    TrySendError::Full(_) => ApiError::QueueFull { capacity: self.capacity },
                    TrySendError::Disconnected(_) => ApiError::ShuttingDown,
                })
            }
        }
    }
}

/// Starts the worker thread; it runs until every [`BatchQueue`] clone is dropped.
pub(super) fn start(
    model: Arc<Model>,
    policy: BatchPolicy,
    metrics: Arc<Metrics>,
) -> std::io::Result<(BatchQueue, JoinHandle<()>)> {
    let (sender, receiver) = mpsc::sync_channel(policy.queue.get());
    let queue = BatchQueue {
        sender,
        capacity: policy.queue.get(),
        input_len: model.input_len(),
        metrics: Arc::clone(&metrics),
    };
    let worker = thread::Builder::new()
        .name("bnas-batcher".into())
        .spawn(move || work(&model, policy, &receiver, &metrics))?;
    Ok((queue, worker))
}

fn work(model: &Model, policy: BatchPolicy, receiver: &Receiver<Job>, metrics: &Metrics) {
    while let Ok(first) = receiver.recv() {
        metrics.dequeued();
        let mut jobs = vec![first];
        // `checked_add`: a huge `max_wait` must not overflow the clock.
        let deadline = Instant::now().checked_add(policy.max_wait);
        while jobs.len() < policy.max_batch.get() {
            let wait = deadline.map_or(policy.max_wait, |d| d.saturating_duration_since(Instant::now()));
            match receiver.recv_timeout(wait) {
                Ok(job) => {
                    metrics.dequeued();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        // Requests that timed out while queued need no answer.
        jobs.retain(|job| !job.reply.is_closed());
        if !jobs.is_empty() {
            metrics.observe_batch(jobs.len());
            run(model, jobs);
        }
    }
}

/// Runs the jobs as one batch and answers each with its row of logits.
fn run(model: &Model, jobs: Vec<Job>) {
    let input: Vec<f32> = jobs.iter().flat_map(|job| job.input.iter().copied()).collect();
    match model.run_batch(&input, jobs.len()) {
        Ok(logits) => {
            let classes = (logits.len() / jobs.len()).max(1);
            for (job, row) in jobs.into_iter().zip(logits.chunks(classes)) {
                // A requester that gave up meanwhile is no error.
                let _ = job.reply.send(Ok(row.to_vec()));
            }
        }
        Err(error) => {
            let error = Arc::new(error);
            for job in jobs {
                let _ = job.reply.send(Err(Arc::clone(&error)));
            }
        }
    }
}
