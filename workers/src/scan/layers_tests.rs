//! The layer walk on tar layers built in memory: whiteouts, opaque directories, links, the
//! layer that last wrote a file, compression, and real Go and Rust binaries from this machine.

use std::process::Command;

use super::layers::{scan_layers, LayerWalker, Want};
use super::test_layers::{layer_ref, layers, TarLayer};
use super::view::{Content, FileView};
use super::Inventory;

const DIST_INFO: &str = "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA";
const OS_RELEASE: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n";

fn manifest(name: &str, version: &str) -> String {
    format!(r#"{{"name":"{name}","version":"{version}"}}"#)
}

fn walk(tars: Vec<Vec<u8>>) -> FileView {
    let mut walker = LayerWalker::for_catalogers();
    for (layer, reader) in layers(tars) {
        walker.apply_layer(layer, reader).unwrap();
    }
    walker.finish()
}

fn paths(view: &FileView) -> Vec<&str> {
    view.files().map(|(path, _)| path).collect()
}

fn packages(inventory: &Inventory) -> Vec<(&str, &str, usize)> {
    inventory
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str(), p.layer.index))
        .collect()
}

#[test]
fn whiteouts_remove_files_directories_and_opaque_directory_contents_from_lower_layers() {
    let base = TarLayer::new()
        .dir("usr/lib/python3/dist-packages/six-1.16.0.dist-info/")
        .file(DIST_INFO, "Name: six\nVersion: 1.16.0\n")
        .file("app/node_modules/a/package.json", manifest("a", "1.0.0"))
        .file(
            "app/node_modules/a/node_modules/a2/package.json",
            manifest("a2", "1.0.0"),
        )
        .file("app/node_modules/b/package.json", manifest("b", "1.0.0"))
        .file("srv/node_modules/c/package.json", manifest("c", "1.0.0"))
        .file("srv/node_modules/d/package.json", manifest("d", "1.0.0"))
        .tar();
    let middle = TarLayer::new()
        // A file whiteout: just that file.
        .whiteout(DIST_INFO)
        // A directory whiteout: everything under it.
        .whiteout("app/node_modules/a")
        // An opaque directory whose new content comes before the marker in the tar: the
        // marker hides only what lower layers put there.
        .file("srv/node_modules/e/package.json", manifest("e", "2.0.0"))
        .opaque("srv/node_modules")
        .tar();
    let top = TarLayer::new()
        // What a whiteout removed can come back in a later layer.
        .file("app/node_modules/a/package.json", manifest("a", "3.0.0"))
        .tar();
    let view = walk(vec![base.clone(), middle.clone(), top.clone()]);
    assert_eq!(
        paths(&view),
        [
            "app/node_modules/a/package.json",
            "app/node_modules/b/package.json",
            "srv/node_modules/e/package.json"
        ]
    );
    let inventory = scan_layers(layers(vec![base, middle, top])).unwrap();
    assert_eq!(
        packages(&inventory),
        [("a", "3.0.0", 2), ("b", "1.0.0", 0), ("e", "2.0.0", 1)]
    );
}

#[test]
fn whiteout_files_never_appear_and_a_whiteout_in_the_same_layer_spares_its_files() {
    // Whiteouts apply to lower layers only: a layer may delete a file and write it again.
    let base = TarLayer::new().file("Cargo.lock", "old").tar();
    let upper = TarLayer::new()
        .file("Cargo.lock", "new")
        .whiteout("Cargo.lock")
        .tar();
    let view = walk(vec![base, upper]);
    assert_eq!(paths(&view), ["Cargo.lock"]);
    assert_eq!(
        view.get("Cargo.lock").unwrap().content.text(),
        Some(&b"new"[..])
    );
}

#[test]
fn the_same_file_rewritten_in_a_later_layer_records_the_later_layer() {
    let base = TarLayer::new()
        .file("app/node_modules/a/package.json", manifest("a", "1.0.0"))
        .tar();
    let upper = TarLayer::new()
        .file("app/node_modules/a/package.json", manifest("a", "1.0.1"))
        .tar();
    let inventory = scan_layers(layers(vec![base, upper])).unwrap();
    assert_eq!(packages(&inventory), [("a", "1.0.1", 1)]);
    assert_eq!(inventory.packages[0].layer, layer_ref(1));
}

