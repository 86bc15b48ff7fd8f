//! Exact simplifications of an encoder's ONNX graph, applied in memory before ONNX Runtime
//! loads it (the file on disk is never changed).
//!
//! The one simplification today: PyTorch's exporter guards every attention softmax with
//! `Where(IsNaN(p), 0, p)`, which replaces the NaN rows that a softmax over an entirely masked
//! row of scores produces. Over a key-padding mask such a row exists only for a text with no
//! real token, and the encoder never feeds one (every tokenizer it loads adds special tokens, and
//! [`crate::dense::Encoder`] checks each batch). Without NaN, `Where(IsNaN(p), z, p)` is `p`
//! element for element, so dropping the guard changes no output bit, while ONNX Runtime spends
//! about a quarter of MiniLM's encoding time on these two element-wise passes over every
//! `[batch, heads, len, len]` probability tensor (profiled; results/reference/speed).
use std::collections::{HashMap, HashSet};

use onnx_protobuf::{attribute_proto::AttributeType, Message, ModelProto};

use crate::error::{Result, RetrievalError};

/// What [`drop_softmax_nan_guards`] did (recorded in a dense run's metadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct GraphEdits {
    /// `Where(IsNaN(softmax), z, softmax)` guards removed.
    pub softmax_nan_guards_dropped: usize,
}

/// Removes every `Where(IsNaN(p), z, p)` whose `p` is a `Softmax` output and whose `z` is a
/// one-element constant without extra dimensions, rewiring the guard's consumers to `p`.
/// Returns the model's bytes as given (and zero edits) when there is none, or when the graph
/// has subgraphs (whose outer-scope references this pass does not follow).
pub fn drop_softmax_nan_guards(model_bytes: Vec<u8>) -> Result<(Vec<u8>, GraphEdits)> {
    let mut model = ModelProto::parse_from_bytes(&model_bytes)
        .map_err(|e| RetrievalError::Invalid(format!("cannot parse the ONNX model: {e}")))?;
    let unchanged = || Ok((model_bytes, GraphEdits::default()));
    let Some(graph) = model.graph.as_mut() else { return unchanged() };
    let has_subgraphs = graph.node.iter().flat_map(|n| &n.attribute).any(|a| {
        matches!(a.type_.enum_value(), Ok(AttributeType::GRAPH) | Ok(AttributeType::GRAPHS)) || a.g.is_some() || !a.graphs.is_empty()
    });
    if has_subgraphs {
        return unchanged();
    }
    let producer: HashMap<&str, usize> =
        graph.node.iter().enumerate().flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i))).collect();
    let mut consumers: HashMap<&str, usize> = HashMap::new();
    for input in graph.node.iter().flat_map(|n| &n.input) {
        *consumers.entry(input.as_str()).or_default() += 1;
    }
    let graph_outputs: HashSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    // One-element constants with at most one dimension: broadcasting them adds no dimension.
    let scalar_constants: HashSet<&str> = graph
        .initializer
        .iter()
        .filter(|t| t.dims.len() <= 1 && t.dims.iter().product::<i64>() == 1)
        .map(|t| t.name.as_str())
        .collect();
    let is_onnx = |i: usize| matches!(graph.node[i].domain.as_str(), "" | "ai.onnx");

    let mut rename: HashMap<String, String> = HashMap::new();
    let mut drop: HashSet<usize> = HashSet::new();
    for (w, node) in graph.node.iter().enumerate() {
        if node.op_type != "Where" || !is_onnx(w) || node.input.len() != 3 || node.output.len() != 1 {
            continue;
        }
        let (condition, zero, probs) = (node.input[0].as_str(), node.input[1].as_str(), node.input[2].as_str());
        let Some(&isnan) = producer.get(condition) else { continue };
        let guard = &graph.node[isnan];
        let from_softmax = producer.get(probs).is_some_and(|&s| graph.node[s].op_type == "Softmax" && is_onnx(s));
        if guard.op_type != "IsNaN"
            || !is_onnx(isnan)
            || guard.input.first().map(String::as_str) != Some(probs)
            || !from_softmax
            || !scalar_constants.contains(zero)
            || consumers.get(condition) != Some(&1)
            || graph_outputs.contains(condition)
            || graph_outputs.contains(node.output[0].as_str())
        {
            continue;
        }
        rename.insert(node.output[0].clone(), probs.to_string());
        drop.extend([w, isnan]);
    }
    if drop.is_empty() {
        return unchanged();
    }
    let removed: HashSet<String> =
        drop.iter().flat_map(|&i| graph.node[i].output.iter().cloned()).collect();
    let mut index = 0;
    graph.node.retain(|_| {
        let keep = !drop.contains(&index);
        index += 1;
        keep
    });
    for input in graph.node.iter_mut().flat_map(|n| n.input.iter_mut()) {
        if let Some(to) = rename.get(input) {
            *input = to.clone();
        }
    }
    graph.value_info.retain(|v| !removed.contains(&v.name));
    let edits = GraphEdits { softmax_nan_guards_dropped: rename.len() };
    let bytes = model
        .write_to_bytes()
        .map_err(|e| RetrievalError::Invalid(format!("cannot write the simplified ONNX model: {e}")))?;
    Ok((bytes, edits))
}

