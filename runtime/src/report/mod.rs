//! Human-readable reports shared by the `bnas` and `bnas-run` command lines: numbers, aligned
//! text tables, the per-layer network summary, and printing.

mod peak;
pub mod profile;
mod summary;

pub use peak::render_peak;
pub use summary::render_summary;

use std::borrow::Cow;
use std::io::{self, Write};

use crate::Prediction;

/// One line of an evaluation's `--predictions` file (`bnas eval`, `bnas-run eval`), so that two
/// engines' predictions can be compared example by example (`bnas-run compare`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PredictionLine<'a> {
    /// Example index in the split.
    pub index: usize,
    /// True label.
    pub label: usize,
    /// Predicted class.
    pub pred: usize,
    /// The logits.
    pub logits: Cow<'a, [f32]>,
}

/// How many classes `bnas-run predict` and `bnas-run serve` return per image by default.
pub const DEFAULT_TOP_K: usize = 5;

/// The top-k classes of one image, or why it could not be classified: one element of
/// `bnas-run predict --json`, and the body `bnas-run serve` answers `POST /v1/predict` with.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ImagePrediction {
    /// The image file; absent for an upload without a file name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The most probable classes first; empty when the image failed.
    pub top_k: Vec<Prediction>,
    /// Why the image could not be classified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Prints a report to stdout. A closed pipe (`bnas summary | head`) ends the output quietly
/// instead of failing.
pub fn emit(text: &str) -> io::Result<()> {
    match writeln!(io::stdout().lock(), "{text}") {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Groups digits by thousands: 5578252 -> "5,578,252".
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A count with an SI suffix: 1234567 -> "1.23M".
pub fn si(value: f64) -> String {
    let (scaled, suffix) = match value {
        v if v >= 1e9 => (v / 1e9, "G"),
        v if v >= 1e6 => (v / 1e6, "M"),
        v if v >= 1e3 => (v / 1e3, "K"),
        v => (v, ""),
    };
    if suffix.is_empty() {
        format!("{scaled:.0}")
    } else {
        format!("{scaled:.2}{suffix}")
    }
}

/// A byte count in binary units: 1536 -> "1.50 KiB".
pub fn bytes(value: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut scaled = value as f64;
    let mut unit = 0;
    while scaled >= 1024.0 && unit + 1 < UNITS.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value} B")
    } else {
        format!("{scaled:.2} {}", UNITS[unit])
    }
}

/// A text table: a header and rows, columns padded to their widest cell. Columns whose header
/// is listed in `left` are left-aligned, the rest right-aligned (numbers).
#[derive(Debug)]
pub struct Table {
    header: Vec<String>,
    left: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers; the first `left_columns` are left-aligned.
    pub fn new(header: &[&str], left_columns: usize) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            left: (0..header.len()).map(|i| i < left_columns).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row (one cell per column).
    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.header.len());
        self.rows.push(cells);
    }

    /// Renders the table with a rule under the header.
    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|c| {
                std::iter::once(&self.header)
                    .chain(&self.rows)
                    .map(|r| r[c].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .zip(&self.left)
                .map(|((cell, &w), &left)| if left { format!("{cell:<w$}") } else { format!("{cell:>w$}") })
                .collect();
            padded.join("  ").trim_end().to_owned()
        };
        let rule: usize = widths.iter().sum::<usize>() + 2 * (widths.len().saturating_sub(1));
        let mut out = line(&self.header);
        out.push('\n');
        out.push_str(&"-".repeat(rule));
        for row in &self.rows {
            out.push('\n');
            out.push_str(&line(row));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_written_by_hand() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(5_578_252), "5,578,252");
        assert_eq!(si(1_234_567.0), "1.23M");
        assert_eq!(si(512.0), "512");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(bytes(100), "100 B");
    }

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(&["name", "n"], 1);
        t.row(vec!["a".into(), "10".into()]);
        t.row(vec!["long".into(), "1".into()]);
        assert_eq!(t.render(), "name   n\n--------\na     10\nlong   1");
    }
}
