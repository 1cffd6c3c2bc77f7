//! The objects a pickle builds, kept in an arena.
//!
//! Containers live in a [`Heap`] and values refer to them by index, so that pickle's shared and
//! mutated objects (a list memoized, then appended to) behave as in Python, and so that no value
//! owns another: dropping a deeply nested or cyclic structure recurses nowhere.

use std::collections::HashMap;
use std::rc::Rc;

/// Index of a [`Node`] in a [`Heap`].
pub(crate) type NodeId = usize;

/// A pickled value: a scalar, or a reference to a container on the heap.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer outside `i64`: little-endian two's complement, without redundant sign bytes.
    BigInt(Rc<[u8]>),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Node(NodeId),
}

/// A container or an object the reader keeps without running it.
#[derive(Debug)]
pub(crate) enum Node {
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Dict),
    /// `set` and `frozenset`.
    Set(Vec<Value>),
    /// A class or function named by GLOBAL, STACK_GLOBAL or an extension code.
    Global {
        module: Rc<str>,
        name: Rc<str>,
    },
    /// REDUCE, NEWOBJ, INST or OBJ of a callable the reader does not run.
    Call(Call),
    /// The object a persistent id stands for (in `torch.save` files: a storage).
    Persistent(Value),
}

/// A call kept as data: what it was called with and what was later set on it.
#[derive(Debug)]
pub(crate) struct Call {
    pub callable: Value,
    pub args: Value,
    /// The BUILD state, if any.
    pub state: Option<Value>,
    /// Items appended (APPEND, APPENDS, ADDITEMS).
    pub items: Vec<Value>,
    /// Items set (SETITEM, SETITEMS).
    pub entries: Vec<(Value, Value)>,
}

/// A dict in insertion order; setting an existing string, int or bytes key replaces its value.
#[derive(Debug, Default)]
pub(crate) struct Dict {
    entries: Vec<(Value, Value)>,
    index: HashMap<DictKey, usize>,
}

/// The hashable keys a dict looks up; other keys are only appended.
#[derive(Debug, PartialEq, Eq, Hash)]
enum DictKey {
    Str(Rc<str>),
    /// Ints and bools (`True == 1` in Python).
    Int(i64),
    Bytes(Rc<[u8]>),
    None,
}

impl DictKey {
    fn of(value: &Value) -> Option<DictKey> {
        match value {
            Value::Str(s) => Some(DictKey::Str(s.clone())),
            Value::Int(i) => Some(DictKey::Int(*i)),
            Value::Bool(b) => Some(DictKey::Int(i64::from(*b))),
            Value::Bytes(b) => Some(DictKey::Bytes(b.clone())),
            Value::None => Some(DictKey::None),
            _ => None,
        }
    }
}

impl Dict {
    pub fn insert(&mut self, key: Value, value: Value) {
        match DictKey::of(&key) {
            Some(k) => match self.index.get(&k) {
                Some(&i) => {
                    if let Some(slot) = self.entries.get_mut(i) {
                        slot.1 = value;
                    }
                }
                None => {
                    self.index.insert(k, self.entries.len());
                    self.entries.push((key, value));
                }
            },
            None => self.entries.push((key, value)),
        }
    }

    /// The value under a string key.
    pub fn get_str(&self, key: &str) -> Option<&Value> {
        let i = *self.index.get(&DictKey::Str(Rc::from(key)))?;
        self.entries.get(i).map(|(_, v)| v)
    }

    pub fn entries(&self) -> &[(Value, Value)] {
        &self.entries
    }
}

/// The arena of one checkpoint's pickles.
#[derive(Debug, Default)]
pub(crate) struct Heap {
    nodes: Vec<Node>,
}

impl Heap {
    pub fn new() -> Heap {
        Heap::default()
    }

    /// Adds a node and returns a value referring to it.
    pub fn push(&mut self, node: Node) -> Value {
        self.nodes.push(node);
        Value::Node(self.nodes.len() - 1)
    }

    /// The node a value refers to, if it refers to one.
    pub fn node(&self, value: &Value) -> Option<&Node> {
        match value {
            Value::Node(id) => self.nodes.get(*id),
            _ => None,
        }
    }

    pub fn node_mut(&mut self, value: &Value) -> Option<&mut Node> {
        match value {
            Value::Node(id) => self.nodes.get_mut(*id),
            _ => None,
        }
    }

    /// The items of a tuple or list.
    pub fn sequence(&self, value: &Value) -> Option<&[Value]> {
        match self.node(value)? {
            Node::Tuple(items) | Node::List(items) => Some(items),
            _ => None,
        }
    }

    /// `(module, name)` of a global.
    pub fn global(&self, value: &Value) -> Option<(&str, &str)> {
        match self.node(value)? {
            Node::Global { module, name } => Some((module, name)),
            _ => None,
        }
    }

    /// The entries of a dict, or of an unknown mapping object items were set on.
    pub fn mapping(&self, value: &Value) -> Option<&[(Value, Value)]> {
        match self.node(value)? {
            Node::Dict(dict) => Some(dict.entries()),
            Node::Call(call) if !call.entries.is_empty() => Some(&call.entries),
            _ => None,
        }
    }

    /// The value under a string key of a dict or mapping object.
    pub fn lookup(&self, value: &Value, key: &str) -> Option<&Value> {
        match self.node(value)? {
            Node::Dict(dict) => dict.get_str(key),
            Node::Call(call) => call.entries.iter().find(|(k, _)| text(k) == Some(key)).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A short, non-recursive description of a value for error messages.
    pub fn describe(&self, value: &Value) -> String {
        match value {
            Value::None => "None".into(),
            Value::Bool(b) => format!("bool {}", if *b { "True" } else { "False" }),
            Value::Int(i) => format!("int {i}"),
            Value::BigInt(bytes) => format!("int of {} bytes", bytes.len()),
            Value::Float(x) => format!("float {x}"),
            Value::Str(s) => {
                let short: String = s.chars().take(40).collect();
                format!("str {short:?}")
            }
            Value::Bytes(b) => format!("bytes of length {}", b.len()),
            Value::Node(_) => match self.node(value) {
                Some(Node::Tuple(items)) => format!("tuple of {}", items.len()),
                Some(Node::List(items)) => format!("list of {}", items.len()),
                Some(Node::Dict(dict)) => format!("dict of {}", dict.entries().len()),
                Some(Node::Set(items)) => format!("set of {}", items.len()),
                Some(Node::Global { module, name }) => format!("global {module}.{name}"),
                Some(Node::Call(call)) => match self.global(&call.callable) {
                    Some((module, name)) => format!("{module}.{name}(...)"),
                    None => "object".into(),
                },
                Some(Node::Persistent(_)) => "persistent object".into(),
                None => "dangling reference".into(),
            },
        }
    }
}

/// The text of a string, or of bytes that are UTF-8 (keys of pickles written by Python 2).
pub(crate) fn text(value: &Value) -> Option<&str> {
    match value {
        Value::Str(s) => Some(s),
        Value::Bytes(b) => std::str::from_utf8(b).ok(),
        _ => None,
    }
}

/// An integer value, bools included (Python's `bool` is an `int`).
pub(crate) fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(i) => Some(*i),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}
