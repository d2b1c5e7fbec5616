//! The pickle interpreter: every opcode of protocols 0 to 5, executed on data only.
//!
//! GLOBAL, STACK_GLOBAL and INST record the name they would import and push a `Global`
//! item; REDUCE, NEWOBJ(_EX), INST and OBJ push an `Instance` item that remembers what would
//! have been called; BUILD, APPEND(S), SETITEM(S) and ADDITEMS record their operands on the
//! target item. Nothing is imported or called. Stack and MARK handling follow
//! `pickle._Unpickler`: the items above a MARK form a stack of their own.

use std::collections::HashMap;

use crate::error::{PickleError, Result};
use crate::input::{Frames, Input};
use crate::limits::Limits;
use crate::opcodes::{self as op, name};
use crate::value::{Arena, Item, V, VALUE_COST};

mod log;
mod objects;
mod values;

pub use log::{GlobalUse, Issue, Log};

/// One unpickler: its own stack, marks, memo, protocol and frame (joblib's nested object-array
/// pickles get a fresh one over the same input).
pub struct Machine<'a, 'r> {
    pub arena: &'r mut Arena<'a>,
    pub log: &'r mut Log,
    pub limits: &'r Limits,
    stack: Vec<V>,
    marks: Vec<Vec<V>>,
    /// Values on `stack` and in `marks`.
    depth: usize,
    memo: HashMap<u64, V>,
    proto: u8,
    pub frames: Frames,
    /// `joblib.numpy_pickle.NumpyUnpickler` semantics: BUILD of a `NumpyArrayWrapper` reads
    /// the array that follows it in the file.
    joblib: bool,
}

impl<'a, 'r> Machine<'a, 'r> {
    pub fn new(
        arena: &'r mut Arena<'a>,
        log: &'r mut Log,
        limits: &'r Limits,
        joblib: bool,
    ) -> Self {
        Machine {
            arena,
            log,
            limits,
            stack: Vec::new(),
            marks: Vec::new(),
            depth: 0,
            memo: HashMap::new(),
            proto: 0,
            frames: Frames::default(),
            joblib,
        }
    }

    // ------------------------------------------------------------ stack

    fn push(&mut self, v: V) -> Result<()> {
        if self.depth >= self.limits.max_stack {
            return Err(PickleError::LimitExceeded {
                what: "pickle stack size",
                limit: self.limits.max_stack as u64,
            });
        }
        self.depth += 1;
        self.stack.push(v);
        Ok(())
    }

    fn push_item(&mut self, item: Item<'a>) -> Result<()> {
        let v = self.arena.push(item)?;
        self.push(v)
    }

    fn pop(&mut self, opcode: &'static str, offset: u64) -> Result<V> {
        let v = self
            .stack
            .pop()
            .ok_or(PickleError::StackUnderflow { opcode, offset })?;
        self.depth -= 1;
        Ok(v)
    }

    fn top(&self, opcode: &'static str, offset: u64) -> Result<V> {
        self.stack
            .last()
            .copied()
            .ok_or(PickleError::StackUnderflow { opcode, offset })
    }

    fn set_top(&mut self, v: V) {
        if let Some(top) = self.stack.last_mut() {
            *top = v;
        }
    }

    fn pop_mark(&mut self, opcode: &'static str, offset: u64) -> Result<Vec<V>> {
        let below = self
            .marks
            .pop()
            .ok_or(PickleError::NoMark { opcode, offset })?;
        let items = std::mem::replace(&mut self.stack, below);
        self.depth -= items.len();
        Ok(items)
    }

    fn charge_values(&mut self, n: usize) -> Result<()> {
        self.arena.charge(VALUE_COST.saturating_mul(n as u64))
    }

    // ------------------------------------------------------------ reading

    fn read(&mut self, input: &mut Input<'a>, n: usize, what: &'static str) -> Result<&'a [u8]> {
        self.frames.read(input, n, what)
    }

    fn read_array<const N: usize>(
        &mut self,
        input: &mut Input<'a>,
        what: &'static str,
    ) -> Result<[u8; N]> {
        let b = self.read(input, N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    /// A length-prefixed argument: the length is checked against what is left before reading.
    fn read_counted(
        &mut self,
        input: &mut Input<'a>,
        len: u64,
        opcode: &'static str,
        offset: u64,
    ) -> Result<&'a [u8]> {
        let remaining = self.frames.remaining(input) as u64;
        let n = usize::try_from(len)
            .ok()
            .filter(|_| len <= remaining)
            .ok_or(PickleError::LengthTooLarge {
                opcode,
                offset,
                length: len,
                remaining,
            })?;
        self.read(input, n, opcode)
    }

    fn read_line(&mut self, input: &mut Input<'a>, what: &'static str) -> Result<&'a [u8]> {
        self.frames.read_line(input, what)
    }

    // ------------------------------------------------------------ helpers

    fn malformed(opcode: &'static str, offset: u64, message: impl Into<String>) -> PickleError {
        PickleError::Malformed {
            opcode,
            offset,
            message: message.into(),
        }
    }

    /// Runs until STOP and returns the value it pops.
    pub fn run(&mut self, input: &mut Input<'a>) -> Result<V> {
        loop {
            let offset = self.frames.position(input) as u64;
            let [code] = self.read_array::<1>(input, "opcode")?;
            let opname = name(code).ok_or(PickleError::UnknownOpcode {
                opcode: code,
                offset,
            })?;
            if code == op::STOP {
                return self.pop(opname, offset);
            }
            self.step(input, code, opname, offset)?;
        }
    }

    fn step(
        &mut self,
        input: &mut Input<'a>,
        code: u8,
        opname: &'static str,
        offset: u64,
    ) -> Result<()> {
        if self.value_op(input, code, opname, offset)? {
            return Ok(());
        }
        self.object_op(input, code, opname, offset)
    }
}
