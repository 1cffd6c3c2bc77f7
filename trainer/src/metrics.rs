//! The JSONL metrics log: one JSON object per line, appended and flushed as training goes, so
//! a crashed or resumed run keeps its history.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Result, TrainerError};

/// An append-only JSONL file.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    file: BufWriter<File>,
}

impl MetricsLog {
    /// Opens `path` for appending (creating it).
    pub fn append(path: &Path) -> Result<MetricsLog> {
        let file = OpenOptions::new().create(true).append(true).open(path).map_err(TrainerError::io(path))?;
        Ok(MetricsLog { path: path.to_owned(), file: BufWriter::new(file) })
    }

    /// Drops the records of `path` whose `step` is `step` or later, keeping a step's epoch
    /// record (written with the step count after the epoch) only if it is at most `step`.
    /// A missing file is left missing.
    pub fn truncate_after(path: &Path, step: usize) -> Result<()> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(TrainerError::Io { path: path.to_owned(), source: e }),
        };
        let keep = |line: &&str| {
            let record: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            let at = record["step"].as_u64().unwrap_or(0) as usize;
            match record["event"].as_str() {
                Some("epoch") => at <= step,
                _ => at < step,
            }
        };
        let kept: String = text.lines().filter(keep).map(|l| format!("{l}\n")).collect();
        if kept.len() != text.len() {
            bnas_runtime::write_atomic(path, kept.as_bytes()).map_err(TrainerError::io(path))?;
        }
        Ok(())
    }

    /// Writes one record as a line and flushes it.
    pub fn write<T: Serialize>(&mut self, record: &T) -> Result<()> {
        let line = serde_json::to_string(record)
            .map_err(|e| TrainerError::Json { path: self.path.clone(), message: e.to_string() })?;
        writeln!(self.file, "{line}").and_then(|()| self.file.flush()).map_err(TrainerError::io(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_the_records_up_to_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let mut log = MetricsLog::append(&path).unwrap();
        for step in 0..4 {
            log.write(&serde_json::json!({"event": "step", "step": step})).unwrap();
        }
        log.write(&serde_json::json!({"event": "epoch", "step": 4})).unwrap();
        for step in 4..6 {
            log.write(&serde_json::json!({"event": "step", "step": step})).unwrap();
        }
        drop(log);
        MetricsLog::truncate_after(&path, 4).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let steps: Vec<String> = text.lines().map(String::from).collect();
        assert_eq!(steps.len(), 5, "{text}");
        assert!(steps[4].contains("epoch"));
        MetricsLog::truncate_after(&dir.path().join("absent.jsonl"), 0).unwrap();
        assert!(!dir.path().join("absent.jsonl").exists());
    }
}
