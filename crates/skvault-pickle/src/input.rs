//! The byte stream and protocol-4 frames, read the way `pickle._Unpickler` (the Python
//! implementation joblib uses) reads them.
//!
//! A FRAME's bytes are taken from the file at once; opcodes are then read from the frame
//! while joblib reads array data straight from the file, i.e. after the frame. Framing
//! errors that CPython's C unpickler would tolerate are errors here: a malformed stream
//! fails closed.

use crate::error::{PickleError, Result};

/// The whole stream and the position of the next unread byte (the "file").
#[derive(Debug, Clone)]
pub struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.data.len())
            .ok_or(PickleError::Truncated {
                what,
                offset: self.pos as u64,
            })?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    /// A line without its `\n`; a missing newline is a truncation.
    fn take_line(&mut self, what: &'static str) -> Result<&'a [u8]> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(PickleError::Truncated {
                what,
                offset: self.pos as u64,
            })?;
        self.pos += n + 1;
        Ok(&rest[..n])
    }
}

/// The current frame of one unpickler: `(next, end)` positions in the input.
#[derive(Debug, Default, Clone)]
pub struct Frames {
    current: Option<(usize, usize)>,
}

fn exhausted(opcode: &'static str, offset: usize) -> PickleError {
    PickleError::Malformed {
        opcode,
        offset: offset as u64,
        message: "pickle exhausted before end of frame".into(),
    }
}

impl Frames {
    /// Where the next opcode byte is.
    pub fn position(&self, input: &Input<'_>) -> usize {
        match self.current {
            Some((next, end)) if next < end => next,
            _ => input.pos(),
        }
    }

    /// Bytes left to read without going past the data.
    pub fn remaining(&self, input: &Input<'_>) -> usize {
        match self.current {
            Some((next, end)) if next < end => end - next,
            _ => input.remaining(),
        }
    }

    pub fn read<'a>(
        &mut self,
        input: &mut Input<'a>,
        n: usize,
        what: &'static str,
    ) -> Result<&'a [u8]> {
        if let Some((next, end)) = self.current {
            if next == end && n != 0 {
                self.current = None;
                return input.take(n, what);
            }
            if end - next < n {
                return Err(exhausted(what, next));
            }
            self.current = Some((next + n, end));
            return Ok(&input.data[next..next + n]);
        }
        input.take(n, what)
    }

    pub fn read_line<'a>(&mut self, input: &mut Input<'a>, what: &'static str) -> Result<&'a [u8]> {
        if let Some((next, end)) = self.current {
            if next == end {
                self.current = None;
                return input.take_line(what);
            }
            let frame = &input.data[next..end];
            let n = frame
                .iter()
                .position(|&b| b == b'\n')
                .ok_or_else(|| exhausted(what, next))?;
            self.current = Some((next + n + 1, end));
            return Ok(&frame[..n]);
        }
        input.take_line(what)
    }

    /// FRAME: the previous frame must be used up; the new one is taken from the file.
    pub fn start(&mut self, input: &mut Input<'_>, len: u64, offset: usize) -> Result<()> {
        if let Some((next, end)) = self.current {
            if next < end {
                return Err(PickleError::Malformed {
                    opcode: "FRAME",
                    offset: offset as u64,
                    message: "beginning of a new frame before end of current frame".into(),
                });
            }
        }
        let n = usize::try_from(len)
            .ok()
            .filter(|n| *n <= input.remaining())
            .ok_or(PickleError::LengthTooLarge {
                opcode: "FRAME",
                offset: offset as u64,
                length: len,
                remaining: input.remaining() as u64,
            })?;
        let start = input.pos();
        input.take(n, "FRAME")?;
        self.current = Some((start, start + n));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_reads_then_falls_back_to_the_file() {
        let data = b"abcdef";
        let mut input = Input::new(data);
        let mut frames = Frames::default();
        frames.start(&mut input, 2, 0).unwrap();
        // The file moved past the frame: a raw read gets what follows it.
        assert_eq!(input.take(1, "x").unwrap(), b"c");
        assert_eq!(frames.read(&mut input, 2, "x").unwrap(), b"ab");
        // The frame is used up: the next read comes from the file.
        assert_eq!(frames.read(&mut input, 1, "x").unwrap(), b"d");
        assert!(frames.read(&mut input, 5, "x").is_err());
    }

    #[test]
    fn reads_may_not_cross_a_frame_end() {
        let mut input = Input::new(b"abcdef");
        let mut frames = Frames::default();
        frames.start(&mut input, 2, 0).unwrap();
        assert!(matches!(
            frames.read(&mut input, 3, "x"),
            Err(PickleError::Malformed { .. })
        ));
        let mut input = Input::new(b"ab\ncd");
        let mut frames = Frames::default();
        frames.start(&mut input, 2, 0).unwrap();
        assert!(frames.read_line(&mut input, "x").is_err());
        assert!(frames.start(&mut input, 1, 0).is_err());
    }
}
