//! The limits: extended header sizes, unpacked size, expansion, and hard links through
//! symlinks.

use std::io::Write;

use tar::Header;

use super::tests::{
    dir, file, gzip, hard_link, header, pax, raw, symlink, tar, unsafe_link_entry, verify, Tar,
};
use super::*;
use crate::protocol::ContextLimits;

const GIB: u64 = 1 << 30;

/// An entry whose header declares `size` bytes but whose contents are left out: a check
/// that tried to read them would find the archive truncated instead.
fn declared(b: &mut Tar, kind: EntryType, name: &str, size: u64) {
    let mut header = header(kind, 0);
    header.set_size(size);
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_cksum();
    b.append(&header, io::empty()).unwrap();
}

fn limits(max_unpacked_size: u64, max_expansion: u64) -> ContextLimits {
    ContextLimits {
        max_size: u64::MAX,
        max_unpacked_size,
        max_expansion,
    }
}

#[test]
fn refuses_huge_extended_headers_before_reading_them() {
    for (kind, name, what) in [
        (EntryType::XHeader, "PaxHeaders/bomb", "PAX header"),
        (
            EntryType::XGlobalHeader,
            "pax_global_header",
            "PAX global header",
        ),
        (EntryType::GNULongName, "././@LongLink", "GNU long name"),
        (
            EntryType::GNULongLink,
            "././@LongLink",
            "GNU long link name",
        ),
    ] {
        let data = tar(|b| declared(b, kind, name, GIB));
        match verify(&gzip(&data)).unwrap_err() {
            VerifyError::ExtendedHeaderTooLarge {
                entry,
                kind,
                size,
                limit,
            } => {
                assert_eq!((entry.as_str(), kind, size), (name, what, GIB));
                assert_eq!(limit, MAX_EXTENDED_HEADER);
            }
            other => panic!("expected ExtendedHeaderTooLarge for {what}, got {other:?}"),
        }
    }
}

#[test]
fn accepts_extended_headers_within_the_cap() {
    let data = tar(|b| {
        pax(b, "SCHILY.xattr.user.big", &[b'x'; 64 << 10]);
        file(b, "f", b"1");
    });
    assert_eq!(verify(&data).unwrap().entries, 1);
}

/// The guard must find headers where the tar crate does: here after a PAX `size` that
/// overrides the next header's, and after a file whose contents look like a huge header.
#[test]
fn follows_the_layout_as_the_tar_crate_does() {
    let mut fake = tar(|b| declared(b, EntryType::XHeader, "PaxHeaders/fake", GIB));
    fake.truncate(512);
    let data = tar(|b| {
        file(b, "looks-like-a-header", &fake);
        pax(b, "size", b"512");
        // The header says 0 bytes; the PAX size, which wins, says 512.
        let mut header = header(EntryType::Regular, 0);
        header.as_old_mut().name[..12].copy_from_slice(b"sized-by-pax");
        header.set_cksum();
        b.append(&header, fake.as_slice()).unwrap();
        file(b, "after", b"ok");
    });
    assert_eq!(verify(&data).unwrap().entries, 3);

    let data = tar(|b| {
        pax(b, "size", b"3");
        raw(b, EntryType::Regular, b"sized-by-pax", b"", b"abc");
        declared(b, EntryType::XHeader, "PaxHeaders/next", GIB);
    });
    assert!(matches!(
        verify(&data).unwrap_err(),
        VerifyError::ExtendedHeaderTooLarge { entry, .. } if entry == "PaxHeaders/next"
    ));
}

#[test]
fn refuses_an_entry_declaring_more_than_the_unpacked_limit() {
    let data = tar(|b| {
        file(b, "small", b"hello");
        declared(b, EntryType::Regular, "huge", 10 * GIB);
    });
    match verify_archive(gzip(&data).as_slice(), &limits(8 * GIB, 100)).unwrap_err() {
        VerifyError::EntryTooLarge { entry, size, limit } => {
            assert_eq!((entry.as_str(), size, limit), ("huge", 10 * GIB, 8 * GIB));
        }
        other => panic!("expected EntryTooLarge, got {other:?}"),
    }
}

