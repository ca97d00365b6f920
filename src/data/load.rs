//! Reading snapshots: `matrix` (the seed's dense text, 0 = missing) and `triples`
//! (`user,item,rating[,timestamp]` as CSV, TSV or `::`-separated, header optional).
//!
//! Decisions, all of them documented in the README:
//! - A malformed line stops the load with file, line and problem; nothing is half-loaded.
//! - A duplicate user-item pair in triples is an error naming both lines (silently keeping the
//!   first or the last would hide an export bug), unless the options say `latest`.
//! - Without a declared scale, the scale is the observed min..max; with one, a rating outside it
//!   is an error.
//! - `auto` reads the first non-blank line: a tab, a comma or `::` means triples, anything else
//!   (numbers separated by spaces) a matrix; a binary snapshot and a Parquet file are
//!   recognised by their first bytes instead.
//!
//! Must not import: anything above `src/data` (no models, settings, web or async types).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::mpsc::{SyncSender, sync_channel};

use sha2::{Digest, Sha256};

use super::collect::Duplicates;
use super::format::Format;
use super::lines::Lines;
use super::parquet::{Columns, MAGIC as PARQUET_MAGIC, read_parquet};
use super::triples::{Reopen, read_triples};
use super::{DataError, Guard, RatingScale, Ratings, Snapshot, matrix};

/// How to read a snapshot.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The format; `Auto` detects it.
    pub format: Format,
    /// The valid ratings; `None` takes the observed min..max.
    pub scale: Option<RatingScale>,
    /// What a user-item pair rated twice gives (triples; a matrix cannot hold one).
    pub duplicates: Duplicates,
    /// The columns a Parquet file is read from.
    pub columns: Columns,
}

/// Loads the snapshot at `path`.
pub fn load(path: &Path, options: LoadOptions) -> Result<Snapshot, DataError> {
    load_until(path, options, Guard::NONE)
}

/// [`load`], stopping with [`DataError::Cancelled`] as soon as the guard's stop says so (it is
/// asked every few thousand lines): a job's read of a source that never ends can be cancelled.
/// A snapshot whose ratings would exceed the guard's budget is refused
/// ([`DataError::TooLarge`]) before it is read whole.
pub fn load_until(
    path: &Path,
    options: LoadOptions,
    guard: Guard<'_>,
) -> Result<Snapshot, DataError> {
    let (file, size) = open(path)?;
    #[cfg(unix)]
    if options.format != Format::Parquet && binary_file(&file, options.format) {
        // Positional reads on two threads (`read_binary_file`); a hashing load reads in order.
        check_binary_budget(size, path, guard)?;
        return binary_with_scale(
            super::binary::read_binary_file(&file, path, size)?,
            options.scale,
        );
    }
    load_from(file, size, path, options, guard)
}

/// Whether `file` is read as a binary snapshot, as [`load_from`] decides it: not a Parquet
/// file, and asked for or starting with the binary magic.
#[cfg(unix)]
fn binary_file(file: &File, format: Format) -> bool {
    use std::os::unix::fs::FileExt;
    let mut head = [0u8; 8];
    let n = file.read_at(&mut head, 0).unwrap_or(0);
    let head = &head[..n];
    !head.starts_with(PARQUET_MAGIC) && (format == Format::Binary || head == super::MAGIC)
}

/// A binary snapshot of `size` bytes against the guard's budget: eight bytes a rating on disk
/// (item and value), the least a binary file holds.
fn check_binary_budget(size: u64, path: &Path, guard: Guard<'_>) -> Result<(), DataError> {
    match guard.budget {
        Some(budget) => budget.check(size / 8, path),
        None => Ok(()),
    }
}

/// The file at `path` and its size.
fn open(path: &Path) -> Result<(File, u64), DataError> {
    let io = |source| DataError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    Ok((file, size))
}

/// Bytes the hashing thread of [`load_hashed`] is handed at a time.
const HASH_CHUNK: usize = 1 << 20;
/// The most [`load_hashed`] reads at once when it hashes as it reads: small enough that the
/// bytes are still in the core's cache when they are hashed.
const INLINE_PIECE: usize = 256 << 10;

