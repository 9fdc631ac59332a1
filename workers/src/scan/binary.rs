//! The streaming look at an executable while its tar entry is read: Go's module build info
//! (found by its magic as the bytes go by, never buffering the binary) and, for binaries up to
//! [`AUDITABLE_MAX_BINARY`], the `cargo auditable` section (ELF section headers sit at the end
//! of the file, after the data they describe, so finding a section needs the whole file).

use std::io::Read;

use memchr::memmem;
use object::{Object, ObjectSection};

/// Largest binary kept whole to read its `.dep-v0` section: one at a time, so this is the
/// walk's extra peak memory. Larger binaries still get the Go scan; their audit data is skipped.
pub const AUDITABLE_MAX_BINARY: u64 = 64 * 1024 * 1024;
/// Largest decompressed `cargo auditable` JSON accepted (a zip bomb stops here).
const AUDITABLE_MAX_JSON: u64 = 16 * 1024 * 1024;
/// Largest Go build info blob (header, version and module list) read after the magic.
const GO_BUILDINFO_MAX: usize = 4 * 1024 * 1024;

const ELF_MAGIC: &[u8] = b"\x7fELF";
const GO_MAGIC: &[u8] = b"\xff Go buildinf:";
const GO_HEADER_LEN: usize = 32;
/// The build info blob starts on a 16-byte boundary (`buildInfoAlign` in Go's debug/buildinfo).
const GO_ALIGN: u64 = 16;
/// Flag bit: strings follow the header inline as varint-prefixed bytes (Go ≥ 1.18).
const GO_FLAG_INLINE: u8 = 0x2;
const READ_CHUNK: usize = 256 * 1024;

/// What an executable carries about the code built into it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BinaryFindings {
    pub go: Option<GoBuildInfo>,
    /// `cargo auditable` data: the JSON, decompressed; or why it could not be read.
    pub cargo_auditable: Option<Result<Vec<u8>, String>>,
}

impl BinaryFindings {
    fn is_empty(&self) -> bool {
        self.go.is_none() && self.cargo_auditable.is_none()
    }
}

/// Go's embedded build info.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GoBuildInfo {
    /// Go ≥ 1.18: the toolchain version (`go1.22.1`) and the module info text (`path`, `mod`,
    /// `dep`, `=>` lines).
    Inline { go_version: String, modinfo: String },
    /// A binary from before Go 1.18, whose build info points into the data segment.
    PointerFormat,
    /// The magic was there but what followed it was cut short or malformed.
    Malformed,
}

/// Reads an executable entry to its end. `None` when it is not ELF or carries nothing known.
pub fn scan_executable(
    mut reader: impl Read,
    size: u64,
) -> std::io::Result<Option<BinaryFindings>> {
    let mut chunk = vec![0; READ_CHUNK];
    let mut head = 0;
    // Fill the first four bytes, however the reader splits them.
    while head < ELF_MAGIC.len() {
        let n = reader.read(&mut chunk[head..])?;
        if n == 0 {
            return Ok(None);
        }
        head += n;
    }
    if &chunk[..ELF_MAGIC.len()] != ELF_MAGIC {
        return Ok(None);
    }
    let mut whole = (size <= AUDITABLE_MAX_BINARY).then(|| Vec::with_capacity(size as usize));
    let mut go = GoScanner::default();
    let mut filled = head;
    loop {
        go.feed(&chunk[..filled]);
        if let Some(whole) = whole.as_mut() {
            whole.extend_from_slice(&chunk[..filled]);
        }
        filled = reader.read(&mut chunk)?;
        if filled == 0 {
            break;
        }
    }
    let findings = BinaryFindings {
        go: go.finish(),
        cargo_auditable: whole.and_then(|bytes| auditable_section(&bytes)),
    };
    Ok((!findings.is_empty()).then_some(findings))
}

