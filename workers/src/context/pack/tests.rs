use super::stream::STREAM_CHUNK_SIZE;
use super::*;
use std::cell::Cell;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::StreamExt;
use tempfile::TempDir;

#[derive(Debug)]
struct Archived {
    path: String,
    entry_type: tar::EntryType,
    mode: u32,
    mtime: u64,
    content: Vec<u8>,
    link: Option<String>,
}

fn write(root: &Path, rel: &str, content: &str) -> PathBuf {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, content).unwrap();
    path
}

fn context() -> TempDir {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "Dockerfile", "FROM scratch\n");
    dir
}

fn request(ctx: &Path) -> PackRequest {
    PackRequest {
        context_dir: ctx.to_owned(),
        dockerfile: ctx.join("Dockerfile"),
    }
}

fn pack(plan: &PackPlan) -> Vec<u8> {
    write_tar_gz(plan, Vec::new(), &|_| {}).unwrap()
}

fn read_archive(bytes: &[u8]) -> Vec<Archived> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header();
        assert_eq!(header.uid().unwrap(), 0);
        assert_eq!(header.gid().unwrap(), 0);
        assert_eq!(header.username_bytes(), Some(&b""[..]));
        assert_eq!(header.groupname_bytes(), Some(&b""[..]));
        let path = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
        let entry_type = header.entry_type();
        let mode = header.mode().unwrap();
        let mtime = header.mtime().unwrap();
        let link = entry
            .link_name()
            .unwrap()
            .map(|l| l.to_string_lossy().into_owned());
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        out.push(Archived {
            path,
            entry_type,
            mode,
            mtime,
            content,
            link,
        });
    }
    out
}

fn pack_and_read(req: &PackRequest) -> (PackPlan, Vec<Archived>) {
    let plan = plan(req).unwrap();
    let entries = read_archive(&pack(&plan));
    (plan, entries)
}

fn paths(entries: &[Archived]) -> Vec<&str> {
    entries.iter().map(|e| e.path.as_str()).collect()
}

fn find<'a>(entries: &'a [Archived], path: &str) -> &'a Archived {
    entries
        .iter()
        .find(|e| e.path == path)
        .unwrap_or_else(|| panic!("{path} missing from {:?}", paths(entries)))
}

#[test]
fn dockerignore_exceptions_and_reincluded_file_under_excluded_folder() {
    let ctx = context();
    for rel in [
        "README.md",
        "CHANGES.md",
        "docs/keep.txt",
        "docs/other.txt",
        "docs/sub/x.txt",
        "src/main.rs",
    ] {
        write(ctx.path(), rel, rel);
    }
    write(
        ctx.path(),
        ".dockerignore",
        "*.md\n!README.md\ndocs\n!docs/keep.txt\n",
    );
    let (plan, entries) = pack_and_read(&request(ctx.path()));
    assert_eq!(
        paths(&entries),
        [
            ".dockerignore",
            "Dockerfile",
            "README.md",
            "docs/",
            "docs/keep.txt",
            "src/",
            "src/main.rs"
        ]
    );
    assert_eq!(find(&entries, "docs/keep.txt").content, b"docs/keep.txt");
    assert_eq!(plan.dockerfile_in_archive, "Dockerfile");
    assert_eq!(plan.ignore_file, Some(ctx.path().join(".dockerignore")));
    assert_eq!(plan.file_count, 5);
}

#[test]
fn symlinks_are_stored_not_followed() {
    let ctx = context();
    write(ctx.path(), "target.txt", "hello");
    write(ctx.path(), "sub/inner.txt", "inner");
    symlink("target.txt", ctx.path().join("link")).unwrap();
    symlink("../nowhere/at/all", ctx.path().join("dangling")).unwrap();
    symlink("sub", ctx.path().join("dirlink")).unwrap();
    let (_, entries) = pack_and_read(&request(ctx.path()));
    for (path, target) in [
        ("link", "target.txt"),
        ("dangling", "../nowhere/at/all"),
        ("dirlink", "sub"),
    ] {
        let entry = find(&entries, path);
        assert_eq!(entry.entry_type, tar::EntryType::Symlink, "{path}");
        assert_eq!(entry.link.as_deref(), Some(target), "{path}");
        assert!(entry.content.is_empty());
    }
    assert!(!paths(&entries).iter().any(|p| p.starts_with("dirlink/")));
}