/// [`load_until`], and the SHA-256 of every byte of the file, in one read (a snapshot's
/// fingerprint used to be a second pass over the file). Text is hashed on a second thread from
/// copies of what the parser reads, so the hash hides behind the parse; a binary or Parquet
/// file, whose reading is little more than a copy itself, is hashed as it is read, on the same
/// thread (measured: the copies to a second thread cost more there than they save). The hash
/// covers the whole file: whatever the parser leaves unread after a successful load is read
/// and hashed too.
pub fn load_hashed(
    path: &Path,
    options: LoadOptions,
    guard: Guard<'_>,
) -> Result<(Snapshot, Sha256), DataError> {
    let (file, size) = open(path)?;
    let mut inline = None;
    std::thread::scope(|scope| {
        // A few chunks in flight: the parser never waits on the hash unless it is the faster.
        let (tx, rx) = sync_channel::<Vec<u8>>(4);
        let hashing = scope.spawn(move || {
            let mut hasher = Sha256::new();
            rx.into_iter().for_each(|chunk| hasher.update(&chunk));
            hasher
        });
        let tee = Tee {
            inner: file,
            pending: Vec::with_capacity(HASH_CHUNK),
            tx: Some(tx),
            inline: &mut inline,
            first: true,
        };
        // Dropping the tee (inside `load_from`) hands over the last chunk and ends the thread.
        let loaded = load_from(tee, size, path, options, guard);
        let threaded = hashing.join().expect("hashing never panics");
        loaded.map(|s| (s, inline.take().unwrap_or(threaded)))
    })
}

/// A reader that hashes every byte read: by handing copies to the hashing thread in chunks,
/// or, once its first bytes show a binary or Parquet file, itself (`inline`).
struct Tee<'a, R> {
    inner: R,
    pending: Vec<u8>,
    /// `None` once hashing is inline: the hashing thread then ends with nothing.
    tx: Option<SyncSender<Vec<u8>>>,
    inline: &'a mut Option<Sha256>,
    first: bool,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Inline, hash what was just read while it is still in the cache: reads of at most
        // INLINE_PIECE (a binary snapshot asks for whole arrays at once).
        let want = match self.inline.is_some() {
            true => buf.len().min(INLINE_PIECE),
            false => buf.len(),
        };
        let n = self.inner.read(&mut buf[..want])?;
        if std::mem::take(&mut self.first) {
            let head = &buf[..n];
            if head.starts_with(super::MAGIC) || head.starts_with(PARQUET_MAGIC) {
                *self.inline = Some(Sha256::new());
                self.tx = None;
            }
        }
        if let Some(hasher) = self.inline.as_mut() {
            hasher.update(&buf[..n]);
            return Ok(n);
        }
        self.pending.extend_from_slice(&buf[..n]);
        if self.pending.len() >= HASH_CHUNK || n == 0 {
            self.flush_chunk();
        }
        Ok(n)
    }
}

impl<R> Tee<'_, R> {
    fn flush_chunk(&mut self) {
        let Some(tx) = &self.tx else { return };
        if self.pending.is_empty() {
            return;
        }
        let chunk = std::mem::replace(&mut self.pending, Vec::with_capacity(HASH_CHUNK));
        // The receiver lives until the sender is dropped: a send cannot fail.
        let _ = tx.send(chunk);
    }
}

impl<R> Drop for Tee<'_, R> {
    fn drop(&mut self) {
        self.flush_chunk();
    }
}

/// The reader's buffer, in bytes. Its pages are faulted in fresh on every load (about 2.5 us a
/// 4 kB page on a VM), and a text matrix is read whole past it: 1 MB was 256 of the seed
/// load's 3,651 page faults; 128 kB is still 16 system calls a 2 MB of text.
const READ_BUFFER: usize = 1 << 17;

