//! Opcodes that build containers and objects, name globals, use the memo and the stack.

use super::{GlobalUse, Issue, Machine};
use crate::error::{PickleError, Result};
use crate::input::Input;
use skvault_format::TrustSet;

use crate::dtype_facts;
use crate::names::{classify, find_class, is_helper, looks_like_class, GlobalKind, Resolved};
use crate::opcodes as op;
use crate::text::{self, PyInt};
use crate::value::{Arena, Global, How, Instance, Item, V, VALUE_COST};

/// What calling the global `g` with `args` implies beyond its name (see `Issue`).
fn call_issue(arena: &Arena<'_>, g: &Global, how: How, args: V, offset: u64) -> Option<Issue> {
    let name = g.qualified();
    let args = arena.tuple(args).unwrap_or_default();
    if matches!(name.as_str(), "builtins.bytes" | "builtins.bytearray") {
        let large = args.iter().any(|a| match a {
            V::Int(n) => n.unsigned_abs() >= 1 << 20,
            _ => matches!(arena.get(*a), Some(Item::BigInt(_))),
        });
        return large.then_some(Issue::LargeAllocation { name, offset });
    }
    let calls = match how {
        How::Reduce => true,
        How::Inst | How::Obj => !args.is_empty() || !looks_like_class(g),
        How::NewObj | How::NewObjEx => false,
    };
    let constructs = is_helper(&name)
        || looks_like_class(g)
        || g.name.starts_with("__pyx_unpickle_")
        || (g.name == "newObj" && g.module.starts_with("sklearn."));
    (calls && !constructs).then_some(Issue::CallsFunction { name, offset })
}

/// numpy's dtype class under any of its names (`numpy.dtype`, `numpy._core.multiarray.dtype`,
/// the `numpy.dtypes.*DType` classes).
fn is_dtype_class(g: &Global) -> bool {
    let last = g.name.rsplit('.').next().unwrap_or(&g.name);
    (g.module == "numpy" || g.module.starts_with("numpy."))
        && (last == "dtype" || last.ends_with("DType"))
}

/// The class whose instance `inst` is, when the stream names it: the class called or given to
/// `copyreg`'s, Cython's or scikit-learn's `__new__` helpers. `None` for what a function
/// returned.
fn created_class<'g>(arena: &'g Arena<'_>, inst: &Instance) -> Option<&'g Global> {
    let g = arena.global(inst.callable)?;
    let first = || {
        arena
            .tuple(inst.args)?
            .first()
            .and_then(|c| arena.global(*c))
    };
    if g.name.starts_with("__pyx_unpickle_")
        || (g.name == "newObj" && g.module.starts_with("sklearn."))
    {
        return first();
    }
    let class = arena.instance_class(inst)?;
    let is_class = inst.how != How::Reduce
        || !std::ptr::eq(class, g)
        || is_helper(&g.qualified())
        || looks_like_class(g);
    is_class.then_some(class)
}

