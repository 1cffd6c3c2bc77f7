//! Helpers shared by the integration tests that run the `bnas-run` binary.

use std::process::{Command, Output};

/// Runs `bnas-run` with `args` to completion.
pub fn bnas_run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bnas-run")).args(args).output().expect("bnas-run starts")
}

/// Runs `bnas-run`, which must succeed; its stdout.
pub fn succeed(args: &[&str]) -> String {
    let out = bnas_run(args);
    assert!(out.status.success(), "bnas-run {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}