/// Finds Go's build info in a stream of chunks. Bytes are held only from a candidate magic
/// on, until its blob parses or proves not to be one.
#[derive(Default)]
struct GoScanner {
    /// Bytes not yet ruled out: the tail that may start a magic, or a candidate blob.
    pending: Vec<u8>,
    /// File offset of `pending[0]`.
    offset: u64,
    found: Option<GoBuildInfo>,
}

enum Parse {
    Done(GoBuildInfo),
    NeedMore,
    NotBuildInfo,
}

impl GoScanner {
    fn feed(&mut self, chunk: &[u8]) {
        if self.found.is_some() {
            return;
        }
        self.pending.extend_from_slice(chunk);
        let mut from = 0;
        while let Some(hit) = memmem::find(&self.pending[from..], GO_MAGIC).map(|i| from + i) {
            if !(self.offset + hit as u64).is_multiple_of(GO_ALIGN) {
                from = hit + 1;
                continue;
            }
            match parse_go_blob(&self.pending[hit..]) {
                Parse::Done(info) => {
                    self.found = Some(info);
                    self.pending = Vec::new();
                    return;
                }
                Parse::NeedMore if self.pending.len() - hit < GO_BUILDINFO_MAX => {
                    self.consume(hit);
                    return;
                }
                Parse::NeedMore | Parse::NotBuildInfo => from = hit + 1,
            }
        }
        // Keep only what could be the start of a magic split across chunks.
        let keep = (GO_MAGIC.len() - 1).min(self.pending.len());
        self.consume(self.pending.len() - keep);
    }

    fn consume(&mut self, n: usize) {
        self.pending.drain(..n);
        self.offset += n as u64;
    }

    fn finish(self) -> Option<GoBuildInfo> {
        match self.found {
            Some(info) => Some(info),
            // A magic whose blob never completed before the end of the file.
            None if self.pending.len() > GO_MAGIC.len() && self.pending.starts_with(GO_MAGIC) => {
                Some(GoBuildInfo::Malformed)
            }
            None => None,
        }
    }
}

/// Parses a blob that starts with the magic: `magic[14] ptrsize[1] flags[1]`, padding to 32,
/// then (inline format) the Go version and the module info as varint-length strings.
fn parse_go_blob(blob: &[u8]) -> Parse {
    if blob.len() < GO_HEADER_LEN {
        return Parse::NeedMore;
    }
    let ptr_size = blob[GO_MAGIC.len()];
    let flags = blob[GO_MAGIC.len() + 1];
    if ptr_size != 4 && ptr_size != 8 {
        return Parse::NotBuildInfo;
    }
    if flags & GO_FLAG_INLINE == 0 {
        return Parse::Done(GoBuildInfo::PointerFormat);
    }
    let mut rest = &blob[GO_HEADER_LEN..];
    let Some(version) = read_varint_string(&mut rest) else {
        return Parse::NeedMore;
    };
    let Some(modinfo) = read_varint_string(&mut rest) else {
        return Parse::NeedMore;
    };
    // The sentinels around the module info are binary, so strip them before reading text.
    let (Ok(version), Ok(modinfo)) = (
        std::str::from_utf8(version),
        std::str::from_utf8(strip_sentinels(modinfo)),
    ) else {
        return Parse::NotBuildInfo;
    };
    if !version.starts_with("go") && !version.starts_with("devel") {
        return Parse::NotBuildInfo;
    }
    Parse::Done(GoBuildInfo::Inline {
        go_version: version.to_owned(),
        modinfo: modinfo.to_owned(),
    })
}

/// A uvarint length and that many bytes; `None` when `buf` ends first.
fn read_varint_string<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let mut len: u64 = 0;
    for (i, &byte) in buf.iter().enumerate().take(10) {
        len |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let start = i + 1;
            let end = start.checked_add(usize::try_from(len).ok()?)?;
            let bytes = buf.get(start..end)?;
            *buf = &buf[end..];
            return Some(bytes);
        }
    }
    None
}

/// The linker wraps the module info in two 16-byte sentinels (see Go's
/// `debug/buildinfo`): drop them when they are there.
fn strip_sentinels(modinfo: &[u8]) -> &[u8] {
    if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        &modinfo[16..modinfo.len() - 16]
    } else {
        modinfo
    }
}

