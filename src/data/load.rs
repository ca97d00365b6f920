//! Reading snapshots: `matrix` (the seed's dense text, 0 = missing) and `triples`
//! (`user,item,rating[,timestamp]` as CSV, TSV or `::`-separated, header optional).
//!
//! Decisions, all of them documented in the README:
//! - A malformed line stops the load with file, line and problem; nothing is half-loaded.
//! - A duplicate user-item pair in triples is an error naming both lines (silently keeping the
//!   first or the last would hide an export bug).
//! - Without a declared scale, the scale is the observed min..max; with one, a rating outside it
//!   is an error.
//! - `auto` reads the first non-blank line: a tab, a comma or `::` means triples, anything else
//!   (numbers separated by spaces) a matrix.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::{DataError, IdMap, Problem, RatingScale, Ratings, RatingsBuilder, Snapshot, matrix};

/// The text format of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Decide from the first non-blank line.
    #[default]
    Auto,
    /// Whitespace-separated rows, one per user, one column per item, 0 = missing.
    Matrix,
    /// `user,item,rating[,timestamp]` lines (CSV, TSV or `::`), optional header.
    Triples,
    /// mixrec's binary snapshot (see `binary.rs`); `auto` recognises it by its magic bytes.
    Binary,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "matrix" => Ok(Self::Matrix),
            "triples" => Ok(Self::Triples),
            "binary" => Ok(Self::Binary),
            _ => Err(format!(
                "unknown format {s:?} (auto, matrix, triples or binary)"
            )),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Matrix => "matrix",
            Self::Triples => "triples",
            Self::Binary => "binary",
        })
    }
}

/// How to read a snapshot.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// The format; `Auto` detects it.
    pub format: Format,
    /// The valid ratings; `None` takes the observed min..max.
    pub scale: Option<RatingScale>,
}

/// Loads the snapshot at `path`.
pub fn load(path: &Path, options: LoadOptions) -> Result<Snapshot, DataError> {
    let io = |source| DataError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let binary = reader.fill_buf().map_err(io)?.starts_with(super::MAGIC);
    if binary || options.format == Format::Binary {
        return binary_with_scale(
            super::binary::read_binary(reader, path, size)?,
            options.scale,
        );
    }
    let reopen =
        || -> Option<Box<dyn BufRead>> { Some(Box::new(BufReader::new(File::open(path).ok()?))) };
    read(&mut reader, path, options, &reopen, size as usize)
}

/// A binary snapshot checked against a scale given when loading (it carries its own).
fn binary_with_scale(mut s: Snapshot, scale: Option<RatingScale>) -> Result<Snapshot, DataError> {
    if let Some(scale) = scale {
        if let Some((lo, hi)) = s.ratings.value_range() {
            if !scale.contains(f64::from(lo)) || !scale.contains(f64::from(hi)) {
                let reason = format!(
                    "ratings {lo}..={hi} fall outside the scale {}..={}",
                    scale.min, scale.max
                );
                return Err(DataError::Corrupt {
                    path: s.path,
                    reason,
                });
            }
        }
        s.scale = scale;
    }
    Ok(s)
}

/// Loads a snapshot from text in memory (tests, request bodies); errors name `<memory>`.
pub fn load_str(text: &str, options: LoadOptions) -> Result<Snapshot, DataError> {
    if options.format == Format::Binary {
        let (path, reason) = (
            "<memory>".into(),
            "binary snapshots are read from files".into(),
        );
        return Err(DataError::Unsupported { path, reason });
    }
    load_bytes(text.as_bytes(), options)
}

/// Loads a snapshot from bytes in memory, text or binary, exactly as [`load`] reads a file of
/// those bytes (the fuzz targets and property tests use it); errors name `<memory>`.
pub fn load_bytes(bytes: &[u8], options: LoadOptions) -> Result<Snapshot, DataError> {
    let path = Path::new("<memory>");
    if bytes.starts_with(super::MAGIC) || options.format == Format::Binary {
        let snapshot = super::binary::read_binary(bytes, path, bytes.len() as u64)?;
        return binary_with_scale(snapshot, options.scale);
    }
    let reopen = || -> Option<Box<dyn BufRead + '_>> { Some(Box::new(bytes)) };
    read(&mut &bytes[..], path, options, &reopen, bytes.len())
}

/// Opens the same input again from the start (only used to find the lines of a duplicate).
type Reopen<'a> = dyn Fn() -> Option<Box<dyn BufRead + 'a>> + 'a;

