//! The server's errors: [`ServeError`] for starting and stopping it, [`ApiError`] for one request,
//! which becomes a status code and a JSON `{"error": "..."}` body.

use std::error::Error;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::data::DataError;
use crate::RuntimeError;

/// Why the server could not start, or failed while running.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address cannot be listened on (in use, not local, no permission).
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The model file could not be read again to hash it.
    #[error("cannot read {} to hash it", .path.display())]
    ModelFile {
        /// The model file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The async runtime, the batch worker or the signal handlers could not be started.
    #[error("cannot start the server: {what}")]
    Start {
        /// What could not be started.
        what: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Accepting connections failed.
    #[error("the server failed")]
    Serve(#[source] io::Error),
    /// The batch worker panicked (the requests it held were answered with 500).
    #[error("the batch worker panicked")]
    WorkerPanicked,
}

/// Why one request failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum ApiError {
    /// The image could not be decoded or does not fit the model's input.
    #[error("bad image: {}", chain(.0))]
    BadImage(DataError),
    /// The tensor is not valid JSON, has the wrong shape, or holds non-finite values.
    #[error("bad tensor: {0}")]
    BadTensor(String),
    /// A multipart form without an image.
    #[error("the multipart form has no `{field}` field and no file")]
    NoImageInForm {
        /// The name the image field should have.
        field: &'static str,
    },
    /// The body is not an image, a multipart form or (for tensors) JSON.
    #[error(
        "unsupported content type `{0}`: send an image (image/png, image/jpeg, \
         application/octet-stream) or multipart/form-data"
    )]
    UnsupportedMediaType(String),
    /// The body could not be read: too large (413), malformed multipart, a dropped connection.
    #[error("{message}")]
    Body {
        /// The status axum's extractor chose.
        status: StatusCode,
        /// Its explanation.
        message: String,
    },
    /// The query string is malformed.
    #[error("bad query string: {0}")]
    BadQuery(String),
    /// No route has this path.
    #[error("no such endpoint: {0}")]
    NotFound(String),
    /// Too many requests are waiting for the model.
    #[error("the request queue is full ({capacity} waiting); retry later")]
    QueueFull {
        /// The queue's capacity.
        capacity: usize,
    },
    /// The server is stopping and takes no more work.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The model failed on a valid input.
    #[error("inference failed: {}", chain(.0.as_ref()))]
    Inference(Arc<RuntimeError>),
    /// Preprocessing panicked or was cancelled: a bug, reported instead of crashing.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadImage(_)
            | ApiError::BadTensor(_)
            | ApiError::NoImageInForm { .. }
            | ApiError::BadQuery(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Body { status, .. } => *status,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::QueueFull { .. } | ApiError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Inference(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.to_string() });
        (self.status(), Json(body)).into_response()
    }
}

/// An error and its sources, `outer: inner: ...`, as anyhow's `{:#}` prints them.
fn chain(error: &dyn Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
