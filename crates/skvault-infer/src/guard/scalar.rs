//! Cython classes built from numbers alone: scikit-learn's loss objects
//! (`CyHalfTweedieLoss(power)`, `Hinge(threshold)`, ...). Their `__reduce__` gives the class
//! and a few floats; they hold no arrays. Anything else in such a node is refused.

use skvault_format::{Construct, Node};

use crate::error::{malformed, Result};
use crate::state::{node_float, Obj};

pub(super) fn check(o: &Obj<'_, '_>) -> Result<()> {
    let args = match &o.obj.construct {
        Construct::Call { args } => args,
        Construct::New { args, kwargs } if kwargs.is_empty() => args,
        _ => return Err(malformed(&o.path, "built from numbers only")),
    };
    let numbers = args.iter().all(|a| node_float(o.ctx.resolve(a)).is_some());
    // Cython's automatic pickling gives an empty tuple as state (CyHalfMultinomialLoss).
    let empty_state = match o.obj.state.as_ref().map(|s| o.ctx.resolve(s)) {
        None | Some(Node::None) => true,
        Some(Node::Tuple(items) | Node::List(items)) => items.is_empty(),
        Some(Node::Dict(items)) => items.is_empty(),
        Some(_) => false,
    };
    let extra = !empty_state || !o.obj.list_items.is_empty() || !o.obj.dict_items.is_empty();
    if !numbers || args.len() > 4 || extra {
        return Err(malformed(
            &o.path,
            format!(
                "{} is built from at most 4 numbers and has no other state",
                o.class()
            ),
        ));
    }
    Ok(())
}
