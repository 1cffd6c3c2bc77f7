//! The server's counters and their Prometheus text exposition (format 0.0.4), written by hand:
//! a few counters and histograms do not need a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use axum::http::StatusCode;

/// Request latency bucket bounds, in seconds.
const LATENCY_BOUNDS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];
/// Batch size bucket bounds, in samples.
const BATCH_BOUNDS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

/// Everything `GET /metrics` reports. Labels are route templates (`/v1/predict`) or
/// `unmatched`, never raw request paths, so their number stays bounded.
#[derive(Debug)]
pub(super) struct Metrics {
    /// Answered requests by (route, status code).
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    /// Request latency by route.
    latency: Mutex<BTreeMap<String, Histogram>>,
    /// Samples per model run.
    batch_sizes: Mutex<Histogram>,
    /// Requests waiting for the batch worker.
    queue_depth: AtomicUsize,
    /// Requests received and not yet answered.
    in_flight: AtomicUsize,
}

impl Metrics {
    /// No requests yet.
    pub(super) fn new() -> Metrics {
        Metrics {
            requests: Mutex::default(),
            latency: Mutex::default(),
            batch_sizes: Mutex::new(Histogram::new(&BATCH_BOUNDS)),
            queue_depth: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Counts a request as in flight until the guard is dropped (answered, or abandoned when
    /// the client goes away).
    pub(super) fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }

    /// Records one answered request.
    pub(super) fn observe_request(&self, route: &str, status: StatusCode, elapsed: Duration) {
        *lock(&self.requests).entry((route.to_owned(), status.as_u16())).or_default() += 1;
        lock(&self.latency)
            .entry(route.to_owned())
            .or_insert_with(|| Histogram::new(&LATENCY_BOUNDS))
            .observe(elapsed.as_secs_f64());
    }

    /// Records one model run of `samples` samples.
    pub(super) fn observe_batch(&self, samples: usize) {
        lock(&self.batch_sizes).observe(samples as f64);
    }

    /// A request entered the queue.
    pub(super) fn enqueued(&self) {
        self.queue_depth.fetch_add(1, Ordering::Relaxed);
    }

    /// A request left the queue (taken by the worker, or refused).
    pub(super) fn dequeued(&self) {
        self.queue_depth.fetch_sub(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every metric.
    pub(super) fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP bnas_http_requests_total HTTP requests answered, by route and status code.\n");
        out.push_str("# TYPE bnas_http_requests_total counter\n");
        for ((route, status), count) in lock(&self.requests).iter() {
            let _ =
                writeln!(out, "bnas_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {count}");
        }
        out.push_str("# HELP bnas_http_request_duration_seconds Time from request to response, by route.\n");
        out.push_str("# TYPE bnas_http_request_duration_seconds histogram\n");
        for (route, histogram) in lock(&self.latency).iter() {
            histogram.render(&mut out, "bnas_http_request_duration_seconds", Some(("route", route)));
        }
        out.push_str("# HELP bnas_batch_size Samples per model run.\n");
        out.push_str("# TYPE bnas_batch_size histogram\n");
        lock(&self.batch_sizes).render(&mut out, "bnas_batch_size", None);
        out.push_str("# HELP bnas_queue_depth Requests waiting for the batch worker.\n");
        out.push_str("# TYPE bnas_queue_depth gauge\n");
        let _ = writeln!(out, "bnas_queue_depth {}", self.queue_depth.load(Ordering::Relaxed));
        out.push_str("# HELP bnas_http_requests_in_flight Requests received and not yet answered.\n");
        out.push_str("# TYPE bnas_http_requests_in_flight gauge\n");
        let _ = writeln!(out, "bnas_http_requests_in_flight {}", self.in_flight.load(Ordering::Relaxed));
        out
    }
}

/// A request in flight; see [`Metrics::in_flight`].
#[derive(Debug)]
pub(super) struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A histogram with fixed upper bounds; counts are per bucket, cumulated when rendered.
#[derive(Debug)]
struct Histogram {
    bounds: &'static [f64],
    /// One count per bound, plus the overflow (`+Inf`) bucket.
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram { bounds, counts: vec![0; bounds.len() + 1], sum: 0.0 }
    }

    fn observe(&mut self, value: f64) {
        let bucket = self.bounds.iter().position(|&bound| value <= bound).unwrap_or(self.bounds.len());
        if let Some(count) = self.counts.get_mut(bucket) {
            *count += 1;
        }
        self.sum += value;
    }

    /// Writes the `_bucket`, `_sum` and `_count` lines, with one label or none.
    fn render(&self, out: &mut String, name: &str, label: Option<(&str, &str)>) {
        let prefix = label.map(|(key, value)| format!("{key}=\"{value}\",")).unwrap_or_default();
        let mut cumulative = 0;
        let bounds = self.bounds.iter().map(|b| b.to_string()).chain(["+Inf".to_owned()]);
        for (bound, count) in bounds.zip(&self.counts) {
            cumulative += count;
            let _ = writeln!(out, "{name}_bucket{{{prefix}le=\"{bound}\"}} {cumulative}");
        }
        let labels = label.map(|(key, value)| format!("{{{key}=\"{value}\"}}")).unwrap_or_default();
        let _ = writeln!(out, "{name}_sum{labels} {}", self.sum);
        let _ = writeln!(out, "{name}_count{labels} {cumulative}");
    }
}

/// Metrics stay usable after a panic elsewhere: a poisoned lock still holds valid counts.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_cumulative_buckets_and_counts() {
        let metrics = Metrics::new();
        metrics.observe_request("/v1/predict", StatusCode::OK, Duration::from_millis(3));
        metrics.observe_request("/v1/predict", StatusCode::OK, Duration::from_secs(20));
        metrics.observe_request("unmatched", StatusCode::NOT_FOUND, Duration::ZERO);
        metrics.observe_batch(3);
        metrics.enqueued();
        let answering = metrics.in_flight();
        let text = metrics.render();
        for line in [
            "bnas_http_requests_total{route=\"/v1/predict\",status=\"200\"} 2",
            "bnas_http_requests_total{route=\"unmatched\",status=\"404\"} 1",
            "bnas_http_request_duration_seconds_bucket{route=\"/v1/predict\",le=\"0.0025\"} 0",
            "bnas_http_request_duration_seconds_bucket{route=\"/v1/predict\",le=\"0.005\"} 1",
            "bnas_http_request_duration_seconds_bucket{route=\"/v1/predict\",le=\"+Inf\"} 2",
            "bnas_http_request_duration_seconds_count{route=\"/v1/predict\"} 2",
            "bnas_batch_size_bucket{le=\"2\"} 0",
            "bnas_batch_size_bucket{le=\"4\"} 1",
            "bnas_batch_size_sum 3",
            "bnas_batch_size_count 1",
            "bnas_queue_depth 1",
            "bnas_http_requests_in_flight 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        drop(answering);
        assert!(metrics.render().contains("bnas_http_requests_in_flight 0\n"));
    }
}
