//! A small builder for ONNX graphs: unique value and node names, float and int64 initializers,
//! nodes with their attributes, and the typed graph inputs, outputs and value infos.
//!
//! Values (graph inputs, initializers, node outputs) share one namespace, as ONNX requires;
//! node names have their own. A requested name is used as is when it is free; otherwise a
//! numeric suffix makes it unique, so the builder never produces a graph with duplicates.

use std::collections::HashSet;

use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::tensor_shape_proto::{dimension, Dimension};
use onnx_protobuf::{
    type_proto, AttributeProto, GraphProto, NodeProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};
use protobuf::{EnumOrUnknown, MessageField};

use super::error::OnnxError;

/// One dimension of a graph input, output or value info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Dim {
    /// A fixed size.
    Fixed(usize),
    /// A symbolic size, e.g. the batch.
    Symbolic(&'static str),
}

/// An ONNX graph under construction.
#[derive(Debug, Default)]
pub(crate) struct GraphBuilder {
    values: HashSet<String>,
    node_names: HashSet<String>,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    value_infos: Vec<ValueInfoProto>,
}

/// `base` if `taken` does not hold it, else the first free `base_2`, `base_3`, ...; the name is
/// then recorded as taken.
fn fresh(taken: &mut HashSet<String>, base: &str) -> String {
    let mut name = base.to_owned();
    let mut n = 2usize;
    while taken.contains(&name) {
        name = format!("{base}_{n}");
        n += 1;
    }
    taken.insert(name.clone());
    name
}

/// Elements of a tensor of `dims`, if that fits in `usize`.
fn numel(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

impl GraphBuilder {
    /// A value name not used before, based on `base`.
    pub(crate) fn unique(&mut self, base: &str) -> String {
        fresh(&mut self.values, base)
    }

    /// Declares a float graph input of shape `dims`, under exactly `name`.
    pub(crate) fn input(&mut self, name: &str, dims: &[Dim], doc: &str) -> Result<String, OnnxError> {
        if !self.values.insert(name.to_owned()) {
            return Err(OnnxError::DuplicateName { name: name.to_owned() });
        }
        self.inputs.push(value_info(name, dims, doc));
        Ok(name.to_owned())
    }

    /// Declares the existing value `name` a float graph output of shape `dims`.
    pub(crate) fn output(&mut self, name: &str, dims: &[Dim], doc: &str) {
        self.outputs.push(value_info(name, dims, doc));
    }

    /// Records the shape of the intermediate value `name` (shown by viewers, checked by shape
    /// inference).
    pub(crate) fn value_info(&mut self, name: &str, dims: &[Dim]) {
        self.value_infos.push(value_info(name, dims, ""));
    }

    /// Adds a float initializer of shape `dims` (row-major `values`) under a name based on
    /// `name`; returns the name. Fails if `values` does not fill `dims`.
    pub(crate) fn float_initializer(
        &mut self,
        name: &str,
        dims: &[usize],
        values: &[f32],
        doc: &str,
    ) -> Result<String, OnnxError> {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer(name, dims, values.len(), DataType::FLOAT, raw, doc)
    }

    /// Adds an int64 initializer, as [`float_initializer`](Self::float_initializer).
    pub(crate) fn int64_initializer(
        &mut self,
        name: &str,
        dims: &[usize],
        values: &[i64],
        doc: &str,
    ) -> Result<String, OnnxError> {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer(name, dims, values.len(), DataType::INT64, raw, doc)
    }

    fn initializer(
        &mut self,
        name: &str,
        dims: &[usize],
        len: usize,
        data_type: DataType,
        raw_data: Vec<u8>,
        doc: &str,
    ) -> Result<String, OnnxError> {
        if numel(dims) != Some(len) {
            return Err(OnnxError::BadTensor {
                layer: name.to_owned(),
                tensor: name.to_owned(),
                problem: format!("{len} values for an initializer of shape {dims:?}"),
            });
        }
        let name = self.unique(name);
        let mut tensor = tensor(dims, data_type, raw_data);
        tensor.name = name.clone();
        tensor.doc_string = doc.to_owned();
        self.initializers.push(tensor);
        Ok(name)
    }

    /// Starts a node `op_type` named after `name`, reading `inputs`.
    pub(crate) fn node(&mut self, op_type: &str, name: &str, inputs: &[&str]) -> NodeBuilder<'_> {
        let node = NodeProto {
            op_type: op_type.to_owned(),
            name: name.to_owned(),
            input: inputs.iter().map(|&i| i.to_owned()).collect(),
            ..NodeProto::default()
        };
        NodeBuilder { graph: self, node }
    }

    /// Renames the single output of the most recent node to a name based on `name`, so that a
    /// layer's last node outputs the layer's name; returns the new name. Nothing may have read
    /// the old name yet (it is the newest value).
    pub(crate) fn rename_last_output(&mut self, name: &str) -> Option<String> {
        let old = self.nodes.last()?.output.first()?.clone();
        if old == name {
            return Some(old);
        }
        let new = self.unique(name);
        self.values.remove(&old);
        let node = self.nodes.last_mut()?;
        node.output[0] = new.clone();
        Some(new)
    }

    /// The finished graph.
    pub(crate) fn finish(self, name: &str, doc: &str) -> GraphProto {
        GraphProto {
            name: name.to_owned(),
            doc_string: doc.to_owned(),
            node: self.nodes,
            initializer: self.initializers,
            input: self.inputs,
            output: self.outputs,
            value_info: self.value_infos,
            ..GraphProto::default()
        }
    }
}