fn read(
    reader: &mut impl BufRead,
    path: &Path,
    options: LoadOptions,
    reopen: &Reopen<'_>,
    size_hint: usize,
) -> Result<Snapshot, DataError> {
    let mut lines = Lines::new(reader, path);
    let format = match options.format {
        Format::Auto => detect(lines.peek_first()?),
        f => f,
    };
    let (ratings, users, items) = match format {
        Format::Matrix => {
            let (first_line, text) = lines.rest(size_hint)?;
            matrix::parse(&text, first_line, path, options.scale)?
        }
        Format::Triples | Format::Auto | Format::Binary => {
            read_triples(&mut lines, options.scale, reopen)?
        }
    };
    if ratings.nnz() == 0 {
        return Err(DataError::Empty {
            path: path.to_owned(),
        });
    }
    let scale = options.scale.unwrap_or_else(|| {
        let (lo, hi) = ratings.value_range().expect("non-empty");
        RatingScale {
            min: f64::from(lo),
            max: f64::from(hi),
        }
    });
    Ok(Snapshot {
        ratings,
        users,
        items,
        scale,
        format,
        path: path.to_owned(),
    })
}

/// The format a first line suggests.
fn detect(first: Option<&str>) -> Format {
    match first {
        Some(l) if l.contains('\t') || l.contains(',') || l.contains("::") => Format::Triples,
        _ => Format::Matrix,
    }
}

/// Line reader that counts lines, checks UTF-8 and can look at the first non-blank line.
struct Lines<'a, R> {
    reader: &'a mut R,
    path: &'a Path,
    buf: Vec<u8>,
    line: usize,
    peeked: bool,
}

impl<'a, R: BufRead> Lines<'a, R> {
    fn new(reader: &'a mut R, path: &'a Path) -> Self {
        Self {
            reader,
            path,
            buf: Vec::with_capacity(1 << 16),
            line: 0,
            peeked: false,
        }
    }

    /// Positions on the first non-blank line without consuming it.
    fn peek_first(&mut self) -> Result<Option<&str>, DataError> {
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
    fn advance(&mut self) -> Result<bool, DataError> {
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
    fn rest(&mut self, size_hint: usize) -> Result<(usize, Vec<u8>), DataError> {
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

    fn text(&self) -> Result<&str, DataError> {
        std::str::from_utf8(&self.buf).map_err(|_| self.error(Problem::NotUtf8))
    }

    fn error(&self, problem: Problem) -> DataError {
        DataError::Parse {
            path: self.path.to_owned(),
            line: self.line,
            problem,
        }
    }
}

/// Parses one rating field; `field` is 1-based, for messages.
pub(super) fn parse_value(text: &str, field: usize) -> Result<f64, Problem> {
    let x = parse_number(text).ok_or_else(|| Problem::NotANumber {
        field,
        text: shorten(text),
    })?;
    if !x.is_finite() {
        return Err(Problem::NotFinite {
            field,
            text: shorten(text),
        });
    }
    // Ratings are stored as f32: 1e50 would become infinite and 1e-50 zero (in a matrix,
    // "missing"), so a snapshot with either would load broken. Refuse them here.
    let size = x.abs();
    if x != 0.0 && !(f64::from(f32::MIN_POSITIVE)..=f64::from(f32::MAX)).contains(&size) {
        return Err(Problem::Unrepresentable {
            field,
            text: shorten(text),
        });
    }
    Ok(x)
}

/// A decimal number; plain digits (the common case by far) skip the general parser.
#[inline]
fn parse_number(text: &str) -> Option<f64> {
    small_integer(text.as_bytes()).or_else(|| text.parse::<f64>().ok())
}

/// Up to 9 ASCII digits as a number: exact, and far cheaper than the float parser.
#[inline]
pub(super) fn small_integer(b: &[u8]) -> Option<f64> {
    if b.is_empty() || b.len() > 9 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        b.iter()
            .fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0'))
            .into(),
    )
}

fn shorten(text: &str) -> String {
    text.chars().take(40).collect()
}

pub(super) fn check_scale(x: f64, field: usize, scale: Option<RatingScale>) -> Result<(), Problem> {
    match scale {
        Some(s) if !s.contains(x) => Err(Problem::OutOfScale {
            field,
            value: x,
            min: s.min,
            max: s.max,
        }),
        _ => Ok(()),
    }
}

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

fn read_triples<R: BufRead>(
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
        let mut fields = [""; 5];
        let delim = *delimiter.get_or_insert_with(|| Delimiter::of(text));
        let n = delim.split(text, &mut fields);
        if !(3..=4).contains(&n) {
            return Err(lines.error(Problem::FieldCount {
                delimiter: delim.name().to_owned(),
                found: n,
            }));
        }
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
