use super::*;
use crate::protocol::ContextLimits;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::{Cursor, Write};
use tar::{Builder, Header};

pub(super) type Tar = Builder<Vec<u8>>;

pub(super) fn tar(build: impl FnOnce(&mut Tar)) -> Vec<u8> {
    let mut builder = Builder::new(Vec::new());
    build(&mut builder);
    builder.into_inner().unwrap()
}

pub(super) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

pub(super) fn header(kind: EntryType, size: usize) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size as u64);
    header.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
    header
}

pub(super) fn file(b: &mut Tar, path: &str, contents: &[u8]) {
    let mut header = header(EntryType::Regular, contents.len());
    b.append_data(&mut header, path, contents).unwrap();
}

pub(super) fn dir(b: &mut Tar, path: &str) {
    let mut header = header(EntryType::Directory, 0);
    b.append_data(&mut header, path, io::empty()).unwrap();
}

/// Writes an entry with raw name and link bytes, bypassing the builder's
/// path validation so that malicious entries can be created.
pub(super) fn raw(b: &mut Tar, kind: EntryType, name: &[u8], link: &[u8], data: &[u8]) {
    let mut header = header(kind, data.len());
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.as_old_mut().linkname[..link.len()].copy_from_slice(link);
    header.set_cksum();
    b.append(&header, data).unwrap();
}

pub(super) fn symlink(b: &mut Tar, name: &str, target: &str) {
    raw(
        b,
        EntryType::Symlink,
        name.as_bytes(),
        target.as_bytes(),
        &[],
    );
}

pub(super) fn hard_link(b: &mut Tar, name: &str, target: &str) {
    raw(b, EntryType::Link, name.as_bytes(), target.as_bytes(), &[]);
}

