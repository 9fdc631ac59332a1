//! Writing a planned archive as a reproducible `tar.gz`, with rate-limited progress reports.

use std::fs::File;
use std::io::{self, Read, Write};

use super::parallel_gzip::{default_threads, ParallelGzip};
use super::{EntryKind, PackError, PackPlan, PackProgress, PlanEntry};

/// Size of the file read buffer.
const IO_BUFFER_SIZE: usize = 256 * 1024;
/// Progress is reported after at least this many content bytes...
const PROGRESS_BYTES_STEP: u64 = 1024 * 1024;
/// ...or this many files since the previous report.
const PROGRESS_FILES_STEP: u64 = 500;

/// Writes the planned archive as `tar.gz` to `out`, compressing on every core, and returns
/// `out` once the gzip stream is complete. `progress` is called every so often with cumulative
/// counts, and once at the end.
pub fn write_tar_gz<W: Write + Send + 'static>(
    plan: &PackPlan,
    out: W,
    progress: &dyn Fn(PackProgress),
) -> Result<W, PackError> {
    // The compressor buffers whole blocks itself, so tar writes straight into it.
    let gzip = ParallelGzip::new(out, default_threads()).map_err(PackError::Write)?;
    let mut tar = tar::Builder::new(gzip);
    let mut buffer = vec![0; IO_BUFFER_SIZE];
    let mut tracker = ProgressTracker::new(progress);
    for entry in &plan.entries {
        append_entry(&mut tar, entry, &mut buffer, &mut tracker)?;
    }
    let gzip = tar.into_inner().map_err(PackError::Write)?;
    let out = gzip.finish().map_err(PackError::Write)?;
    tracker.report();
    Ok(out)
}

/// A header carrying only what is reproducible: no owner, no user or group names.
fn base_header(entry: &PlanEntry, entry_type: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(entry_type);
    header.set_size(size);
    header.set_mode(entry.mode);
    header.set_mtime(u64::try_from(entry.mtime_ns.div_euclid(1_000_000_000)).unwrap_or(0));
    header.set_uid(0);
    header.set_gid(0);
    header
}

fn append_entry<W: Write>(
    tar: &mut tar::Builder<W>,
    entry: &PlanEntry,
    buffer: &mut [u8],
    tracker: &mut ProgressTracker<'_>,
) -> Result<(), PackError> {
    match &entry.kind {
        EntryKind::Dir => {
            let mut header = base_header(entry, tar::EntryType::Directory, 0);
            let mut path = entry.path.clone().into_os_string();
            path.push("/");
            tar.append_data(&mut header, path, io::empty())
                .map_err(PackError::Write)
        }
        EntryKind::Symlink(target) => {
            let mut header = base_header(entry, tar::EntryType::Symlink, 0);
            tar.append_link(&mut header, &entry.path, target)
                .map_err(PackError::Write)
        }
        EntryKind::File => {
            append_file(tar, entry, buffer, tracker)?;
            tracker.file_done();
            Ok(())
        }
    }
}

fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    entry: &PlanEntry,
    buffer: &mut [u8],
    tracker: &mut ProgressTracker<'_>,
) -> Result<(), PackError> {
    let unreadable = |source| PackError::Unreadable {
        path: entry.source.clone(),
        source,
    };
    let file = File::open(&entry.source).map_err(unreadable)?;
    // The size is taken from the open file rather than the plan: a file appended to since
    // planning (a log, say) is then packed as it is now instead of failing the build.
    let size = file.metadata().map_err(unreadable)?.len();
    let mut header = base_header(entry, tar::EntryType::Regular, size);
    let mut reader = ContentReader {
        file,
        buffer,
        start: 0,
        end: 0,
        remaining: size,
        failure: None,
        tracker,
    };
    match tar.append_data(&mut header, &entry.path, &mut reader) {
        Ok(()) => Ok(()),
        Err(write_error) => Err(match reader.failure {
            Some(ReadFailure::Io(source)) => unreadable(source),
            Some(ReadFailure::Shrank) => PackError::FileChanged {
                path: entry.source.clone(),
            },
            None => PackError::Write(write_error),
        }),
    }
}

/// Why reading a file's content failed, kept apart from tar's error so the user is told which
/// file broke rather than that "writing" failed.
enum ReadFailure {
    Io(io::Error),
    Shrank,
}

/// Serves exactly `remaining` bytes of a file through the caller's reusable buffer: few read
/// syscalls, no per-file allocation, and never more or fewer bytes than the tar header
/// announced (growth past it is ignored; shrinking is an error, not a corrupt archive).
struct ContentReader<'a, 'p> {
    file: File,
    buffer: &'a mut [u8],
    start: usize,
    end: usize,
    remaining: u64,
    failure: Option<ReadFailure>,
    tracker: &'a mut ProgressTracker<'p>,
}

impl ContentReader<'_, '_> {
    fn fill(&mut self) -> io::Result<()> {
        let want = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(self.buffer.len());
        let read = loop {
            match self.file.read(&mut self.buffer[..want]) {
                Ok(read) => break read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.fail(ReadFailure::Io(e))),
            }
        };
        if read == 0 {
            return Err(self.fail(ReadFailure::Shrank));
        }
        self.start = 0;
        self.end = read;
        self.remaining -= read as u64;
        self.tracker.add_bytes(read as u64);
        Ok(())
    }

    fn fail(&mut self, failure: ReadFailure) -> io::Error {
        self.failure = Some(failure);
        io::Error::other("reading a file of the build context failed")
    }
}

impl Read for ContentReader<'_, '_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.start == self.end {
            if self.remaining == 0 {
                return Ok(0);
            }
            self.fill()?;
        }
        let n = out.len().min(self.end - self.start);
        out[..n].copy_from_slice(&self.buffer[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }
}

/// Rate-limits progress callbacks so they cost nothing next to the compression.
struct ProgressTracker<'a> {
    callback: &'a dyn Fn(PackProgress),
    bytes: u64,
    files: u64,
    reported_bytes: u64,
    reported_files: u64,
}

impl<'a> ProgressTracker<'a> {
    fn new(callback: &'a dyn Fn(PackProgress)) -> Self {
        Self {
            callback,
            bytes: 0,
            files: 0,
            reported_bytes: 0,
            reported_files: 0,
        }
    }

    fn add_bytes(&mut self, bytes: u64) {
        self.bytes += bytes;
        if self.bytes - self.reported_bytes >= PROGRESS_BYTES_STEP {
            self.report();
        }
    }

    fn file_done(&mut self) {
        self.files += 1;
        if self.files - self.reported_files >= PROGRESS_FILES_STEP {
            self.report();
        }
    }

    fn report(&mut self) {
        self.reported_bytes = self.bytes;
        self.reported_files = self.files;
        (self.callback)(PackProgress {
            bytes: self.bytes,
            files: self.files,
        });
    }
}
