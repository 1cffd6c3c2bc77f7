//! `bnas-run serve` end to end: the real binary on an ephemeral port, spoken to over plain
//! HTTP/1.1. Predictions must equal `bnas-run predict --json`; bad requests get their status and
//! a message; metrics count what happened; SIGTERM answers the requests in flight and exits 0.
//! Nothing here asserts on timings.

#![cfg(all(feature = "cli", feature = "serve"))]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;

use bnas_runtime::data::decode_image;
use bnas_runtime::format::BnasFile;
use serde_json::{json, Value};
use support::succeed;

mod support;

const SETUP_HINT: &str = "run `bash scripts/setup.sh`";

/// A random-weight BNAS-A for 3x`side`x`side` CIFAR-style input, with more `init` flags.
fn model(dir: &Path, side: usize, flags: &[&str]) -> PathBuf {
    let path = dir.join("model.bnas");
    let input = format!("3x{side}x{side}");
    let mut args = vec!["init", "--model", "bnas-a", "--input", &input, "--out", path.to_str().unwrap()];
    args.extend(flags);
    succeed(&args);
    path
}

/// The first `n` real CIFAR-10 test images.
fn cifar_images(n: usize) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.deps/cifar10-samples");
    let mut images: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}; the CIFAR-10 samples are missing: {SETUP_HINT}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "png"))
        .collect();
    images.sort();
    assert!(images.len() >= n, "expected {n} PNGs in {}: {SETUP_HINT}", dir.display());
    images.truncate(n);
    images
}

/// A PNG of a colour gradient.
fn gradient_png(side: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(side, side, |x, y| image::Rgb([(x * 7) as u8, (y * 5) as u8, 128]));
    let mut png = std::io::Cursor::new(Vec::new());
    image.write_to(&mut png, image::ImageFormat::Png).unwrap();
    png.into_inner()
}

/// A status and body.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: not JSON: {}", self.body))
    }

    /// The message of an error reply.
    fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_else(|| panic!("no error message: {}", self.body)).to_owned()
    }
}

