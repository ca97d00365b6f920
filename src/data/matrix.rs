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

/// Lines per parallel block: enough blocks for both cores to finish together on the seed's
/// 1,200-line matrix (256 made five blocks, three of them on one core).
const BLOCK_LINES: usize = 64;

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
    let lines = split_lines(text);
    let Some(rows) = rows(&lines).map_err(error)? else {
        return Ok((
            RatingsBuilder::new(0).finish(),
            IdMap::Positional(0),
            IdMap::Positional(0),
        ));
    };
    let n_cols = tokens(lines[rows.start]).count();
    let ratings = parse_rows(&lines, rows.clone(), n_cols, scale).map_err(error)?;
    Ok((
        ratings,
        IdMap::Positional(rows.len()),
        IdMap::Positional(n_cols),
    ))
}

/// `text` cut at each `\n` (a last piece after the last one, empty if the text ends with one),
/// a `\r` before it dropped. The line ends are found by `memchr`, many bytes at a time.
fn split_lines(text: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', text) {
        lines.push(without_cr(&text[start..end]));
        start = end + 1;
    }
    lines.push(without_cr(&text[start..]));
    lines
}

fn without_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
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
///
/// Every block parses into its own stretch of one pair of arrays with room for every cell (a
/// rating per two bytes of text at most, as the reader's memory guard assumes), and the
/// stretches then close up in order: no per-block buffers to allocate, fault in and copy.
fn parse_rows(
    lines: &[&[u8]],
    rows: Range<usize>,
    n_cols: usize,
    scale: Option<RatingScale>,
) -> Result<Ratings, (usize, Problem)> {
    if let Some(counts) = digit_counts(lines, rows.clone(), n_cols) {
        return parse_digit_rows(lines, rows, n_cols, scale, &counts);
    }
    let stretch = (BLOCK_LINES * n_cols).max(1);
    let (mut items, mut values) = (
        vec![0u32; rows.len() * n_cols],
        vec![0f32; rows.len() * n_cols],
    );
    let blocks: Vec<_> = rows
        .clone()
        .step_by(BLOCK_LINES)
        .map(|s| s..(s + BLOCK_LINES).min(rows.end))
        .zip(items.chunks_mut(stretch).zip(values.chunks_mut(stretch)))
        .collect();
    let lens: Vec<Vec<u32>> = blocks
        .into_par_iter()
        .map(|(r, (items, values))| parse_block(lines, r, n_cols, scale, items, values))
        .collect::<Vec<_>>()
        .into_iter()
        .collect::<Result<_, _>>()?;
    let mut offsets = Vec::with_capacity(rows.len() + 1);
    offsets.push(0u64);
    let mut end = 0;
    for (b, block) in lens.iter().enumerate() {
        let kept = block.iter().map(|&n| n as usize).sum::<usize>();
        items.copy_within(b * stretch..b * stretch + kept, end);
        values.copy_within(b * stretch..b * stretch + kept, end);
        end += kept;
        for &n in block {
            offsets.push(offsets.last().expect("non-empty") + u64::from(n));
        }
    }
    items.truncate(end);
    values.truncate(end);
    items.shrink_to_fit();
    values.shrink_to_fit();
    Ok(Ratings::from_parts(offsets, items, values, n_cols))
}

/// Each row's number of ratings where every row is one-digit tokens one space apart (every
/// row of the seed's matrices), `None` as soon as one is not: the digit rows' shape checked
/// and their non-zero digits counted in one branch-free pass a row, on every core.
fn digit_counts(lines: &[&[u8]], rows: Range<usize>, n_cols: usize) -> Option<Vec<u32>> {
    lines[rows]
        .par_iter()
        .map(|line| digit_shape(line, n_cols))
        .collect()
}

/// The number of non-zero digits of `line` if it is `n_cols` one-digit tokens one space apart
/// (trailing whitespace aside), else `None`.
fn digit_shape(line: &[u8], n_cols: usize) -> Option<u32> {
    let line = line.trim_ascii_end();
    if n_cols == 0 || line.len() != 2 * n_cols - 1 {
        return None;
    }
    let (pairs, last) = line.split_at(2 * n_cols - 2);
    let not_digit = |b: u8| b.wrapping_sub(b'0') > 9;
    let (odd, count) = pairs
        .chunks_exact(2)
        .fold((false, 0u32), |(odd, count), p| {
            (
                odd | not_digit(p[0]) | (p[1] != b' '),
                count + u32::from(p[0] != b'0'),
            )
        });
    (!odd && !not_digit(last[0])).then_some(count + u32::from(last[0] != b'0'))
}