#[test]
fn counts_a_sparse_entry_by_its_full_size() {
    let data = tar(|b| {
        let mut header = Header::new_gnu();
        header.set_entry_type(EntryType::GNUSparse);
        header.set_size(0);
        header.as_gnu_mut().unwrap().set_real_size(10 * GIB);
        header.set_path("sparse").unwrap();
        header.set_cksum();
        b.append(&header, io::empty()).unwrap();
    });
    let err = verify_archive(data.as_slice(), &limits(GIB, 100)).unwrap_err();
    assert!(
        matches!(&err, VerifyError::EntryTooLarge { entry, size, .. } if entry == "sparse" && *size == 10 * GIB),
        "{err:?}"
    );
    assert!(err.is_too_large());
}

#[test]
fn refuses_a_stream_larger_than_the_unpacked_limit() {
    // An empty archive followed by zeros: no entry declares anything.
    let mut data = tar(|_| {});
    data.extend(vec![0; 1 << 20]);
    let err = verify_archive(gzip(&data).as_slice(), &limits(64 << 10, 1 << 20)).unwrap_err();
    assert!(matches!(err, VerifyError::UnpackedTooLarge { limit } if limit == 64 << 10));
    assert!(verify_archive(gzip(&data).as_slice(), &limits(2 << 20, 1 << 20)).is_ok());
}

#[test]
fn refuses_a_decompression_bomb_past_the_floor() {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&tar(|_| {})).unwrap();
    let zeros = vec![0; 1 << 20];
    for _ in 0..(EXPANSION_FLOOR >> 20) + 8 {
        encoder.write_all(&zeros).unwrap();
    }
    let bomb = encoder.finish().unwrap();
    let err = verify_archive(bomb.as_slice(), &limits(u64::MAX, 100)).unwrap_err();
    assert!(
        matches!(err, VerifyError::ExpansionTooHigh { limit: 100 }),
        "{err:?}"
    );
    assert!(err.is_too_large());
    // The same ratio under the floor is fine: small contexts may compress very well.
    let small = gzip(&tar(|b| file(b, "zeros", &vec![0; 1 << 20])));
    assert!(verify_archive(small.as_slice(), &limits(u64::MAX, 2)).is_ok());
}

#[test]
fn refuses_hard_links_through_escaping_symlinks() {
    // Absolute symlinks are fine in themselves: BuildKit resolves them in the context.
    // But extraction makes the hard link on the host, whose kernel follows them from its root.
    let direct: &[(&str, &str)] = &[("link", "/etc")];
    let chained: &[(&str, &str)] = &[("abs", "/etc"), ("link", "abs")];
    for links in [direct, chained] {
        let data = tar(|b| {
            for (name, target) in links {
                symlink(b, name, target);
            }
            hard_link(b, "h", "link/secret");
        });
        assert_eq!(
            unsafe_link_entry(verify(&data).unwrap_err()),
            ("h".into(), "link/secret".into()),
            "{links:?}"
        );
    }
}

#[test]
fn accepts_hard_links_through_symlinks_that_stay_inside() {
    let data = tar(|b| {
        dir(b, "sub");
        file(b, "sub/f", b"x");
        symlink(b, "d", "sub");
        hard_link(b, "h", "d/f");
    });
    assert_eq!(verify(&data).unwrap().entries, 4);
}

/// Linking to a symlink makes another symlink: its target must stay inside from its new place.
#[test]
fn refuses_a_hard_link_that_moves_a_relative_symlink_out() {
    let data = tar(|b| {
        dir(b, "a");
        dir(b, "a/b");
        symlink(b, "a/b/l", "../x");
        hard_link(b, "h", "a/b/l");
    });
    assert_eq!(
        unsafe_link_entry(verify(&data).unwrap_err()),
        ("h".into(), "../x".into())
    );
}
