//! `bnas-run serve`: answer prediction requests over HTTP.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use bnas_runtime::serve::{BatchPolicy, ServeOptions, Server};
use clap::Args;

use crate::RunArgs;

/// Flags of `bnas-run serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Address to listen on; port 0 picks a free one. The bound address is the first line of
    /// stdout.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// The most requests run as one batch (1: no batching).
    #[arg(long, default_value = "8")]
    max_batch: NonZeroUsize,
    /// How long the first request of a batch waits for more, in milliseconds.
    #[arg(long, default_value_t = 2)]
    max_wait_ms: u64,
    /// Requests that may wait for the model; more get 503.
    #[arg(long, default_value = "64")]
    queue: NonZeroUsize,
    /// The largest request body in bytes; larger ones get 413.
    #[arg(long, default_value_t = 4 << 20)]
    max_body_bytes: usize,
    /// The longest a request may take, in milliseconds; slower ones get 504.
    #[arg(long, default_value_t = 30_000)]
    timeout_ms: u64,
}

/// Runs the server until SIGTERM or ctrl-c.
pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let model = args.run.load("serve")?;
    let options = ServeOptions {
        batch: BatchPolicy {
            max_batch: args.max_batch,
            max_wait: Duration::from_millis(args.max_wait_ms),
            queue: args.queue,
        },
        max_body_bytes: args.max_body_bytes,
        timeout: Duration::from_millis(args.timeout_ms),
    };
    let path = args.run.model_file("serve")?;
    let server = Server::bind(model, &path, args.addr, options)?;
    println!("listening on http://{}", server.local_addr());
    eprintln!(
        "serving {} (batches of up to {}, {} ms wait, queue {}); SIGTERM or ctrl-c stops",
        path.display(),
        args.max_batch,
        args.max_wait_ms,
        args.queue
    );
    server.run()?;
    eprintln!("stopped: every request in flight was answered");
    Ok(())
}
