//! Several platforms in one run: one OCI image index under each tag, with a manifest per
//! platform, built through BuildKit (arm64 under qemu on this machine).

mod common;

use common::*;

/// Runs `sh -c script` in the image pulled fresh for `platform`.
async fn run_for(platform: &str, image: &str, script: &str) -> String {
    let out = tokio::process::Command::new("docker")
        .args([
            "run",
            "--rm",
            "--pull",
            "always",
            "--platform",
            platform,
            image,
            "sh",
            "-c",
            script,
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "docker run --platform {platform} {image}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn raw_manifest(image: &str) -> serde_json::Value {
    let out = tokio::process::Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{image}"),
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_platforms_make_one_index_under_each_tag() {
    let server = TestServer::start().await;
    let repo = unique_repo("multi");
    let ctx = context(&[(
        "Dockerfile",
        &format!(
            "FROM --platform=$BUILDPLATFORM {BASE_IMAGE} AS build\n\
             ARG TARGETARCH\n\
             ARG BUILDPLATFORM\n\
             RUN echo \"built for $TARGETARCH on $BUILDPLATFORM\" > /built\n\
             FROM {BASE_IMAGE}\n\
             COPY --from=build /built /built\n\
             RUN uname -m > /arch\n"
        ),
    )]);
    let out = server
        .kiln_output(&[
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            &format!("{repo}:<<.Run.ID>>"),
            "-t",
            &format!("{repo}:latest"),
            ctx.path().to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let id = out.run_id();
    assert!(
        out.stdout.contains("Building for linux/arm64"),
        "{}",
        out.stdout
    );

    let by_id = format!("{REGISTRY}/{repo}:{id}");
    let index = raw_manifest(&by_id).await;
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    let digest = registry_digest(&by_id).await.unwrap();
    assert_eq!(
        registry_digest(&format!("{REGISTRY}/{repo}:latest"))
            .await
            .unwrap(),
        digest
    );

    let run = server.run_json(&id).await;
    assert_eq!(run["platform"], "linux/amd64,linux/arm64");
    for output in run["outputImages"].as_array().unwrap() {
        assert_eq!(output["digest"], digest.as_str());
        let per_platform = output["platforms"].as_array().unwrap();
        assert_eq!(per_platform.len(), 2);
        assert_eq!(per_platform[1]["platform"], "linux/arm64");
        assert_eq!(per_platform[1]["digest"], index["manifests"][1]["digest"]);
    }

    assert_eq!(
        run_for("linux/arm64", &by_id, "cat /arch").await,
        "aarch64\n"
    );
    assert_eq!(
        run_for("linux/arm64", &by_id, "cat /built").await,
        "built for arm64 on linux/amd64\n"
    );
    assert_eq!(
        run_for("linux/amd64", &by_id, "cat /arch").await,
        "x86_64\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_platform_stays_a_plain_manifest() {
    let server = TestServer::start().await;
    let repo = unique_repo("single");
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM {BASE_IMAGE}\nRUN uname -m > /arch\n"),
    )]);
    let image = format!("{repo}:v1");
    let out = server
        .kiln_output(&[
            "build",
            "--platform",
            "linux/arm64",
            "-t",
            &image,
            ctx.path().to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let manifest = raw_manifest(&format!("{REGISTRY}/{image}")).await;
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        run_for("linux/arm64", &format!("{REGISTRY}/{image}"), "cat /arch").await,
        "aarch64\n"
    );
}