#[test]
fn packages_in_a_rewritten_dpkg_status_keep_the_layer_that_introduced_them() {
    let status = |packages: &[(&str, &str)]| {
        packages
            .iter()
            .map(|(name, version)| {
                format!("Package: {name}\nStatus: install ok installed\nVersion: {version}\nArchitecture: amd64\n\n")
            })
            .collect::<String>()
    };
    let layers_ = vec![
        TarLayer::new()
            .file(
                "var/lib/dpkg/status",
                status(&[("libc6", "2.36-9"), ("zlib1g", "1:1.2.13")]),
            )
            .tar(),
        TarLayer::new().file("etc/motd", "hi").tar(),
        // apt-get install curl: libc6 stays, curl arrives, zlib1g is upgraded.
        TarLayer::new()
            .file(
                "./var/lib/dpkg/status",
                status(&[
                    ("libc6", "2.36-9"),
                    ("curl", "7.88.1-10"),
                    ("zlib1g", "1:1.2.13.1"),
                ]),
            )
            .tar(),
        // apt-get install jq: the status is rewritten again, with nothing else changed.
        TarLayer::new()
            .file(
                "var/lib/dpkg/status",
                status(&[
                    ("libc6", "2.36-9"),
                    ("curl", "7.88.1-10"),
                    ("zlib1g", "1:1.2.13.1"),
                    ("jq", "1.6-2.1"),
                ]),
            )
            .tar(),
    ];
    let inventory = scan_layers(layers(layers_)).unwrap();
    assert_eq!(
        packages(&inventory),
        [
            ("libc6", "2.36-9", 0),
            ("curl", "7.88.1-10", 2),
            ("zlib1g", "1:1.2.13.1", 2),
            ("jq", "1.6-2.1", 3)
        ]
    );
    // A whiteout in between cuts the history: what comes back later was introduced again.
    let deleted = vec![
        TarLayer::new()
            .file("var/lib/dpkg/status", status(&[("libc6", "2.36-9")]))
            .tar(),
        TarLayer::new().whiteout("var/lib/dpkg/status").tar(),
        TarLayer::new()
            .file("var/lib/dpkg/status", status(&[("libc6", "2.36-9")]))
            .tar(),
    ];
    assert_eq!(
        packages(&scan_layers(layers(deleted)).unwrap()),
        [("libc6", "2.36-9", 2)]
    );
}

#[test]
fn os_release_is_read_through_its_symlink_and_a_symlinked_directory() {
    let base = TarLayer::new()
        .symlink("etc/os-release", "../usr/lib/os-release")
        .file("usr/lib/os-release", OS_RELEASE)
        .tar();
    let inventory = scan_layers(layers(vec![base])).unwrap();
    let os = inventory.os.unwrap();
    assert_eq!(
        (os.id.as_str(), os.version_id.as_deref()),
        ("debian", Some("12"))
    );

    // /etc/os-release -> /usr/lib/os-release where /usr/lib is itself a symlink (absolute).
    let view = walk(vec![TarLayer::new()
        .symlink("etc/os-release", "/usr/lib/os-release")
        .symlink("usr/lib", "lib64")
        .file("usr/lib64/os-release", OS_RELEASE)
        .tar()]);
    // The filter keeps only the two standard paths, so usr/lib64/os-release was not kept.
    assert!(view.resolve("etc/os-release").is_none());
    let mut walker = LayerWalker::new(|path: &str, _, _| {
        if path.ends_with("os-release") {
            Want::Content
        } else {
            Want::Skip
        }
    });
    let tar = TarLayer::new()
        .symlink("etc/os-release", "/usr/lib/os-release")
        .symlink("usr/lib", "lib64")
        .file("usr/lib64/os-release", OS_RELEASE)
        .tar();
    walker.apply_layer(layer_ref(0), &tar[..]).unwrap();
    let (resolved, _) = walker.finish().resolve("/etc/os-release").unwrap();
    assert_eq!(resolved, "usr/lib64/os-release");
}

#[test]
fn symlink_loops_resolve_to_nothing() {
    let view = walk(vec![TarLayer::new()
        .symlink("etc/os-release", "os-release")
        .tar()]);
    assert!(view.resolve("etc/os-release").is_none());
}

#[test]
fn a_hard_link_shares_its_targets_content_and_a_link_to_an_unkept_file_is_reported() {
    let base = TarLayer::new()
        .file("usr/lib/os-release", OS_RELEASE)
        .hard_link("etc/os-release", "usr/lib/os-release")
        .file("opt/blob", "Name: x\nVersion: 1\n")
        .hard_link("opt/x-1.dist-info/METADATA", "opt/blob")
        .tar();
    let view = walk(vec![base]);
    assert_eq!(
        view.get("etc/os-release").unwrap().content.text(),
        Some(OS_RELEASE.as_bytes())
    );
    assert_eq!(view.unreadable().len(), 1);
    assert_eq!(view.unreadable()[0].path, "opt/x-1.dist-info/METADATA");
    assert_eq!(
        view.unreadable()[0].reason,
        "a hard link to opt/blob, which was not kept"
    );
}

