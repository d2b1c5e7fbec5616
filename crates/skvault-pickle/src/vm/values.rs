//! Opcodes that push numbers, strings and bytes, and those this reader refuses.

use std::borrow::Cow;

use super::Machine;
use crate::error::{PickleError, Result};
use crate::input::Input;
use crate::opcodes as op;
use crate::text::{self, PyInt, PyStr};
use crate::value::{BigInt, Item, V};

impl<'a> Machine<'a, '_> {
    fn push_str(&mut self, s: PyStr) -> Result<()> {
        self.arena.charge(s_len(&s))?;
        match s {
            PyStr::Utf8(s) => self.push_item(Item::Str(Cow::Owned(s))),
            PyStr::Surrogates(b) => self.push_item(Item::StrSurrogates(Cow::Owned(b))),
        }
    }

    /// Bytes that the default unpickler decodes as ASCII into a str (Python 2 `str`).
    fn push_ascii(&mut self, b: &'a [u8], opcode: &'static str, offset: u64) -> Result<()> {
        let s = std::str::from_utf8(b)
            .ok()
            .filter(|s| s.is_ascii())
            .ok_or_else(|| {
                Self::malformed(
                    opcode,
                    offset,
                    "non-ASCII Python 2 string (the unpickler decodes them as ASCII)",
                )
            })?;
        self.push_item(Item::Str(Cow::Borrowed(s)))
    }

    fn push_int(&mut self, v: PyInt) -> Result<()> {
        match v {
            PyInt::Small(i) => self.push(V::Int(i)),
            PyInt::Big(s) => self.push_item(Item::BigInt(BigInt::Dec(s))),
        }
    }

    fn push_long_bytes(&mut self, b: &'a [u8]) -> Result<()> {
        match text::le_to_i64(b) {
            Some(i) => self.push(V::Int(i)),
            None => self.push_item(Item::BigInt(BigInt::Le(b))),
        }
    }

    /// Handles `code` if it is a number, string or refused opcode.
    pub(super) fn value_op(
        &mut self,
        input: &mut Input<'a>,
        code: u8,
        opname: &'static str,
        offset: u64,
    ) -> Result<bool> {
        match code {
            op::FLOAT => {
                let line = self.read_line(input, opname)?;
                let x = text::parse_float(line).map_err(|e| Self::malformed(opname, offset, e))?;
                self.push(V::Float(x))?;
            }
            op::BINFLOAT => {
                let b = self.read_array::<8>(input, opname)?;
                self.push(V::Float(f64::from_be_bytes(b)))?;
            }
            op::INT => {
                let line = self.read_line(input, opname)?;
                match line {
                    b"00" => self.push(V::Bool(false))?,
                    b"01" => self.push(V::Bool(true))?,
                    _ => {
                        let v = text::parse_decimal(line)
                            .map_err(|e| Self::malformed(opname, offset, e))?;
                        self.push_int(v)?;
                    }
                }
            }
            op::LONG => {
                let line = self.read_line(input, opname)?;
                let line = line.strip_suffix(b"L").unwrap_or(line);
                let v =
                    text::parse_decimal(line).map_err(|e| Self::malformed(opname, offset, e))?;
                self.push_int(v)?;
            }
            op::BININT => {
                let b = self.read_array::<4>(input, opname)?;
                self.push(V::Int(i64::from(i32::from_le_bytes(b))))?;
            }
            op::BININT1 => {
                let [b] = self.read_array::<1>(input, opname)?;
                self.push(V::Int(i64::from(b)))?;
            }
            op::BININT2 => {
                let b = self.read_array::<2>(input, opname)?;
                self.push(V::Int(i64::from(u16::from_le_bytes(b))))?;
            }
            op::LONG1 => {
                let [n] = self.read_array::<1>(input, opname)?;
                let b = self.read_counted(input, u64::from(n), opname, offset)?;
                self.push_long_bytes(b)?;
            }
            op::LONG4 => {
                let n = i32::from_le_bytes(self.read_array::<4>(input, opname)?);
                let n = u64::try_from(n)
                    .map_err(|_| Self::malformed(opname, offset, "negative byte count"))?;
                let b = self.read_counted(input, n, opname, offset)?;
                self.push_long_bytes(b)?;
            }
            op::NONE => self.push(V::None)?,
            op::NEWTRUE => self.push(V::Bool(true))?,
            op::NEWFALSE => self.push(V::Bool(false))?,
            op::PERSID => {
                self.read_line(input, opname)?;
                return Err(PickleError::Unsupported {
                    opcode: opname,
                    offset,
                    reason: "persistent ids need a persistent_load of the application",
                });
            }
            op::BINPERSID => {
                return Err(PickleError::Unsupported {
                    opcode: opname,
                    offset,
                    reason: "persistent ids need a persistent_load of the application",
                })
            }
            op::EXT1 | op::EXT2 | op::EXT4 => {
                return Err(PickleError::Unsupported {
                    opcode: opname,
                    offset,
                    reason: "extension codes refer to the copyreg registry of the loading process",
                })
            }
            op::NEXT_BUFFER | op::READONLY_BUFFER => {
                return Err(PickleError::Unsupported {
                    opcode: opname,
                    offset,
                    reason: "out-of-band buffers (protocol 5) are not provided",
                })
            }
            op::STRING => {
                let line = self.read_line(input, opname)?;
                let inner = match line {
                    [q @ (b'"' | b'\''), inner @ .., last] if q == last => inner,
                    _ => return Err(Self::malformed(opname, offset, "argument must be quoted")),
                };
                let bytes =
                    text::escape_decode(inner).map_err(|e| Self::malformed(opname, offset, e))?;
                let s = String::from_utf8(bytes)
                    .ok()
                    .filter(|s| s.is_ascii())
                    .ok_or_else(|| Self::malformed(opname, offset, "non-ASCII Python 2 string"))?;
                self.push_str(PyStr::Utf8(s))?;
            }
            op::BINSTRING => {
                let n = i32::from_le_bytes(self.read_array::<4>(input, opname)?);
                let n = u64::try_from(n)
                    .map_err(|_| Self::malformed(opname, offset, "negative byte count"))?;
                let b = self.read_counted(input, n, opname, offset)?;
                self.push_ascii(b, opname, offset)?;
            }
            op::SHORT_BINSTRING => {
                let [n] = self.read_array::<1>(input, opname)?;
                let b = self.read_counted(input, u64::from(n), opname, offset)?;
                self.push_ascii(b, opname, offset)?;
            }
            op::UNICODE => {
                let line = self.read_line(input, opname)?;
                let s = text::raw_unicode_escape(line)
                    .map_err(|e| Self::malformed(opname, offset, e))?;
                self.push_str(s)?;
            }
            op::BINUNICODE | op::SHORT_BINUNICODE | op::BINUNICODE8 => {
                let n = self.length(input, code, opname)?;
                let b = self.read_counted(input, n, opname, offset)?;
                let item = match std::str::from_utf8(b) {
                    Ok(s) => Item::Str(Cow::Borrowed(s)),
                    Err(_) => match text::utf8_surrogatepass(b) {
                        Some(_) => Item::StrSurrogates(Cow::Borrowed(b)),
                        None => return Err(Self::malformed(opname, offset, "invalid UTF-8")),
                    },
                };
                self.push_item(item)?;
            }
            op::BINBYTES | op::SHORT_BINBYTES | op::BINBYTES8 => {
                let n = self.length(input, code, opname)?;
                let b = self.read_counted(input, n, opname, offset)?;
                self.push_item(Item::Bytes(Cow::Borrowed(b)))?;
            }
            op::BYTEARRAY8 => {
                let n = self.length(input, code, opname)?;
                let b = self.read_counted(input, n, opname, offset)?;
                self.push_item(Item::ByteArray(Cow::Borrowed(b)))?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The length prefix of the 1-, 4- and 8-byte variants of the string opcodes.
    fn length(&mut self, input: &mut Input<'a>, code: u8, opname: &'static str) -> Result<u64> {
        Ok(match code {
            op::SHORT_BINUNICODE | op::SHORT_BINBYTES => {
                u64::from(self.read_array::<1>(input, opname)?[0])
            }
            op::BINUNICODE | op::BINBYTES => {
                u64::from(u32::from_le_bytes(self.read_array::<4>(input, opname)?))
            }
            _ => u64::from_le_bytes(self.read_array::<8>(input, opname)?),
        })
    }
}

fn s_len(s: &PyStr) -> u64 {
    match s {
        PyStr::Utf8(s) => s.len() as u64,
        PyStr::Surrogates(b) => b.len() as u64,
    }
}
