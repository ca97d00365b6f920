//! The `triples` format: `user,item,rating[,timestamp]` lines as CSV, TSV or `::`-separated,
//! header optional. Ids are interned in order of first appearance; a user-item pair rated twice
//! is an error naming both lines.
//!
//! Must not import: anything above `src/data`; the other readers.

use std::io::BufRead;
use std::path::Path;

use super::fields::{check_scale, parse_number, parse_value};
use super::lines::Lines;
use super::{DataError, IdMap, Problem, RatingScale, Ratings, RatingsBuilder};

/// Opens the same input again from the start (only used to find the lines of a duplicate).
pub(super) type Reopen<'a> = dyn Fn() -> Option<Box<dyn BufRead + 'a>> + 'a;

/// Interns ids: string to dense index in order of first appearance.
#[derive(Default)]
struct Interner {
    names: Vec<String>,
    index: std::collections::HashMap<String, u32>,
}

impl Interner {
    fn intern(&mut self, id: &str, what: &'static str) -> Result<u32, Problem> {
        if id.is_empty() {
            return Err(Problem::EmptyId { what });
        }
        if let Some(&i) = self.index.get(id) {
            return Ok(i);
        }
        let i = u32::try_from(self.names.len()).map_err(|_| Problem::TooMany(what))?;
        self.names.push(id.to_owned());
        self.index.insert(id.to_owned(), i);
        Ok(i)
    }

    fn into_map(self) -> IdMap {
        IdMap::Named {
            names: self.names,
            index: self.index,
        }
    }
}

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

/// Ratings collected in file order before they are put into rows.
#[derive(Default)]
struct Collected {
    users: Vec<u32>,
    items: Vec<u32>,
    values: Vec<f32>,
}

pub(super) fn read_triples<R: BufRead>(
    lines: &mut Lines<'_, R>,
    scale: Option<RatingScale>,
    reopen: &Reopen<'_>,
) -> Result<(Ratings, IdMap, IdMap), DataError> {
    let (mut users, mut items) = (Interner::default(), Interner::default());
    let mut got = Collected::default();
    let mut delimiter = None;
    while lines.advance()? {
        let text = lines.text()?;
        if text.trim().is_empty() {
            continue;
        }
        let delim = *delimiter.get_or_insert_with(|| Delimiter::of(text));
        let fields = delim.fields(text).map_err(|p| lines.error(p))?;
        let rating = fields[2].trim();
        if got.values.is_empty() && users.names.is_empty() && parse_number(rating).is_none() {
            continue; // a header line such as `userId,movieId,rating,timestamp`
        }
        let line_err = |p| lines.error(p);
        let x = parse_value(rating, 3).map_err(line_err)?;
        check_scale(x, 3, scale).map_err(line_err)?;
        let u = users.intern(fields[0].trim(), "user").map_err(line_err)?;
        let i = items.intern(fields[1].trim(), "item").map_err(line_err)?;
        if got.values.len() == u32::MAX as usize {
            return Err(line_err(Problem::TooMany("ratings")));
        }
        got.users.push(u);
        got.items.push(i);
        got.values.push(x as f32);
    }
    let ratings = into_rows(&got, users.names.len(), items.names.len())
        .map_err(|(u, i)| duplicate_error(lines.path, reopen, &users, &items, (u, i)))?;
    Ok((ratings, users.into_map(), items.into_map()))
}

/// Counting sort by user, then by item within each row. `Err((user, item))` on a duplicate pair.
fn into_rows(got: &Collected, n_users: usize, n_items: usize) -> Result<Ratings, (u32, u32)> {
    let mut counts = vec![0usize; n_users + 1];
    for &u in &got.users {
        counts[u as usize + 1] += 1;
    }
    for u in 0..n_users {
        counts[u + 1] += counts[u];
    }
    let mut order = vec![0u32; got.users.len()];
    let mut next = counts.clone();
    for (k, &u) in got.users.iter().enumerate() {
        order[next[u as usize]] = k as u32;
        next[u as usize] += 1;
    }
    let mut b = RatingsBuilder::with_capacity(n_items, n_users, got.values.len());
    for u in 0..n_users {
        let row = &mut order[counts[u]..counts[u + 1]];
        row.sort_unstable_by_key(|&k| got.items[k as usize]);
        for pair in row.windows(2) {
            if got.items[pair[0] as usize] == got.items[pair[1] as usize] {
                return Err((u as u32, got.items[pair[0] as usize]));
            }
        }
        for &k in row.iter() {
            b.push(got.items[k as usize], got.values[k as usize]);
        }
        b.end_row();
    }
    Ok(b.finish())
}

/// The error for a duplicate pair: its lines are looked up only on this rare path.
fn duplicate_error(
    path: &Path,
    reopen: &Reopen<'_>,
    users: &Interner,
    items: &Interner,
    (u, i): (u32, u32),
) -> DataError {
    let (user, item) = (
        users.names[u as usize].clone(),
        items.names[i as usize].clone(),
    );
    let (first_line, line) = reopen()
        .and_then(|r| duplicate_lines(r, &user, &item))
        .unwrap_or((0, 0));
    DataError::Parse {
        path: path.to_owned(),
        line,
        problem: Problem::Duplicate {
            user,
            item,
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