impl<'a> Machine<'a, '_> {
    fn tuple(&mut self, items: Vec<V>) -> Result<V> {
        // CPython's empty tuple is a singleton: every `()` is the same object.
        if items.is_empty() {
            if let Some(v) = self.arena.empty_tuple {
                return Ok(v);
            }
            let v = self.arena.push(Item::Tuple(Vec::new()))?;
            self.arena.empty_tuple = Some(v);
            return Ok(v);
        }
        self.charge_values(items.len())?;
        self.arena.push(Item::Tuple(items))
    }

    fn global(&mut self, module: &str, name: &str, offset: u64) -> Result<V> {
        let limit = self.limits.max_name_len;
        if module.len() > limit || name.len() > limit {
            return Err(PickleError::LimitExceeded {
                what: "length of a global's name",
                limit: limit as u64,
            });
        }
        let Resolved { global, alternate } = find_class(module, name, self.proto);
        if let Some(alt) = alternate {
            self.log.globals.push(GlobalUse {
                global: alt,
                offset,
            });
        }
        self.log.globals.push(GlobalUse {
            global: global.clone(),
            offset,
        });
        self.arena.push(Item::Global(global))
    }

    fn text_global(
        &mut self,
        input: &mut Input<'a>,
        offset: u64,
        opcode: &'static str,
        ascii: bool,
    ) -> Result<V> {
        let module = self.read_line(input, opcode)?;
        let name = self.read_line(input, opcode)?;
        let decode = |b: &'a [u8]| {
            std::str::from_utf8(b)
                .ok()
                .filter(|s| !ascii || s.is_ascii())
                .ok_or_else(|| Self::malformed(opcode, offset, "module or name is not text"))
        };
        let (module, name) = (decode(module)?, decode(name)?);
        self.global(module, name, offset)
    }

    fn memo_get(&mut self, index: u64, opcode: &'static str, offset: u64) -> Result<()> {
        let v = *self.memo.get(&index).ok_or(PickleError::MemoMissing {
            opcode,
            offset,
            index,
        })?;
        self.push(v)
    }

    fn memo_put(&mut self, index: u64, opcode: &'static str, offset: u64) -> Result<()> {
        let v = self.top(opcode, offset)?;
        if !self.memo.contains_key(&index) && self.memo.len() >= self.limits.max_memo {
            return Err(PickleError::LimitExceeded {
                what: "memo entries",
                limit: self.limits.max_memo as u64,
            });
        }
        self.arena.charge(2 * VALUE_COST)?;
        self.memo.insert(index, v);
        Ok(())
    }

    fn line_index(
        &mut self,
        input: &mut Input<'a>,
        opcode: &'static str,
        offset: u64,
    ) -> Result<u64> {
        let line = self.read_line(input, opcode)?;
        match text::parse_decimal(line) {
            Ok(PyInt::Small(i)) if i >= 0 => Ok(i as u64),
            Ok(_) => Err(Self::malformed(
                opcode,
                offset,
                "negative or huge memo index",
            )),
            Err(e) => Err(Self::malformed(opcode, offset, e)),
        }
    }

    fn instance(
        &mut self,
        how: How,
        callable: V,
        args: V,
        kwargs: Option<V>,
        offset: u64,
    ) -> Result<V> {
        match self.arena.global(callable) {
            None => self.log.issues.push(Issue::ComputedCallable {
                opcode: how.opcode(),
                offset,
            }),
            Some(g) => {
                if let Some(issue) = call_issue(self.arena, g, how, args, offset) {
                    self.log.issues.push(issue);
                }
            }
        }
        let v = self.arena.push(Item::Instance(Box::new(Instance {
            how,
            callable,
            args,
            kwargs,
            states: Vec::new(),
            list_items: Vec::new(),
            dict_items: Vec::new(),
            set_items: Vec::new(),
            offset,
        })))?;
        let makes_dtype = self
            .arena
            .instance(v)
            .and_then(|inst| self.arena.instance_class(inst))
            .is_some_and(is_dtype_class);
        if makes_dtype {
            if let Err(reason) = dtype_facts::canonical_creation(self.arena, v) {
                self.log.issues.push(Issue::ForgedDtype { reason, offset });
            }
        }
        Ok(v)
    }

    /// SETITEM(S), APPEND(S) and ADDITEMS call a method of their target unless it is a
    /// container the stream built: fine on an instance of a class the loader creates (the
    /// trust check names it), a call of anything else.
    fn items_call(&mut self, target: V, opcode: &'static str, offset: u64) {
        let Some(inst) = self.arena.instance(target) else {
            return;
        };
        let target = match created_class(self.arena, inst) {
            None => {
                let name = self.arena.global(inst.callable).map(Global::qualified);
                format!(
                    "the result of {}",
                    name.as_deref().unwrap_or("a computed call")
                )
            }
            Some(g) => {
                let q = g.qualified();
                let ok = !is_helper(&q)
                    && !is_dtype_class(g)
                    && classify(g, &TrustSet::default()) != GlobalKind::Dangerous;
                if ok {
                    return;
                }
                format!("an instance of {q}")
            }
        };
        self.log.issues.push(Issue::ItemsCall {
            opcode,
            target,
            offset,
        });
    }

    fn append_to(
        &mut self,
        target: V,
        items: Vec<V>,
        opcode: &'static str,
        offset: u64,
    ) -> Result<()> {
        self.charge_values(items.len())?;
        self.items_call(target, opcode, offset);
        match self.arena.get_mut(target) {
            Some(Item::List(list)) => list.extend(items),
            Some(Item::Instance(inst)) => inst.list_items.extend(items),
            other => {
                let t = other.map_or("scalar", |i| i.type_name());
                return Err(Self::malformed(
                    opcode,
                    offset,
                    format!("cannot append to a {t}"),
                ));
            }
        }
        Ok(())
    }

    fn set_items(
        &mut self,
        target: V,
        items: Vec<V>,
        opcode: &'static str,
        offset: u64,
    ) -> Result<()> {
        if items.len() % 2 != 0 {
            return Err(Self::malformed(opcode, offset, "odd number of items"));
        }
        self.charge_values(items.len())?;
        self.items_call(target, opcode, offset);
        let pairs = items.chunks_exact(2).map(|p| (p[0], p[1]));
        match self.arena.get_mut(target) {
            Some(Item::Dict(d)) => d.extend(pairs),
            Some(Item::Instance(inst)) => inst.dict_items.extend(pairs),
            other => {
                let t = other.map_or("scalar", |i| i.type_name());
                return Err(Self::malformed(
                    opcode,
                    offset,
                    format!("cannot set items of a {t}"),
                ));
            }
        }
        Ok(())
    }

    fn add_items(&mut self, target: V, items: Vec<V>, offset: u64) -> Result<()> {
        self.charge_values(items.len())?;
        self.items_call(target, "ADDITEMS", offset);
        match self.arena.get_mut(target) {
            Some(Item::Set(s)) => s.extend(items),
            Some(Item::Instance(inst)) => inst.set_items.extend(items),
            other => {
                let t = other.map_or("scalar", |i| i.type_name());
                return Err(Self::malformed(
                    "ADDITEMS",
                    offset,
                    format!("cannot add items to a {t}"),
                ));
            }
        }
        Ok(())
    }

    fn build(&mut self, input: &mut Input<'a>, offset: u64) -> Result<()> {
        let state = self.pop("BUILD", offset)?;
        let target = self.top("BUILD", offset)?;
        self.arena.charge(VALUE_COST)?;
        if let V::Item(i) = target {
            // A dtype's state may change: decode it again next time.
            self.arena.dtype_info.remove(&i);
        }
        if let Some(issue) = self.state_issue(target, offset) {
            self.log.issues.push(issue);
        }
        match self.arena.get_mut(target) {
            Some(Item::Instance(inst)) => inst.states.push(state),
            Some(Item::Global(g)) => {
                let name = g.qualified();
                self.log.issues.push(Issue::BuildOnGlobal { name, offset });
                return Ok(());
            }
            other => {
                let t = other.map_or("scalar", |i| i.type_name());
                return Err(Self::malformed(
                    "BUILD",
                    offset,
                    format!("cannot set the state of a {t}"),
                ));
            }
        }
        self.check_dtype_state(target, state, offset)?;
        if self.joblib {
            if let Some(v) = crate::joblib::after_build(self, input, target, offset)? {
                self.set_top(v);
            }
        }
        Ok(())
    }

    /// What a BUILD on `target` implies before its state is applied.
    fn state_issue(&self, target: V, offset: u64) -> Option<Issue> {
        let inst = self.arena.instance(target)?;
        let g = self.arena.global(inst.callable)?;
        if is_dtype_class(g) || self.arena.instance_class(inst).is_some_and(is_dtype_class) {
            let reason = match target {
                _ if !inst.states.is_empty() => "its state is set twice",
                V::Item(i) if self.arena.frozen_dtypes.contains(&i) => {
                    "its state is set after another dtype took it as a field or sub-array base"
                }
                _ => return None,
            };
            return Some(Issue::ForgedDtype {
                reason: reason.into(),
                offset,
            });
        }
        match call_issue(self.arena, g, inst.how, inst.args, inst.offset) {
            Some(Issue::CallsFunction { name, .. }) => {
                Some(Issue::StateOfCallResult { name, offset })
            }
            _ => None,
        }
    }

    /// After a BUILD on a numpy dtype: numpy's view of it, and whether numpy's pickler could
    /// have written it. The dtypes it refers to may not change from now on.
    fn check_dtype_state(&mut self, target: V, state: V, offset: u64) -> Result<()> {
        let V::Item(i) = target else {
            return Ok(());
        };
        if !crate::dtype::is_dtype(self.arena, target) {
            return Ok(());
        }
        let mut visits = 0u64;
        let facts = dtype_facts::facts(self.arena, target, &mut visits);
        self.arena.charge(VALUE_COST.saturating_mul(visits))?;
        match facts {
            Ok(f) => {
                if let Some(reason) = f.problem.clone() {
                    self.log.issues.push(Issue::ForgedDtype { reason, offset });
                }
                self.arena.dtype_info.insert(i, f);
            }
            Err(reason) => self.log.issues.push(Issue::ForgedDtype { reason, offset }),
        }
        let children = dtype_facts::children(self.arena, state);
        self.arena
            .charge(VALUE_COST.saturating_mul(children.len() as u64))?;
        self.arena.frozen_dtypes.extend(children);
        Ok(())
    }

    /// Handles every opcode `value_op` does not, by what it works on.
    pub(super) fn object_op(
        &mut self,
        input: &mut Input<'a>,
        code: u8,
        opname: &'static str,
        offset: u64,
    ) -> Result<()> {
        match code {
            op::MARK | op::POP | op::POP_MARK | op::DUP => self.stack_op(code, opname, offset),
            op::APPEND | op::APPENDS | op::SETITEM | op::SETITEMS | op::ADDITEMS | op::BUILD => {
                self.fill_op(input, code, opname, offset)
            }
            op::GLOBAL
            | op::STACK_GLOBAL
            | op::INST
            | op::OBJ
            | op::REDUCE
            | op::NEWOBJ
            | op::NEWOBJ_EX => self.instance_op(input, code, opname, offset),
            op::DICT
            | op::EMPTY_DICT
            | op::LIST
            | op::EMPTY_LIST
            | op::TUPLE
            | op::EMPTY_TUPLE
            | op::TUPLE1
            | op::TUPLE2
            | op::TUPLE3
            | op::EMPTY_SET
            | op::FROZENSET => self.container_op(code, opname, offset),
            op::GET
            | op::BINGET
            | op::LONG_BINGET
            | op::PUT
            | op::BINPUT
            | op::LONG_BINPUT
            | op::MEMOIZE => self.memo_op(input, code, opname, offset),
            op::PROTO | op::FRAME => self.stream_op(input, code, opname, offset),
            _ => Err(Self::unknown_opcode(code, offset)),
        }
    }

    fn unknown_opcode(code: u8, offset: u64) -> PickleError {
        PickleError::UnknownOpcode {
            opcode: code,
            offset,
        }
    }

    /// The mark stack and the top of the stack: `MARK`, `POP`, `POP_MARK`, `DUP`.
    fn stack_op(&mut self, code: u8, opname: &'static str, offset: u64) -> Result<()> {
        match code {
            op::MARK => {
                if self.marks.len() >= self.limits.max_marks {
                    return Err(PickleError::LimitExceeded {
                        what: "open MARKs",
                        limit: self.limits.max_marks as u64,
                    });
                }
                let stack = std::mem::take(&mut self.stack);
                self.marks.push(stack);
            }
            op::POP => {
                if self.stack.is_empty() {
                    self.pop_mark(opname, offset)?;
                } else {
                    self.pop(opname, offset)?;
                }
            }
            op::POP_MARK => {
                self.pop_mark(opname, offset)?;
            }
            op::DUP => {
                let v = self.top(opname, offset)?;
                self.push(v)?;
            }
            _ => return Err(Self::unknown_opcode(code, offset)),
        }
        Ok(())
    }

    /// Filling the object on top of the stack: items of lists, dicts and sets, `BUILD`'s state.
    fn fill_op(
        &mut self,
        input: &mut Input<'a>,
        code: u8,
        opname: &'static str,
        offset: u64,
    ) -> Result<()> {
        match code {
            op::APPEND => {
                let v = self.pop(opname, offset)?;
                let target = self.top(opname, offset)?;
                self.append_to(target, vec![v], opname, offset)?;
            }
            op::APPENDS => {
                let items = self.pop_mark(opname, offset)?;
                let target = self.top(opname, offset)?;
                self.append_to(target, items, opname, offset)?;
            }
            op::SETITEM => {
                let value = self.pop(opname, offset)?;
                let key = self.pop(opname, offset)?;
                let target = self.top(opname, offset)?;
                self.set_items(target, vec![key, value], opname, offset)?;
            }
            op::SETITEMS => {
                let items = self.pop_mark(opname, offset)?;
                let target = self.top(opname, offset)?;
                self.set_items(target, items, opname, offset)?;
            }
            op::ADDITEMS => {
                let items = self.pop_mark(opname, offset)?;
                let target = self.top(opname, offset)?;
                self.add_items(target, items, offset)?;
            }
            op::BUILD => self.build(input, offset)?,
            _ => return Err(Self::unknown_opcode(code, offset)),
        }
        Ok(())
    }

    /// Names and the objects made from them: globals, `INST`, `OBJ`, `REDUCE`, `NEWOBJ(_EX)`.
    fn instance_op(
        &mut self,
        input: &mut Input<'a>,
        code: u8,
        opname: &'static str,
        offset: u64,
    ) -> Result<()> {
        match code {
            op::GLOBAL => {
                let v = self.text_global(input, offset, opname, false)?;
                self.push(v)?;
            }
            op::STACK_GLOBAL => {
                let name_v = self.pop(opname, offset)?;
                let module_v = self.pop(opname, offset)?;
                let (Some(module), Some(name)) = (self.arena.str(module_v), self.arena.str(name_v))
                else {
                    return Err(Self::malformed(
                        opname,
                        offset,
                        "STACK_GLOBAL requires two str constants (module, name)",
                    ));
                };
                let (module, name) = (module.to_string(), name.to_string());
                let v = self.global(&module, &name, offset)?;
                self.push(v)?;
            }
            op::INST => {
                let cls = self.text_global(input, offset, opname, true)?;
                let items = self.pop_mark(opname, offset)?;
                let args = self.tuple(items)?;
                let v = self.instance(How::Inst, cls, args, None, offset)?;
                self.push(v)?;
            }
            op::OBJ => {
                let mut items = self.pop_mark(opname, offset)?;
                if items.is_empty() {
                    return Err(PickleError::StackUnderflow {
                        opcode: opname,
                        offset,
                    });
                }
                let cls = items.remove(0);
                let args = self.tuple(items)?;
                let v = self.instance(How::Obj, cls, args, None, offset)?;
                self.push(v)?;
            }
            op::REDUCE => {
                let args = self.pop(opname, offset)?;
                let callable = self.top(opname, offset)?;
                let v = self.instance(How::Reduce, callable, args, None, offset)?;
                self.set_top(v);
            }
            op::NEWOBJ => {
                let args = self.pop(opname, offset)?;
                let cls = self.pop(opname, offset)?;
                let v = self.instance(How::NewObj, cls, args, None, offset)?;
                self.push(v)?;
            }
            op::NEWOBJ_EX => {
                let kwargs = self.pop(opname, offset)?;
                let args = self.pop(opname, offset)?;
                let cls = self.pop(opname, offset)?;
                let v = self.instance(How::NewObjEx, cls, args, Some(kwargs), offset)?;
                self.push(v)?;
            }
            _ => return Err(Self::unknown_opcode(code, offset)),
        }
        Ok(())
    }

    /// Dicts, lists, tuples and sets made from the stack.
    fn container_op(&mut self, code: u8, opname: &'static str, offset: u64) -> Result<()> {
        match code {
            op::DICT => {
                let items = self.pop_mark(opname, offset)?;
                if items.len() % 2 != 0 {
                    return Err(Self::malformed(opname, offset, "odd number of items"));
                }
                self.charge_values(items.len())?;
                let pairs = items.chunks_exact(2).map(|p| (p[0], p[1])).collect();
                self.push_item(Item::Dict(pairs))?;
            }
            op::EMPTY_DICT => self.push_item(Item::Dict(Vec::new()))?,
            op::LIST => {
                let items = self.pop_mark(opname, offset)?;
                self.charge_values(items.len())?;
                self.push_item(Item::List(items))?;
            }
            op::EMPTY_LIST => self.push_item(Item::List(Vec::new()))?,
            op::TUPLE => {
                let items = self.pop_mark(opname, offset)?;
                let v = self.tuple(items)?;
                self.push(v)?;
            }
            op::EMPTY_TUPLE => {
                let v = self.tuple(Vec::new())?;
                self.push(v)?;
            }
            op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                let n = usize::from(code - op::TUPLE1) + 1;
                if self.stack.len() < n {
                    return Err(PickleError::StackUnderflow {
                        opcode: opname,
                        offset,
                    });
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.depth -= n;
                let v = self.tuple(items)?;
                self.push(v)?;
            }
            op::EMPTY_SET => self.push_item(Item::Set(Vec::new()))?,
            op::FROZENSET => {
                let items = self.pop_mark(opname, offset)?;
                self.charge_values(items.len())?;
                self.push_item(Item::FrozenSet(items))?;
            }
            _ => return Err(Self::unknown_opcode(code, offset)),
        }
        Ok(())
    }

    /// The memo: `GET`, `PUT` and their binary forms, `MEMOIZE`.
    fn memo_op(
        &mut self,
        input: &mut Input<'a>,
        code: u8,
        opname: &'static str,
        offset: u64,
    ) -> Result<()> {
        match code {
            op::GET => {
                let index = self.line_index(input, opname, offset)?;
                self.memo_get(index, opname, offset)?;
            }
            op::BINGET => {
                let [i] = self.read_array::<1>(input, opname)?;
                self.memo_get(u64::from(i), opname, offset)?;
            }
            op::LONG_BINGET => {
                let i = u32::from_le_bytes(self.read_array::<4>(input, opname)?);
                self.memo_get(u64::from(i), opname, offset)?;
            }
            op::PUT => {
                let index = self.line_index(input, opname, offset)?;
                self.memo_put(index, opname, offset)?;
            }
            op::BINPUT => {
                let [i] = self.read_array::<1>(input, opname)?;
                self.memo_put(u64::from(i), opname, offset)?;
            }
            op::LONG_BINPUT => {
                let i = u32::from_le_bytes(self.read_array::<4>(input, opname)?);
                self.memo_put(u64::from(i), opname, offset)?;
            }
            op::MEMOIZE => {
                let index = self.memo.len() as u64;
                self.memo_put(index, opname, offset)?;
            }
            _ => return Err(Self::unknown_opcode(code, offset)),
        }
        Ok(())
    }

    /// The stream itself: `PROTO` and `FRAME`.
    fn stream_op(
        &mut self,
        input: &mut Input<'a>,
        code: u8,
        opname: &'static str,
        offset: u64,
    ) -> Result<()> {
        match code {
            op::PROTO => {
                let [p] = self.read_array::<1>(input, opname)?;
                if p > 5 {
                    return Err(Self::malformed(
                        opname,
                        offset,
                        format!("unsupported pickle protocol: {p}"),
                    ));
                }
                self.proto = p;
                self.log.protocol = Some(self.log.protocol.map_or(p, |q| q.max(p)));
            }
            op::FRAME => {
                let len = u64::from_le_bytes(self.read_array::<8>(input, opname)?);
                self.frames.start(input, len, offset as usize)?;
            }
            _ => return Err(Self::unknown_opcode(code, offset)),
        }
        Ok(())
    }
}