/// [`load_until`] over any reader of the file's bytes (`size` of them).
fn load_from<R: Read>(
    file: R,
    size: u64,
    path: &Path,
    options: LoadOptions,
    guard: Guard<'_>,
) -> Result<Snapshot, DataError> {
    let io = |source| DataError::Io {
        path: path.to_owned(),
        source,
    };
    let mut reader = BufReader::with_capacity(READ_BUFFER, file);
    let head = reader.fill_buf().map_err(io)?;
    let binary = head.starts_with(super::MAGIC);
    if head.starts_with(PARQUET_MAGIC) || options.format == Format::Parquet {
        // Read whole, once, through the caller's reader (`load_hashed` hashes what it reads):
        // the Parquet reader needs random access.
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        reader.read_to_end(&mut bytes).map_err(io)?;
        return parquet(bytes, path, &options, guard);
    }
    if binary || options.format == Format::Binary {
        check_binary_budget(size, path, guard)?;
        return binary_with_scale(
            super::binary::read_binary(reader, path, size)?,
            options.scale,
        );
    }
    let reopen =
        || -> Option<Box<dyn BufRead>> { Some(Box::new(BufReader::new(File::open(path).ok()?))) };
    let snapshot = read(&mut reader, path, options, &reopen, size as usize, guard)?;
    // Text is read to its end, but make sure: a hashing reader must see every byte.
    io::copy(&mut reader, &mut io::sink()).map_err(io)?;
    Ok(snapshot)
}

/// The Parquet file whose bytes are `bytes`.
fn parquet(
    bytes: Vec<u8>,
    path: &Path,
    options: &LoadOptions,
    guard: Guard<'_>,
) -> Result<Snapshot, DataError> {
    let (scale, duplicates) = (options.scale, options.duplicates);
    read_parquet(
        bytes.into(),
        path,
        &options.columns,
        scale,
        duplicates,
        guard,
    )
}

/// A binary snapshot checked against a scale given when loading (it carries its own).
fn binary_with_scale(mut s: Snapshot, scale: Option<RatingScale>) -> Result<Snapshot, DataError> {
    if let Some(scale) = scale {
        if let Some((lo, hi)) = s.ratings.value_range()
            && (!scale.contains(f64::from(lo)) || !scale.contains(f64::from(hi)))
        {
            let reason = format!(
                "ratings {lo}..={hi} fall outside the scale {}..={}",
                scale.min, scale.max
            );
            return Err(DataError::Corrupt {
                path: s.path,
                reason,
            });
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
    if bytes.starts_with(PARQUET_MAGIC) || options.format == Format::Parquet {
        return parquet(bytes.to_vec(), path, &options, Guard::NONE);
    }
    if bytes.starts_with(super::MAGIC) || options.format == Format::Binary {
        let snapshot = super::binary::read_binary(bytes, path, bytes.len() as u64)?;
        return binary_with_scale(snapshot, options.scale);
    }
    let reopen = || -> Option<Box<dyn BufRead + '_>> { Some(Box::new(bytes)) };
    read(
        &mut &bytes[..],
        path,
        options,
        &reopen,
        bytes.len(),
        Guard::NONE,
    )
}

fn read(
    reader: &mut impl BufRead,
    path: &Path,
    options: LoadOptions,
    reopen: &Reopen<'_>,
    size_hint: usize,
    guard: Guard<'_>,
) -> Result<Snapshot, DataError> {
    let mut lines = Lines::new(reader, path, guard, size_hint as u64);
    let format = match options.format {
        Format::Auto => detect(lines.peek_first()?),
        f => f,
    };
    let (ratings, users, items, replaced) = match format {
        Format::Matrix => {
            let (first_line, text) = lines.rest(size_hint)?;
            let (ratings, users, items) = matrix::parse(&text, first_line, path, options.scale)?;
            (ratings, users, items, 0)
        }
        Format::Triples | Format::Auto | Format::Binary | Format::Parquet => {
            let c = read_triples(&mut lines, options.scale, options.duplicates, reopen)?;
            (c.ratings, c.users, c.items, c.replaced)
        }
    };
    if ratings.nnz() == 0 {
        return Err(DataError::Empty {
            path: path.to_owned(),
        });
    }
    let scale = options.scale.unwrap_or_else(|| observed(&ratings));
    Ok(Snapshot {
        ratings,
        users,
        items,
        scale,
        format,
        path: path.to_owned(),
        replaced,
    })
}

/// The observed min..max of ratings that are not empty.
fn observed(ratings: &Ratings) -> RatingScale {
    let (lo, hi) = ratings.value_range().expect("non-empty");
    RatingScale {
        min: f64::from(lo),
        max: f64::from(hi),
    }
}

/// The format a first line suggests.
fn detect(first: Option<&str>) -> Format {
    match first {
        Some(l) if l.contains('\t') || l.contains(',') || l.contains("::") => Format::Triples,
        _ => Format::Matrix,
    }
}
