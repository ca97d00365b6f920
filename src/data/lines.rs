//! A line reader for text snapshots: counts lines, checks UTF-8, can look at the first non-blank
//! line without consuming it, and makes errors that name file and line.
//!
//! Must not import: anything above `src/data`; the format readers (they import it).

use std::io::{BufRead, Read};
use std::path::Path;

use super::{DataError, Guard, Problem};

/// Lines read between two looks at the stop flag: often enough to stop within milliseconds,
/// rarely enough to cost nothing.
const LINES_PER_CHECK: usize = 4096;
/// Bytes read at once by [`Lines::rest`] between two looks at the stop flag.
const CHUNK: usize = 1 << 20;

/// Line reader that counts lines, checks UTF-8 and can look at the first non-blank line.
pub(super) struct Lines<'a, R> {
    reader: &'a mut R,
    /// The file, for errors.
    pub(super) path: &'a Path,
    buf: Vec<u8>,
    line: usize,
    peeked: bool,
    guard: Guard<'a>,
    /// Bytes read so far, and the whole input's size (0: unknown, e.g. a FIFO).
    read: u64,
    size: u64,
}

impl<'a, R: BufRead> Lines<'a, R> {
    /// Reads `reader` (named `path` in errors, `size` bytes long, 0 if unknown), stopping
    /// with [`DataError::Cancelled`] once the guard's stop says so and with
    /// [`DataError::TooLarge`] once the ratings it will hold exceed its budget.
    pub(super) fn new(reader: &'a mut R, path: &'a Path, guard: Guard<'a>, size: u64) -> Self {
        Self {
            reader,
            path,
            buf: Vec::with_capacity(1 << 16),
            line: 0,
            peeked: false,
            guard,
            read: 0,
            size,
        }
    }

    /// [`DataError::Cancelled`] once the stop flag is up.
    fn check_stop(&self) -> Result<(), DataError> {
        match (self.guard.stop)() {
            true => Err(DataError::Cancelled {
                path: self.path.to_owned(),
            }),
            false => Ok(()),
        }
    }

    /// The stop flag, then the budget for `ratings` seen in the bytes read so far: with the
    /// size known, the ratings the whole input holds at the same density.
    fn check(&self, ratings: u64) -> Result<(), DataError> {
        self.check_stop()?;
        let Some(budget) = self.guard.budget else {
            return Ok(());
        };
        let whole = match self.size > self.read && self.read > 0 {
            true => (u128::from(ratings) * u128::from(self.size) / u128::from(self.read)) as u64,
            false => ratings,
        };
        budget.check(whole, self.path)
    }

    /// Positions on the first non-blank line without consuming it.
    pub(super) fn peek_first(&mut self) -> Result<Option<&str>, DataError> {
        loop {
            if !self.advance()? {
                return Ok(None);
            }
            if !self.text()?.trim().is_empty() {
                self.peeked = true;
                return self.text().map(Some);
            }
        }
    }

    /// Moves to the next line; false at the end.
    pub(super) fn advance(&mut self) -> Result<bool, DataError> {
        if std::mem::take(&mut self.peeked) {
            return Ok(true);
        }
        if self.line.is_multiple_of(LINES_PER_CHECK) {
            // Every line but a header holds a rating.
            self.check(self.line as u64)?;
        }
        self.buf.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.buf)
            .map_err(|source| DataError::Io {
                path: self.path.to_owned(),
                source,
            })?;
        if n == 0 {
            return Ok(false);
        }
        self.read += n as u64;
        self.line += 1;
        while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
            self.buf.pop();
        }
        Ok(true)
    }

    /// Everything not yet consumed (the peeked line included) and the line number it starts at.
    pub(super) fn rest(&mut self, size_hint: usize) -> Result<(usize, Vec<u8>), DataError> {
        let mut text = Vec::with_capacity(size_hint + 1);
        let mut first_line = self.line + 1;
        if std::mem::take(&mut self.peeked) {
            text.append(&mut self.buf);
            text.push(b'\n');
            first_line = self.line;
        }
        // In pieces, looking at the stop flag between them: a source may never end (a FIFO).
        loop {
            // A dense matrix: at most one rating per two bytes ("5 "), and the text is held too.
            self.read = text.len() as u64;
            self.check(self.read / 2)?;
            let read = (&mut *self.reader)
                .take(CHUNK as u64)
                .read_to_end(&mut text)
                .map_err(|source| DataError::Io {
                    path: self.path.to_owned(),
                    source,
                })?;
            if read == 0 {
                return Ok((first_line, text));
            }
        }
    }

    pub(super) fn text(&self) -> Result<&str, DataError> {
        std::str::from_utf8(&self.buf).map_err(|_| self.error(Problem::NotUtf8))
    }

    pub(super) fn error(&self, problem: Problem) -> DataError {
        DataError::Parse {
            path: self.path.to_owned(),
            line: self.line,
            problem,
        }
    }
}
