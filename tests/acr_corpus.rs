//! Kiln's task compiler over real ACR task files (/work/shared/acr-yaml, not in the repo):
//! the ones meant to be valid compile (templated ones with their values.yaml), the ones Kiln
//! refuses by design fail with a clear message at a line. Prints a table of verdicts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::TimeZone;
use kiln::taskfile::{compile_with_files, CompileInput, Values};
use kiln::template::RunVars;
use kiln_worker::protocol::PlatformSet;

const CORPUS: &str = "/work/shared/acr-yaml";

/// What Kiln should make of a file of the corpus.
enum Expect {
    /// Compiles.
    Valid,
    /// Refused; the message contains this.
    Refused(&'static str),
    /// Not a task file (an alias source, a values file, templating test data).
    NotATask,
}

fn expectations() -> BTreeMap<&'static str, Expect> {
    use Expect::*;
    BTreeMap::from([
        ("acr-builder/acb.yaml", Valid),
        // A Windows Dockerfile: nothing in the YAML says so; it fails when built.
        ("acr-builder/acb.windows.yaml", Valid),
        (
            "acr-builder/graph/testdata/acb.yaml",
            Refused("'isolation' is for Windows containers"),
        ),
        (
            "acr-builder/graph/testdata/buildx.yaml",
            Refused("cache must be 'enabled' or 'disabled', not 'Enabled'"),
        ),
        (
            "acr-builder/graph/testdata/preprocessor/alphanumeric-external.yaml",
            NotATask,
        ),
        (
            "acr-builder/graph/testdata/preprocessor/empty-external.yaml",
            NotATask,
        ),
        (
            "acr-builder/graph/testdata/preprocessor/invalid-external.yaml",
            NotATask,
        ),
        (
            "acr-builder/graph/testdata/preprocessor/invalid-remote.yaml",
            NotATask,
        ),
        (
            "acr-builder/graph/testdata/preprocessor/preprocessing-stress.yaml",
            NotATask,
        ),
        // A v1.0.0 file (no aliases) with an unknown top-level key.
        (
            "acr-builder/graph/testdata/preprocessor/valid-alias.yaml",
            Refused("unknown key 'test'"),
        ),
        (
            "acr-builder/graph/testdata/preprocessor/valid-external.yaml",
            NotATask,
        ),
        (
            "acr-builder/graph/testdata/preprocessor/valid-remote.yaml",
            NotATask,
        ),
        ("acr-builder/templating/testdata/caching/cache.yaml", Valid),
        (
            "acr-builder/templating/testdata/caching/empty.yaml",
            NotATask,
        ),
        (
            "acr-builder/templating/testdata/caching/values.yaml",
            NotATask,
        ),
        ("acr-builder/templating/testdata/curie/curie.yaml", NotATask),
        (
            "acr-builder/templating/testdata/curie/values.yaml",
            NotATask,
        ),
        ("acr-builder/templating/testdata/fruits.yaml", NotATask),
        (
            "acr-builder/templating/testdata/helloworld/context-build.yaml",
            Valid,
        ),
        (
            "acr-builder/templating/testdata/helloworld/git-build.yaml",
            Valid,
        ),
        (
            "acr-builder/templating/testdata/helloworld/manifest.yaml",
            Valid,
        ),
        (
            "acr-builder/templating/testdata/helloworld/tar-build.yaml",
            Valid,
        ),
        (
            "acr-builder/templating/testdata/helloworld/values.yaml",
            NotATask,
        ),
        (
            "acr-builder/templating/testdata/mounts/mounts_multistep.yaml",
            Valid,
        ),
        (
            "acr-builder/templating/testdata/mounts/mounts_secrets.yaml",
            Refused("Key Vault secrets are not supported by Kiln"),
        ),
        (
            "acr-builder/templating/testdata/thames/thames.yaml",
            NotATask,
        ),
        (
            "acr-builder/templating/testdata/thames/values.yaml",
            NotATask,
        ),
        ("acr-tasks-samples/bash-echo-3.yaml", Valid),
        ("acr-tasks-samples/bash-echo.yaml", Valid),
        (
            "acr-tasks-samples/build-aspnetapp/WeatherService/acb.yaml",
            Valid,
        ),
        ("acr-tasks-samples/build-hello-world.yaml", Valid),
        ("acr-tasks-samples/build-push-hello-world-multi.yaml", Valid),
        ("acr-tasks-samples/build-push-hello-world.yaml", Valid),
        ("acr-tasks-samples/build-run-hello-world.yaml", Valid),
        ("acr-tasks-samples/build-test-hello-world.yaml", Valid),
        (
            "acr-tasks-samples/build-test-update-hello-world.yaml",
            Valid,
        ),
        ("acr-tasks-samples/buildx.yml", Valid),
        ("acr-tasks-samples/files-working-directory.yaml", Valid),
        ("acr-tasks-samples/hello-world.yaml", Valid),
        (
            "acr-tasks-samples/managed-identities.yaml",
            Refused("Key Vault secrets are not supported by Kiln"),
        ),
        ("acr-tasks-samples/mounts-multistep.yaml", Valid),
        (
            "acr-tasks-samples/mounts-secrets.yaml",
            Refused("Key Vault secrets are not supported by Kiln"),
        ),
        ("acr-tasks-samples/multipleRegistries/testtask.yaml", Valid),
        ("acr-tasks-samples/network-curl.yaml", Valid),
        ("acr-tasks-samples/simpletask.yaml", Valid),
        ("acr-tasks-samples/when-parallel-dependent.yaml", Valid),
        ("acr-tasks-samples/when-parallel.yaml", Valid),
        ("acr-tasks-samples/when-sequential-default.yaml", Valid),
        ("acr-tasks-samples/when-sequential-id.yaml", Valid),
    ])
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

fn input(values: Values) -> CompileInput {
    CompileInput {
        run: RunVars {
            id: "ca1".into(),
            registry: Some("kiln.test:5000".into()),
            date: chrono::Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
            os: "linux".into(),
            architecture: "amd64".into(),
            commit: Some("0123abc".into()),
            branch: Some("main".into()),
            task_name: Some("corpus".into()),
            shared_volume: Some("kiln_vol_ca1".into()),
        },
        values,
        platforms: PlatformSet::default(),
        allow_privileged: false,
        default_registry: None,
    }
}

/// Values the samples expect from `--set` (they ship no values file).
fn sample_values() -> Vec<String> {
    [
        "secret1=s3cret-one",
        "secret2=s3cret-two",
        "REGISTRY1=one.example.com",
        "REGISTRY2=two.example.com",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn every_corpus_file_gets_the_verdict_kiln_promises() {
    let root = Path::new(CORPUS);
    if !root.is_dir() {
        println!("skipped: {CORPUS} is not on this machine");
        return;
    }
    let mut files = Vec::new();
    yaml_files(root, &mut files);
    files.sort();
    let expectations = expectations();
    let mut failures = Vec::new();
    println!("{:<68} {:<9} RESULT", "FILE", "EXPECTED");
    for path in files {
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let Some(expect) = expectations.get(rel.as_str()) else {
            failures.push(format!("{rel}: not in the table of expectations"));
            continue;
        };
        if let Expect::NotATask = expect {
            println!("{rel:<68} {:<9} skipped", "data");
            continue;
        }
        let folder = path.parent().unwrap().to_path_buf();
        let values_file = folder.join("values.yaml");
        let values = Values::load(
            values_file.is_file().then_some(values_file.as_path()),
            &[],
            &sample_values(),
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let read = |src: &str| std::fs::read_to_string(folder.join(src)).ok();
        let result = compile_with_files(&name, &text, &input(values), &read);
        let (label, verdict) = match (expect, &result) {
            (Expect::Valid, Ok(job)) => ("valid", Ok(format!("{} steps", job.steps.len()))),
            (Expect::Valid, Err(e)) => ("valid", Err(format!("refused: {e}"))),
            (Expect::Refused(_), Ok(_)) => ("refused", Err("compiled".to_owned())),
            (Expect::Refused(want), Err(e)) => {
                let first = e.errors().iter().find(|err| err.message.contains(want));
                match first {
                    Some(err)
                        if err.line >= 1 && e.to_string().starts_with(&format!("{name}:")) =>
                    {
                        ("refused", Ok(err.to_string()))
                    }
                    _ => ("refused", Err(format!("wrong message: {e}"))),
                }
            }
            (Expect::NotATask, _) => unreachable!("skipped above"),
        };
        match verdict {
            Ok(note) => println!("{rel:<68} {label:<9} ok: {note}"),
            Err(problem) => {
                println!("{rel:<68} {label:<9} FAIL: {problem}");
                failures.push(format!("{rel}: {problem}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