#[test]
fn modes_and_mtimes_are_kept() {
    let ctx = context();
    let script = write(ctx.path(), "run.sh", "#!/bin/sh\n");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let data = write(ctx.path(), "data.txt", "x");
    fs::set_permissions(&data, fs::Permissions::from_mode(0o640)).unwrap();
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    File::options()
        .write(true)
        .open(&script)
        .unwrap()
        .set_modified(when)
        .unwrap();
    fs::create_dir(ctx.path().join("private")).unwrap();
    fs::set_permissions(
        ctx.path().join("private"),
        fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    let (_, entries) = pack_and_read(&request(ctx.path()));
    let script = find(&entries, "run.sh");
    assert_eq!(script.mode, 0o755);
    assert_eq!(script.mtime, 1_600_000_000);
    assert_eq!(find(&entries, "data.txt").mode, 0o640);
    let private = find(&entries, "private/");
    assert_eq!(private.entry_type, tar::EntryType::Directory);
    assert_eq!(private.mode, 0o700);
}

#[test]
fn top_level_git_is_excluded_but_nested_git_kept() {
    let ctx = context();
    write(ctx.path(), ".git/HEAD", "ref: refs/heads/main");
    write(ctx.path(), "sub/.git/HEAD", "nested");
    write(ctx.path(), ".gitignore", "target");
    let (plan, entries) = pack_and_read(&request(ctx.path()));
    assert_eq!(plan.excluded_defaults, [".git"]);
    assert_eq!(
        paths(&entries),
        [
            ".gitignore",
            "Dockerfile",
            "sub/",
            "sub/.git/",
            "sub/.git/HEAD"
        ]
    );
    let clean = context();
    assert!(plan_of(clean.path()).excluded_defaults.is_empty());
}

fn plan_of(ctx: &Path) -> PackPlan {
    plan(&request(ctx)).unwrap()
}

#[test]
fn dockerfile_outside_context_is_added_under_kiln_dir() {
    let outer = TempDir::new().unwrap();
    let ctx = outer.path().join("ctx");
    write(&ctx, "app.py", "print()");
    let dockerfile = write(outer.path(), "api.Dockerfile", "FROM api\n");
    let req = PackRequest {
        context_dir: ctx,
        dockerfile,
    };
    let (plan, entries) = pack_and_read(&req);
    assert_eq!(plan.dockerfile_in_archive, ".kiln/api.Dockerfile");
    assert_eq!(paths(&entries), [".kiln/api.Dockerfile", "app.py"]);
    assert_eq!(
        find(&entries, ".kiln/api.Dockerfile").content,
        b"FROM api\n"
    );
    assert_eq!(plan.file_count, 2);
}

#[test]
fn excluded_dockerfile_is_added_under_kiln_dir() {
    let ctx = context();
    write(ctx.path(), ".dockerignore", "Dockerfile\n.dockerignore\n");
    write(ctx.path(), "app.py", "print()");
    let (plan, entries) = pack_and_read(&request(ctx.path()));
    assert_eq!(plan.dockerfile_in_archive, ".kiln/Dockerfile");
    assert_eq!(paths(&entries), [".kiln/Dockerfile", "app.py"]);
    assert_eq!(
        find(&entries, ".kiln/Dockerfile").content,
        b"FROM scratch\n"
    );
}

#[test]
fn dockerfile_in_a_subdirectory_keeps_its_path() {
    let ctx = context();
    let dockerfile = write(ctx.path(), "docker/api.Dockerfile", "FROM api\n");
    let req = PackRequest {
        context_dir: ctx.path().to_owned(),
        dockerfile,
    };
    assert_eq!(
        plan(&req).unwrap().dockerfile_in_archive,
        "docker/api.Dockerfile"
    );
}

#[test]
fn relocated_dockerfile_must_not_clash_with_the_context() {
    let outer = TempDir::new().unwrap();
    let ctx = outer.path().join("ctx");
    write(&ctx, ".kiln/api.Dockerfile", "mine");
    let dockerfile = write(outer.path(), "api.Dockerfile", "FROM api\n");
    let err = plan(&PackRequest {
        context_dir: ctx,
        dockerfile,
    })
    .unwrap_err();
    assert!(matches!(err, PackError::DockerfileConflict { .. }), "{err}");
}

#[test]
fn dockerfile_specific_ignore_file_takes_precedence() {
    let ctx = context();
    for name in ["a.txt", "b.txt", "c.txt"] {
        write(ctx.path(), name, name);
    }
    write(ctx.path(), ".dockerignore", "a.txt\n");
    write(ctx.path(), "api.Dockerfile", "FROM api\n");
    write(ctx.path(), "api.Dockerfile.dockerignore", "b.txt\n");
    let req = PackRequest {
        context_dir: ctx.path().to_owned(),
        dockerfile: ctx.path().join("api.Dockerfile"),
    };
    let (plan, entries) = pack_and_read(&req);
    assert_eq!(
        plan.ignore_file,
        Some(ctx.path().join("api.Dockerfile.dockerignore"))
    );
    assert!(paths(&entries).contains(&"a.txt"));
    assert!(!paths(&entries).contains(&"b.txt"));

    // Next to a Dockerfile outside the context beats the copy inside the context.
    let elsewhere = TempDir::new().unwrap();
    let outside = write(elsewhere.path(), "api.Dockerfile", "FROM api\n");
    write(elsewhere.path(), "api.Dockerfile.dockerignore", "c.txt\n");
    let req = PackRequest {
        context_dir: ctx.path().to_owned(),
        dockerfile: outside,
    };
    let (plan, entries) = pack_and_read(&req);
    assert_eq!(
        plan.ignore_file,
        Some(elsewhere.path().join("api.Dockerfile.dockerignore"))
    );
    assert!(paths(&entries).contains(&"b.txt"));
    assert!(!paths(&entries).contains(&"c.txt"));

    // Without a Dockerfile-specific file, <context>/.dockerignore applies.
    let (plan, entries) = pack_and_read(&request(ctx.path()));
    assert_eq!(plan.ignore_file, Some(ctx.path().join(".dockerignore")));
    assert!(!paths(&entries).contains(&"a.txt"));
}

#[test]
fn output_is_deterministic() {
    let ctx = context();
    write(ctx.path(), "a/b/c.txt", "c");
    write(ctx.path(), "a-b.txt", "ab");
    write(ctx.path(), "z.txt", "z");
    fs::create_dir(ctx.path().join("empty")).unwrap();
    let first = pack(&plan_of(ctx.path()));
    let second = pack(&plan_of(ctx.path()));
    assert_eq!(first, second);
    assert_eq!(&first[4..8], &[0, 0, 0, 0], "gzip header mtime must be 0");
    let entries = read_archive(&first);
    assert_eq!(
        paths(&entries),
        [
            "Dockerfile",
            "a/",
            "a-b.txt",
            "a/b/",
            "a/b/c.txt",
            "empty/",
            "z.txt"
        ]
    );
}

#[test]
fn fingerprint_tracks_content_and_mtime() {
    let ctx = context();
    let file = write(ctx.path(), "app.py", "print(1)");
    let original = plan_of(ctx.path()).fingerprint;
    assert_eq!(original.len(), 64);
    assert_eq!(plan_of(ctx.path()).fingerprint, original);

    fs::write(&file, "print(22)").unwrap();
    let after_edit = plan_of(ctx.path()).fingerprint;
    assert_ne!(after_edit, original);

    File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000))
        .unwrap();
    assert_ne!(plan_of(ctx.path()).fingerprint, after_edit);
}