/// One `length key=value\n` PAX record; the length counts its own digits.
pub(super) fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body_len = key.len() + value.len() + 3; // ' ', '=' and '\n'
    let mut len = body_len + 1;
    while len.to_string().len() + body_len != len {
        len += 1;
    }
    let mut record = format!("{len} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

/// A PAX extended header entry describing the next entry.
pub(super) fn pax(b: &mut Tar, key: &str, value: &[u8]) {
    let record = pax_record(key, value);
    raw(b, EntryType::XHeader, b"PaxHeaders/entry", b"", &record);
}

/// A GNU long name entry describing the next entry.
pub(super) fn gnu_long_name(b: &mut Tar, name: &[u8]) {
    let mut data = name.to_vec();
    data.push(0);
    raw(b, EntryType::GNULongName, b"././@LongLink", b"", &data);
}

pub(super) fn verify(data: &[u8]) -> Result<ArchiveSummary, VerifyError> {
    verify_archive(data, &ContextLimits::default())
}

pub(super) fn unsafe_path_entry(err: VerifyError) -> String {
    match err {
        VerifyError::UnsafePath { entry, .. } => entry,
        other => panic!("expected UnsafePath, got {other:?}"),
    }
}

pub(super) fn unsafe_link_entry(err: VerifyError) -> (String, String) {
    match err {
        VerifyError::UnsafeLink { entry, target } => (entry, target),
        other => panic!("expected UnsafeLink, got {other:?}"),
    }
}

fn good_archive() -> Vec<u8> {
    let long_dir = format!("deep/{}", "d".repeat(120));
    tar(|b| {
        dir(b, "a");
        file(b, "a/Dockerfile", b"FROM scratch\n");
        file(b, "c", b"hello");
        symlink(b, "a/b", "../c");
        symlink(b, "a/self", ".");
        symlink(b, "a/sibling", "./Dockerfile");
        symlink(b, "up", "a/b");
        hard_link(b, "a/hard", "c");
        // The builder emits a GNU long name entry for this path.
        file(b, &format!("{long_dir}/file.txt"), b"1234");
        pax(b, "path", format!("pax/{}", "p".repeat(200)).as_bytes());
        raw(b, EntryType::Regular, b"pax-short", b"", b"xyz");
    })
}

#[test]
fn accepts_safe_gzip_archive() {
    let summary = verify(&gzip(&good_archive())).unwrap();
    assert_eq!(
        summary,
        ArchiveSummary {
            entries: 10,
            bytes: 13 + 5 + 4 + 3
        }
    );
}

#[test]
fn accepts_plain_tar() {
    let summary = verify(&good_archive()).unwrap();
    assert_eq!(summary.entries, 10);
}

#[test]
fn accepts_empty_archive() {
    assert_eq!(verify(&tar(|_| {})).unwrap(), ArchiveSummary::default());
}

#[test]
fn accepts_pax_global_header_like_git_archive() {
    let data = tar(|b| {
        let record = pax_record("comment", b"0123456789abcdef0123456789abcdef01234567");
        raw(
            b,
            EntryType::XGlobalHeader,
            b"pax_global_header",
            b"",
            &record,
        );
        file(b, "Dockerfile", b"FROM scratch\n");
    });
    assert_eq!(verify(&data).unwrap().entries, 1);
}

#[test]
fn accepts_multi_member_gzip() {
    let data = good_archive();
    let (first, second) = data.split_at(1000);
    let mut joined = gzip(first);
    joined.extend(gzip(second));
    assert!(verify(&joined).is_ok());
}

#[test]
fn consumes_the_whole_stream() {
    let mut data = gzip(&good_archive());
    let len = data.len() as u64;
    let mut cursor = Cursor::new(&mut data);
    verify_archive(&mut cursor, &ContextLimits::default()).unwrap();
    assert_eq!(cursor.position(), len);

    let mut plain = good_archive();
    plain.extend([0; 10240]);
    let len = plain.len() as u64;
    let mut cursor = Cursor::new(&mut plain);
    verify_archive(&mut cursor, &ContextLimits::default()).unwrap();
    assert_eq!(cursor.position(), len);
}

#[test]
fn rejects_parent_directory_path() {
    let data = tar(|b| raw(b, EntryType::Regular, b"../x", b"", b"evil"));
    let err = verify(&data).unwrap_err();
    assert_eq!(
        err.to_string(),
        "context archive entry '../x' is not allowed: it contains a '..' path component"
    );
}

#[test]
fn rejects_parent_directory_in_the_middle() {
    let data = tar(|b| raw(b, EntryType::Regular, b"a/../../x", b"", b"evil"));
    assert_eq!(unsafe_path_entry(verify(&data).unwrap_err()), "a/../../x");
}

#[test]
fn rejects_absolute_path() {
    let data = gzip(&tar(|b| {
        raw(b, EntryType::Regular, b"/etc/passwd", b"", b"root")
    }));
    let err = verify(&data).unwrap_err();
    assert_eq!(
        err.to_string(),
        "context archive entry '/etc/passwd' is not allowed: it is an absolute path"
    );
}

#[test]
fn rejects_replacing_the_root() {
    let data = tar(|b| symlink(b, "./", "a"));
    assert_eq!(unsafe_path_entry(verify(&data).unwrap_err()), "./");
}

#[test]
fn rejects_malicious_gnu_long_name() {
    let name = format!("{}/../../../etc/cron.d/x", "a".repeat(120));
    let data = tar(|b| {
        gnu_long_name(b, name.as_bytes());
        raw(b, EntryType::Regular, b"harmless", b"", b"x");
    });
    assert_eq!(unsafe_path_entry(verify(&data).unwrap_err()), name);
}

#[test]
fn rejects_malicious_pax_path() {
    let data = tar(|b| {
        pax(b, "path", b"../evil");
        raw(b, EntryType::Regular, b"harmless", b"", b"x");
    });
    assert_eq!(unsafe_path_entry(verify(&data).unwrap_err()), "../evil");
}

#[test]
fn rejects_nul_in_pax_path() {
    let data = tar(|b| {
        pax(b, "path", b"a\0/../x");
        raw(b, EntryType::Regular, b"harmless", b"", b"x");
    });
    assert_eq!(unsafe_path_entry(verify(&data).unwrap_err()), "a\\0/../x");
}

#[test]
fn rejects_escaping_symlink() {
    let data = tar(|b| symlink(b, "a/b", "../../etc"));
    let err = verify(&data).unwrap_err();
    assert_eq!(
        err.to_string(),
        "context archive entry 'a/b' links to '../../etc', which is outside the build context"
    );
}

#[test]
fn accepts_absolute_symlink_rooted_in_the_context() {
    let data = tar(|b| symlink(b, "bin/python", "/usr/bin/python3"));
    assert!(verify(&data).is_ok());
    let data = tar(|b| symlink(b, "etc", "/../etc"));
    assert_eq!(
        unsafe_link_entry(verify(&data).unwrap_err()),
        ("etc".into(), "/../etc".into())
    );
}

#[test]
fn rejects_escaping_pax_linkpath() {
    let data = tar(|b| {
        pax(b, "linkpath", b"../../../../root");
        symlink(b, "a/l", "harmless");
    });
    assert_eq!(
        unsafe_link_entry(verify(&data).unwrap_err()),
        ("a/l".into(), "../../../../root".into())
    );
}

#[test]
fn rejects_symlink_escaping_through_another_symlink() {
    // `a/up` points at the root, so `a/esc` = root/.. is outside.
    let data = tar(|b| {
        symlink(b, "a/up", "..");
        symlink(b, "a/esc", "up/..");
    });
    assert_eq!(unsafe_link_entry(verify(&data).unwrap_err()).0, "a/esc");
}

#[test]
fn rejects_symlink_escaping_through_a_later_symlink() {
    let data = tar(|b| {
        symlink(b, "a/esc", "up/..");
        symlink(b, "a/up", "..");
    });
    assert_eq!(unsafe_link_entry(verify(&data).unwrap_err()).0, "a/esc");
}

#[test]
fn rejects_symlink_escaping_through_a_later_parent_symlink() {
    // Lexically `a/b/l` points at the root, but `a` turns out to be the root.
    let data = tar(|b| {
        symlink(b, "a/b/l", "../..");
        symlink(b, "a", ".");
    });
    assert_eq!(unsafe_link_entry(verify(&data).unwrap_err()).0, "a/b/l");
}

#[test]
fn rejects_overlong_paths() {
    let long = format!("{}x", "a/".repeat(2048));
    let data = tar(|b| {
        pax(b, "path", long.as_bytes());
        raw(b, EntryType::Regular, b"harmless", b"", b"x");
    });
    assert_eq!(unsafe_path_entry(verify(&data).unwrap_err()), long);
    let data = tar(|b| {
        pax(b, "linkpath", long.as_bytes());
        symlink(b, "l", "harmless");
    });
    assert_eq!(unsafe_path_entry(verify(&data).unwrap_err()), "l");
}

#[test]
fn rejects_symlink_loops() {
    let data = tar(|b| {
        symlink(b, "x", "y");
        symlink(b, "y", "x");
    });
    assert_eq!(unsafe_path_entry(verify(&data).unwrap_err()), "x");
}

#[test]
fn rejects_entries_below_a_symlink() {
    let data = tar(|b| {
        symlink(b, "link", "sub");
        file(b, "link/x", b"x");
    });
    let err = verify(&data).unwrap_err();
    assert_eq!(
        err.to_string(),
        "context archive entry 'link/x' is not allowed: its parent 'link' is a symbolic link"
    );
}

#[test]
fn rejects_replacing_a_symlink() {
    let data = tar(|b| {
        symlink(b, "link", "sub");
        dir(b, "link");
    });
    assert_eq!(unsafe_path_entry(verify(&data).unwrap_err()), "link");
}

#[test]
fn rejects_escaping_hard_links() {
    for target in ["../x", "/etc/passwd", "a/../../x"] {
        let data = tar(|b| hard_link(b, "h", target));
        assert_eq!(
            unsafe_link_entry(verify(&data).unwrap_err()),
            ("h".into(), target.into())
        );
    }
}

#[test]
fn rejects_hard_link_to_root() {
    let data = tar(|b| hard_link(b, "h", "."));
    assert_eq!(unsafe_path_entry(verify(&data).unwrap_err()), "h");
}

#[test]
fn rejects_devices_and_fifos() {
    for (kind, name) in [
        (EntryType::Char, "character device"),
        (EntryType::Block, "block device"),
        (EntryType::Fifo, "FIFO (named pipe)"),
    ] {
        let data = tar(|b| raw(b, kind, b"dev/x", b"", b""));
        match verify(&data).unwrap_err() {
            VerifyError::UnsupportedEntry { entry, kind } => {
                assert_eq!((entry.as_str(), kind.as_str()), ("dev/x", name));
            }
            other => panic!("expected UnsupportedEntry, got {other:?}"),
        }
    }
}

#[test]
fn rejects_unknown_entry_types() {
    let data = tar(|b| raw(b, EntryType::new(b'V'), b"label", b"", b""));
    let err = verify(&data).unwrap_err();
    assert_eq!(
        err.to_string(),
        "context archive entry 'label' is a tar entry of unsupported type 'V'; \
         only files, directories and links are allowed"
    );
}

#[test]
fn rejects_truncated_gzip() {
    let data = gzip(&good_archive());
    let err = verify(&data[..data.len() - 10]).unwrap_err();
    assert!(matches!(err, VerifyError::Truncated), "{err:?}");
    assert_eq!(err.to_string(), "context archive is truncated");
}

#[test]
fn rejects_gzip_missing_its_trailer() {
    let data = gzip(&good_archive());
    let err = verify(&data[..data.len() - 4]).unwrap_err();
    assert!(matches!(err, VerifyError::Truncated), "{err:?}");
}

#[test]
fn rejects_gzip_with_flipped_bytes() {
    let mut data = gzip(&good_archive());
    let middle = data.len() / 2;
    for byte in &mut data[middle..middle + 4] {
        *byte ^= 0xff;
    }
    let err = verify(&data).unwrap_err();
    assert!(matches!(err, VerifyError::Corrupt(_)), "{err:?}");
    assert!(err.to_string().starts_with("context archive is corrupt: "));
}

#[test]
fn rejects_gzip_with_wrong_checksum() {
    let mut data = gzip(&good_archive());
    let crc = data.len() - 8;
    data[crc] ^= 0xff;
    assert!(matches!(verify(&data), Err(VerifyError::Corrupt(_))));
}

#[test]
fn rejects_trailing_garbage_after_gzip() {
    let mut data = gzip(&good_archive());
    data.extend_from_slice(b"definitely not another gzip member");
    let err = verify(&data).unwrap_err();
    assert!(matches!(err, VerifyError::Corrupt(_)), "{err:?}");
}

#[test]
fn rejects_data_after_end_of_archive() {
    let mut data = good_archive();
    data.extend_from_slice(&tar(|b| file(b, "hidden", b"x")));
    assert!(matches!(verify(&data), Err(VerifyError::Corrupt(_))));
}

#[test]
fn rejects_truncated_plain_tar() {
    let data = good_archive();
    // Inside the first file's data.
    let err = verify(&data[..1024 + 5]).unwrap_err();
    assert!(matches!(err, VerifyError::Truncated), "{err:?}");
    // At a block boundary, without the end-of-archive marker.
    let err = verify(&data[..1536]).unwrap_err();
    assert!(matches!(err, VerifyError::Truncated), "{err:?}");
}

#[test]
fn rejects_corrupt_plain_tar() {
    let mut data = good_archive();
    data[100] ^= 0xff;
    assert!(matches!(verify(&data), Err(VerifyError::Corrupt(_))));
}

#[test]
fn rejects_empty_input() {
    let err = verify(&[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "context archive is corrupt: the upload is empty"
    );
}

#[test]
fn rejects_garbage() {
    let err = verify(&[b'x'; 2000]).unwrap_err();
    assert!(matches!(err, VerifyError::Corrupt(_)), "{err:?}");
}

#[test]
fn reports_upload_errors_as_io() {
    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "peer went away",
            ))
        }
    }
    let data = gzip(&good_archive());
    for cut in [0, 1, 100] {
        let err =
            verify_archive((&data[..cut]).chain(Failing), &ContextLimits::default()).unwrap_err();
        match err {
            VerifyError::Io(err) => assert_eq!(err.kind(), io::ErrorKind::ConnectionReset),
            other => panic!("expected Io, got {other:?}"),
        }
    }
}

#[test]
fn retries_interrupted_reads() {
    struct Interrupting<R> {
        inner: R,
        interrupt: bool,
    }
    impl<R: Read> Read for Interrupting<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let len = buf.len().min(7);
            self.inner.read(&mut buf[..len])
        }
    }
    let data = gzip(&good_archive());
    let reader = Interrupting {
        inner: data.as_slice(),
        interrupt: false,
    };
    assert_eq!(
        verify_archive(reader, &ContextLimits::default())
            .unwrap()
            .entries,
        10
    );
}

#[test]
fn random_bytes_are_described_not_echoed() {
    // Bytes that look like a tar header's text fields, which the tar crate would quote.
    let mut data: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    data[..16].copy_from_slice(b"ECHO-ME-IF-YOU-C");
    let message = verify(&data).unwrap_err().to_string();
    assert_eq!(
        message,
        "context archive is corrupt: not a tar archive (gzip-compressed or plain), or a damaged one"
    );
}