#[test]
fn a_file_replacing_a_directory_removes_what_lower_layers_had_in_it() {
    let base = TarLayer::new()
        .file("app/node_modules/a/package.json", manifest("a", "1.0.0"))
        .tar();
    let upper = TarLayer::new()
        .file("app/node_modules", "not a directory any more")
        .tar();
    assert!(paths(&walk(vec![base, upper])).is_empty());
}

#[test]
fn a_directory_replacing_a_symlink_removes_the_symlink() {
    let base = TarLayer::new()
        .symlink("etc/os-release", "../usr/lib/os-release")
        .file("usr/lib/os-release", OS_RELEASE)
        .tar();
    let upper = TarLayer::new().dir("etc/os-release/").tar();
    assert!(walk(vec![base, upper]).resolve("etc/os-release").is_none());
}

#[test]
fn gzip_zstd_and_plain_layers_read_alike() {
    let layer = || TarLayer::new().file("app/node_modules/a/package.json", manifest("a", "1.0.0"));
    let plain = scan_layers(layers(vec![layer().tar()])).unwrap();
    let gzip = scan_layers(layers(vec![layer().gzip()])).unwrap();
    let zstd = scan_layers(layers(vec![layer().zstd()])).unwrap();
    assert_eq!(plain, gzip);
    assert_eq!(plain, zstd);
    assert_eq!(plain.packages.len(), 1);
}

#[test]
fn a_zstd_layer_whites_out_what_a_gzip_layer_wrote() {
    let base = TarLayer::new()
        .file("app/node_modules/a/package.json", manifest("a", "1.0.0"))
        .file("app/node_modules/b/package.json", manifest("b", "2.0.0"))
        .gzip();
    let upper = TarLayer::new().whiteout("app/node_modules/a").zstd();
    let inventory = scan_layers(layers(vec![base, upper])).unwrap();
    let names: Vec<_> = inventory.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["b"]);
}

#[test]
fn a_corrupt_zstd_layer_is_an_error_naming_the_layer() {
    let mut zstd = TarLayer::new().file("Cargo.lock", vec![b'x'; 4096]).zstd();
    zstd.truncate(zstd.len() / 2);
    let err = scan_layers(layers(vec![TarLayer::new().tar(), zstd])).unwrap_err();
    assert!(err.to_string().starts_with("layer 1 (sha256:"), "{err}");
}

#[test]
fn a_truncated_layer_is_an_error_naming_the_layer() {
    let mut tar = TarLayer::new().file("Cargo.lock", vec![b'x'; 4096]).gzip();
    tar.truncate(tar.len() / 2);
    let err = scan_layers(layers(vec![tar])).unwrap_err();
    assert!(err.to_string().starts_with("layer 0 (sha256:"), "{err}");
}

#[test]
fn long_gnu_paths_are_read_whole() {
    let deep = format!("{}/node_modules/deep/package.json", "x".repeat(300));
    let view = walk(vec![TarLayer::new()
        .file(&deep, manifest("deep", "1.0.0"))
        .tar()]);
    assert_eq!(paths(&view), [deep.as_str()]);
}

#[tokio::test]
async fn async_readers_walk_the_same_way() {
    let tar = TarLayer::new()
        .file("app/node_modules/a/package.json", manifest("a", "1.0.0"))
        .gzip();
    let zstd = TarLayer::new()
        .file("app/node_modules/b/package.json", manifest("b", "1.0.0"))
        .zstd();
    let walker = LayerWalker::for_catalogers();
    let walker = walker
        .apply_layer_async(layer_ref(0), std::io::Cursor::new(tar))
        .await
        .unwrap()
        .apply_layer_async(layer_ref(1), std::io::Cursor::new(zstd))
        .await
        .unwrap();
    assert_eq!(
        paths(&walker.finish()),
        [
            "app/node_modules/a/package.json",
            "app/node_modules/b/package.json"
        ]
    );
}

