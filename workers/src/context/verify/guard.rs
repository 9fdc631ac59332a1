//! Limits enforced on the decompressed tar stream as it is read, before the tar crate acts
//! on it.
//!
//! The tar crate reads the contents of a PAX extended header or a GNU long name or link
//! entry whole into memory, whatever size its header declares. So the guard finds every
//! header in the stream, the way the tar crate will, and refuses an extended header by the
//! size it declares, before a byte of its contents is read. The same pass bounds the
//! unpacked size, both of the stream and of the sizes its entries declare (a sparse or huge
//! entry is refused at its header), and how much the stream expands the compressed input.

use std::cell::Cell;
use std::fmt;
use std::io::{self, Read};
use std::rc::Rc;

use tar::{EntryType, Header, PaxExtensions};

use super::{display, VerifyError};
use crate::protocol::{ContextLimits, EXPANSION_FLOOR};

/// Largest PAX extended header or GNU long name or link entry accepted, in bytes. Real ones
/// hold a path or link target (at most 4096 bytes, which `normalize` enforces) and a few
/// attributes, of which extended attributes are the largest (Linux caps one value at
/// 64 KiB): 1 MiB is generous, and with at most three such headers per entry it bounds what
/// one entry can make the tar crate allocate to a few MiB.
pub const MAX_EXTENDED_HEADER: u64 = 1 << 20;

const BLOCK: usize = 512;

/// Counts the bytes read through it: the compressed input, for the expansion ratio.
pub(super) struct Counted<R> {
    pub(super) inner: R,
    pub(super) count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// A limit the stream broke, carried through the tar crate inside an `io::Error`.
#[derive(Debug)]
pub(super) struct Refused(pub(super) VerifyError);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Refused {}

/// What the next bytes of the stream are.
enum Region {
    /// (Part of) a header block, gathered in `Guard::block`.
    Header,
    /// GNU sparse extension blocks, before the entry's data of `data` bytes.
    SparseExtension { data: u64 },
    /// An extended header's contents and padding, `left` bytes more; kept when `keep` is
    /// set, for the size and name they give the next entry.
    Extension {
        left: u64,
        kind: EntryType,
        keep: bool,
    },
    /// An entry's data and padding, `left` bytes more.
    Data { left: u64 },
    /// Past the end-of-archive marker, or past a header the tar crate will reject itself:
    /// only the stream's size is watched from here on.
    Done,
}

/// Wraps the decompressed tar stream and refuses it, with a `Refused` error, as soon as it
/// breaks a limit.
pub(super) struct Guard<R> {
    inner: R,
    limits: ContextLimits,
    /// Compressed bytes read so far.
    compressed: Rc<Cell<u64>>,
    /// Decompressed bytes read so far.
    pos: u64,
    /// Sum of the sizes the entries declare.
    declared: u64,
    region: Region,
    block: Vec<u8>,
    /// The contents of the pending PAX header or GNU long name.
    kept: Vec<u8>,
    /// The PAX `size` of the next entry, overriding its header's as in the tar crate.
    pax_size: Option<u64>,
    /// The next entry's name from a PAX `path` or a GNU long name, for messages.
    long_name: Option<Vec<u8>>,
}

impl<R: Read> Guard<R> {
    pub(super) fn new(inner: R, limits: ContextLimits, compressed: Rc<Cell<u64>>) -> Self {
        Guard {
            inner,
            limits,
            compressed,
            pos: 0,
            declared: 0,
            region: Region::Header,
            block: Vec::with_capacity(BLOCK),
            kept: Vec::new(),
            pax_size: None,
            long_name: None,
        }
    }
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        self.scan(&buf[..n])
            .and_then(|()| self.check_totals())
            .map_err(|err| io::Error::other(Refused(err)))?;
        Ok(n)
    }
}

impl<R> Guard<R> {
    fn check_totals(&self) -> Result<(), VerifyError> {
        if self.pos > self.limits.max_unpacked_size {
            return Err(VerifyError::UnpackedTooLarge {
                limit: self.limits.max_unpacked_size,
            });
        }
        let allowed = self
            .compressed
            .get()
            .saturating_mul(self.limits.max_expansion);
        if self.pos > EXPANSION_FLOOR && self.pos > allowed {
            return Err(VerifyError::ExpansionTooHigh {
                limit: self.limits.max_expansion,
            });
        }
        Ok(())
    }

