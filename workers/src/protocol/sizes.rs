//! Sizes and transfer rates as people read them. Every size a user sees (limits, uploads,
//! downloads, registry listings) is printed through here, so they all read alike.

use std::time::Duration;

/// A size in binary units: `1 MiB`, `64 KiB`, `1.50 GiB`, `512 B`.
pub fn human_size(bytes: u64) -> String {
    humansize::format_size(bytes, humansize::BINARY)
}

/// `size`, known to be over `limit`, readably, but in bytes where rounding would make it
/// read as the limit itself ("65537 B", not "64 KiB, the limit is 64 KiB").
pub fn human_size_over(size: u64, limit: u64) -> String {
    let shown = human_size(size);
    // humansize keeps the decimals of a rounded value: 65537 bytes are "64.00 KiB".
    if shown.replace(".00", "") == human_size(limit) {
        format!("{size} B")
    } else {
        shown
    }
}

/// `1.20 MiB`, and `at 48 MiB/s` once the transfer took long enough for a rate to mean
/// something: a second. A 2 KiB context sent in 3 ms has a size, not a speed.
pub fn human_transfer(bytes: u64, took: Duration) -> String {
    let size = human_size(bytes);
    if took < Duration::from_secs(1) {
        return size;
    }
    let rate = (bytes as f64 / took.as_secs_f64()) as u64;
    format!("{size} at {}/s", human_size(rate))
}

/// `1 file`, `2 files`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_size(1 << 20), "1 MiB");
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(3 << 29), "1.50 GiB");
        assert_eq!(human_size_over(2 << 20, 1 << 20), "2 MiB");
        assert_eq!(human_size_over((1 << 20) + 1, 1 << 20), "1048577 B");
    }

    #[test]
    fn rates_only_once_they_mean_something() {
        assert_eq!(human_transfer(2048, Duration::from_millis(3)), "2 KiB");
        assert_eq!(
            human_transfer(96 << 20, Duration::from_secs(2)),
            "96 MiB at 48 MiB/s"
        );
        assert_eq!(count(1, "file", "files"), "1 file");
        assert_eq!(count(0, "file", "files"), "0 files");
    }
}
