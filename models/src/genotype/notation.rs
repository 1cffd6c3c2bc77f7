//! The reference's textual genotype notation, as Python prints its `Genotype` namedtuple:
//! `Genotype(normal=[('bin_conv_3x3', 1), ...], normal_concat=range(2, 6), reduce=[...],
//! reduce_concat=range(2, 6))`. Concats may also be lists (`[2, 3, 4, 5]`), strings may use
//! either quote, and fields may come in any order.

use super::{Genotype, RawCell, CONCAT};
use crate::error::GenotypeError;

/// Parses the notation; text before the first `Genotype(` is ignored (a log prefix).
pub(super) fn parse(text: &str) -> Result<Genotype, GenotypeError> {
    let start = text.find("Genotype(").unwrap_or(0);
    let mut parser = Parser { text, pos: start };
    parser.expect_word("Genotype")?;
    parser.expect('(')?;
    let (mut normal, mut normal_concat, mut reduce, mut reduce_concat) = (None, None, None, None);
    loop {
        if parser.eat(')') {
            break;
        }
        let field_at = parser.pos;
        let field = parser.word()?;
        parser.expect('=')?;
        let slot_taken = match field.as_str() {
            "normal" => normal.replace(parser.edges()?).is_some(),
            "reduce" => reduce.replace(parser.edges()?).is_some(),
            "normal_concat" => normal_concat.replace(parser.concat()?).is_some(),
            "reduce_concat" => reduce_concat.replace(parser.concat()?).is_some(),
            _ => {
                parser.pos = field_at;
                return Err(parser.error("normal, normal_concat, reduce or reduce_concat"));
            }
        };
        if slot_taken {
            parser.pos = field_at;
            return Err(parser.error(&format!("each field once, but '{field}' repeats")));
        }
        if !parser.eat(',') {
            parser.expect(')')?;
            break;
        }
    }
    let missing = |name: &str| parser.error(&format!("a '{name}' field before the closing ')'"));
    Genotype::from_raw(
        RawCell { edges: normal.ok_or_else(|| missing("normal"))?, concat: normal_concat },
        RawCell { edges: reduce.ok_or_else(|| missing("reduce"))?, concat: reduce_concat },
    )
}

/// Formats a genotype exactly as the reference prints one.
pub(super) fn format(genotype: &Genotype) -> String {
    let edges = |cell: &[super::Edge]| {
        cell.iter().map(|e| format!("('{}', {})", e.op.name(), e.input)).collect::<Vec<_>>().join(", ")
    };
    let range = format!("range({}, {})", CONCAT[0], CONCAT[CONCAT.len() - 1] + 1);
    format!(
        "Genotype(normal=[{}], normal_concat={range}, reduce=[{}], reduce_concat={range})",
        edges(&genotype.normal),
        edges(&genotype.reduce)
    )
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        self.text.get(self.pos..).unwrap_or("")
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn error(&self, expected: &str) -> GenotypeError {
        let before = self.text.get(..self.pos).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        let found = match self.rest().chars().next() {
            None => "end of input".to_owned(),
            Some(_) => format!("'{}'", self.rest().chars().take(12).collect::<String>()),
        };
        GenotypeError::Notation { line, column, expected: expected.to_owned(), found }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_space();
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), GenotypeError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(&format!("'{c}'")))
        }
    }

    fn word(&mut self) -> Result<String, GenotypeError> {
        self.skip_space();
        let len =
            self.rest().find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(self.rest().len());
        if len == 0 {
            return Err(self.error("a name"));
        }
        let word = self.rest()[..len].to_owned();
        self.pos += len;
        Ok(word)
    }

    fn expect_word(&mut self, word: &str) -> Result<(), GenotypeError> {
        let at = self.pos;
        if self.word().ok().as_deref() == Some(word) {
            Ok(())
        } else {
            self.pos = at;
            Err(self.error(&format!("'{word}'")))
        }
    }

    fn integer(&mut self) -> Result<i64, GenotypeError> {
        self.skip_space();
        let rest = self.rest();
        let sign = usize::from(rest.starts_with('-'));
        let digits = rest[sign..].find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len() - sign);
        match rest[..sign + digits].parse() {
            Ok(value) if digits > 0 => {
                self.pos += sign + digits;
                Ok(value)
            }
            _ => Err(self.error("an integer")),
        }
    }

    fn string(&mut self) -> Result<String, GenotypeError> {
        self.skip_space();
        let Some(quote) = self.rest().chars().next().filter(|c| *c == '\'' || *c == '"') else {
            return Err(self.error("a quoted op name"));
        };
        let body = &self.rest()[1..];
        let Some(end) = body.find(quote) else {
            return Err(self.error("a closing quote"));
        };
        let value = body[..end].to_owned();
        self.pos += end + 2;
        Ok(value)
    }

    /// `[('op', 1), ...]`; edges may also be written as lists `['op', 1]`.
    fn edges(&mut self) -> Result<Vec<(String, i64)>, GenotypeError> {
        self.expect('[')?;
        let mut edges = Vec::new();
        while !self.eat(']') {
            let close = if self.eat('(') {
                ')'
            } else if self.eat('[') {
                ']'
            } else {
                return Err(self.error("an edge like ('bin_conv_3x3', 1)"));
            };
            let op = self.string()?;
            self.expect(',')?;
            let input = self.integer()?;
            self.expect(close)?;
            edges.push((op, input));
            if !self.eat(',') {
                self.expect(']')?;
                break;
            }
        }
        Ok(edges)
    }

    /// `range(a, b)` or `[a, b, ...]`.
    fn concat(&mut self) -> Result<Vec<i64>, GenotypeError> {
        self.skip_space();
        if self.rest().starts_with("range") {
            self.expect_word("range")?;
            self.expect('(')?;
            let start = self.integer()?;
            self.expect(',')?;
            let end = self.integer()?;
            self.expect(')')?;
            // A concat longer than any cell is already wrong; don't materialize a huge range.
            return Ok((start..end).take(2 * CONCAT.len()).collect());
        }
        self.expect('[')?;
        let mut values = Vec::new();
        while !self.eat(']') {
            values.push(self.integer()?);
            if !self.eat(',') {
                self.expect(']')?;
                break;
            }
        }
        Ok(values)
    }
}