    /// Follows the archive's layout through `data`, the next bytes of the stream.
    fn scan(&mut self, mut data: &[u8]) -> Result<(), VerifyError> {
        while !data.is_empty() {
            match &mut self.region {
                Region::Done => return Ok(()),
                Region::Header | Region::SparseExtension { .. } => {
                    let take = (BLOCK - self.block.len()).min(data.len());
                    self.block.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if self.block.len() == BLOCK {
                        let block = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK));
                        self.on_block(&block)?;
                    }
                }
                Region::Extension { left, kind, keep } => {
                    let take = (*left).min(data.len() as u64) as usize;
                    if *keep {
                        self.kept.extend_from_slice(&data[..take]);
                    }
                    *left -= take as u64;
                    data = &data[take..];
                    if *left == 0 {
                        let kind = *kind;
                        self.on_extension(kind);
                        self.region = Region::Header;
                    }
                }
                Region::Data { left } => {
                    let take = (*left).min(data.len() as u64) as usize;
                    *left -= take as u64;
                    data = &data[take..];
                    if *left == 0 {
                        self.region = Region::Header;
                    }
                }
            }
        }
        Ok(())
    }

    fn on_block(&mut self, block: &[u8]) -> Result<(), VerifyError> {
        match self.region {
            Region::SparseExtension { data } => {
                // The last of a GNU sparse header's extension blocks clears `isextended`.
                let is_extended = block[504] == 1;
                if !is_extended {
                    self.region = data_region(data);
                }
                Ok(())
            }
            _ => self.on_header(block),
        }
    }

    /// A header block: mirrors how the tar crate's `Entries` reads one, so that the guard
    /// knows where the next header starts exactly as the crate will.
    fn on_header(&mut self, block: &[u8]) -> Result<(), VerifyError> {
        let mut header = Header::new_old();
        header.as_mut_bytes().copy_from_slice(block);
        // A zero block ends the archive; a bad checksum the crate refuses itself.
        if block.iter().all(|&b| b == 0) || !checksum_ok(&header) {
            self.region = Region::Done;
            return Ok(());
        }
        let kind = header.entry_type();
        let extension = kind.is_gnu_longname()
            || kind.is_gnu_longlink()
            || kind.is_pax_local_extensions()
            || kind.is_pax_global_extensions();
        // A PAX size applies to the entry the extensions describe, never to another extension.
        let size = match self.pax_size.filter(|_| !extension) {
            Some(size) => Ok(size),
            None => header.entry_size(),
        };
        let Ok(size) = size else {
            self.region = Region::Done;
            return Ok(());
        };
        if extension && size > MAX_EXTENDED_HEADER {
            return Err(VerifyError::ExtendedHeaderTooLarge {
                entry: display(&header.path_bytes()),
                kind: describe_extension(kind),
                size,
                limit: MAX_EXTENDED_HEADER,
            });
        }
        let recognized = header.as_gnu().is_some() || header.as_ustar().is_some();
        // The tar crate reads these three whole and applies them to the next entry; any
        // other header is an entry of its own, which the extensions read so far describe.
        if recognized
            && (kind.is_gnu_longname() || kind.is_gnu_longlink() || kind.is_pax_local_extensions())
        {
            self.kept.clear();
            self.region = match padded(size) {
                // Within MAX_EXTENDED_HEADER: cannot overflow.
                None => Region::Done,
                Some(0) => {
                    self.on_extension(kind);
                    Region::Header
                }
                Some(left) => Region::Extension {
                    left,
                    kind,
                    keep: !kind.is_gnu_longlink(),
                },
            };
            return Ok(());
        }
        let name = self
            .long_name
            .take()
            .unwrap_or_else(|| header.path_bytes().into_owned());
        self.pax_size = None;
        let declared = if kind.is_gnu_sparse() {
            // The crate refuses a sparse entry without a GNU header or a readable size.
            let Some(Ok(real)) = header.as_gnu().map(|gnu| gnu.real_size()) else {
                self.region = Region::Done;
                return Ok(());
            };
            size.max(real)
        } else {
            size
        };
        self.declared = self.declared.saturating_add(declared);
        if self.declared > self.limits.max_unpacked_size {
            return Err(VerifyError::EntryTooLarge {
                entry: display(&name),
                size: declared,
                limit: self.limits.max_unpacked_size,
            });
        }
        let sparse_extended =
            kind.is_gnu_sparse() && header.as_gnu().is_some_and(|gnu| gnu.is_extended());
        self.region = if sparse_extended {
            Region::SparseExtension { data: size }
        } else {
            data_region(size)
        };
        Ok(())
    }

    /// An extended header has been read in full: note what it says about the next entry.
    fn on_extension(&mut self, kind: EntryType) {
        let kept = std::mem::take(&mut self.kept);
        if kind.is_pax_local_extensions() {
            self.pax_size = pax_value(&kept, "size").and_then(|v| v.parse().ok());
            if let Some(path) = pax_value(&kept, "path") {
                self.long_name = Some(path.into_bytes());
            }
        } else if kind.is_gnu_longname() {
            let end = kept.iter().position(|&b| b == 0).unwrap_or(kept.len());
            self.long_name = Some(kept[..end].to_vec());
        }
    }
}

/// The value of `key` in PAX records, the way the tar crate looks it up: the first record
/// with that key, and nothing once a record is malformed.
fn pax_value(records: &[u8], key: &str) -> Option<String> {
    for record in PaxExtensions::new(records) {
        let record = record.ok()?;
        if record.key() == Ok(key) {
            return record.value().ok().map(str::to_owned);
        }
    }
    None
}

/// The header's checksum, computed as the tar crate does.
fn checksum_ok(header: &Header) -> bool {
    let bytes = header.as_bytes();
    let sum = bytes[..148]
        .iter()
        .chain(&bytes[156..])
        .fold(0u32, |sum, &b| sum + u32::from(b))
        + 8 * 32;
    header.cksum().is_ok_and(|cksum| cksum == sum)
}

/// An entry's data rounded up to whole blocks; `None` where the tar crate fails on overflow.
fn padded(size: u64) -> Option<u64> {
    let mask = BLOCK as u64 - 1;
    size.checked_add(mask).map(|size| size & !mask)
}

fn data_region(size: u64) -> Region {
    match padded(size) {
        None => Region::Done,
        Some(0) => Region::Header,
        Some(left) => Region::Data { left },
    }
}

fn describe_extension(kind: EntryType) -> &'static str {
    if kind.is_gnu_longname() {
        "GNU long name"
    } else if kind.is_gnu_longlink() {
        "GNU long link name"
    } else if kind.is_pax_global_extensions() {
        "PAX global header"
    } else {
        "PAX header"
    }
}