/// [`parse_rows`] for rows of one-digit tokens whose ratings `counts` gave ([`digit_counts`]):
/// each row is read by position straight to its place in arrays of exactly the ratings' size,
/// blocks on every core. Nothing is closed up or shrunk after (the general path's copy of
/// every rating, on one core, was a third of the seed's parse), and no room for the missing
/// cells is faulted in. A row with a digit off the scale goes through the token walk, which
/// reports it; the first error by line wins, as on the general path.
fn parse_digit_rows(
    lines: &[&[u8]],
    rows: Range<usize>,
    n_cols: usize,
    scale: Option<RatingScale>,
    counts: &[u32],
) -> Result<Ratings, (usize, Problem)> {
    let mut offsets = Vec::with_capacity(counts.len() + 1);
    offsets.push(0u64);
    for &n in counts {
        offsets.push(offsets.last().expect("non-empty") + u64::from(n));
    }
    let nnz = *offsets.last().expect("non-empty") as usize;
    let (mut items, mut values) = (vec![0u32; nnz], vec![0f32; nnz]);
    let mut blocks = Vec::new();
    let (mut rest_items, mut rest_values) = (&mut items[..], &mut values[..]);
    for start in (0..counts.len()).step_by(BLOCK_LINES) {
        let end = (start + BLOCK_LINES).min(counts.len());
        let len = (offsets[end] - offsets[start]) as usize;
        let (block_items, tail_items) = rest_items.split_at_mut(len);
        let (block_values, tail_values) = rest_values.split_at_mut(len);
        blocks.push((start..end, block_items, block_values));
        (rest_items, rest_values) = (tail_items, tail_values);
    }
    let first = rows.start;
    let done: Vec<Result<(), (usize, Problem)>> = blocks
        .into_par_iter()
        .map(|(block, mut items, mut values)| {
            for r in block {
                let n = counts[r] as usize;
                let (row_items, rest_items) = items.split_at_mut(n);
                let (row_values, rest_values) = values.split_at_mut(n);
                (items, values) = (rest_items, rest_values);
                let line = lines[first + r];
                let seen = digits_into(line, row_items, row_values);
                if scale.is_some_and(|s| off_scale(seen, s)) {
                    let (mut all_items, mut all_values) = (vec![0; n_cols], vec![0.0; n_cols]);
                    let kept = parse_row(line, scale, &mut all_items, &mut all_values)
                        .map_err(|p| (first + r, p))?;
                    row_items.copy_from_slice(&all_items[..kept]);
                    row_values.copy_from_slice(&all_values[..kept]);
                }
            }
            Ok(())
        })
        .collect();
    done.into_iter().collect::<Result<(), _>>()?;
    Ok(Ratings::from_parts(offsets, items, values, n_cols))
}

/// The non-zero digits of a digit row (checked by [`digit_shape`]) written to `items` and
/// `values`, which hold that many or more (a row's room for every column); the set of digits
/// seen, bit d for digit d. The trailing whitespace `digit_shape` allows is not read.
fn digits_into(line: &[u8], items: &mut [u32], values: &mut [f32]) -> u16 {
    let (mut kept, mut seen) = (0, 0u16);
    for (l, &b) in line.trim_ascii_end().iter().step_by(2).enumerate() {
        let digit = b - b'0';
        // Every column is written where the next rating goes (no branch on the gaps); past
        // the row's last rating, nowhere.
        if let (Some(item), Some(value)) = (items.get_mut(kept), values.get_mut(kept)) {
            (*item, *value) = (l as u32, f32::from(digit));
        }
        kept += usize::from(digit != 0);
        seen |= 1 << digit;
    }
    seen
}

/// Whether any digit of `seen` (bit d for digit d, 0 the missing entry) is a rating outside
/// `scale`.
fn off_scale(seen: u16, scale: RatingScale) -> bool {
    (1..10u8).any(|d| seen & (1 << d) != 0 && !scale.contains(d.into()))
}

/// The non-empty whitespace-separated tokens of a line.
fn tokens(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(u8::is_ascii_whitespace)
        .filter(|t| !t.is_empty())
}

/// Parses lines `range` into `items` and `values`, row after row; returns each row's number
/// of ratings. An error carries the index of its line.
fn parse_block(
    lines: &[&[u8]],
    range: Range<usize>,
    n_cols: usize,
    scale: Option<RatingScale>,
    items: &mut [u32],
    values: &mut [f32],
) -> Result<Vec<u32>, (usize, Problem)> {
    let mut lens = Vec::with_capacity(range.len());
    let mut at = 0;
    for line in range {
        let room = at..at + n_cols;
        let kept = parse_row(
            lines[line],
            scale,
            &mut items[room.clone()],
            &mut values[room],
        )
        .map_err(|p| (line, p))?;
        lens.push(kept as u32);
        at += kept;
    }
    Ok(lens)
}

