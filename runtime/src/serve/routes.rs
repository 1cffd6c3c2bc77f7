//! The HTTP endpoints, and the layers every request passes: metrics, timeout, body limit.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, MatchedPath, Query, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::sync::Semaphore;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use super::batcher::BatchQueue;
use super::error::ApiError;
use super::input::{parse_tensor, read_image};
use super::metrics::Metrics;
use super::model_info::ModelInfo;
use super::ServeOptions;
use crate::data::decode_image_bytes;
use crate::report::{ImagePrediction, DEFAULT_TOP_K};
use crate::{Model, Prediction};

/// What the handlers share.
#[derive(Debug)]
pub(super) struct App {
    pub(super) model: Arc<Model>,
    pub(super) queue: BatchQueue,
    pub(super) metrics: Arc<Metrics>,
    pub(super) info: ModelInfo,
    /// Bounds the decoding and parsing running at once, and so their memory.
    pub(super) cpu: Arc<Semaphore>,
}

/// The endpoints, behind the metrics, timeout and body-size layers.
pub(super) fn router(app: Arc<App>, options: &ServeOptions) -> Router {
    let metrics = Arc::clone(&app.metrics);
    Router::new()
        .route("/v1/predict", post(predict_image))
        .route("/v1/predict/tensor", post(predict_tensor))
        .route("/v1/model", get(model_info))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(render_metrics))
        .fallback(not_found)
        .with_state(app)
        // Refuses a declared Content-Length over the limit before reading, and stops reading
        // any other body at the limit; axum's own (smaller) default then has nothing to do.
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(options.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, options.timeout))
        .layer(middleware::from_fn_with_state(metrics, record))
}

/// `?top_k=K`: how many classes to return (5 by default, as `bnas-run predict`).
#[derive(Debug, Deserialize)]
struct TopK {
    #[serde(default = "default_top_k")]
    top_k: usize,
}

fn default_top_k() -> usize {
    DEFAULT_TOP_K
}

/// `POST /v1/predict`: an image, raw or in a multipart form.
async fn predict_image(
    State(app): State<Arc<App>>,
    query: Result<Query<TopK>, QueryRejection>,
    request: Request,
) -> Result<Json<ImagePrediction>, ApiError> {
    let k = top_k(query)?;
    let upload = read_image(request).await?;
    let model = Arc::clone(&app.model);
    let name = upload.name.clone();
    let sample = app
        .off_executor(move || {
            let name = upload.name.as_deref().unwrap_or("request body");
            let image = decode_image_bytes(&upload.bytes, Path::new(name))?;
            model.metadata().preprocess.apply(&image)
        })
        .await?
        .map_err(ApiError::BadImage)?;
    Ok(Json(ImagePrediction { file: name, top_k: app.classify(sample, k).await?, error: None }))
}

/// `POST /v1/predict/tensor`: `{"shape": [C, H, W], "data": [...]}`, already preprocessed.
async fn predict_tensor(
    State(app): State<Arc<App>>,
    query: Result<Query<TopK>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ImagePrediction>, ApiError> {
    let k = top_k(query)?;
    let body = body?;
    let input = app.model.metadata().config.input;
    let sample = app.off_executor(move || parse_tensor(&body, input)).await??;
    Ok(Json(ImagePrediction { file: None, top_k: app.classify(sample, k).await?, error: None }))
}

/// `GET /v1/model`.
async fn model_info(State(app): State<Arc<App>>) -> Json<ModelInfo> {
    Json(app.info.clone())
}

/// `GET /metrics`, in Prometheus' text format.
async fn render_metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], app.metrics.render())
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(uri.path().to_owned())
}

fn top_k(query: Result<Query<TopK>, QueryRejection>) -> Result<usize, ApiError> {
    query.map(|Query(q)| q.top_k).map_err(|e| ApiError::BadQuery(e.body_text()))
}

/// Counts every answered request by route template and status, and times it.
async fn record(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let start = Instant::now();
    let _in_flight = metrics.in_flight();
    let response = next.run(request).await;
    metrics.observe_request(&route, response.status(), start.elapsed());
    response
}

impl App {
    /// Runs CPU-bound request work (decoding, parsing) on tokio's blocking threads, a few at a
    /// time. A panic there becomes a 500 instead of taking the server down.
    async fn off_executor<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = Arc::clone(&self.cpu).acquire_owned().await.map_err(|_| ApiError::ShuttingDown)?;
        tokio::task::spawn_blocking(move || {
            // Held until the work ends, even if the request times out meanwhile.
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
    }

    /// Runs one preprocessed sample in the next batch; its `k` most probable classes.
    async fn classify(&self, sample: Vec<f32>, k: usize) -> Result<Vec<Prediction>, ApiError> {
        let logits = self
            .queue
            .submit(sample)?
            .await
            .map_err(|_| ApiError::Internal("the batch worker stopped".into()))?;
        Ok(self.model.top_k(&logits.map_err(ApiError::Inference)?, k))
    }
}