/// A node being added: attributes and a doc string, then [`finish`](Self::finish).
#[derive(Debug)]
pub(crate) struct NodeBuilder<'g> {
    graph: &'g mut GraphBuilder,
    node: NodeProto,
}

impl NodeBuilder<'_> {
    /// Adds an attribute.
    pub(crate) fn attr(mut self, attribute: AttributeProto) -> Self {
        self.node.attribute.push(attribute);
        self
    }

    /// Sets the node's doc string.
    pub(crate) fn doc(mut self, doc: impl Into<String>) -> Self {
        self.node.doc_string = doc.into();
        self
    }

    /// Adds the node with one output named like the node (both made unique); returns the output.
    pub(crate) fn finish(self) -> String {
        let NodeBuilder { graph, mut node } = self;
        node.name = fresh(&mut graph.node_names, &node.name);
        let output = graph.unique(&node.name);
        node.output = vec![output.clone()];
        graph.nodes.push(node);
        output
    }
}

/// An empty attribute of `kind`.
fn attribute(name: &str, kind: AttributeType) -> AttributeProto {
    AttributeProto { name: name.to_owned(), type_: EnumOrUnknown::new(kind), ..AttributeProto::default() }
}

/// An integer attribute.
pub(crate) fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto { i: value, ..attribute(name, AttributeType::INT) }
}

/// An integer-list attribute.
pub(crate) fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto { ints: values.to_vec(), ..attribute(name, AttributeType::INTS) }
}

/// A float attribute.
pub(crate) fn float(name: &str, value: f32) -> AttributeProto {
    AttributeProto { f: value, ..attribute(name, AttributeType::FLOAT) }
}

/// A tensor attribute holding float `values` of shape `dims`.
pub(crate) fn float_tensor(name: &str, dims: &[usize], values: &[f32]) -> AttributeProto {
    let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    AttributeProto {
        t: MessageField::some(tensor(dims, DataType::FLOAT, raw)),
        ..attribute(name, AttributeType::TENSOR)
    }
}

fn tensor(dims: &[usize], data_type: DataType, raw_data: Vec<u8>) -> TensorProto {
    TensorProto {
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: data_type as i32,
        raw_data,
        ..TensorProto::default()
    }
}

/// A float tensor's name, shape and doc string.
fn value_info(name: &str, dims: &[Dim], doc: &str) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Fixed(n) => dimension::Value::DimValue(*n as i64),
                Dim::Symbolic(s) => dimension::Value::DimParam((*s).to_owned()),
            }),
            ..Dimension::default()
        })
        .collect();
    let tensor = type_proto::Tensor {
        elem_type: DataType::FLOAT as i32,
        shape: MessageField::some(TensorShapeProto { dim, ..TensorShapeProto::default() }),
        ..type_proto::Tensor::default()
    };
    ValueInfoProto {
        name: name.to_owned(),
        type_: MessageField::some(TypeProto {
            value: Some(type_proto::Value::TensorType(tensor)),
            ..TypeProto::default()
        }),
        doc_string: doc.to_owned(),
        ..ValueInfoProto::default()
    }
}
