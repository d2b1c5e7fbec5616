//! Identity bookkeeping after lowering: unused declarations dropped, ids renumbered.

use std::collections::{HashMap, HashSet};

use skvault_format::{Construct, Node, Object};

/// Sets of plain values are written sorted (as `walk.rs` does), so a set gives one tree.
pub(crate) fn sorted_if_plain(mut items: Vec<Node>) -> Vec<Node> {
    let plain = items.iter().all(|n| {
        matches!(
            n,
            Node::None
                | Node::Bool(_)
                | Node::Int(_)
                | Node::BigInt(_)
                | Node::Float(_)
                | Node::Str(_)
                | Node::Bytes(_)
        )
    });
    if plain {
        items.sort_by_cached_key(|n| n.to_json().to_string());
    }
    items
}

/// Drops `Shared` wrappers nothing refers to and numbers the others 0, 1, ... in document
/// order (references always point back, so every id is known when its refs are reached).
pub(super) fn renumber(node: Node, used: &HashSet<u64>, ids: &mut HashMap<u64, u64>) -> Node {
    let mut r = |n: Node| renumber(n, used, ids);
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
        Node::List(v) => Node::List(v.into_iter().map(&mut r).collect()),
        Node::Tuple(v) => Node::Tuple(v.into_iter().map(&mut r).collect()),
        Node::Set(v) => Node::Set(v.into_iter().map(&mut r).collect()),
        Node::FrozenSet(v) => Node::FrozenSet(v.into_iter().map(&mut r).collect()),
        Node::Dict(v) => Node::Dict(v.into_iter().map(|(k, x)| (r(k), r(x))).collect()),
        Node::Slice(parts) => {
            let [a, b, c] = *parts;
            Node::Slice(Box::new([r(a), r(b), r(c)]))
        }
        Node::ObjArray { shape, items } => Node::ObjArray {
            shape,
            items: items.into_iter().map(&mut r).collect(),
        },
        Node::RandomState(n) => Node::RandomState(Box::new(r(*n))),
        Node::Generator(n) => Node::Generator(Box::new(r(*n))),
        Node::BitGenerator { kind, state } => Node::BitGenerator {
            kind,
            state: Box::new(r(*state)),
        },
        Node::Object(obj) => {
            let Object {
                class,
                construct,
                state,
                list_items,
                dict_items,
            } = *obj;
            let construct = match construct {
                Construct::New { args, kwargs } => Construct::New {
                    args: args.into_iter().map(&mut r).collect(),
                    kwargs: kwargs.into_iter().map(|(k, x)| (r(k), r(x))).collect(),
                },
                Construct::Call { args } => Construct::Call {
                    args: args.into_iter().map(&mut r).collect(),
                },
                Construct::Base { base, value } => Construct::Base {
                    base,
                    value: Box::new(r(*value)),
                },
            };
            let state = state.map(&mut r);
            Node::Object(Box::new(Object {
                class,
                construct,
                state,
                list_items: list_items.into_iter().map(&mut r).collect(),
                dict_items: dict_items.into_iter().map(|(k, x)| (r(k), r(x))).collect(),
            }))
        }
        other => other,
    }
}
