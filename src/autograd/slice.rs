//! The part of a recorded graph that a pass walks: every node reachable from some root
//! tensors, in creation order. Reverse mode walks it backwards, forward mode forwards.

use std::collections::HashMap as StdHashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use super::node::Node;
use crate::tensor::Tensor;

/// A multiply-rotate hasher for the engine's integer keys (node and tensor ids): SipHash
/// showed up as a tenth of small-graph backward time.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }
}

/// A hash map keyed by node or tensor ids, hashed with [`IdHasher`].
pub(crate) type HashMap<K, V> = StdHashMap<K, V, BuildHasherDefault<IdHasher>>;

/// The nodes reachable from some root tensors through their inputs, sorted by id.
///
/// Node ids grow with creation, so the inputs of a node always come from nodes with smaller
/// ids: ascending id order is a topological order (producers first), and its reverse has every
/// consumer before its producers.
pub(crate) struct GraphSlice {
    /// Ascending ids.
    nodes: Vec<Arc<Node>>,
    /// Node id → position in `nodes`.
    position: HashMap<u64, usize>,
}

impl GraphSlice {
    /// Discovers, iteratively (deep graphs must not overflow the stack), the nodes that
    /// produced `roots` and everything they were computed from, leaving out nodes older than
    /// `min_node` behind the roots' own nodes (0: the whole history).
    pub(crate) fn discover<'a>(roots: impl IntoIterator<Item = &'a Tensor>, min_node: u64) -> Self {
        let mut position: HashMap<u64, usize> = HashMap::default();
        let mut nodes: Vec<Arc<Node>> = Vec::new();
        let mut stack: Vec<Arc<Node>> = roots
            .into_iter()
            .filter_map(|t| t.0.grad_fn.as_ref().map(|g| g.node.clone()))
            .collect();
        while let Some(n) = stack.pop() {
            if position.contains_key(&n.id) {
                continue;
            }
            for e in &n.edges {
                if let Some(gf) = &e.grad_fn {
                    if gf.node.id >= min_node && !position.contains_key(&gf.node.id) {
                        stack.push(gf.node.clone());
                    }
                }
            }
            position.insert(n.id, nodes.len());
            nodes.push(n);
        }
        nodes.sort_unstable_by_key(|n| n.id);
        for (p, n) in nodes.iter().enumerate() {
            position.insert(n.id, p);
        }
        GraphSlice { nodes, position }
    }

    /// The nodes in ascending id (topological) order.
    pub(crate) fn nodes(&self) -> &[Arc<Node>] {
        &self.nodes
    }

    /// Where the node `id` stands in [`GraphSlice::nodes`], if it is in the slice.
    pub(crate) fn position(&self, id: u64) -> Option<usize> {
        self.position.get(&id).copied()
    }
}
