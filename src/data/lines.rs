//! A line reader for text snapshots: counts lines, checks UTF-8, can look at the first non-blank
//! line without consuming it, and makes errors that name file and line.
//!
//! Must not import: anything above `src/data`; the format readers (they import it).

use std::io::BufRead;
use std::path::Path;

use super::{DataError, Problem};

/// Line reader that counts lines, checks UTF-8 and can look at the first non-blank line.
pub(super) struct Lines<'a, R> {
    reader: &'a mut R,
    /// The file, for errors.
    pub(super) path: &'a Path,
    buf: Vec<u8>,
    line: usize,
    peeked: bool,
}

impl<'a, R: BufRead> Lines<'a, R> {
    pub(super) fn new(reader: &'a mut R, path: &'a Path) -> Self {
        Self {
            reader,
            path,
            buf: Vec::with_capacity(1 << 16),
            line: 0,
            peeked: false,
        }
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
        self.reader
            .read_to_end(&mut text)
            .map_err(|source| DataError::Io {
                path: self.path.to_owned(),
                source,
            })?;
        Ok((first_line, text))
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
