//! A pickle virtual machine that builds data and runs no code.
//!
//! It reads protocols 0 to 5 (every opcode but the out-of-band buffers of protocol 5). Globals
//! are kept as names, and REDUCE, NEWOBJ, INST, OBJ and BUILD as [`Call`] nodes holding their
//! arguments, so unknown classes (optimizer state, argparse namespaces, numpy scalars) load as
//! inert data; the torch layer interprets only the calls it knows. Dict classes
//! (`collections.OrderedDict`, `builtins.dict`, `collections.defaultdict`) become dicts.
//! Persistent ids become [`Node::Persistent`] and are also listed in [`Unpickled`], because a
//! legacy checkpoint needs them before its storages can be located.
//!
//! Every read is bounds-checked against the input, and every object costs at least one opcode
//! byte, so memory grows at most linearly with the input. Nothing recurses.

mod input;
mod operands;

use super::error::{Stream, TorchError};
use super::value::{Call, Dict, Heap, Node, Value};
use input::{Input, Memo};
pub(crate) use operands::int_from_le;
use operands::{byte_string, decimal_to_le, escape_decode, lossy, raw_unicode_escape_decode, unicode};

/// The highest pickle protocol read.
const HIGHEST_PROTOCOL: u8 = 5;
/// The longest decimal text integer converted (protocol 0 `INT` and `LONG` beyond `i64`).
const MAX_DECIMAL_DIGITS: usize = 4096;
/// Memo keys below this live in a vector (picklers number them densely from 0), the rest in a
/// map. The vector also stays shorter than the pickle, so one large key cannot cost much.
const DENSE_MEMO_KEYS: usize = 1 << 16;

/// One pickle run to its STOP opcode.
#[derive(Debug)]
pub(crate) struct Unpickled {
    /// The object.
    pub value: Value,
    /// Offset just past the STOP opcode.
    pub end: usize,
    /// Every persistent id, in the order the pickle loaded them.
    pub persistent_ids: Vec<Value>,
}

/// Runs the pickle that starts at `start` in `data`; its objects go to `heap`.
pub(crate) fn unpickle(
    data: &[u8],
    start: usize,
    stream: Stream,
    heap: &mut Heap,
) -> Result<Unpickled, TorchError> {
    let mut machine = Machine {
        input: Input { data, pos: start, stream },
        heap,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: Memo::new(data.len().saturating_sub(start).min(DENSE_MEMO_KEYS)),
        persistent_ids: Vec::new(),
        opcode: 0,
        op_offset: start,
    };
    machine.run()
}

struct Machine<'a, 'h> {
    input: Input<'a>,
    heap: &'h mut Heap,
    stack: Vec<Value>,
    /// Stack lengths at each MARK. Python keeps a stack of stacks; popping below the last mark
    /// is an underflow there, and here too.
    marks: Vec<usize>,
    memo: Memo,
    persistent_ids: Vec<Value>,
    opcode: u8,
    op_offset: usize,
}

impl Machine<'_, '_> {
    fn malformed(&self, what: impl Into<String>) -> TorchError {
        TorchError::MalformedPickle {
            what: what.into(),
            opcode: self.opcode,
            stream: self.input.stream,
            offset: self.op_offset as u64,
        }
    }

    fn unsupported(&self, what: &'static str) -> TorchError {
        TorchError::UnsupportedPickle { what, stream: self.input.stream, offset: self.op_offset as u64 }
    }

    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn push(&mut self, value: Value) {
        self.stack.push(value);
    }

    fn push_node(&mut self, node: Node) {
        let value = self.heap.push(node);
        self.stack.push(value);
    }

    fn pop(&mut self) -> Result<Value, TorchError> {
        if self.stack.len() <= self.floor() {
            return Err(self.malformed("stack underflow"));
        }
        self.stack.pop().ok_or_else(|| self.malformed("stack underflow"))
    }

    fn top(&self) -> Result<Value, TorchError> {
        if self.stack.len() <= self.floor() {
            return Err(self.malformed("stack underflow"));
        }
        self.stack.last().cloned().ok_or_else(|| self.malformed("stack underflow"))
    }

