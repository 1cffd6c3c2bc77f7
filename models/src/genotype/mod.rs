//! BNAS genotypes: a normal and a reduction cell, each four nodes of two edges, concat = nodes 2..5.
//!
//! Read and written as JSON shaped like the reference's namedtuple, and as the reference's own
//! notation (see [`notation`]), so genotypes can be pasted from its code or logs.

mod notation;

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::GenotypeError;
use crate::op::OpKind;

/// Edges per cell: two for each of the four intermediate nodes.
pub const EDGES_PER_CELL: usize = 8;
/// Genotype files are small; anything larger than this is not one.
const MAX_FILE_BYTES: u64 = 1 << 20;
/// The nodes every cell concatenates; the inter-cell residual needs all four (4C channels).
pub const CONCAT: [usize; 4] = [2, 3, 4, 5];

/// Which of a genotype's two cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CellKind {
    /// Keeps the spatial size and the channel count.
    Normal,
    /// Halves the spatial size and doubles the channels.
    Reduce,
}

impl fmt::Display for CellKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CellKind::Normal => "normal",
            CellKind::Reduce => "reduce",
        })
    }
}

/// One edge of a cell: an op applied to an earlier state (0 = cell k-2, 1 = cell k-1, 2.. = nodes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Edge {
    /// The operation on the edge.
    pub op: OpKind,
    /// The state it reads.
    pub input: usize,
}

impl Edge {
    /// The node this edge feeds, given its position in the cell's edge list.
    pub fn node_of(position: usize) -> usize {
        2 + position / 2
    }
}

/// A validated BNAS genotype.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genotype {
    normal: Vec<Edge>,
    reduce: Vec<Edge>,
}

/// An unvalidated cell as read from text: (op name, state index) pairs and a concat list.
pub(crate) struct RawCell {
    pub edges: Vec<(String, i64)>,
    pub concat: Option<Vec<i64>>,
}

impl Genotype {
    /// Builds a genotype from edge lists, checking the BNAS cell structure.
    pub fn new(normal: Vec<Edge>, reduce: Vec<Edge>) -> Result<Genotype, GenotypeError> {
        let raw = |edges: &[Edge]| RawCell {
            edges: edges.iter().map(|e| (e.op.name().to_owned(), e.input as i64)).collect(),
            concat: None,
        };
        Genotype::from_raw(raw(&normal), raw(&reduce))
    }

    /// Validates raw cells read from JSON or notation.
    pub(crate) fn from_raw(normal: RawCell, reduce: RawCell) -> Result<Genotype, GenotypeError> {
        Ok(Genotype {
            normal: validate_cell(CellKind::Normal, normal)?,
            reduce: validate_cell(CellKind::Reduce, reduce)?,
        })
    }

    /// The edges of one cell, two per node, nodes 2..5 in order.
    pub fn cell(&self, kind: CellKind) -> &[Edge] {
        match kind {
            CellKind::Normal => &self.normal,
            CellKind::Reduce => &self.reduce,
        }
    }

    /// Parses JSON (`{"normal": [["bin_conv_3x3", 1], ...], "normal_concat": [2, 3, 4, 5], ...}`)
    /// or the reference notation, whichever the text is.
    pub fn parse(text: &str) -> Result<Genotype, GenotypeError> {
        if text.trim_start().starts_with('{') {
            Genotype::from_json(text)
        } else {
            Genotype::from_reference(text)
        }
    }

    /// Reads a genotype file in either format.
    pub fn from_file(path: &Path) -> Result<Genotype, GenotypeError> {
        use std::io::Read;
        let io = |source| GenotypeError::Io { path: path.to_owned(), source };
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(MAX_FILE_BYTES + 1).read_to_string(&mut text))
            .map_err(io)?;
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(GenotypeError::FileTooLarge { path: path.to_owned(), limit: MAX_FILE_BYTES });
        }
        Genotype::parse(&text)
    }

    /// Parses the JSON form.
    pub fn from_json(text: &str) -> Result<Genotype, GenotypeError> {
        let raw: JsonGenotype = serde_json::from_str(text).map_err(|e| {
            let message = e.to_string();
            // serde_json appends " at line L column C"; the variant carries them as fields.
            let message = message.rsplit_once(" at line ").map_or(message.as_str(), |(head, _)| head);
            GenotypeError::Json { line: e.line(), column: e.column(), message: message.to_owned() }
        })?;
        raw.validate()
    }

    /// Writes the JSON form (pretty-printed).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a genotype always serializes")
    }

    /// Parses the reference notation: `Genotype(normal=[('bin_conv_3x3', 1), ...],
    /// normal_concat=range(2, 6), reduce=[...], reduce_concat=range(2, 6))`. Text before
    /// `Genotype(` (a log prefix) is skipped.
    pub fn from_reference(text: &str) -> Result<Genotype, GenotypeError> {
        notation::parse(text)
    }

    /// Writes the reference notation, as the reference prints a genotype.
    pub fn to_reference(&self) -> String {
        notation::format(self)
    }
}

fn validate_cell(cell: CellKind, raw: RawCell) -> Result<Vec<Edge>, GenotypeError> {
    if raw.edges.len() != EDGES_PER_CELL {
        return Err(GenotypeError::EdgeCount { cell, found: raw.edges.len() });
    }
    if let Some(concat) = raw.concat {
        if concat != CONCAT.map(|n| n as i64) {
            return Err(GenotypeError::Concat { cell, found: concat });
        }
    }
    raw.edges
        .into_iter()
        .enumerate()
        .map(|(edge, (name, input))| {
            let node = Edge::node_of(edge);
            let op = OpKind::from_name(&name).ok_or_else(|| GenotypeError::UnknownOp {
                cell,
                edge,
                op: name.clone(),
                known: OpKind::ALL.map(OpKind::name).join(", "),
            })?;
            if input < 0 || input >= node as i64 {
                return Err(GenotypeError::ForwardEdge { cell, edge, node, input });
            }
            Ok(Edge { op, input: input as usize })
        })
        .collect()
}

/// The JSON shape: the reference namedtuple's fields, edges as `[op, index]` pairs.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonGenotype {
    normal: Vec<(String, i64)>,
    #[serde(default)]
    normal_concat: Option<Vec<i64>>,
    reduce: Vec<(String, i64)>,
    #[serde(default)]
    reduce_concat: Option<Vec<i64>>,
}

impl JsonGenotype {
    fn validate(self) -> Result<Genotype, GenotypeError> {
        Genotype::from_raw(
            RawCell { edges: self.normal, concat: self.normal_concat },
            RawCell { edges: self.reduce, concat: self.reduce_concat },
        )
    }
}

impl Serialize for Genotype {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let edges = |cell: &[Edge]| cell.iter().map(|e| (e.op.name().to_owned(), e.input as i64)).collect();
        let concat = Some(CONCAT.map(|n| n as i64).to_vec());
        JsonGenotype {
            normal: edges(&self.normal),
            normal_concat: concat.clone(),
            reduce: edges(&self.reduce),
            reduce_concat: concat,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Genotype {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        JsonGenotype::deserialize(deserializer)?.validate().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Genotype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_reference())
    }
}
