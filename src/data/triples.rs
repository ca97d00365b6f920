//! The `triples` format: `user,item,rating[,timestamp]` lines as CSV, TSV or `::`-separated,
//! header optional, read into the row collector (`collect.rs`); a user-item pair rated twice is
//! an error naming both lines, or under `latest` the later rating (by the fourth field, a
//! number such as a Unix time, else by line).
//!
//! Must not import: anything above `src/data`; the other readers.

use std::io::BufRead;
use std::path::Path;

use super::collect::{Collected, Collector, Duplicate, Duplicates};
use super::fields::{check_scale, parse_number, parse_value};
use super::lines::Lines;
use super::{DataError, Problem, RatingScale};

/// Opens the same input again from the start (only used to find the lines of a duplicate).
pub(super) type Reopen<'a> = dyn Fn() -> Option<Box<dyn BufRead + 'a>> + 'a;

/// The field separator of a triples file, from its first line.
#[derive(Clone, Copy)]
enum Delimiter {
    Tab,
    Comma,
    DoubleColon,
    Whitespace,
}

impl Delimiter {
    fn of(line: &str) -> Self {
        if line.contains('\t') {
            Self::Tab
        } else if line.contains("::") {
            Self::DoubleColon
        } else if line.contains(',') {
            Self::Comma
        } else {
            Self::Whitespace
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Tab => "<tab>",
            Self::Comma => ",",
            Self::DoubleColon => "::",
            Self::Whitespace => " ",
        }
    }

    /// The user, item, rating (and timestamp) fields of `line`, or how many fields it has.
    fn fields(self, line: &str) -> Result<[&str; 5], Problem> {
        let mut fields = [""; 5];
        let n = self.split(line, &mut fields);
        if !(3..=4).contains(&n) {
            let delimiter = self.name().to_owned();
            return Err(Problem::FieldCount {
                delimiter,
                found: n,
            });
        }
        Ok(fields)
    }

    /// Splits `line` into at most 5 fields; returns how many there were (capped at 5).
    fn split<'l>(self, line: &'l str, out: &mut [&'l str; 5]) -> usize {
        let mut n = 0;
        let mut put = |f: &'l str| {
            if n < out.len() {
                out[n] = f;
            }
            n += 1;
        };
        match self {
            Self::Tab => line.split('\t').for_each(&mut put),
            Self::Comma => line.split(',').for_each(&mut put),
            Self::DoubleColon => line.split("::").for_each(&mut put),
            Self::Whitespace => line.split_ascii_whitespace().for_each(&mut put),
        }
        n.min(out.len())
    }
}

pub(super) fn read_triples<R: BufRead>(
    lines: &mut Lines<'_, R>,
    scale: Option<RatingScale>,
    duplicates: Duplicates,
    reopen: &Reopen<'_>,
) -> Result<Collected, DataError> {
    let mut got = Collector::new(duplicates);
    let mut delimiter = None;
    while lines.advance()? {
        let text = lines.text()?;
        if text.trim().is_empty() {
            continue;
        }
        let delim = *delimiter.get_or_insert_with(|| Delimiter::of(text));
        let fields = delim.fields(text).map_err(|p| lines.error(p))?;
        let rating = fields[2].trim();
        if got.len() == 0 && parse_number(rating).is_none() {
            continue; // a header line such as `userId,movieId,rating,timestamp`
        }
        let line_err = |p| lines.error(p);
        let x = parse_value(rating, 3).map_err(line_err)?;
        check_scale(x, 3, scale).map_err(line_err)?;
        let stamp = match fields[3].trim() {
            t if !t.is_empty() && got.wants_stamps() => Some(parse_value(t, 4).map_err(line_err)?),
            _ => None,
        };
        got.push(fields[0].trim(), fields[1].trim(), x, stamp)
            .map_err(line_err)?;
    }
    got.finish()
        .map_err(|d| duplicate_error(lines.path, reopen, d))
}

/// The error for a duplicate pair: its lines are looked up only on this rare path.
fn duplicate_error(path: &Path, reopen: &Reopen<'_>, d: Duplicate) -> DataError {
    let (first_line, line) = reopen()
        .and_then(|r| duplicate_lines(r, &d.user, &d.item))
        .unwrap_or((0, 0));
    DataError::Parse {
        path: path.to_owned(),
        line,
        problem: Problem::Duplicate {
            user: d.user,
            item: d.item,
            first_line,
        },
    }
}

/// The first two lines holding the pair `user`, `item`.
fn duplicate_lines(
    reader: Box<dyn BufRead + '_>,
    user: &str,
    item: &str,
) -> Option<(usize, usize)> {
    let mut first = None;
    let mut delimiter = None;
    for (n, line) in reader.lines().enumerate() {
        let line = line.ok()?;
        if line.trim().is_empty() {
            continue;
        }
        let delim = *delimiter.get_or_insert_with(|| Delimiter::of(&line));
        let mut fields = [""; 5];
        let hit = delim.split(&line, &mut fields) >= 3
            && fields[0].trim() == user
            && fields[1].trim() == item;
        match (hit, first) {
            (true, None) => first = Some(n + 1),
            (true, Some(f)) => return Some((f, n + 1)),
            _ => {}
        }
    }
    None
}
