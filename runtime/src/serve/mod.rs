//! An HTTP server for one model (`bnas-run serve`, the `serve` feature), on axum and tokio.
//!
//! Endpoints: `POST /v1/predict` (an image as the raw body, or a multipart form) and
//! `POST /v1/predict/tensor` (`{"shape": [C, H, W], "data": [...]}`), both answering with the
//! [`ImagePrediction`](crate::report::ImagePrediction) of `bnas-run predict --json`;
//! `GET /v1/model`, `GET /healthz` and `GET /metrics` (Prometheus text).
//!
//! Concurrent requests are grouped into batches ([`BatchPolicy`]) and run by one worker thread
//! on the model's rayon pool. Bodies over a size limit get 413, undecodable or mis-shaped inputs
//! 400, requests beyond the queue 503, requests over the time limit 504. SIGTERM or ctrl-c stops
//! accepting connections and returns once the requests in flight are answered.

mod batcher;
mod error;
mod input;
mod metrics;
mod model_info;
mod routes;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::sync::Semaphore;

pub use batcher::BatchPolicy;
pub use error::ServeError;

use crate::Model;

/// How a server batches and limits requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    /// Batching and queueing.
    pub batch: BatchPolicy,
    /// The largest request body, in bytes; larger ones get 413.
    pub max_body_bytes: usize,
    /// The longest a request may take, from its headers to its answer; slower ones get 504.
    pub timeout: Duration,
}

/// A server listening on its address, not yet answering.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    model: Arc<Model>,
    info: model_info::ModelInfo,
    options: ServeOptions,
    runtime: Runtime,
}

impl Server {
    /// Listens on `addr` (port 0 picks a free port) for `model`, which was loaded from
    /// `model_path`.
    pub fn bind(
        model: Model,
        model_path: &Path,
        addr: SocketAddr,
        options: ServeOptions,
    ) -> Result<Server, ServeError> {
        let bind_error = |source| ServeError::Bind { addr, source };
        let listener = TcpListener::bind(addr).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        let info = model_info::ModelInfo::new(&model, model_path)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("bnas-http")
            .build()
            .map_err(|source| ServeError::Start { what: "the async runtime", source })?;
        Ok(Server { listener, addr, model: Arc::new(model), info, options, runtime })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers requests until SIGTERM or ctrl-c, then finishes the requests in flight.
    pub fn run(self) -> Result<(), ServeError> {
        let Server { listener, model, info, options, runtime, .. } = self;
        let metrics = Arc::new(metrics::Metrics::new());
        let (queue, worker) = batcher::start(Arc::clone(&model), options.batch, Arc::clone(&metrics))
            .map_err(|source| ServeError::Start { what: "the batch worker", source })?;
        let cpu = Arc::new(Semaphore::new(model.threads()));
        let router = routes::router(Arc::new(routes::App { model, queue, metrics, info, cpu }), &options);
        runtime.block_on(async move {
            let start = |what| move |source| ServeError::Start { what, source };
            let listener = tokio::net::TcpListener::from_std(listener).map_err(start("the listener"))?;
            let stop = stop_signal().map_err(start("the signal handlers"))?;
            axum::serve(listener, router).with_graceful_shutdown(stop).await.map_err(ServeError::Serve)
        })?;
        // The router, and with it every queue handle, is gone: the worker drains the queue and ends.
        worker.join().map_err(|_| ServeError::WorkerPanicked)
    }
}

/// Resolves on SIGTERM or ctrl-c. Registered before serving, so a failure is a start error
/// rather than an immediate shutdown.
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            Ok(()) = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    })
}
