//! numpy's random generators: `RandomState`, `Generator` and bit generators, written through
//! `numpy.random._pickle`'s constructors (numpy 1 and 2 forms).

use skvault_format::node::BIT_GENERATORS;
use skvault_format::Node;

use super::{callable, no_state, only_state};
use crate::error::Result;
use crate::lower::Lowerer;
use crate::value::{Arena, Instance, Item, V};

fn is_bit_generator(arena: &Arena<'_>, v: V) -> bool {
    arena.instance(v).is_some_and(|inst| {
        callable(arena, inst).as_deref() == Some("numpy.random._pickle.__bit_generator_ctor")
    })
}

/// The constructor arguments numpy writes for its generators: a bit generator (numpy 2), or
/// a name and `__bit_generator_ctor` (numpy 1). Any other callable is refused.
fn generator_args(l: &Lowerer<'_, '_>, args: &[V]) -> Result<()> {
    let arena = l.arena;
    for a in args {
        let ok = arena.str(*a).is_some()
            || is_bit_generator(arena, *a)
            || arena.global(*a).map(|g| g.qualified()).as_deref()
                == Some("numpy.random._pickle.__bit_generator_ctor");
        if !ok {
            return Err(l.fail("a numpy random generator built with an unknown constructor"));
        }
    }
    Ok(())
}

pub(super) fn random_state(
    l: &mut Lowerer<'_, '_>,
    i: u32,
    inst: &Instance,
    args: &[V],
) -> Result<Node> {
    generator_args(l, args)?;
    l.no_extras(inst, "a RandomState")?;
    let state = only_state(l, inst, "a RandomState")?;
    if !matches!(l.arena.get(state), Some(Item::Dict(_))) {
        return Err(l.fail("a RandomState's state must be a dict"));
    }
    let node = l.unbound(i, |l| l.lower(state))?;
    Ok(Node::RandomState(Box::new(node)))
}

pub(super) fn generator(
    l: &mut Lowerer<'_, '_>,
    i: u32,
    inst: &Instance,
    args: &[V],
) -> Result<Node> {
    generator_args(l, args)?;
    l.no_extras(inst, "a Generator")?;
    if let [bg] = args {
        if is_bit_generator(l.arena, *bg) {
            no_state(l, inst, "a Generator")?;
            let node = l.unbound(i, |l| l.lower(*bg))?;
            return Ok(Node::Generator(Box::new(node)));
        }
    }
    // numpy 1: the name of the bit generator, and its state as the Generator's state.
    let kind = match args.first() {
        None => "MT19937".to_string(),
        Some(a) => l.arena.str(*a).unwrap_or_default().to_string(),
    };
    let state = only_state(l, inst, "a Generator")?;
    let bg = bit_generator_node(l, kind, state)?;
    Ok(Node::Generator(Box::new(bg)))
}

fn bit_generator_node(l: &mut Lowerer<'_, '_>, kind: String, state: V) -> Result<Node> {
    if !BIT_GENERATORS.contains(&kind.as_str()) {
        return Err(l.fail(format!("unknown bit generator {kind:?}")));
    }
    // numpy 2 writes `(state, seed_sequence)`; the seed sequence is not kept (as `walk.rs`).
    let state = match l.arena.tuple(state) {
        Some([s, _seed]) => *s,
        _ => state,
    };
    if !matches!(l.arena.get(state), Some(Item::Dict(_))) {
        return Err(l.fail("a bit generator's state must be a dict"));
    }
    let state = l.lower(state)?;
    Ok(Node::BitGenerator {
        kind,
        state: Box::new(state),
    })
}

pub(super) fn bit_generator(l: &mut Lowerer<'_, '_>, inst: &Instance, args: &[V]) -> Result<Node> {
    let arena = l.arena;
    l.no_extras(inst, "a bit generator")?;
    let kind = match args {
        [] => "MT19937".to_string(),
        [a] => match (arena.str(*a), arena.global(*a)) {
            (Some(s), _) => s.to_string(),
            (None, Some(g)) if g.module.starts_with("numpy.random.") => g.name.clone(),
            _ => return Err(l.fail("a bit generator of an unknown class")),
        },
        _ => return Err(l.fail("__bit_generator_ctor takes one argument")),
    };
    let state = only_state(l, inst, "a bit generator")?;
    bit_generator_node(l, kind, state)
}