#[test]
fn missing_dockerfile_is_reported() {
    let ctx = TempDir::new().unwrap();
    let err = plan(&request(ctx.path())).unwrap_err();
    assert!(matches!(err, PackError::DockerfileNotFound(_)), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "Dockerfile not found at {}",
            ctx.path().join("Dockerfile").display()
        )
    );
}

#[test]
fn context_must_be_an_existing_directory() {
    let ctx = context();
    let file_ctx = ctx.path().join("Dockerfile");
    let err = plan(&request(&file_ctx)).unwrap_err();
    assert!(matches!(err, PackError::ContextNotDirectory(_)), "{err}");
    assert!(err.to_string().contains("is not a directory"));

    let missing = ctx.path().join("missing");
    let err = plan(&request(&missing)).unwrap_err();
    assert!(matches!(err, PackError::ContextNotFound(_)), "{err}");
    assert!(err.to_string().contains("does not exist"));
}

#[test]
fn bad_ignore_file_names_file_and_line() {
    let ctx = context();
    write(ctx.path(), ".dockerignore", "ok\n[broken\n");
    let err = plan(&request(ctx.path())).unwrap_err();
    assert!(matches!(err, PackError::BadIgnoreFile { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(".dockerignore") && message.contains("line 2"),
        "{message}"
    );
}

#[test]
fn long_paths_and_link_targets_survive() {
    let ctx = context();
    let long_dir = ["a-rather-long-directory-name-for-testing"; 4].join("/");
    let long_file = format!("{long_dir}/and-a-long-file-name-as-well.txt");
    assert!(long_file.len() > 100);
    write(ctx.path(), &long_file, "deep");
    let long_target = format!("../{long_file}");
    symlink(&long_target, ctx.path().join("long-link")).unwrap();
    let (_, entries) = pack_and_read(&request(ctx.path()));
    assert_eq!(find(&entries, &long_file).content, b"deep");
    assert!(paths(&entries).contains(&format!("{long_dir}/").as_str()));
    assert_eq!(
        find(&entries, "long-link").link.as_deref(),
        Some(long_target.as_str())
    );
}

#[test]
fn sockets_are_skipped() {
    let ctx = context();
    let _listener = UnixListener::bind(ctx.path().join("app.sock")).unwrap();
    let (_, entries) = pack_and_read(&request(ctx.path()));
    assert_eq!(paths(&entries), ["Dockerfile"]);
}

#[test]
fn progress_ends_with_the_totals() {
    let ctx = context();
    write(ctx.path(), "big.bin", &"x".repeat(3 * 1024 * 1024));
    let plan = plan_of(ctx.path());
    let last = Cell::new(None);
    let calls = Cell::new(0);
    write_tar_gz(&plan, io::sink(), &|p| {
        last.set(Some(p));
        calls.set(calls.get() + 1);
    })
    .unwrap();
    assert_eq!(
        last.get(),
        Some(PackProgress {
            bytes: plan.total_bytes,
            files: plan.file_count
        })
    );
    assert!(calls.get() >= 3, "called {} times", calls.get());
}

#[test]
fn file_removed_after_planning_is_named() {
    let ctx = context();
    let doomed = write(ctx.path(), "doomed.txt", "bye");
    let plan = plan_of(ctx.path());
    fs::remove_file(&doomed).unwrap();
    let err = write_tar_gz(&plan, Vec::new(), &|_| {}).unwrap_err();
    assert!(matches!(err, PackError::Unreadable { .. }), "{err}");
    assert!(err.to_string().contains("doomed.txt"), "{err}");
}

/// Incompressible bytes, so the gzip output spans several chunks.
fn noise(len: usize) -> String {
    let mut state = 0x2545_f491_u32;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            char::from(b'!' + (state % 90) as u8)
        })
        .collect()
}

#[tokio::test]
async fn stream_yields_the_same_bytes_in_bounded_chunks() {
    let ctx = context();
    write(ctx.path(), "noise.txt", &noise(2 * 1024 * 1024));
    let plan = plan_of(ctx.path());
    let expected = pack(&plan);
    let chunks: Vec<Bytes> = stream_tar_gz(plan, |_| {})
        .map(|chunk| chunk.unwrap())
        .collect()
        .await;
    assert!(chunks.len() > 2, "{} chunks", chunks.len());
    assert!(chunks
        .iter()
        .all(|c| c.len() < STREAM_CHUNK_SIZE + 64 * 1024));
    assert_eq!(chunks.concat(), expected);
}

#[tokio::test]
async fn stream_reports_failures_as_its_last_item() {
    let ctx = context();
    let doomed = write(ctx.path(), "doomed.txt", "bye");
    let plan = plan_of(ctx.path());
    fs::remove_file(&doomed).unwrap();
    let items: Vec<_> = stream_tar_gz(plan, |_| {}).collect().await;
    let error = items.last().unwrap().as_ref().unwrap_err();
    assert!(error.to_string().contains("doomed.txt"), "{error}");
}
