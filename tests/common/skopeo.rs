//! Pushing copies of the test registry's busybox under other names with skopeo, to move a
//! tag between two digests.

use super::BASE_IMAGE;

/// The two images a base tag is moved between: the test registry's busybox as its image
/// index (both platforms), and as the linux/amd64 manifest alone, another digest.
#[derive(Clone, Copy)]
pub enum Variant {
    Index,
    Amd64,
}

/// Copies busybox to `dest` (`host:port/repo:tag`) as `variant`, with `creds` for the
/// destination if given (Kiln's registry wants a token), and returns the digest it got.
pub async fn push_base(dest: &str, variant: Variant, creds: Option<&str>) -> String {
    let mut args = vec![
        "copy".to_string(),
        "--src-tls-verify=false".into(),
        "--dest-tls-verify=false".into(),
    ];
    if let Variant::Index = variant {
        args.push("--all".into());
    } else {
        args.extend(["--override-arch".into(), "amd64".into()]);
    }
    if let Some(creds) = creds {
        args.push(format!("--dest-creds={creds}"));
    }
    args.push(format!("docker://{BASE_IMAGE}"));
    args.push(format!("docker://{dest}"));
    let digest_file = tempfile::NamedTempFile::new().unwrap();
    args.push(format!("--digestfile={}", digest_file.path().display()));
    let out = tokio::process::Command::new("skopeo")
        .args(&args)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy to {dest} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(digest_file.path())
        .unwrap()
        .trim()
        .to_string()
}