#[cfg(test)]
mod tests {
    use onnx_protobuf::{GraphProto, NodeProto, TensorProto, ValueInfoProto};

    use super::*;

    fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
        let mut n = NodeProto::new();
        n.op_type = op.into();
        n.input = inputs.iter().map(|s| s.to_string()).collect();
        n.output = vec![output.into()];
        n.name = format!("{op}_{output}");
        n
    }

    fn model(nodes: Vec<NodeProto>, zero_dims: Vec<i64>, outputs: &[&str]) -> Vec<u8> {
        let mut zero = TensorProto::new();
        zero.name = "zero".into();
        zero.dims = zero_dims;
        zero.data_type = 1;
        zero.float_data = vec![0.0];
        let mut graph = GraphProto::new();
        graph.node = nodes;
        graph.initializer = vec![zero];
        graph.output = outputs
            .iter()
            .map(|o| {
                let mut v = ValueInfoProto::new();
                v.name = o.to_string();
                v
            })
            .collect();
        let mut m = ModelProto::new();
        m.ir_version = 8;
        m.producer_name = "kept".into();
        m.graph = Some(graph).into();
        m.write_to_bytes().unwrap()
    }

    fn guarded(p: &str) -> Vec<NodeProto> {
        vec![
            node("Softmax", &["scores"], p),
            node("IsNaN", &[p], "nan"),
            node("Where", &["nan", "zero", p], "guarded"),
            node("MatMul", &["guarded", "v"], "out"),
        ]
    }

    #[test]
    fn a_softmax_guard_is_dropped_and_its_consumer_rewired() {
        let (bytes, edits) = drop_softmax_nan_guards(model(guarded("p"), vec![], &["out"])).unwrap();
        assert_eq!(edits.softmax_nan_guards_dropped, 1);
        let m = ModelProto::parse_from_bytes(&bytes).unwrap();
        let ops: Vec<&str> = m.graph.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, ["Softmax", "MatMul"]);
        assert_eq!(m.graph.node[1].input, ["p", "v"]);
        assert_eq!(m.producer_name, "kept");
    }

    #[test]
    fn guards_that_are_not_exactly_the_pattern_stay() {
        // Not after a softmax.
        let mut nodes = guarded("p");
        nodes[0].op_type = "Relu".into();
        // The guard's output or its condition is a graph output; the replacement has more
        // dimensions; the condition is used elsewhere too.
        let mut shared = guarded("p");
        shared.push(node("Not", &["nan"], "other"));
        for (nodes, dims, outputs) in [
            (nodes, vec![], vec!["out"]),
            (guarded("p"), vec![], vec!["guarded"]),
            (guarded("p"), vec![], vec!["out", "nan"]),
            (guarded("p"), vec![1, 1], vec!["out"]),
            (shared, vec![], vec!["out", "other"]),
        ] {
            let bytes = model(nodes, dims, &outputs);
            let (out, edits) = drop_softmax_nan_guards(bytes.clone()).unwrap();
            assert_eq!(edits.softmax_nan_guards_dropped, 0);
            assert_eq!(out, bytes);
        }
    }

    #[test]
    fn a_damaged_model_is_an_error() {
        assert!(drop_softmax_nan_guards(b"\xff\xff\xff not protobuf".to_vec()).is_err());
    }
}
