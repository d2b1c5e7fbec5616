//! Identity bookkeeping after lowering: unused declarations dropped, ids renumbered.

use std::collections::{HashMap, HashSet};

use skvault_format::node::map_children;
use skvault_format::Node;

/// Drops `Shared` wrappers nothing refers to and numbers the others 0, 1, ... in document
/// order (references always point back, so every id is known when its refs are reached).
pub(super) fn renumber(node: Node, used: &HashSet<u64>, ids: &mut HashMap<u64, u64>) -> Node {
    match node {
        Node::Shared { id, node } => {
            if used.contains(&id) {
                let new_id = ids.len() as u64;
                ids.insert(id, new_id);
                Node::Shared {
                    id: new_id,
                    node: Box::new(renumber(*node, used, ids)),
                }
            } else {
                renumber(*node, used, ids)
            }
        }
        Node::Ref(id) => Node::Ref(ids.get(&id).copied().unwrap_or(id)),
        other => map_children(other, &mut |n| renumber(n, used, ids)),
    }
}
