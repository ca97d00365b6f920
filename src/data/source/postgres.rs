//! A PostgreSQL query as a ratings source: `user_id, item_id, rating[, timestamp]` rows,
//! streamed with `COPY (query) TO STDOUT (FORMAT binary)` and decoded one row at a time into
//! the row collector every reader shares, with a file's checks and `row N: problem` errors.
//!
//! The result's column types are checked before a row is read (the statement is prepared):
//! ids are text (`text`, `varchar`, `char`, `name`) or integers (`int2/4/8`); the rating any
//! number (`int2/4/8`, `float4/8`, `numeric`, decoded here from its binary form); the optional
//! fourth column a `timestamp`, `timestamptz`, `date` or a number. The fingerprint is the
//! SHA-256 of the rows as the server sent them. The password (from the connection string or
//! `PGPASSWORD`) is kept apart from the string, never saved with a model and never printed.
//!
//! Must not import: the other sources, anything above `src/data`.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use postgres::{CancelToken, Client, Config, NoTls};
use sha2::{Digest, Sha256};

use super::error::{PostgresError, SourceError};
use super::fingerprint::Fingerprint;
use super::pgtypes::{Columns, id, number, seconds};
use super::titles::{Titles, read_titles};
use crate::data::collect::{Collector, Duplicates};
use crate::data::fields::check_value;
use crate::data::{DataError, Format, Guard, Problem, RatingScale, Snapshot};

/// Rows decoded between two looks at the stop flag and the memory bound.
const ROWS_PER_CHECK: u64 = 4096;
/// How often the watcher looks at the stop flag while the client waits on the server.
const WATCH: Duration = Duration::from_millis(20);
/// How long a connection may take when the string sets no `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The signature that opens a binary COPY stream.
const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// A password, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// `url` without its password, and the password it held (percent-decoded). Only the user
/// info of a `postgres://` or `postgresql://` URL holds one here ([`check_url`] refuses the
/// rest).
pub fn split_password(url: &str) -> (String, Option<Password>) {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return (url.to_owned(), None);
    };
    let rest = &url[scheme_end..];
    let authority = rest.find(['/', '?']).map_or(rest, |i| &rest[..i]);
    let Some(at) = authority.rfind('@') else {
        return (url.to_owned(), None);
    };
    let Some(colon) = authority[..at].find(':') else {
        return (url.to_owned(), None);
    };
    let password = percent_decode(&authority[colon + 1..at]);
    let redacted = format!(
        "{}{}{}",
        &url[..scheme_end + colon],
        &authority[at..],
        &rest[authority.len()..]
    );
    (redacted, Some(Password(password)))
}

/// `%XX` escapes decoded (a password may hold `@` or `:` escaped).
fn percent_decode(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `url` is a connection URL this source can use, the password aside: `Err` says why
/// not.
pub fn check_url(url: &str) -> Result<(), String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err("must be a URL like postgres://user@host:5432/db".into());
    }
    let (redacted, _) = split_password(url);
    let config: Config = redacted
        .parse()
        .map_err(|e| format!("is not a connection URL ({e})"))?;
    if config.get_password().is_some() {
        return Err("holds a password outside the user info: put it in PGPASSWORD".into());
    }
    Ok(())
}

/// What a PostgreSQL source reads.
pub(super) struct Query<'a> {
    /// The connection URL without its password.
    pub(super) url: &'a str,
    /// The password, if the URL held one (else `PGPASSWORD`).
    pub(super) password: Option<&'a Password>,
    /// The query.
    pub(super) query: &'a str,
    /// What a re-rating gives.
    pub(super) duplicates: Duplicates,
    /// Optional titles file.
    pub(super) titles: Option<&'a Path>,
}

/// Reads the query's rows, the titles and the rows' SHA-256; stops with
/// [`DataError::Cancelled`] once the guard's stop says so, even while the server is still
/// working (the query is cancelled), and refuses a result over the guard's budget.
pub(super) fn load(
    q: &Query<'_>,
    guard: Guard<'_>,
) -> Result<(Snapshot, Titles, Fingerprint), SourceError> {
    let mut client = connect(q)?;
    let token = client.cancel_token();
    let done = AtomicBool::new(false);
    let read = std::thread::scope(|s| {
        s.spawn(|| watch(&done, guard, &token));
        let read = read(&mut client, q, guard);
        done.store(true, Ordering::SeqCst);
        read
    });
    let read = match read {
        // A read that stopped half-way: the server would otherwise send the rest first.
        Err(e) => {
            let _ = token.cancel_query(NoTls);
            drop(client);
            return Err(match (guard.stop)() {
                true => cancelled(q.url).into(),
                false => e,
            });
        }
        Ok(read) => read,
    };
    let titles = match q.titles {
        Some(t) => read_titles(t)?,
        None => Titles::default(),
    };
    Ok((read.0, titles, read.1))
}

