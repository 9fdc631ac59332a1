//! Kiln's registry with real clients and real credentials: `docker login` with each role,
//! refusals a user sees, and `kiln build` pushing to the server's own registry.

mod common;

use common::docker_cli::Docker;
use common::oci::{push_blob, skopeo_copy};
use common::{context, TestServer, BASE_IMAGE};

fn host(server: &TestServer) -> String {
    server.url.trim_start_matches("http://").to_string()
}

/// Tags the local busybox image as `image` in the Docker engine.
async fn tag_local(image: &str) {
    let docker = Docker::new();
    let pulled = docker.run(&["pull", "-q", BASE_IMAGE]).await;
    assert_eq!(pulled.code, 0, "{pulled:#?}");
    let tagged = docker.run(&["tag", BASE_IMAGE, image]).await;
    assert_eq!(tagged.code, 0, "{tagged:#?}");
}

async fn own_registry_server() -> TestServer {
    TestServer::start_with(|a| {
        a.registry = None;
        a.workers = 0;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_login_push_and_pull_follow_each_role() {
    let server = own_registry_server().await;
    let host = host(&server);
    let ci = server.create_token("ci", &["push"], &["app/*"]).await;
    let reader = server.create_token("reader", &["pull"], &["app/*"]).await;

    let bad = Docker::new().login(&host, "ci", "kiln_wrong").await;
    assert_ne!(bad.code, 0, "{bad:#?}");
    assert!(bad.stderr.contains("unauthorized"), "{}", bad.stderr);

    // A push token pushes where its pattern allows, and nowhere else.
    let pusher = Docker::new();
    let login = pusher.login(&host, "ci", &ci).await;
    assert_eq!(login.code, 0, "{login:#?}");
    assert!(login.stdout.contains("Login Succeeded"), "{login:#?}");
    let web = format!("{host}/app/web:v1");
    tag_local(&web).await;
    let pushed = pusher.run(&["push", &web]).await;
    assert_eq!(pushed.code, 0, "{pushed:#?}");
    let other = format!("{host}/other/x:v1");
    tag_local(&other).await;
    let refused = pusher.run(&["push", &other]).await;
    assert_ne!(refused.code, 0, "{refused:#?}");
    assert!(
        refused.stderr.contains("denied"),
        "push outside app/* should be denied: {}",
        refused.stderr
    );

    // A pull token pulls, and cannot push.
    let puller = Docker::new();
    assert_eq!(puller.login(&host, "reader", &reader).await.code, 0);
    let rmi = puller.run(&["rmi", &web]).await;
    assert_eq!(rmi.code, 0, "{rmi:#?}");
    let pulled = puller.run(&["pull", &web]).await;
    assert_eq!(pulled.code, 0, "{pulled:#?}");
    let push_denied = puller.run(&["push", &web]).await;
    assert_ne!(push_denied.code, 0, "{push_denied:#?}");
    assert!(
        push_denied.stderr.contains("denied"),
        "{}",
        push_denied.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_needs_the_delete_role_in_the_api_and_the_registry() {
    let server = own_registry_server().await;
    let host = host(&server);
    let owner = Docker::new();
    assert_eq!(
        owner.login(&host, "owner", server.owner_token()).await.code,
        0
    );
    let web = format!("{host}/app/web:v1");
    tag_local(&web).await;
    assert_eq!(owner.run(&["push", &web]).await.code, 0);

    let ci = server.create_token("ci", &["push"], &["app/*"]).await;
    let janitor = server
        .create_token("janitor", &["delete"], &["app/*"])
        .await;
    let other = server
        .create_token("other", &["delete"], &["other/*"])
        .await;

    let delete = ["registry", "repository", "delete", "app/web:v1", "--yes"];
    let out = server.kiln_output_as(&ci, &delete).await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(
        out.stderr
            .contains("token 'ci' may not delete repository 'app/web'"),
        "{}",
        out.stderr
    );

    // The registry API answers the same way, with the OCI error code.
    let digest = server
        .http()
        .head(format!("{}/v2/app/web/manifests/v1", server.url))
        .header(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .await
        .unwrap()
        .headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_string();
    let resp = reqwest::Client::new()
        .delete(format!("{}/v2/app/web/manifests/{digest}", server.url))
        .basic_auth("ci", Some(&ci))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "DENIED", "{body}");

    // A token for other/* cannot even see app/web.
    let resp = reqwest::Client::new()
        .get(format!("{}/v2/app/web/tags/list", server.url))
        .basic_auth("other", Some(&other))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    // Every role can log Docker in; what it may do then is the role's.
    let login = Docker::new().login(&host, "janitor", &janitor).await;
    assert_eq!(login.code, 0, "{login:#?}");
    let out = server.kiln_output_as(&janitor, &delete).await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(out.stdout.contains("Deleted app/web:v1"), "{}", out.stdout);
    let gone = owner
        .run(&["manifest", "inspect", "--insecure", &web])
        .await;
    assert_ne!(gone.code, 0, "{gone:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiln_build_pushes_to_its_own_registry_and_records_the_run() {
    let server = TestServer::start_with(|a| a.registry = None).await;
    let host = host(&server);
    // The base image comes from Kiln's own registry too, so the build pulls with the run's
    // credentials.
    let creds = format!("owner:{}", server.owner_token());
    let base = format!("docker://{host}/base/busybox:latest");
    skopeo_copy(
        &format!("docker://{BASE_IMAGE}"),
        &base,
        &["--all", "--dest-creds", &creds],
    )
    .await;
    let ctx = context(&[
        (
            "Dockerfile",
            &format!("FROM {host}/base/busybox:latest\nCOPY hello.txt /hello.txt\n"),
        ),
        ("hello.txt", "Hello from Kiln\n"),
    ]);
    let dir = ctx.path().to_str().unwrap();
    let out = server
        .kiln_output(&[
            "build",
            "-t",
            "hello:<<.Run.ID>>",
            "-t",
            "hello:latest",
            dir,
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let run_id = out.run_id();

    let docker = Docker::new();
    assert_eq!(
        docker
            .login(&host, "owner", server.owner_token())
            .await
            .code,
        0
    );
    let image = format!("{host}/hello:{run_id}");
    let ran = docker
        .run(&[
            "run",
            "--rm",
            "--pull",
            "always",
            &image,
            "cat",
            "/hello.txt",
        ])
        .await;
    assert_eq!(ran.code, 0, "{ran:#?}");
    assert_eq!(ran.stdout, "Hello from Kiln\n");

    let tags = server
        .kiln_output(&["registry", "repository", "show-tags", "hello", "--detail"])
        .await;
    assert_eq!(tags.code, 0, "{tags:#?}");
    let row = tags
        .stdout
        .lines()
        .find(|l| l.starts_with(&run_id))
        .unwrap_or_else(|| panic!("no tag {run_id}: {}", tags.stdout));
    assert!(
        row.trim_end().ends_with(&run_id),
        "the run that pushed it: {row}"
    );
    let shown = server
        .kiln_output(&["registry", "repository", "show", &format!("hello:{run_id}")])
        .await;
    assert!(shown.stdout.contains("linux/amd64"), "{}", shown.stdout);
    assert!(shown.stdout.contains("latest"), "{}", shown.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_may_only_push_where_its_submitter_may() {
    let server = own_registry_server().await;
    let ci = server.create_token("ci", &["push"], &["app/*"]).await;
    let ctx = context(&[("Dockerfile", &format!("FROM {BASE_IMAGE}\n"))]);
    let dir = ctx.path().to_str().unwrap();
    let out = server
        .kiln_output_as(&ci, &["build", "--no-wait", "-t", "other/x:v1", dir])
        .await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(
        out.stderr
            .contains("token 'ci' may not push repository 'other/x'"),
        "{}",
        out.stderr
    );
    // Its patterns hold for other registries too, where the server's own credentials push.
    let external = format!("{}/other/x:v1", common::REGISTRY);
    let out = server
        .kiln_output_as(&ci, &["build", "--no-wait", "-t", &external, dir])
        .await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert_eq!(server.run_count().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_tokens_list_the_catalog_and_worker_tokens_stay_out() {
    let server = own_registry_server().await;
    let host = host(&server);
    let creds = format!("owner:{}", server.owner_token());
    let to = format!("docker://{host}/app/web:v1");
    skopeo_copy(
        &format!("docker://{BASE_IMAGE}"),
        &to,
        &["--dest-creds", &creds],
    )
    .await;
    let http = reqwest::Client::new();

    // A Docker-style client: a token for the catalog scope, then the catalog with it.
    let issued: serde_json::Value = http
        .get(format!(
            "{}/token?service={host}&scope=registry:catalog:*",
            server.url
        ))
        .basic_auth("owner", Some(server.owner_token()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let catalog: serde_json::Value = http
        .get(format!("{}/v2/_catalog", server.url))
        .bearer_auth(issued["token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(catalog["repositories"], serde_json::json!(["app/web"]));

    // The token endpoint asks for Basic credentials when it gets none.
    let anonymous = http
        .get(format!(
            "{}/token?scope=repository:app/web:pull",
            server.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        "Basic realm=\"kiln\""
    );

    let worker = server.create_token("host1", &["worker"], &[]).await;
    for url in ["/v2/", "/token?scope=repository:app/web:pull"] {
        let resp = http
            .get(format!("{}{url}", server.url))
            .basic_auth("host1", Some(&worker))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{url}");
        let body = resp.text().await.unwrap();
        assert!(body.contains("worker protocol"), "{url}: {body}");
    }
}

/// A registry token that covers a mount's target and source mounts; one that covers only the
/// target is challenged for both. A token short of its holder's rights is told which scope it
/// lacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_tokens_mount_what_they_cover_and_name_what_they_lack() {
    let server = own_registry_server().await;
    let digest = push_blob(&server.http(), &server.url, "app/src", b"shared layer").await;
    let http = reqwest::Client::new();
    let token = |scopes: &'static [&'static str]| {
        let query: Vec<(&str, &str)> = scopes.iter().map(|s| ("scope", *s)).collect();
        let req = http
            .get(format!("{}/token", server.url))
            .query(&query)
            .basic_auth("owner", Some(server.owner_token()));
        async move {
            let body: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
            body["token"].as_str().unwrap().to_string()
        }
    };
    let mount = format!(
        "{}/v2/app/dst/blobs/uploads/?mount={digest}&from=app/src",
        server.url
    );

    let narrow = token(&["repository:app/dst:pull,push"]).await;
    let resp = http.post(&mount).bearer_auth(&narrow).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let both = token(&["repository:app/dst:pull,push", "repository:app/src:pull"]).await;
    let resp = http.post(&mount).bearer_auth(both).send().await.unwrap();
    assert_eq!(resp.status(), 201);

    let resp = http
        .delete(format!("{}/v2/app/dst/blobs/{digest}", server.url))
        .bearer_auth(&narrow)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"scope="repository:app/dst:delete""#),
        "{challenge}"
    );
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
}

/// Runs and their logs are visible to tokens that may pull a repository the run pushes to
/// (and to whoever queued it), and cancellable by those that may push there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_visible_to_the_tokens_of_their_repositories() {
    let server = own_registry_server().await;
    let ci = server.create_token("ci", &["push"], &["app/*"]).await;
    let reader = server.create_token("reader", &["pull"], &["app/*"]).await;
    let other = server.create_token("other", &["push"], &["other/*"]).await;
    let ctx = context(&[("Dockerfile", &format!("FROM {BASE_IMAGE}\n"))]);
    let dir = ctx.path().to_str().unwrap();
    // No workers: the run stays queued.
    let queued = server
        .kiln_output_as(&ci, &["build", "--no-wait", "-t", "app/web:v1", dir])
        .await;
    assert_eq!(queued.code, 0, "{queued:#?}");
    let id = queued.stdout.trim().to_string();

    assert_eq!(
        server
            .kiln_output_as(&reader, &["run", "show", &id])
            .await
            .code,
        0
    );
    let listed = server.kiln_output_as(&reader, &["run", "list"]).await;
    assert!(listed.stdout.contains(&id), "{}", listed.stdout);

    let hidden = server.kiln_output_as(&other, &["run", "show", &id]).await;
    assert_eq!(hidden.code, 2, "{hidden:#?}");
    assert!(
        hidden
            .stderr
            .contains(&format!("token 'other' may not see run {id}")),
        "{}",
        hidden.stderr
    );
    let logs = server.kiln_output_as(&other, &["run", "logs", &id]).await;
    assert_eq!(logs.code, 2, "{logs:#?}");
    let listed = server.kiln_output_as(&other, &["run", "list"]).await;
    assert!(!listed.stdout.contains(&id), "{}", listed.stdout);
    let cancel = server.kiln_output_as(&other, &["run", "cancel", &id]).await;
    assert_eq!(cancel.code, 2, "{cancel:#?}");
    let cancel = server
        .kiln_output_as(&reader, &["run", "cancel", &id])
        .await;
    assert_eq!(cancel.code, 2, "{cancel:#?}");

    let cancel = server.kiln_output_as(&ci, &["run", "cancel", &id]).await;
    assert_eq!(cancel.code, 0, "{cancel:#?}");
}
