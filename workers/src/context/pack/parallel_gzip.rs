//! Gzip on every core, pigz's way: the stream is cut into 128 KiB blocks, each compressed on a
//! thread of its own with the previous block's last 32 KiB as its dictionary, and the blocks
//! are joined into one ordinary gzip member. Block boundaries depend on the input alone, never
//! on the number of threads or on timing, so the output is the same on every machine.

use std::io::{self, Write};

use gzp::deflate::Gzip;
use gzp::par::compress::{ParCompress, ParCompressBuilder};
use gzp::{Compression, ZWriter};

/// A gzip writer that compresses on `threads` threads (level 1, like `gzip -1`). Memory stays
/// bounded: at most two blocks per thread wait for compression or output.
pub(super) struct ParallelGzip<W: Write + Send + 'static> {
    /// `None` once finished, or after a write failed (gzp has then shut its threads down).
    inner: Option<ParCompress<'static, Gzip, W>>,
}

impl<W: Write + Send + 'static> ParallelGzip<W> {
    /// Starts the compression threads; `threads` is at least 1.
    pub(super) fn new(out: W, threads: usize) -> io::Result<Self> {
        let inner = ParCompressBuilder::<Gzip>::new()
            .num_threads(threads.max(1))
            .map_err(io::Error::other)?
            .compression_level(Compression::fast())
            .from_writer(out);
        Ok(Self { inner: Some(inner) })
    }

    /// Compresses what is left, writes the gzip trailer and returns the output.
    pub(super) fn finish(mut self) -> io::Result<W> {
        let mut inner = self.inner.take().ok_or_else(finished)?;
        inner.finish().map_err(into_io)
    }
}

impl<W: Write + Send + 'static> Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let inner = self.inner.as_mut().ok_or_else(finished)?;
        let written = inner.write(buf);
        if written.is_err() {
            // gzp has already joined its threads; dropping it now does nothing more.
            self.inner = None;
        }
        written
    }

    /// Blocks are cut by size alone, so a flush must not end one early: that would make the
    /// output depend on who flushed when.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write + Send + 'static> Drop for ParallelGzip<W> {
    /// gzp's own drop finishes the stream and panics if that fails; finish here instead and let
    /// the caller's error (the reason the archive was abandoned) be the one reported.
    fn drop(&mut self) {
        if let Some(mut inner) = self.inner.take() {
            let _ = inner.finish();
        }
    }
}

/// The number of compression threads: one per core this process may use.
pub(super) fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn finished() -> io::Error {
    io::Error::other("the gzip stream was already finished")
}

fn into_io(error: gzp::GzpError) -> io::Error {
    match error {
        gzp::GzpError::Io(error) => error,
        other => io::Error::other(other),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{self, Read, Write};

    use flate2::read::GzDecoder;

    use super::ParallelGzip;

    /// A mix of text and xorshift noise, a few blocks long.
    fn sample(len: usize) -> Vec<u8> {
        let text = b"fn main() { println!(\"hello\"); }\n";
        let mut state = 0x2545_f491_u32;
        (0..len)
            .map(|i| {
                if (i / 50_000) % 2 == 0 {
                    text[i % text.len()]
                } else {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state.to_le_bytes()[0]
                }
            })
            .collect()
    }

    fn compress(data: &[u8], threads: usize) -> Vec<u8> {
        let mut gzip = ParallelGzip::new(Vec::new(), threads).unwrap();
        // Uneven writes, as tar makes them.
        for piece in data.chunks(7_777) {
            gzip.write_all(piece).unwrap();
            gzip.flush().unwrap();
        }
        gzip.finish().unwrap()
    }

    #[test]
    fn one_gzip_member_the_same_on_any_number_of_cores() {
        let data = sample(1_500_000);
        let one = compress(&data, 1);
        for threads in [2, 3, 8] {
            assert!(compress(&data, threads) == one, "{threads} threads differ");
        }
        // A fixed header: no mtime, OS "unknown".
        assert_eq!(&one[4..8], &[0, 0, 0, 0]);
        assert_eq!(one[9], 255);
        // A single-member decoder reads it all: one ordinary gzip stream, not several.
        let mut decoded = Vec::new();
        GzDecoder::new(&one[..]).read_to_end(&mut decoded).unwrap();
        assert!(decoded == data);
        assert!(one.len() < data.len() * 3 / 4, "{} bytes", one.len());
    }

    /// A consumer that goes away after a few bytes, like an upload that was cancelled.
    struct Gone(usize);

    impl Write for Gone {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let n = buf.len().min(self.0);
            self.0 -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_consumer_that_goes_away_is_an_error_not_a_panic() {
        let data = sample(2_000_000);
        let mut gzip = ParallelGzip::new(Gone(1000), 2).unwrap();
        let written = data.chunks(64 * 1024).try_for_each(|c| gzip.write_all(c));
        let finished = gzip.finish();
        assert!(written.is_err() || finished.is_err());
        // Abandoned half-way, as on a packing error: dropped without finishing.
        let mut gzip = ParallelGzip::new(Gone(1000), 2).unwrap();
        let _ = gzip.write_all(&data[..300_000]);
        drop(gzip);
    }
}
