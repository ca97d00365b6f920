//! mixrec's binary snapshot: the in-memory sparse form written out as is, so loading is a few
//! large reads instead of parsing text.
//!
//! Layout, all integers and floats little-endian:
//!
//! ```text
//! magic     8 bytes  "MIXRECSN"
//! version   u32      1
//! reserved  u32      0
//! n_users   u64, n_items u64, n_ratings u64
//! scale     f64 min, f64 max
//! users     id map (below)
//! items     id map
//! offsets   (n_users + 1) × u64      row starts, as in `Ratings`
//! items     n_ratings × u32          item index, ascending within a row
//! values    n_ratings × f32          the rating
//! crc32     u32                      CRC-32 (IEEE) of every byte before it
//!
//! id map:   u8 kind: 0 = positional (ids are "0", "1", …), 1 = named, then for named ids
//!           one (u32 length, UTF-8 bytes) per id, in index order
//! ```
//!
//! A file that fails the checksum, is truncated, has bytes after the checksum, or breaks an
//! invariant (offsets, item range, ascending rows, ratings finite and inside the scale) is
//! refused whole, with the reason.
//!
//! Must not import: anything above `src/data`; the text readers.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use super::{DataError, Format, IdMap, RatingScale, Ratings, Snapshot};

/// The first eight bytes of a binary snapshot.
pub const MAGIC: &[u8; 8] = b"MIXRECSN";
const VERSION: u32 = 1;

#[cfg(not(target_endian = "little"))]
compile_error!("the binary snapshot reader maps little-endian arrays directly");

/// Writes `snapshot` in the binary form.
pub fn write_binary<W: Write>(out: W, snapshot: &Snapshot) -> io::Result<()> {
    let mut w = Crc {
        inner: io::BufWriter::with_capacity(1 << 20, out),
        crc: crc32fast::Hasher::new(),
        pos: 0,
    };
    let r = &snapshot.ratings;
    w.put(MAGIC)?;
    w.put(&VERSION.to_le_bytes())?;
    w.put(&0u32.to_le_bytes())?;
    for n in [r.n_users(), r.n_items(), r.nnz()] {
        w.put(&(n as u64).to_le_bytes())?;
    }
    w.put(&snapshot.scale.min.to_le_bytes())?;
    w.put(&snapshot.scale.max.to_le_bytes())?;
    write_ids(&mut w, &snapshot.users)?;
    write_ids(&mut w, &snapshot.items)?;
    let (offsets, items, values) = r.parts();
    w.put(bytemuck::cast_slice(offsets))?;
    w.put(bytemuck::cast_slice(items))?;
    w.put(bytemuck::cast_slice(values))?;
    let crc = w.crc.clone().finalize();
    w.inner.write_all(&crc.to_le_bytes())?;
    w.inner.flush()
}

fn write_ids<W: Write>(w: &mut Crc<W>, ids: &IdMap) -> io::Result<()> {
    match ids {
        IdMap::Positional(_) => w.put(&[0]),
        IdMap::Named { names, .. } => {
            w.put(&[1])?;
            for name in names {
                let len = u32::try_from(name.len())
                    .map_err(|_| io::Error::other("id longer than 4 GiB"))?;
                w.put(&len.to_le_bytes())?;
                w.put(name.as_bytes())?;
            }
            Ok(())
        }
    }
}

/// A writer or reader that keeps a running CRC-32 of the bytes through it.
struct Crc<T> {
    inner: T,
    crc: crc32fast::Hasher,
    /// Bytes read through it (readers only): where in the file the next one is.
    pos: u64,
}

impl<W: Write> Crc<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crc.update(bytes);
        self.inner.write_all(bytes)
    }
}