/// Cancels the running query once the stop flag is up, until `done`.
fn watch(done: &AtomicBool, guard: Guard<'_>, token: &CancelToken) {
    while !done.load(Ordering::SeqCst) {
        if (guard.stop)() {
            let _ = token.cancel_query(NoTls);
            return;
        }
        std::thread::sleep(WATCH);
    }
}

fn cancelled(url: &str) -> DataError {
    DataError::Cancelled { path: url.into() }
}

/// A client logged in with the password of the URL, else `PGPASSWORD`.
pub(super) fn connect(q: &Query<'_>) -> Result<Client, PostgresError> {
    let refused = |reason: String| PostgresError::Connect {
        target: q.url.to_owned(),
        reason,
    };
    let mut config: Config = q.url.parse().map_err(|e| refused(describe(&e)))?;
    let env = std::env::var("PGPASSWORD").ok();
    if let Some(p) = q.password.map(|p| p.0.as_str()).or(env.as_deref()) {
        config.password(p);
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config.connect(NoTls).map_err(|e| refused(describe(&e)))
}

/// The server's message when it sent one, else the client's error and its causes.
pub(super) fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.message().to_owned();
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

/// The columns' types, checked, then every row streamed into the collector.
fn read(
    client: &mut Client,
    q: &Query<'_>,
    guard: Guard<'_>,
) -> Result<(Snapshot, Fingerprint), SourceError> {
    let query = q.query.trim().trim_end_matches(';');
    let failed = |e: postgres::Error| PostgresError::Query {
        reason: describe(&e),
        query: query.to_owned(),
    };
    let statement = client.prepare(query).map_err(failed)?;
    let columns = Columns::of(statement.columns())?;
    let copy = format!("COPY ({query}) TO STDOUT (FORMAT binary)");
    let mut stream = client.copy_out(copy.as_str()).map_err(failed)?;
    let mut rows = Rows::new(&columns, q.duplicates);
    rows.header(&mut stream)?;
    while rows.next(&mut stream)? {
        if rows.row.is_multiple_of(ROWS_PER_CHECK) {
            check(guard, rows.row, q.url)?;
        }
    }
    rows.finish(q.url)
}

/// The stop flag, then the memory bound for `rows` ratings.
fn check(guard: Guard<'_>, rows: u64, url: &str) -> Result<(), DataError> {
    if (guard.stop)() {
        return Err(cancelled(url));
    }
    match guard.budget {
        Some(budget) => budget.check(rows, Path::new(url)),
        None => Ok(()),
    }
}

/// The rows of a binary COPY stream, decoded one at a time into the collector.
struct Rows<'c> {
    columns: &'c Columns,
    got: Collector,
    hasher: Sha256,
    /// Rows read so far (the 1-based number of the last one).
    row: u64,
    /// One buffer per column, reused row after row; `None`: NULL.
    fields: [Option<Vec<u8>>; 4],
    observed: Option<(f64, f64)>,
}

impl<'c> Rows<'c> {
    fn new(columns: &'c Columns, duplicates: Duplicates) -> Self {
        Self {
            columns,
            got: Collector::new(duplicates),
            hasher: Sha256::new(),
            row: 0,
            fields: Default::default(),
            observed: None,
        }
    }

    fn stream_error(&self, reason: impl Into<String>) -> PostgresError {
        PostgresError::Stream {
            row: self.row,
            reason: reason.into(),
        }
    }

    /// The signature, flags and header extension.
    fn header(&mut self, r: &mut impl Read) -> Result<(), SourceError> {
        let mut head = [0u8; 19];
        self.fill(r, &mut head)?;
        if &head[..11] != SIGNATURE {
            return Err(self.stream_error("not a binary COPY stream").into());
        }
        let extension = i32::from_be_bytes(head[15..19].try_into().expect("4 bytes"));
        let mut skip = vec![0u8; usize::try_from(extension).unwrap_or(0)];
        self.fill(r, &mut skip)
    }