/// A running `bnas-run serve`, killed if a test fails before stopping it.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    /// Starts the server on a free loopback port; it prints the bound address first.
    fn start(model: &Path, flags: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bnas-run"))
            .args(["serve", "--model", model.to_str().unwrap(), "--addr", "127.0.0.1:0"])
            .args(flags)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bnas-run starts");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        let addr = first.trim().strip_prefix("listening on http://").unwrap_or_else(|| {
            let _ = child.kill();
            let mut stderr = String::new();
            child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
            panic!("unexpected first line {first:?}; stderr: {stderr}")
        });
        Server { addr: addr.to_owned(), child }
    }

    /// One request on a fresh connection. `Content-Length` is the body's unless `headers`
    /// give one.
    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        request(&self.addr, method, path, headers, body)
    }

    fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], b"")
    }

    fn predict_png(&self, png: &[u8], query: &str) -> Reply {
        predict_png(&self.addr, png, query)
    }

    /// The value of a metric line (`name{labels}` exactly), 0 when absent.
    fn metric(&self, series: &str) -> f64 {
        let text = self.get("/metrics").body;
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    /// Sends SIGTERM and waits: the exit status and stderr.
    fn terminate(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = self.child.wait().unwrap();
        let mut stderr = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        (status, stderr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Already reaped after `terminate`: then this does nothing.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("the server accepts connections");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-length")) {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) =
        response.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no header end: {response:?}"));
    assert!(!head.to_ascii_lowercase().contains("transfer-encoding"), "unexpected chunked reply: {head}");
    let status =
        head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("bad status: {head}"));
    Reply { status, body: body.to_owned() }
}

/// `POST /v1/predict` of a raw PNG.
fn predict_png(addr: &str, png: &[u8], query: &str) -> Reply {
    request(addr, "POST", &format!("/v1/predict{query}"), &[("Content-Type", "image/png")], png)
}

/// Sends `n` PNGs at once, from `n` threads.
fn concurrent(addr: &str, pngs: &[Vec<u8>], query: &str) -> Vec<thread::JoinHandle<Reply>> {
    let start = Arc::new(Barrier::new(pngs.len()));
    pngs.iter()
        .map(|png| {
            let (addr, start, png, query) =
                (addr.to_owned(), Arc::clone(&start), png.clone(), query.to_owned());
            thread::spawn(move || {
                start.wait();
                predict_png(&addr, &png, &query)
            })
        })
        .collect()
}

/// A multipart form with one file field: its content type and body.
fn multipart(field: &str, file_name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "bnas-serve-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{file_name}\"\r\n\
         Content-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The JSON tensor of an image file, preprocessed as the model says.
fn tensor_json(model: &Path, image: &Path) -> Vec<u8> {
    let preprocess = BnasFile::open(model).unwrap().metadata().preprocess.clone();
    let data = preprocess.apply(&decode_image(image).unwrap()).unwrap();
    let shape = [preprocess.color.channels(), preprocess.height, preprocess.width];
    serde_json::to_vec(&json!({ "shape": shape, "data": data })).unwrap()
}

#[test]
fn predictions_equal_bnas_run_predict_and_metrics_count_them() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path(), 32, &["--layers", "5", "--channels", "16"]);
    let m = model.to_str().unwrap();
    let images = cifar_images(4);
    let mut args = vec!["predict", "--model", m, "--top-k", "3", "--json"];
    args.extend(images.iter().map(|p| p.to_str().unwrap()));
    let expected: Value = serde_json::from_str(&succeed(&args)).unwrap();
    let expected = expected.as_array().unwrap().clone();

    // A long wait lets concurrent requests share batches; the answers must not depend on it.
    let server = Server::start(&model, &["--max-batch", "4", "--max-wait-ms", "200"]);
    let pngs: Vec<Vec<u8>> = images.iter().map(|image| std::fs::read(image).unwrap()).collect();
    let raw = concurrent(&server.addr, &pngs, "?top_k=3").into_iter().map(|t| t.join().unwrap());
    for ((reply, image), want) in raw.zip(&images).zip(&expected) {
        assert_eq!(reply.status, 200, "{}: {}", image.display(), reply.body);
        assert_eq!(reply.json(), json!({ "top_k": want["top_k"] }), "{}", image.display());
    }
    for (image, want) in images.iter().zip(&expected) {
        let name = image.to_str().unwrap();
        let (content_type, form) = multipart("image", name, &std::fs::read(image).unwrap());
        let reply =
            server.request("POST", "/v1/predict?top_k=3", &[("Content-Type", content_type.as_str())], &form);
        assert_eq!((reply.status, reply.json()), (200, want.clone()), "multipart {name}");
        let reply = server.request("POST", "/v1/predict/tensor?top_k=3", &[], &tensor_json(&model, image));
        assert_eq!((reply.status, reply.json()), (200, json!({ "top_k": want["top_k"] })), "tensor {name}");
    }
    let default_k = server.predict_png(&pngs[0], "").json();
    assert_eq!(default_k["top_k"].as_array().unwrap().len(), 5, "top_k defaults to predict's 5");

    let info = server.get("/v1/model").json();
    let summary: Value = serde_json::from_str(&succeed(&["summary", "--model", m, "--json"])).unwrap();
    let totals = &summary["summary"]["totals"];
    assert_eq!(info["name"], summary["metadata"]["config"]["name"]);
    assert_eq!(info["classes"], summary["metadata"]["class_names"]);
    assert_eq!(info["input_shape"], json!([3, 32, 32]));
    for key in ["float_macs", "binary_macs", "ops", "params"] {
        assert_eq!(info[key], totals[key], "{key}");
    }
    let sha256sum = Command::new("sha256sum").arg(&model).output().unwrap();
    let hash = String::from_utf8(sha256sum.stdout).unwrap();
    assert_eq!(info["sha256"].as_str(), hash.split_whitespace().next());
    assert_eq!(server.get("/healthz").body, "ok\n");

    let requests = images.len() * 2 + 1;
    assert_eq!(
        server.metric(r#"bnas_http_requests_total{route="/v1/predict",status="200"}"#),
        requests as f64
    );
    assert_eq!(
        server.metric(r#"bnas_http_request_duration_seconds_count{route="/v1/predict"}"#),
        requests as f64
    );
    assert_eq!(server.metric(r#"bnas_http_requests_total{route="/v1/predict/tensor",status="200"}"#), 4.0);
    assert_eq!(
        server.metric("bnas_batch_size_sum"),
        (requests + images.len()) as f64,
        "one sample per request"
    );
    assert_eq!(server.metric("bnas_queue_depth"), 0.0);

    let (status, stderr) = server.terminate();
    assert!(status.success(), "SIGTERM ends with {status}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_requests_get_their_status_and_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path(), 32, &["--layers", "3", "--channels", "8"]);
    let server = Server::start(&model, &["--max-body-bytes", "100000"]);

    let corrupt = server.predict_png(b"\x89PNG\r\n\x1a\nnot really", "");
    assert_eq!(corrupt.status, 400, "{}", corrupt.body);
    assert!(corrupt.error().contains("cannot decode image"), "{}", corrupt.body);
    let wrong_size = server.predict_png(&gradient_png(20), "");
    assert_eq!(wrong_size.status, 400, "{}", wrong_size.body);
    assert!(
        wrong_size.error().contains("image is 20x20 (WxH) but the input is 32x32"),
        "{}",
        wrong_size.body
    );
    let (content_type, form) = multipart("other", "", b"");
    let no_file = server.request("POST", "/v1/predict", &[("Content-Type", content_type.as_str())], &form);
    assert_eq!(no_file.status, 400, "{}", no_file.body);
    assert!(no_file.error().contains("no `image` field"), "{}", no_file.body);
    let text = server.request("POST", "/v1/predict", &[("Content-Type", "text/plain")], b"a cat");
    assert_eq!(text.status, 415, "{}", text.body);
    let bad_k = server.predict_png(&gradient_png(32), "?top_k=many");
    assert_eq!(bad_k.status, 400, "{}", bad_k.body);

    for (tensor, reason) in [
        (r#"{"shape": [3, 28, 28], "data": []}"#, "shape [3, 28, 28], the model takes [3, 32, 32]"),
        (r#"{"shape": [3, 32, 32], "data": [1, 2]}"#, "needs 3072 values, data has 2"),
        (r#"{"shape": [3, 32, 32], "data": "#, "expected {"),
    ] {
        let reply = server.request("POST", "/v1/predict/tensor", &[], tensor.as_bytes());
        assert_eq!(reply.status, 400, "{tensor}: {}", reply.body);
        assert!(reply.error().contains(reason), "{tensor}: {}", reply.body);
    }

    // The declared length is refused before the body is read; none is sent.
    let too_large = server.request(
        "POST",
        "/v1/predict",
        &[("Content-Type", "image/png"), ("Content-Length", "100001")],
        b"",
    );
    assert_eq!(too_large.status, 413, "{}", too_large.body);
    let unknown = server.get("/v2/predict");
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(unknown.error().contains("/v2/predict"), "{}", unknown.body);

    assert_eq!(server.get("/healthz").status, 200, "still serving");
    let count = |route: &str, status: u16| {
        server.metric(&format!("bnas_http_requests_total{{route=\"{route}\",status=\"{status}\"}}"))
    };
    assert_eq!(count("/v1/predict", 400), 4.0);
    assert_eq!(count("/v1/predict/tensor", 400), 3.0);
    assert_eq!(count("/v1/predict", 413), 1.0);
    assert_eq!(count("/v1/predict", 415), 1.0);
    assert_eq!(count("unmatched", 404), 1.0);
    assert_eq!(server.metric("bnas_batch_size_count"), 0.0, "no bad input reached the model");
    let (status, stderr) = server.terminate();
    assert!(status.success() && !stderr.contains("panicked"), "{status}: {stderr}");
}

#[test]
fn a_full_queue_answers_503_and_sigterm_finishes_requests_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    // Large enough that one inference outlasts the arrival of eight concurrent requests.
    let model = model(dir.path(), 224, &[]);
    let server = Server::start(&model, &["--threads", "1", "--max-batch", "1", "--queue", "1"]);
    let png = gradient_png(224);

    // One running and one queued at most: of eight at once, some must be refused.
    let pngs = vec![png; 8];
    let replies: Vec<Reply> =
        concurrent(&server.addr, &pngs, "").into_iter().map(|t| t.join().unwrap()).collect();
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let refused: Vec<&Reply> = replies.iter().filter(|r| r.status == 503).collect();
    assert_eq!(ok + refused.len(), 8, "only 200 and 503: {replies:?}");
    assert!(ok >= 1 && !refused.is_empty(), "{ok} answered, {} refused", refused.len());
    assert!(refused[0].error().contains("queue is full"), "{}", refused[0].body);
    assert_eq!(
        server.metric(r#"bnas_http_requests_total{route="/v1/predict",status="503"}"#),
        refused.len() as f64
    );

    // SIGTERM while a request is in flight (counted by the middleware, besides the poll
    // itself): it is still answered.
    let in_flight = concurrent(&server.addr, &pngs[..1], "");
    let mut polls = 0;
    while server.metric("bnas_http_requests_in_flight") < 2.0 {
        polls += 1;
        assert!(polls < 100_000, "the request never arrived");
        thread::yield_now();
    }
    let (status, stderr) = server.terminate();
    for reply in in_flight.into_iter().map(|t| t.join().unwrap()) {
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    assert!(status.success(), "SIGTERM ends with {status}: {stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
}
