//! The ids of `Shared` nodes: dropping those nothing refers to.
//!
//! A writer gives every object with identity an id while it walks a graph, since it cannot
//! know yet whether a second reference will come; once the whole graph is walked, the ids no
//! `Ref` names are noise in the file (and cost the loader a memo entry each).

use std::collections::HashSet;
use std::hash::BuildHasher;

use crate::node::{for_each_child_mut, Id, Node};

/// `node` without the `Shared` wrappers whose id is not in `used` (their content stays, in
/// place of the wrapper); `Ref`s and every other node are kept as they are.
pub fn strip_unused<S: BuildHasher>(mut node: Node, used: &HashSet<Id, S>) -> Node {
    strip_in_place(&mut node, used);
    node
}

/// Works where the nodes lie: a forest's tens of thousands of nodes are not moved or
/// allocated again.
fn strip_in_place<S: BuildHasher>(node: &mut Node, used: &HashSet<Id, S>) {
    loop {
        match node {
            Node::Shared { id, node: inner } if !used.contains(id) => {
                let content = std::mem::replace(&mut **inner, Node::None);
                *node = content;
            }
            _ => break,
        }
    }
    for_each_child_mut(node, &mut |child| strip_in_place(child, used));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::object;

    fn shared(id: Id, node: Node) -> Node {
        Node::Shared {
            id,
            node: Box::new(node),
        }
    }

    #[test]
    fn unused_wrappers_go_and_used_ones_stay_with_their_refs() {
        let tree = Node::List(vec![
            shared(0, Node::Dict(vec![])),
            shared(1, Node::List(vec![shared(2, Node::Tuple(vec![]))])),
            Node::Ref(1),
        ]);
        let used = HashSet::from([1]);
        let expected = Node::List(vec![
            Node::Dict(vec![]),
            shared(1, Node::List(vec![Node::Tuple(vec![])])),
            Node::Ref(1),
        ]);
        assert_eq!(strip_unused(tree, &used), expected);
    }

    #[test]
    fn nested_unused_wrappers_all_go() {
        let tree = shared(3, shared(4, shared(5, Node::Int(1))));
        assert_eq!(strip_unused(tree, &HashSet::new()), Node::Int(1));
    }

    #[test]
    fn wrappers_inside_objects_are_reached() {
        let tree = object(
            "a.B",
            vec![
                ("x", shared(0, Node::List(vec![]))),
                ("y", shared(1, Node::Set(vec![]))),
            ],
        );
        let expected = object(
            "a.B",
            vec![
                ("x", Node::List(vec![])),
                ("y", shared(1, Node::Set(vec![]))),
            ],
        );
        assert_eq!(strip_unused(tree, &HashSet::from([1])), expected);
    }

    #[test]
    fn a_tree_without_unused_ids_comes_back_unchanged() {
        let tree = Node::Tuple(vec![
            shared(0, Node::List(vec![Node::Array(2)])),
            Node::Ref(0),
        ]);
        assert_eq!(strip_unused(tree.clone(), &HashSet::from([0])), tree);
    }
}
