//! The seed's matrix format, parsed in parallel: whitespace-separated rows, one per user, one
//! column per item, `0` = missing.
//!
//! The whole text is in memory (a dense matrix is small next to what it describes); lines are
//! parsed in fixed blocks on all cores and joined in order, and the first error by line number
//! wins, so the outcome never depends on the thread count.
//!
//! Must not import: anything above `src/data`; the other readers.

use std::ops::Range;
use std::path::Path;

use rayon::prelude::*;

use super::fields::{check_scale, parse_value, small_integer};
use super::{DataError, IdMap, Problem, RatingScale, Ratings, RatingsBuilder};

/// Lines per parallel block.
const BLOCK_LINES: usize = 256;

/// One block's rows.
struct Block {
    items: Vec<u32>,
    values: Vec<f32>,
    lens: Vec<u32>,
}

/// Parses `text`, whose first line is line `first_line` of the file (1-based).
pub(super) fn parse(
    text: &[u8],
    first_line: usize,
    path: &Path,
    scale: Option<RatingScale>,
) -> Result<(Ratings, IdMap, IdMap), DataError> {
    let error = |(at, problem): (usize, Problem)| DataError::Parse {
        path: path.to_owned(),
        line: first_line + at,
        problem,
    };
    let lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect();
    let Some(rows) = rows(&lines).map_err(error)? else {
        return Ok((
            RatingsBuilder::new(0).finish(),
            IdMap::Positional(0),
            IdMap::Positional(0),
        ));
    };
    let n_cols = tokens(lines[rows.start]).count();
    let blocks = parse_blocks(&lines, rows.clone(), n_cols, scale).map_err(error)?;
    Ok((
        join(blocks, rows.len(), n_cols),
        IdMap::Positional(rows.len()),
        IdMap::Positional(n_cols),
    ))
}

/// The lines that are rows: from the first non-blank line to the last, with no blank line
/// between them; `None` when every line is blank.
fn rows(lines: &[&[u8]]) -> Result<Option<Range<usize>>, (usize, Problem)> {
    let blank = |l: &&[u8]| l.iter().all(u8::is_ascii_whitespace);
    let Some(first) = lines.iter().position(|l| !blank(l)) else {
        return Ok(None);
    };
    let last = lines
        .iter()
        .rposition(|l| !blank(l))
        .expect("a non-blank line");
    if let Some(gap) = lines[first..last].iter().position(blank) {
        return Err((first + gap, Problem::BlankLine));
    }
    if last - first >= u32::MAX as usize {
        return Err((u32::MAX as usize, Problem::TooMany("users")));
    }
    Ok(Some(first..last + 1))
}

/// The rows parsed in blocks of [`BLOCK_LINES`] on every core, in order; the first error by
/// line wins, whatever the thread count.
fn parse_blocks(
    lines: &[&[u8]],
    rows: Range<usize>,
    n_cols: usize,
    scale: Option<RatingScale>,
) -> Result<Vec<Block>, (usize, Problem)> {
    let blocks: Vec<Range<usize>> = rows
        .clone()
        .step_by(BLOCK_LINES)
        .map(|s| s..(s + BLOCK_LINES).min(rows.end))
        .collect();
    blocks
        .into_par_iter()
        .map(|r| parse_block(lines, r, n_cols, scale))
        .collect::<Vec<_>>()
        .into_iter()
        .collect()
}

/// The blocks' rows as one set of compressed rows.
fn join(blocks: Vec<Block>, n_rows: usize, n_cols: usize) -> Ratings {
    let nnz = blocks.iter().map(|b| b.items.len()).sum();
    let (mut offsets, mut items, mut values) = (
        Vec::with_capacity(n_rows + 1),
        Vec::with_capacity(nnz),
        Vec::with_capacity(nnz),
    );
    offsets.push(0u64);
    for block in blocks {
        for len in block.lens {
            offsets.push(offsets.last().expect("non-empty") + u64::from(len));
        }
        items.extend_from_slice(&block.items);
        values.extend_from_slice(&block.values);
    }
    Ratings::from_parts(offsets, items, values, n_cols)
}

/// The non-empty whitespace-separated tokens of a line.
fn tokens(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(u8::is_ascii_whitespace)
        .filter(|t| !t.is_empty())
}

/// Parses lines `range`; an error carries the index of its line.
fn parse_block(
    lines: &[&[u8]],
    range: Range<usize>,
    n_cols: usize,
    scale: Option<RatingScale>,
) -> Result<Block, (usize, Problem)> {
    // A token and its separator take at least two bytes: room enough without regrowing.
    let bytes: usize = lines[range.clone()].iter().map(|l| l.len() + 1).sum();
    let room = (bytes / 2).min(range.len() * n_cols);
    let mut block = Block {
        items: Vec::with_capacity(room),
        values: Vec::with_capacity(room),
        lens: Vec::with_capacity(range.len()),
    };
    for at in range {
        let before = block.items.len();
        parse_row(lines[at], n_cols, scale, &mut block).map_err(|p| (at, p))?;
        block.lens.push((block.items.len() - before) as u32);
    }
    Ok(block)
}

fn parse_row(
    line: &[u8],
    n_cols: usize,
    scale: Option<RatingScale>,
    out: &mut Block,
) -> Result<(), Problem> {
    let mut found = 0;
    for tok in tokens(line) {
        found += 1;
        if found > n_cols {
            continue; // keep counting, for the message
        }
        let x = match small_integer(tok) {
            Some(x) => x,
            None => parse_value(
                std::str::from_utf8(tok).map_err(|_| Problem::NotUtf8)?,
                found,
            )?,
        };
        if x != 0.0 {
            check_scale(x, found, scale)?;
            out.items.push(found as u32 - 1);
            out.values.push(x as f32);
        }
    }
    if found == n_cols {
        Ok(())
    } else {
        Err(Problem::Ragged {
            expected: n_cols,
            found,
        })
    }
}