/// Parses one row into `items` and `values` (room for one rating a column); returns how many
/// it holds. A one-digit token (a rating on a 1–5 or 0–9 scale, or the 0 of a missing entry:
/// nearly every token of a dense matrix) is read where it stands; longer tokens go through the
/// general field parser. Every column is written and a missing one is overwritten by the next:
/// no branch on the matrix's gaps, which are as unpredictable as the data.
fn parse_row(
    line: &[u8],
    scale: Option<RatingScale>,
    items: &mut [u32],
    values: &mut [f32],
) -> Result<usize, Problem> {
    if let Some(kept) = digit_row(line, scale, items, values) {
        return Ok(kept);
    }
    let n_cols = items.len();
    let (mut found, mut kept, mut at) = (0, 0, 0);
    while at < line.len() {
        if line[at].is_ascii_whitespace() {
            at += 1;
            continue;
        }
        let start = at;
        while at < line.len() && !line[at].is_ascii_whitespace() {
            at += 1;
        }
        found += 1;
        if found > n_cols {
            continue; // keep counting, for the message
        }
        let x = match &line[start..at] {
            [digit @ b'0'..=b'9'] => f64::from(digit - b'0'),
            tok => token_value(tok, found)?,
        };
        if scale.is_some() && x != 0.0 {
            check_scale(x, found, scale)?;
        }
        items[kept] = found as u32 - 1;
        values[kept] = x as f32;
        kept += usize::from(x != 0.0);
    }
    if found == n_cols {
        Ok(kept)
    } else {
        Err(Problem::Ragged {
            expected: n_cols,
            found,
        })
    }
}

/// [`parse_row`] for a row of one-digit tokens one space apart (the seed's matrices: every row
/// of a dense matrix of ratings on a 1–5 or 0–9 scale), read by position without walking its
/// tokens; `None` for any other row, or one with a digit off the scale, which the token walk
/// then reads and reports. The same ratings as the walk.
fn digit_row(
    line: &[u8],
    scale: Option<RatingScale>,
    items: &mut [u32],
    values: &mut [f32],
) -> Option<usize> {
    let kept = digit_shape(line, items.len())? as usize;
    let seen = digits_into(line, items, values);
    // Every rating on the scale, or the walk reports the first that is not.
    (!scale.is_some_and(|s| off_scale(seen, s))).then_some(kept)
}