    fn fill(&self, r: &mut impl Read, buf: &mut [u8]) -> Result<(), SourceError> {
        r.read_exact(buf).map_err(|e| {
            let reason = match e
                .get_ref()
                .and_then(|e| e.downcast_ref::<postgres::Error>())
            {
                Some(pg) => describe(pg),
                None => e.to_string(),
            };
            let query = PostgresError::Query {
                reason,
                query: "COPY".into(),
            };
            match self.row {
                0 => query,
                _ => self.stream_error(format!("the stream broke off: {query}")),
            }
            .into()
        })
    }

    /// Reads and collects one row; `false` at the end of the stream.
    fn next(&mut self, r: &mut impl Read) -> Result<bool, SourceError> {
        let mut count = [0u8; 2];
        self.fill(r, &mut count)?;
        let n = i16::from_be_bytes(count);
        if n == -1 {
            return Ok(false);
        }
        self.row += 1;
        if n as usize != self.columns.len() {
            let why = format!("{n} fields, expected {}", self.columns.len());
            return Err(self.stream_error(why).into());
        }
        self.hasher.update(count);
        for c in 0..self.columns.len() {
            let mut len = [0u8; 4];
            self.fill(r, &mut len)?;
            self.hasher.update(len);
            let len = i32::from_be_bytes(len);
            let mut field = self.fields[c].take().unwrap_or_default();
            if len >= 0 {
                field.resize(len as usize, 0);
                self.fill(r, &mut field)?;
                self.hasher.update(&field);
                self.fields[c] = Some(field);
            }
        }
        self.collect().map_err(|problem| PostgresError::Row {
            row: self.row,
            problem,
        })?;
        Ok(true)
    }

    /// The row in `fields`, checked, into the collector.
    fn collect(&mut self) -> Result<(), Problem> {
        let [user, item, rating, stamp] = &self.fields;
        fn field<'f>(f: &'f Option<Vec<u8>>, what: &'static str) -> Result<&'f [u8], Problem> {
            f.as_deref().ok_or(Problem::Null { what })
        }
        let cols = self.columns;
        let user = id(field(user, "user_id")?, cols.user)?;
        let item = id(field(item, "item_id")?, cols.item)?;
        let x = number(field(rating, "rating")?, cols.rating)?;
        check_value(x, 3, || x.to_string())?;
        let stamp = match (cols.stamp, stamp) {
            (Some(kind), Some(bytes)) if self.got.wants_stamps() => Some(seconds(bytes, kind)?),
            _ => None,
        };
        let (lo, hi) = self.observed.unwrap_or((x, x));
        self.observed = Some((lo.min(x), hi.max(x)));
        self.got.push(user.trim_end(), item.trim_end(), x, stamp)
    }

    /// The snapshot of every row read, and their fingerprint.
    fn finish(self, url: &str) -> Result<(Snapshot, Fingerprint), SourceError> {
        let Some((min, max)) = self.observed else {
            return Err(DataError::Empty { path: url.into() }.into());
        };
        let collected = self.got.finish().map_err(|d| PostgresError::Duplicate {
            row: d.second as u64 + 1,
            first_row: d.first as u64 + 1,
            user: d.user,
            item: d.item,
        })?;
        let snapshot = Snapshot {
            ratings: collected.ratings,
            users: collected.users,
            items: collected.items,
            scale: RatingScale { min, max },
            format: Format::Triples,
            path: url.into(),
            replaced: collected.replaced,
        };
        Ok((snapshot, Fingerprint::from(self.hasher)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_split_from_the_url() {
        let (url, pw) = split_password("postgres://mixrec:s%40cret:x@db.example:5433/r?x=1");
        assert_eq!(url, "postgres://mixrec@db.example:5433/r?x=1");
        assert_eq!(pw, Some(Password("s@cret:x".into())));
        let (url, pw) = split_password("postgres://mixrec@db/r");
        assert_eq!((url.as_str(), pw), ("postgres://mixrec@db/r", None));
        assert!(!format!("{:?}", Password("hunter2".into())).contains("hunter2"));
    }

    #[test]
    fn urls_are_checked() {
        check_url("postgres://u:p@127.0.0.1:5432/db").unwrap();
        assert!(check_url("host=db user=u").is_err());
        let err = check_url("postgres://u@db/r?password=x").unwrap_err();
        assert!(err.contains("PGPASSWORD"), "{err}");
    }
}
