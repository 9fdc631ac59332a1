//! Byte ranges in headers: `Range: bytes=<start>-<end>` on blob downloads and
//! `Content-Range: <start>-<end>` on upload chunks.

use super::RegistryError;

/// An inclusive byte range of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn length(&self) -> u64 {
        self.end - self.start + 1
    }
}

/// The part of a `size`-byte blob a `Range` header asks for. `Ok(None)`: the whole blob (no
/// header, or one in a form we do not serve partially, which RFC 9110 lets us ignore).
/// A single range in bytes is served: `a-b`, `a-` and the suffix form `-n`.
pub fn parse_range(header: Option<&str>, size: u64) -> Result<Option<ByteRange>, RegistryError> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Ok(None);
    };
    let unsatisfiable = RegistryError::RangeNotSatisfiable { size };
    let range = match (first.trim(), last.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().map_err(|_| unsatisfiable)?;
            if n == 0 || size == 0 {
                return Err(RegistryError::RangeNotSatisfiable { size });
            }
            ByteRange {
                start: size.saturating_sub(n),
                end: size - 1,
            }
        }
        (start, end) => {
            let start: u64 = start
                .parse()
                .map_err(|_| RegistryError::RangeNotSatisfiable { size })?;
            let end: u64 = if end.is_empty() {
                size.saturating_sub(1)
            } else {
                end.parse()
                    .map_err(|_| RegistryError::RangeNotSatisfiable { size })?
            };
            if start >= size || end < start {
                return Err(RegistryError::RangeNotSatisfiable { size });
            }
            ByteRange {
                start,
                end: end.min(size - 1),
            }
        }
    };
    Ok(Some(range))
}

/// A chunk's `Content-Range: <start>-<end>` (some clients prefix `bytes=` or `bytes `).
pub fn parse_content_range(header: &str) -> Option<ByteRange> {
    let spec = header.trim();
    let spec = spec
        .strip_prefix("bytes=")
        .or_else(|| spec.strip_prefix("bytes "))
        .unwrap_or(spec);
    let spec = spec.split('/').next()?;
    let (start, end) = spec.split_once('-')?;
    let (start, end) = (start.trim().parse().ok()?, end.trim().parse().ok()?);
    (end >= start).then_some(ByteRange { start, end })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> Option<ByteRange> {
        Some(ByteRange { start, end })
    }

    #[test]
    fn download_ranges() {
        assert_eq!(parse_range(None, 10).unwrap(), None);
        assert_eq!(parse_range(Some("bytes=0-3"), 10).unwrap(), r(0, 3));
        assert_eq!(parse_range(Some("bytes=4-"), 10).unwrap(), r(4, 9));
        assert_eq!(parse_range(Some("bytes=-3"), 10).unwrap(), r(7, 9));
        assert_eq!(parse_range(Some("bytes=5-100"), 10).unwrap(), r(5, 9));
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10).unwrap(), None);
        assert_eq!(parse_range(Some("items=0-1"), 10).unwrap(), None);
        for bad in ["bytes=10-", "bytes=5-2", "bytes=x-1", "bytes=-0"] {
            assert!(
                matches!(
                    parse_range(Some(bad), 10),
                    Err(RegistryError::RangeNotSatisfiable { size: 10 })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn chunk_ranges() {
        assert_eq!(parse_content_range("0-99"), r(0, 99));
        assert_eq!(parse_content_range("bytes=100-199"), r(100, 199));
        assert_eq!(parse_content_range("bytes 0-9/10"), r(0, 9));
        assert_eq!(parse_content_range("9-0"), None);
        assert_eq!(parse_content_range("abc"), None);
    }
}