impl<R: Read> Crc<R> {
    fn take(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_exact(buf)?;
        self.crc.update(buf);
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn u64(&mut self) -> io::Result<u64> {
        let mut b = [0; 8];
        self.take(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
}

/// Reads a binary snapshot of `len` bytes from `reader` (positioned at the magic); `path` names
/// it in errors.
pub(super) fn read_binary<R: Read>(
    reader: R,
    path: &Path,
    len: u64,
) -> Result<Snapshot, DataError> {
    let mut r = Crc {
        inner: reader,
        crc: crc32fast::Hasher::new(),
        pos: 0,
    };
    let fill = |r: &mut Crc<R>, offsets: &mut [u64], items: &mut [u32], values: &mut [f32]| {
        r.take(bytemuck::cast_slice_mut(offsets))?;
        r.take(bytemuck::cast_slice_mut(items))?;
        r.take(bytemuck::cast_slice_mut(values))
    };
    let read = read_parts(&mut r, len, fill).and_then(|parts| {
        verify_end(r)?;
        parts.into_snapshot()
    });
    named(read, path)
}

#[cfg(unix)]
/// Bytes a reading thread of [`read_binary_file`] reads and checksums at a time: still in the
/// core's cache when the CRC reads them.
const FILE_PIECE: usize = 4 << 20;

/// [`read_binary`] of a file of `len` bytes, its arrays read on two threads: one the offsets
/// and the items, the other the values, each at its place in the file, each with the CRC of
/// its bytes, combined in file order. The arrays are nearly all of the file, and reading them is
/// mostly the kernel faulting in fresh pages (800 MB at 100 M ratings), which two cores do in
/// about half the time one does. The same snapshot and the same refusals as [`read_binary`].
#[cfg(unix)]
pub(super) fn read_binary_file(file: &File, path: &Path, len: u64) -> Result<Snapshot, DataError> {
    use std::os::unix::fs::FileExt;
    let mut r = Crc {
        inner: BufReader::with_capacity(64 << 10, file),
        crc: crc32fast::Hasher::new(),
        pos: 0,
    };
    // Reads `parts` (consecutive in the file) from byte `at`; the CRC of their bytes.
    let read_at = |mut at: u64, parts: [&mut [u8]; 2]| -> io::Result<crc32fast::Hasher> {
        let mut crc = crc32fast::Hasher::new();
        for piece in parts.into_iter().flat_map(|p| p.chunks_mut(FILE_PIECE)) {
            file.read_exact_at(piece, at)?;
            crc.update(piece);
            at += piece.len() as u64;
        }
        Ok(crc)
    };
    let fill = |r: &mut Crc<BufReader<&File>>,
                offsets: &mut [u64],
                items: &mut [u32],
                values: &mut [f32]| {
        let (offsets, items): (&mut [u8], &mut [u8]) = (
            bytemuck::cast_slice_mut(offsets),
            bytemuck::cast_slice_mut(items),
        );
        let values: &mut [u8] = bytemuck::cast_slice_mut(values);
        let first = r.pos;
        let second = first + (offsets.len() + items.len()) as u64;
        let end = second + values.len() as u64;
        let (a, b) = std::thread::scope(|scope| {
            let b = scope.spawn(|| read_at(second, [values, &mut []]));
            let a = read_at(first, [offsets, items]);
            (a, b.join().expect("reading never panics"))
        });
        r.crc.combine(&a?);
        r.crc.combine(&b?);
        r.pos = end;
        Ok(())
    };
    let read = read_parts(&mut r, len, fill).and_then(|parts| {
        let mut stored = [0u8; 4];
        file.read_exact_at(&mut stored, r.pos)?;
        check_end(&r.crc, stored, r.pos + 4 < len)?;
        parts.into_snapshot()
    });
    named(read, path)
}

/// Why a binary snapshot was refused, before it has a path.
enum Bad {
    Io(io::Error),
    Corrupt(String),
    Empty,
}

impl From<io::Error> for Bad {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl Bad {
    fn at(self, path: &Path) -> DataError {
        let path = path.to_owned();
        match self {
            Self::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => DataError::Corrupt {
                path,
                reason: "the file ends early (truncated?)".into(),
            },
            Self::Io(source) => DataError::Io { path, source },
            Self::Corrupt(reason) => DataError::Corrupt { path, reason },
            Self::Empty => DataError::Empty { path },
        }
    }
}

/// The counts and scale of the header.
struct Header {
    n_users: usize,
    n_items: usize,
    nnz: usize,
    scale: RatingScale,
}

/// The header, checked against the file's `len` bytes.
fn read_header<R: Read>(r: &mut Crc<R>, len: u64) -> Result<Header, Bad> {
    let mut head = [0u8; 16];
    r.take(&mut head)?;
    if &head[..8] != MAGIC {
        return Err(Bad::Corrupt(
            "not a mixrec binary snapshot (bad magic)".into(),
        ));
    }
    let version = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(Bad::Corrupt(format!(
            "format version {version}; this build reads version {VERSION}"
        )));
    }
    let (n_users, n_items, nnz) = (r.u64()?, r.u64()?, r.u64()?);
    let min = f64::from_bits(r.u64()?);
    let max = f64::from_bits(r.u64()?);
    // The arrays must fit in the file: a damaged header must not size a huge allocation.
    let arrays = n_users
        .saturating_add(1)
        .saturating_mul(8)
        .saturating_add(nnz.saturating_mul(8));
    if arrays > len || n_items > len.saturating_mul(8) {
        return Err(Bad::Corrupt(format!(
            "the header's counts ({n_users} users, {nnz} ratings) exceed the file's {len} bytes"
        )));
    }
    let (n_users, n_items, nnz) = (n_users as usize, n_items as usize, nnz as usize);
    let scale = RatingScale { min, max };
    Ok(Header {
        n_users,
        n_items,
        nnz,
        scale,
    })
}

/// What a binary snapshot holds, as read, before its invariants are checked.
struct Parts {
    header: Header,
    users: IdMap,
    items: IdMap,
    offsets: Vec<u64>,
    item_index: Vec<u32>,
    values: Vec<f32>,
}

/// Header, ids and arrays, up to the checksum. The id maps' indices are built on a second
/// thread while the arrays are read: at 100 M ratings and half a million named users the
/// hashing was a sixth of the load, and the reads leave a core idle.
fn read_parts<R: Read>(
    r: &mut Crc<R>,
    len: u64,
    fill: impl FnOnce(&mut Crc<R>, &mut [u64], &mut [u32], &mut [f32]) -> io::Result<()>,
) -> Result<Parts, Bad> {
    let header = read_header(r, len)?;
    let users = read_ids(r, header.n_users)?.map_err(Bad::Corrupt)?;
    let items = read_ids(r, header.n_items)?.map_err(Bad::Corrupt)?;
    std::thread::scope(|scope| {
        let maps = scope.spawn(|| (users.into_map(), items.into_map()));
        let mut offsets = vec![0u64; header.n_users + 1];
        let mut item_index = vec![0u32; header.nnz];
        let mut values = vec![0f32; header.nnz];
        let read = fill(r, &mut offsets, &mut item_index, &mut values);
        let (users, items) = maps.join().expect("building an id map never panics");
        read?;
        Ok(Parts {
            header,
            users,
            items,
            offsets,
            item_index,
            values,
        })
    })
}

impl Parts {
    /// The snapshot, once the arrays keep every invariant and hold at least one rating (as
    /// for text, a snapshot without ratings is refused; mixrec never writes one).
    fn into_snapshot(self) -> Result<Snapshot, Bad> {
        let Self { header: h, .. } = self;
        check(
            &self.offsets,
            &self.item_index,
            &self.values,
            h.n_items,
            h.scale,
        )
        .map_err(Bad::Corrupt)?;
        if h.nnz == 0 {
            return Err(Bad::Empty);
        }
        Ok(Snapshot {
            ratings: Ratings::from_parts(self.offsets, self.item_index, self.values, h.n_items),
            users: self.users,
            items: self.items,
            scale: h.scale,
            format: Format::Binary,
            path: Default::default(),
            replaced: 0,
        })
    }
}

/// The checksum, and nothing after it: bytes after the checksum are no part of the snapshot,
/// so a file with more (two files joined, a copy appended to) is refused, not half read.
fn verify_end<R: Read>(mut r: Crc<R>) -> Result<(), Bad> {
    let mut stored = [0u8; 4];
    r.inner.read_exact(&mut stored)?;
    let more = r.inner.read(&mut [0u8])? != 0;
    check_end(&r.crc, stored, more)
}

/// The checksum `stored` against the running one, then that no bytes follow (`more`).
fn check_end(crc: &crc32fast::Hasher, stored: [u8; 4], more: bool) -> Result<(), Bad> {
    if u32::from_le_bytes(stored) != crc.clone().finalize() {
        return Err(Bad::Corrupt(
            "checksum mismatch: the file is damaged".into(),
        ));
    }
    if more {
        return Err(Bad::Corrupt(
            "bytes follow the checksum: the file is damaged".into(),
        ));
    }
    Ok(())
}

/// The snapshot read from the file at `path`, or why not, naming it.
fn named(read: Result<Snapshot, Bad>, path: &Path) -> Result<Snapshot, DataError> {
    let snapshot = read.map_err(|bad| bad.at(path))?;
    Ok(Snapshot {
        path: path.to_owned(),
        ..snapshot
    })
}

fn read_ids<R: Read>(r: &mut Crc<R>, n: usize) -> io::Result<Result<Ids, String>> {
    let mut kind = [0u8];
    r.take(&mut kind)?;
    match kind[0] {
        0 => Ok(Ok(Ids::Positional(n))),
        1 => {
            let mut names = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                let mut len = [0u8; 4];
                r.take(&mut len)?;
                let len = u32::from_le_bytes(len) as usize;
                if len > 1 << 20 {
                    return Ok(Err(format!("an id of {len} bytes")));
                }
                let mut bytes = vec![0u8; len];
                r.take(&mut bytes)?;
                match String::from_utf8(bytes) {
                    Ok(s) => names.push(s),
                    Err(_) => return Ok(Err("an id is not UTF-8".into())),
                }
            }
            Ok(Ok(Ids::Named(names)))
        }
        k => Ok(Err(format!("unknown id map kind {k}"))),
    }
}

/// An id map as read, before its index is built.
enum Ids {
    Positional(usize),
    Named(Vec<String>),
}

impl Ids {
    fn into_map(self) -> IdMap {
        match self {
            Self::Positional(n) => IdMap::Positional(n),
            Self::Named(names) => IdMap::named(names),
        }
    }
}

/// Ratings a task of [`check`] covers at least (its users' rows whole).
const CHECK_CHUNK: usize = 1 << 20;

/// The invariants `Ratings` relies on. The offsets first, in order; then the rows and the
/// values in chunks on every core, reporting the first user or rating at fault, as a
/// sequential scan would.
fn check(
    offsets: &[u64],
    items: &[u32],
    values: &[f32],
    n_items: usize,
    scale: RatingScale,
) -> Result<(), String> {
    use rayon::prelude::*;
    if offsets.first() != Some(&0) || offsets.last() != Some(&(items.len() as u64)) {
        return Err("row offsets do not span the ratings".into());
    }
    for (u, w) in offsets.windows(2).enumerate() {
        if w[0] > w[1] {
            return Err(format!("row offsets decrease at user {u}"));
        }
        // Checked here, not left to the last offset: one offset past the end followed by a
        // decrease back to it would otherwise slice out of bounds (found by cargo-fuzz).
        if w[1] as usize > items.len() {
            return Err(format!("row offsets of user {u} pass the ratings"));
        }
    }
    // Users in runs of about CHECK_CHUNK ratings: (first user, end user).
    let n_users = offsets.len() - 1;
    let mut runs = Vec::new();
    let mut start = 0;
    while start < n_users {
        let want = offsets[start] + CHECK_CHUNK as u64;
        let end =
            (start + offsets[start..].partition_point(|&o| o < want)).clamp(start + 1, n_users);
        runs.push((start, end));
        start = end;
    }
    let bad_row = runs.par_iter().find_map_first(|&(first, end)| {
        (first..end).find_map(|u| {
            let row = &items[offsets[u] as usize..offsets[u + 1] as usize];
            if row.windows(2).any(|p| p[0] >= p[1]) {
                return Some(format!("items of user {u} are not strictly ascending"));
            }
            if row.last().is_some_and(|&l| l as usize >= n_items) {
                return Some(format!("user {u} rates an item past the catalogue"));
            }
            None
        })
    });
    if let Some(bad) = bad_row {
        return Err(bad);
    }
    let bad_value = values
        .par_chunks(CHECK_CHUNK)
        .find_map_first(|c| c.iter().find(|&&x| !scale.contains(f64::from(x))).copied());
    if let Some(x) = bad_value {
        return Err(format!(
            "rating {x} is not a finite number inside {}..={}",
            scale.min, scale.max
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{LoadOptions, load_str};

    fn round_trip(text: &str) -> (Snapshot, Vec<u8>) {
        let s = load_str(text, LoadOptions::default()).unwrap();
        let mut bytes = Vec::new();
        write_binary(&mut bytes, &s).unwrap();
        (s, bytes)
    }

    #[test]
    fn snapshots_round_trip_bit_for_bit() {
        for text in ["u1,i1,4\nu2,i2,3.5\nu1,i3,1\n", "1 0 3\n0 0 0\n5 4.5 0\n"] {
            let (s, bytes) = round_trip(text);
            let back =
                read_binary(bytes.as_slice(), Path::new("t.bin"), bytes.len() as u64).unwrap();
            assert_eq!(
                (back.ratings, back.users, back.items, back.scale),
                (s.ratings, s.users, s.items, s.scale)
            );
            assert_eq!(back.format, Format::Binary);
        }
    }

    #[test]
    fn damage_is_refused_with_a_reason() {
        let (_, bytes) = round_trip("u1,i1,4\nu2,i2,3.5\n");
        let read = |b: &[u8]| {
            read_binary(b, Path::new("t.bin"), b.len() as u64)
                .unwrap_err()
                .to_string()
        };
        assert!(read(&bytes[..bytes.len() - 3]).contains("ends early"));
        let mut flipped = bytes.clone();
        let at = flipped.len() - 6;
        flipped[at] ^= 1;
        assert!(read(&flipped).contains("checksum"));
        let mut magic = bytes.clone();
        magic[0] = b'X';
        assert!(read(&magic).contains("bad magic"));
        let mut huge = bytes.clone();
        huge[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(read(&huge).contains("exceed the file"));
        let longer = [bytes.as_slice(), b"\n"].concat();
        assert!(read(&longer).contains("bytes follow the checksum"));
    }

    #[test]
    #[cfg(unix)]
    fn a_file_read_on_two_threads_gives_the_same_snapshot_and_the_same_refusals() {
        // Enough ratings that each reading thread's part spans several pieces.
        let mut b = crate::data::RatingsBuilder::with_capacity(1000, 30_000, 1_500_000);
        for u in 0..30_000 {
            (0..50).for_each(|i| b.push((i * 20 + u % 20) as u32, (1 + (u + i) % 5) as f32));
            b.end_row();
        }
        let s = Snapshot {
            ratings: b.finish(),
            users: IdMap::Positional(30_000),
            items: IdMap::named((0..1000).map(|l| format!("item {l}")).collect()),
            scale: RatingScale { min: 1.0, max: 5.0 },
            format: Format::Binary,
            path: Default::default(),
            replaced: 0,
        };
        let mut bytes = Vec::new();
        write_binary(&mut bytes, &s).unwrap();
        assert!(bytes.len() > 2 * FILE_PIECE);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.bin");
        let from_file = |b: &[u8]| {
            std::fs::write(&path, b).unwrap();
            read_binary_file(&File::open(&path).unwrap(), &path, b.len() as u64)
        };
        let back = from_file(&bytes).unwrap();
        assert_eq!(
            (
                back.ratings,
                back.users,
                back.items,
                back.scale,
                back.format
            ),
            (s.ratings, s.users, s.items, s.scale, Format::Binary)
        );
        let message = |b: &[u8]| from_file(b).unwrap_err().to_string();
        let in_memory = |b: &[u8]| {
            read_binary(b, Path::new("t.bin"), b.len() as u64)
                .unwrap_err()
                .to_string()
        };
        let mut damaged = Vec::new();
        damaged.push(bytes[..bytes.len() - 3].to_vec());
        damaged.push(bytes[..bytes.len() / 2].to_vec());
        for at in [bytes.len() - 6, bytes.len() / 2, bytes.len() / 4] {
            let mut flipped = bytes.clone();
            flipped[at] ^= 1;
            damaged.push(flipped);
        }
        damaged.push([bytes.as_slice(), b"\n"].concat());
        for (i, b) in damaged.iter().enumerate() {
            let (file, memory) = (message(b), in_memory(b));
            assert_eq!(
                file.replace(&path.display().to_string(), "t.bin"),
                memory,
                "case {i}"
            );
        }
        assert!(message(&damaged[0]).contains("ends early"));
        assert!(message(&damaged[2]).contains("checksum"));
        assert!(message(&damaged[5]).contains("bytes follow the checksum"));
    }

    #[test]
    fn an_offset_past_the_ratings_is_refused_not_a_panic() {
        let scale = RatingScale { min: 1.0, max: 5.0 };
        let (items, values) = ([0u32, 1, 0, 1], [1f32; 4]);
        let err = check(&[0, 2, 1 << 59, 4], &items, &values, 2, scale).unwrap_err();
        assert_eq!(err, "row offsets of user 1 pass the ratings");
        assert!(check(&[0, 2, 2, 4], &items, &values, 2, scale).is_ok());
    }

    #[test]
    fn a_snapshot_without_ratings_is_refused() {
        // What cargo-fuzz built: a valid header and checksum around zero users and ratings.
        let mut bytes = MAGIC.to_vec();
        bytes.extend(VERSION.to_le_bytes());
        bytes.extend([0u8; 4 + 3 * 8]);
        bytes.extend(1f64.to_le_bytes());
        bytes.extend(5f64.to_le_bytes());
        bytes.extend([0u8, 0u8]); // positional ids
        bytes.extend(0u64.to_le_bytes()); // the one row offset
        let crc = crc32fast::hash(&bytes);
        bytes.extend(crc.to_le_bytes());
        let err = read_binary(bytes.as_slice(), Path::new("t.bin"), bytes.len() as u64);
        assert!(matches!(err, Err(DataError::Empty { .. })), "{err:?}");
    }
}