/// The zlib-compressed JSON `cargo auditable` puts in the `.dep-v0` section.
fn auditable_section(binary: &[u8]) -> Option<Result<Vec<u8>, String>> {
    let file = object::File::parse(binary).ok()?;
    let section = file.section_by_name(".dep-v0")?;
    let compressed = match section.data() {
        Ok(data) => data,
        Err(err) => return Some(Err(format!("unreadable .dep-v0 section: {err}"))),
    };
    let mut json = Vec::new();
    let read = flate2::read::ZlibDecoder::new(compressed)
        .take(AUDITABLE_MAX_JSON + 1)
        .read_to_end(&mut json);
    Some(match read {
        Err(err) => Err(format!("corrupt .dep-v0 section: {err}")),
        Ok(_) if json.len() as u64 > AUDITABLE_MAX_JSON => Err(format!(
            ".dep-v0 section over {AUDITABLE_MAX_JSON} bytes decompressed"
        )),
        Ok(_) => Ok(json),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut n = n as u64;
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    /// An ELF-looking file with an inline Go build info blob at `at` (16-aligned).
    fn fake_go_binary(at: usize, version: &str, modinfo: &str) -> Vec<u8> {
        let mut bytes = b"\x7fELF".to_vec();
        bytes.resize(at, 0);
        bytes.extend_from_slice(GO_MAGIC);
        bytes.extend_from_slice(&[8, GO_FLAG_INLINE]);
        bytes.resize(at + GO_HEADER_LEN, 0);
        bytes.extend(varint(version.len()));
        bytes.extend_from_slice(version.as_bytes());
        // The linker's 16-byte sentinels around the text, which ends with a newline.
        let sentinel = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6";
        bytes.extend(varint(modinfo.len() + 32));
        bytes.extend_from_slice(sentinel);
        bytes.extend_from_slice(modinfo.as_bytes());
        bytes.extend_from_slice(sentinel);
        bytes.resize(bytes.len() + 1000, 0);
        bytes
    }

    /// A reader handing out at most `step` bytes a call, to split magics across chunks.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn finds_go_build_info_split_across_reads() {
        let modinfo = "path\texample.com/app\nmod\texample.com/app\t(devel)\t\n";
        let binary = fake_go_binary(4096, "go1.22.1", modinfo);
        for step in [1, 7, 13, 4096, 1 << 20] {
            let found = scan_executable(Trickle(&binary, step), binary.len() as u64)
                .unwrap()
                .unwrap();
            assert_eq!(
                found.go,
                Some(GoBuildInfo::Inline {
                    go_version: "go1.22.1".into(),
                    modinfo: modinfo.into()
                }),
                "step {step}"
            );
        }
    }

    #[test]
    fn skips_a_magic_off_the_16_byte_boundary_and_non_elf_files() {
        let mut binary = b"\x7fELF".to_vec();
        binary.resize(4099, 0);
        binary.extend_from_slice(GO_MAGIC);
        binary.extend_from_slice(&[8, GO_FLAG_INLINE]);
        binary.resize(5000, 0);
        assert_eq!(
            scan_executable(&binary[..], binary.len() as u64).unwrap(),
            None
        );
        let script = b"#!/bin/sh\necho \xff Go buildinf:";
        assert_eq!(
            scan_executable(&script[..], script.len() as u64).unwrap(),
            None
        );
    }

    #[test]
    fn pre_118_pointer_format_is_reported_as_such() {
        let mut binary = b"\x7fELF".to_vec();
        binary.resize(64, 0);
        binary.extend_from_slice(GO_MAGIC);
        binary.extend_from_slice(&[8, 0]);
        binary.resize(200, 0);
        let found = scan_executable(&binary[..], binary.len() as u64)
            .unwrap()
            .unwrap();
        assert_eq!(found.go, Some(GoBuildInfo::PointerFormat));
    }
}