/// Builds a Go program with a replaced dependency; `None` when Go is not installed.
fn build_go_program(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    Command::new("go")
        .arg("version")
        .output()
        .ok()
        .filter(|out| out.status.success())?;
    let write = |path: &str, text: &str| {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("greet/go.mod", "module example.com/greet\n\ngo 1.18\n");
    write(
        "greet/greet.go",
        "package greet\n\nfunc Hello() string { return \"hello\" }\n",
    );
    write(
        "hello/go.mod",
        "module example.com/hello\n\ngo 1.18\n\nrequire example.com/greet v1.2.3\n\nreplace example.com/greet v1.2.3 => ../greet\n",
    );
    write(
        "hello/main.go",
        "package main\n\nimport \"example.com/greet\"\n\nfunc main() { println(greet.Hello()) }\n",
    );
    let out = Command::new("go")
        .args(["build", "-buildvcs=false", "-o", "hello", "."])
        .current_dir(dir.join("hello"))
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOCACHE", dir.join("cache"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "go build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(dir.join("hello/hello"))
}

/// `go version -m`'s lines for `binary`, without its first (`<path>: go1.x`) line.
fn go_version_m(binary: &std::path::Path) -> (String, Vec<String>) {
    let out = Command::new("go")
        .arg("version")
        .arg("-m")
        .arg(binary)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let go_version = lines.next().unwrap().rsplit(' ').next().unwrap().to_owned();
    (
        go_version,
        lines.map(|line| line.trim().to_owned()).collect(),
    )
}

fn modinfo_of(view: &FileView, path: &str) -> (String, Vec<String>) {
    let Content::Binary(found) = &view.get(path).expect("binary kept").content else {
        panic!("not a binary")
    };
    let Some(super::binary::GoBuildInfo::Inline {
        go_version,
        modinfo,
    }) = &found.go
    else {
        panic!("{found:?}")
    };
    (
        go_version.clone(),
        modinfo
            .lines()
            .map(|line| line.trim().to_owned())
            .filter(|l| !l.starts_with("go\t"))
            .collect(),
    )
}

#[test]
fn a_real_go_binary_built_here_matches_go_version_m() {
    let dir = tempfile::tempdir().unwrap();
    let Some(binary) = build_go_program(dir.path()) else {
        eprintln!("skipped: go is not installed");
        return;
    };
    let tar = TarLayer::new()
        .executable("usr/local/bin/hello", std::fs::read(&binary).unwrap())
        .gzip();
    let view = walk(vec![tar.clone()]);
    assert_eq!(
        modinfo_of(&view, "usr/local/bin/hello"),
        go_version_m(&binary)
    );

    let inventory = scan_layers(layers(vec![tar])).unwrap();
    let (go_version, _) = go_version_m(&binary);
    // The main module is `(devel)` and the one dependency a local replacement: only stdlib.
    let got: Vec<_> = inventory
        .packages
        .iter()
        .map(|p| (p.ecosystem.as_str(), p.name.as_str(), p.path.as_str()))
        .collect();
    assert_eq!(got, [("Go", "stdlib", "usr/local/bin/hello")]);
    assert_eq!(
        inventory.packages[0].version,
        go_version.replacen("go", "v", 1)
    );
}

#[test]
fn skopeo_from_this_machine_is_read_as_go_version_m_reads_it() {
    let skopeo = std::path::Path::new("/usr/bin/skopeo");
    if !skopeo.exists() || Command::new("go").arg("version").output().is_err() {
        eprintln!("skipped: needs /usr/bin/skopeo and go");
        return;
    }
    let tar = TarLayer::new()
        .executable("usr/bin/skopeo", std::fs::read(skopeo).unwrap())
        .tar();
    let view = walk(vec![tar]);
    assert_eq!(modinfo_of(&view, "usr/bin/skopeo"), go_version_m(skopeo));
}

#[test]
fn cargo_auditable_section_added_with_objcopy_is_read() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let json = br#"{"packages":[{"name":"demo","version":"0.1.0","source":"local","root":true,"dependencies":[1]},{"name":"itoa","version":"1.0.11","source":"crates.io"}]}"#;
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zlib.write_all(json).unwrap();
    std::fs::write(dir.path().join("dep"), zlib.finish().unwrap()).unwrap();
    let binary = dir.path().join("demo");
    let status = Command::new("objcopy")
        .arg("--add-section")
        .arg(format!(".dep-v0={}", dir.path().join("dep").display()))
        .arg("/bin/true")
        .arg(&binary)
        .status();
    if !status.is_ok_and(|status| status.success()) {
        eprintln!("skipped: objcopy and /bin/true are needed");
        return;
    }
    let tar = TarLayer::new()
        .executable("usr/bin/demo", std::fs::read(&binary).unwrap())
        .tar();
    let inventory = scan_layers(layers(vec![tar])).unwrap();
    let got: Vec<_> = inventory
        .packages
        .iter()
        .map(|p| (p.ecosystem.as_str(), p.name.as_str(), p.version.as_str()))
        .collect();
    assert_eq!(got, [("crates.io", "itoa", "1.0.11")]);
}

#[test]
fn a_hard_link_to_a_scanned_binary_is_the_same_program_at_a_second_path() {
    let dir = tempfile::tempdir().unwrap();
    let Some(binary) = build_go_program(dir.path()) else {
        eprintln!("skipped: go is not installed");
        return;
    };
    let tar = TarLayer::new()
        .executable("usr/bin/hello", std::fs::read(&binary).unwrap())
        .hard_link("usr/bin/hello-again", "usr/bin/hello")
        .tar();
    let inventory = scan_layers(layers(vec![tar])).unwrap();
    let paths: Vec<_> = inventory.packages.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["usr/bin/hello", "usr/bin/hello-again"]);
}