/// A token of more than one digit, or not a plain number.
fn token_value(tok: &[u8], field: usize) -> Result<f64, Problem> {
    match small_integer(tok) {
        Some(x) => Ok(x),
        None => parse_value(
            std::str::from_utf8(tok).map_err(|_| Problem::NotUtf8)?,
            field,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 200 rows × 30 columns (four blocks of lines), about a third missing, some two-digit and
    /// fractional ratings among the one-digit ones.
    fn rows() -> Vec<Vec<f64>> {
        (0..200)
            .map(|u| {
                (0..30)
                    .map(|l| match (u * 31 + l * 17) % 9 {
                        0..=2 => 0.0,
                        3 => 10.0,
                        4 => 2.5,
                        h => (h - 4) as f64,
                    })
                    .collect()
            })
            .collect()
    }

    fn text(rows: &[Vec<f64>]) -> String {
        let line = |r: &Vec<f64>| {
            r.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        rows.iter().map(line).collect::<Vec<_>>().join("\n") + "\n"
    }

    #[test]
    fn blocks_of_rows_join_into_the_matrix_it_wrote() {
        let rows = rows();
        let (r, users, items) = parse(text(&rows).as_bytes(), 1, Path::new("m.txt"), None).unwrap();
        assert_eq!(r, Ratings::from_dense_rows(&rows));
        assert!(matches!(
            (users, items),
            (IdMap::Positional(200), IdMap::Positional(30))
        ));
    }

    #[test]
    fn the_first_bad_row_by_line_is_reported_whatever_block_it_is_in() {
        let mut rows = rows();
        rows[170].pop();
        rows[100].push(1.0);
        let err = parse(text(&rows).as_bytes(), 3, Path::new("m.txt"), None).unwrap_err();
        match err {
            DataError::Parse { line, problem, .. } => {
                assert_eq!(line, 103, "row 100 is the file's line 103");
                assert_eq!(
                    problem,
                    Problem::Ragged {
                        expected: 30,
                        found: 31
                    }
                );
            }
            other => panic!("{other:?}"),
        }
    }

    /// `n` rows of 23 one-digit ratings 0–5 (0 missing).
    fn digit_rows(n: usize) -> Vec<Vec<f64>> {
        (0..n)
            .map(|u| (0..23).map(|l| ((u * 7 + l * 3) % 6) as f64).collect())
            .collect()
    }

    #[test]
    fn rows_of_single_digits_read_by_position_give_what_the_token_walk_gives() {
        // One-digit ratings 0–5 (0 missing), one space apart: the positional read. Row 7 has a
        // trailing space and a CR, row 9 a double space (the walk), row 11 is all missing.
        let mut rows = digit_rows(40);
        rows[11].iter_mut().for_each(|x| *x = 0.0);
        let mut lines: Vec<String> = text(&rows).lines().map(str::to_owned).collect();
        lines[7].push_str(" \r");
        lines[9] = lines[9].replacen(' ', "  ", 1);
        let body = lines.join("\n");
        let scale = Some(RatingScale { min: 1.0, max: 5.0 });
        for scale in [None, scale] {
            let (r, _, items) = parse(body.as_bytes(), 1, Path::new("m.txt"), scale).unwrap();
            assert_eq!(r, Ratings::from_dense_rows(&rows));
            assert!(matches!(items, IdMap::Positional(23)));
        }
        // Row 9 sends the whole matrix down the general path, which reads the other rows by
        // position one by one.
        let split: Vec<&[u8]> = lines.iter().map(|l| without_cr(l.as_bytes())).collect();
        assert_eq!(digit_counts(&split, 0..40, 23), None);
        let mut row = [0u32; 23];
        let mut values = [0f32; 23];
        assert_eq!(
            digit_row(lines[3].as_bytes(), scale, &mut row, &mut values),
            Some(rows[3].iter().filter(|&&x| x != 0.0).count())
        );
        assert_eq!(
            digit_row(lines[9].as_bytes(), scale, &mut row, &mut values),
            None
        );

        // A digit off the scale is reported by field, as the walk reports it.
        lines[20] = lines[20].replacen('5', "7", 1);
        assert_seven_off_the_scale(&lines, 20);
    }

    /// Parsing `lines` on a 1–5 scale fails at row `row` (line `row + 1`), on the field of its
    /// first 7.
    fn assert_seven_off_the_scale(lines: &[String], row: usize) {
        let field = lines[row].split(' ').position(|t| t == "7").unwrap() + 1;
        let scale = Some(RatingScale { min: 1.0, max: 5.0 });
        let err = parse(lines.join("\n").as_bytes(), 1, Path::new("m.txt"), scale).unwrap_err();
        match err {
            DataError::Parse { line, problem, .. } => {
                assert_eq!(line, row + 1);
                assert_eq!(
                    problem,
                    Problem::OutOfScale {
                        field,
                        value: 7.0,
                        min: 1.0,
                        max: 5.0
                    }
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_matrix_of_digit_rows_is_read_to_its_place_block_by_block() {
        // 150 rows (three blocks) of one-digit ratings 0–5: row 7 ends in a space and a CR,
        // row 11 is all missing, row 100 ends in missing entries, row 120 starts with them.
        let mut rows = digit_rows(150);
        rows[11].iter_mut().for_each(|x| *x = 0.0);
        rows[100][15..].iter_mut().for_each(|x| *x = 0.0);
        rows[120][..9].iter_mut().for_each(|x| *x = 0.0);
        let mut lines: Vec<String> = text(&rows).lines().map(str::to_owned).collect();
        lines[7].push_str(" \r");
        // Trailing whitespace past one space is not a column (read by position, it would be).
        lines[8].push_str("  \t ");
        let body = lines.join("\n");
        let split = split_lines(body.as_bytes());
        let counts = digit_counts(&split, 0..150, 23).expect("every row is a digit row");
        let want = Ratings::from_dense_rows(&rows);
        assert!((0..150).all(|u| counts[u] as usize == want.row(u).0.len()));
        let scale = Some(RatingScale { min: 1.0, max: 5.0 });
        for scale in [None, scale] {
            let (r, _, _) = parse(body.as_bytes(), 1, Path::new("m.txt"), scale).unwrap();
            assert_eq!(r, want);
        }

        // Digits off the scale in rows 131 and 71 (other blocks): the first by line is
        // reported, by field, as the token walk reports it.
        lines[131] = lines[131].replacen('5', "9", 1);
        lines[71] = lines[71].replacen('5', "7", 1);
        assert_seven_off_the_scale(&lines, 71);
        // Without a scale every digit is a rating, in its place.
        let field = lines[71].split(' ').position(|t| t == "7").unwrap() + 1;
        let (r, _, _) = parse(lines.join("\n").as_bytes(), 1, Path::new("m.txt"), None).unwrap();
        assert_eq!(r.get(71, field as u32 - 1), Some(7.0));
        assert_eq!(r.nnz(), want.nnz());
    }
}