    /// The items pushed since the last MARK, which is dropped.
    fn pop_mark(&mut self) -> Result<Vec<Value>, TorchError> {
        let mark = self.marks.pop().ok_or_else(|| self.malformed("no MARK on the stack"))?;
        if mark > self.stack.len() {
            return Err(self.malformed("MARK above the stack"));
        }
        Ok(self.stack.split_off(mark))
    }

    fn memo_get(&mut self, key: u64) -> Result<(), TorchError> {
        let value = self
            .memo
            .get(key)
            .cloned()
            .ok_or_else(|| self.malformed(format!("memo key {key} was never stored")))?;
        self.push(value);
        Ok(())
    }

    fn memo_put(&mut self, key: u64) -> Result<(), TorchError> {
        let value = self.top()?;
        self.memo.insert(key, value);
        Ok(())
    }

    fn text_memo_key(&mut self) -> Result<u64, TorchError> {
        let line = self.input.line("memo key")?;
        std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| self.malformed("memo key is not a non-negative integer"))
    }

    fn run(&mut self) -> Result<Unpickled, TorchError> {
        loop {
            self.op_offset = self.input.pos;
            self.opcode = self.input.u8("opcode")?;
            match self.opcode {
                b'.' => {
                    let value = self.pop()?;
                    return Ok(Unpickled {
                        value,
                        end: self.input.pos,
                        persistent_ids: std::mem::take(&mut self.persistent_ids),
                    });
                }
                0x80 => {
                    let protocol = self.input.u8("PROTO operand")?;
                    if protocol > HIGHEST_PROTOCOL {
                        return Err(self.unsupported("pickle protocol above 5"));
                    }
                }
                0x95 => {
                    // FRAME: a hint for buffered readers; the opcodes inside are read as usual.
                    let len = self.input.u64("FRAME length")?;
                    if len > self.input.remaining() as u64 {
                        return Err(self.input.truncated("frame", len));
                    }
                }
                _ => self.step()?,
            }
        }
    }

    /// Runs one opcode other than STOP, PROTO and FRAME.
    fn step(&mut self) -> Result<(), TorchError> {
        match self.opcode {
            // Stack and memo.
            b'(' => self.marks.push(self.stack.len()),
            b'0' => {
                if self.stack.len() > self.floor() {
                    self.pop()?;
                } else {
                    self.pop_mark()?;
                }
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let top = self.top()?;
                self.push(top);
            }
            b'g' => {
                let key = self.text_memo_key()?;
                self.memo_get(key)?;
            }
            b'h' => {
                let key = self.input.u8("BINGET operand")?;
                self.memo_get(u64::from(key))?;
            }
            b'j' => {
                let key = self.input.u32("LONG_BINGET operand")?;
                self.memo_get(u64::from(key))?;
            }
            b'p' => {
                let key = self.text_memo_key()?;
                self.memo_put(key)?;
            }
            b'q' => {
                let key = self.input.u8("BINPUT operand")?;
                self.memo_put(u64::from(key))?;
            }
            b'r' => {
                let key = self.input.u32("LONG_BINPUT operand")?;
                self.memo_put(u64::from(key))?;
            }
            0x94 => {
                let key = self.memo.len;
                self.memo_put(key)?;
            }

            // Scalars.
            b'N' => self.push(Value::None),
            0x88 => self.push(Value::Bool(true)),
            0x89 => self.push(Value::Bool(false)),
            b'J' => {
                let v = self.input.i32("BININT operand")?;
                self.push(Value::Int(i64::from(v)));
            }
            b'K' => {
                let v = self.input.u8("BININT1 operand")?;
                self.push(Value::Int(i64::from(v)));
            }
            b'M' => {
                let v = self.input.u16("BININT2 operand")?;
                self.push(Value::Int(i64::from(v)));
            }
            b'I' => {
                let line = self.input.line("INT operand")?;
                let value = match line {
                    b"00" => Value::Bool(false),
                    b"01" => Value::Bool(true),
                    _ => self.decimal(line)?,
                };
                self.push(value);
            }
            b'L' => {
                let line = self.input.line("LONG operand")?;
                let digits = line.strip_suffix(b"L").unwrap_or(line);
                let value = self.decimal(digits)?;
                self.push(value);
            }
            0x8a => {
                let n = self.input.u8("LONG1 length")?;
                let bytes = self.input.take(usize::from(n), "LONG1 operand")?;
                self.push(int_from_le(bytes));
            }
            0x8b => {
                let n = self.input.i32("LONG4 length")?;
                let n = u64::try_from(n).map_err(|_| self.malformed("negative LONG4 length"))?;
                let bytes = self.input.take_u64(n, "LONG4 operand")?;
                self.push(int_from_le(bytes));
            }
            b'F' => {
                let line = self.input.line("FLOAT operand")?;
                let value = std::str::from_utf8(line)
                    .ok()
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .ok_or_else(|| self.malformed("FLOAT operand is not a number"))?;
                self.push(Value::Float(value));
            }
            b'G' => {
                let bytes = self.input.array("BINFLOAT operand")?;
                self.push(Value::Float(f64::from_be_bytes(bytes)));
            }

            // Strings and bytes.
            b'S' => {
                let line = self.input.line("STRING operand")?;
                let quoted = match line {
                    [q @ (b'\'' | b'"'), inner @ .., last] if last == q => inner,
                    _ => return Err(self.malformed("STRING operand is not quoted")),
                };
                let bytes = escape_decode(quoted);
                self.push(byte_string(&bytes));
            }
            b'T' => {
                let n = self.input.i32("BINSTRING length")?;
                let n = u64::try_from(n).map_err(|_| self.malformed("negative BINSTRING length"))?;
                let bytes = self.input.take_u64(n, "BINSTRING operand")?;
                self.push(byte_string(bytes));
            }
            b'U' => {
                let n = self.input.u8("SHORT_BINSTRING length")?;
                let bytes = self.input.take(usize::from(n), "SHORT_BINSTRING operand")?;
                self.push(byte_string(bytes));
            }
            b'V' => {
                let line = self.input.line("UNICODE operand")?;
                self.push(Value::Str(raw_unicode_escape_decode(line).into()));
            }
            b'X' => {
                let n = self.input.u32("BINUNICODE length")?;
                let bytes = self.input.take_u64(u64::from(n), "BINUNICODE operand")?;
                self.push(unicode(bytes));
            }
            0x8c => {
                let n = self.input.u8("SHORT_BINUNICODE length")?;
                let bytes = self.input.take(usize::from(n), "SHORT_BINUNICODE operand")?;
                self.push(unicode(bytes));
            }
            0x8d => {
                let n = self.input.u64("BINUNICODE8 length")?;
                let bytes = self.input.take_u64(n, "BINUNICODE8 operand")?;
                self.push(unicode(bytes));
            }
            b'B' => {
                let n = self.input.u32("BINBYTES length")?;
                let bytes = self.input.take_u64(u64::from(n), "BINBYTES operand")?;
                self.push(Value::Bytes(bytes.into()));
            }
            b'C' => {
                let n = self.input.u8("SHORT_BINBYTES length")?;
                let bytes = self.input.take(usize::from(n), "SHORT_BINBYTES operand")?;
                self.push(Value::Bytes(bytes.into()));
            }
            0x8e | 0x96 => {
                let n = self.input.u64("BINBYTES8 length")?;
                let bytes = self.input.take_u64(n, "BINBYTES8 operand")?;
                self.push(Value::Bytes(bytes.into()));
            }
            0x97 => return Err(self.unsupported("out-of-band buffer (NEXT_BUFFER)")),
            0x98 => {
                // READONLY_BUFFER only marks the buffer on top read-only.
                self.top()?;
            }

            // Containers.
            b')' => self.push_node(Node::Tuple(Vec::new())),
            b']' => self.push_node(Node::List(Vec::new())),
            b'}' => self.push_node(Node::Dict(Dict::default())),
            0x8f => self.push_node(Node::Set(Vec::new())),
            b't' => {
                let items = self.pop_mark()?;
                self.push_node(Node::Tuple(items));
            }
            0x85..=0x87 => {
                let n = usize::from(self.opcode - 0x84);
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.pop()?);
                }
                items.reverse();
                self.push_node(Node::Tuple(items));
            }
            b'l' => {
                let items = self.pop_mark()?;
                self.push_node(Node::List(items));
            }
            b'd' => {
                let items = self.pop_mark()?;
                let mut dict = Dict::default();
                for (key, value) in self.pairs(items)? {
                    dict.insert(key, value);
                }
                self.push_node(Node::Dict(dict));
            }
            0x91 => {
                let items = self.pop_mark()?;
                self.push_node(Node::Set(items));
            }
            b'a' => {
                let item = self.pop()?;
                self.append(vec![item])?;
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.append(items)?;
            }
            0x90 => {
                let items = self.pop_mark()?;
                let target = self.top()?;
                match self.heap.node_mut(&target) {
                    Some(Node::Set(set)) => set.extend(items),
                    Some(Node::Call(call)) => call.items.extend(items),
                    _ => return Err(self.malformed("ADDITEMS to an object that is not a set")),
                }
            }
            b's' => {
                let value = self.pop()?;
                let key = self.pop()?;
                self.set_items(vec![(key, value)])?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                let pairs = self.pairs(items)?;
                self.set_items(pairs)?;
            }

            // Classes, calls and persistent ids.
            b'c' => {
                let module = self.input.line("GLOBAL module")?;
                let name = self.input.line("GLOBAL name")?;
                let global = self.global(&lossy(module), &lossy(name));
                self.push(global);
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (&module, &name) {
                    (Value::Str(module), Value::Str(name)) => {
                        let global = self.global(module, name);
                        self.push(global);
                    }
                    _ => return Err(self.malformed("STACK_GLOBAL operands are not strings")),
                }
            }
            0x82 => {
                let code = self.input.u8("EXT1 operand")?;
                self.extension(i64::from(code));
            }
            0x83 => {
                let code = self.input.u16("EXT2 operand")?;
                self.extension(i64::from(code));
            }
            0x84 => {
                let code = self.input.i32("EXT4 operand")?;
                self.extension(i64::from(code));
            }
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?;
                self.call(callable, args);
            }
            0x81 => {
                let args = self.pop()?;
                let class = self.pop()?;
                self.call(class, args);
            }
            0x92 => {
                // NEWOBJ_EX: keyword arguments are dropped; no class the reader knows takes any.
                let _kwargs = self.pop()?;
                let args = self.pop()?;
                let class = self.pop()?;
                self.call(class, args);
            }
            b'i' => {
                let module = self.input.line("INST module")?;
                let name = self.input.line("INST name")?;
                let class = self.global(&lossy(module), &lossy(name));
                let args = self.pop_mark()?;
                let args = self.heap.push(Node::Tuple(args));
                self.call(class, args);
            }
            b'o' => {
                let mut items = self.pop_mark()?.into_iter();
                let class = items.next().ok_or_else(|| self.malformed("OBJ without a class"))?;
                let args = self.heap.push(Node::Tuple(items.collect()));
                self.call(class, args);
            }
            b'b' => {
                let state = self.pop()?;
                let target = self.top()?;
                // A dict's state (an OrderedDict's `_metadata`) and the state of scalars are
                // dropped; objects keep theirs.
                if let Some(Node::Call(call)) = self.heap.node_mut(&target) {
                    call.state = Some(state);
                }
            }
            b'Q' => {
                let pid = self.pop()?;
                self.persistent(pid);
            }
            b'P' => {
                let line = self.input.line("PERSID operand")?;
                self.persistent(Value::Str(lossy(line).into()));
            }
            opcode => {
                return Err(TorchError::UnknownOpcode {
                    opcode,
                    stream: self.input.stream,
                    offset: self.op_offset as u64,
                })
            }
        }
        Ok(())
    }

    /// Key-value pairs from the items of a DICT or SETITEMS.
    fn pairs(&self, items: Vec<Value>) -> Result<Vec<(Value, Value)>, TorchError> {
        if !items.len().is_multiple_of(2) {
            return Err(self.malformed("odd number of items for a dict"));
        }
        let mut pairs = Vec::with_capacity(items.len() / 2);
        let mut items = items.into_iter();
        while let (Some(key), Some(value)) = (items.next(), items.next()) {
            pairs.push((key, value));
        }
        Ok(pairs)
    }

    fn append(&mut self, items: Vec<Value>) -> Result<(), TorchError> {
        let target = self.top()?;
        match self.heap.node_mut(&target) {
            Some(Node::List(list)) => list.extend(items),
            Some(Node::Call(call)) => call.items.extend(items),
            _ => return Err(self.malformed("APPEND to an object that is not a list")),
        }
        Ok(())
    }

    fn set_items(&mut self, pairs: Vec<(Value, Value)>) -> Result<(), TorchError> {
        let target = self.top()?;
        match self.heap.node_mut(&target) {
            Some(Node::Dict(dict)) => {
                for (key, value) in pairs {
                    dict.insert(key, value);
                }
            }
            Some(Node::Call(call)) => call.entries.extend(pairs),
            _ => return Err(self.malformed("SETITEM on an object that is not a dict")),
        }
        Ok(())
    }

    fn global(&mut self, module: &str, name: &str) -> Value {
        // Python 2 names, as Python 3's unpickler maps them (fix_imports).
        let module = match module {
            "__builtin__" => "builtins",
            "copy_reg" => "copyreg",
            other => other,
        };
        self.heap.push(Node::Global { module: module.into(), name: name.into() })
    }

    fn extension(&mut self, code: i64) {
        let global = self.global("copyreg._extension_registry", &code.to_string());
        self.push(global);
    }

    fn persistent(&mut self, pid: Value) {
        self.persistent_ids.push(pid.clone());
        self.push_node(Node::Persistent(pid));
    }

    /// REDUCE and the other calls: dict classes become dicts, `_codecs.encode(s, 'latin1')`
    /// (how protocol 2 pickles `bytes`) becomes bytes, and the rest is kept as a call.
    fn call(&mut self, callable: Value, args: Value) {
        enum Known {
            Dict,
            Encode,
        }
        let known = match self.heap.global(&callable) {
            Some(("collections", "OrderedDict") | ("builtins", "dict") | ("collections", "defaultdict")) => {
                Some(Known::Dict)
            }
            Some(("_codecs", "encode")) => Some(Known::Encode),
            _ => None,
        };
        match known {
            Some(Known::Dict) => {
                // `OrderedDict([(k, v), ...])` (and `[[k, v], ...]` from old protocols): the
                // pairs fill the dict. A defaultdict's factory is dropped.
                let pairs: Vec<(Value, Value)> = self
                    .heap
                    .sequence(&args)
                    .and_then(|args| args.first())
                    .and_then(|first| self.heap.sequence(first))
                    .map(|pairs| {
                        pairs
                            .iter()
                            .filter_map(|pair| match self.heap.sequence(pair) {
                                Some([key, value]) => Some((key.clone(), value.clone())),
                                _ => None,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let mut dict = Dict::default();
                for (key, value) in pairs {
                    dict.insert(key, value);
                }
                self.push_node(Node::Dict(dict));
            }
            Some(Known::Encode) => {
                let bytes = match self.heap.sequence(&args) {
                    Some([Value::Str(text), Value::Str(encoding)])
                        if matches!(&**encoding, "latin1" | "latin-1") =>
                    {
                        text.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect::<Option<Vec<u8>>>()
                    }
                    _ => None,
                };
                match bytes {
                    Some(bytes) => self.push(Value::Bytes(bytes.into())),
                    None => self.push_call(callable, args),
                }
            }
            None => self.push_call(callable, args),
        }
    }

    fn push_call(&mut self, callable: Value, args: Value) {
        self.push_node(Node::Call(Call {
            callable,
            args,
            state: None,
            items: Vec::new(),
            entries: Vec::new(),
        }));
    }

    /// A protocol 0 decimal integer, `i64` or big.
    fn decimal(&self, text: &[u8]) -> Result<Value, TorchError> {
        let text =
            std::str::from_utf8(text).map_err(|_| self.malformed("integer operand is not ASCII"))?.trim();
        if let Ok(v) = text.parse::<i64>() {
            return Ok(Value::Int(v));
        }
        let (negative, digits) = match text.as_bytes() {
            [b'-', rest @ ..] => (true, rest),
            [b'+', rest @ ..] => (false, rest),
            rest => (false, rest),
        };
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(self.malformed("integer operand is not a decimal number"));
        }
        if digits.len() > MAX_DECIMAL_DIGITS {
            return Err(TorchError::TooLarge {
                what: "decimal integer (digits)",
                size: digits.len() as u64,
                limit: MAX_DECIMAL_DIGITS as u64,
            });
        }
        Ok(int_from_le(&decimal_to_le(digits, negative)))
    }
}

#[cfg(test)]
mod tests;
