//! `kiln task validate`: offline checks of a task file, as a user runs them.

use std::path::Path;
use std::process::{Command, Output};

fn validate(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .current_dir(dir)
        .args(["task", "validate"])
        .args(args)
        .env_remove("KILN_SERVER")
        .output()
        .expect("kiln runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_valid_file_reports_its_steps() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("acb.yaml"),
        "version: v1.1.0\nalias:\n  src: [aliases.yaml]\nsteps:\n  - build: -t app:{{.Values.tag}} .\n  - cmd: $tool echo {{.Run.ID}}\n  - push: [app:{{.Values.tag}}]\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("aliases.yaml"), "tool: busybox\n").unwrap();
    let out = validate(dir.path(), &["acb.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "acb.yaml: valid (3 steps)\n");

    std::fs::write(dir.path().join("values.yaml"), "tag: v1\n").unwrap();
    let out = validate(
        dir.path(),
        &["acb.yaml", "--values", "values.yaml", "--set", "tag=v2"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn errors_exit_2_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("acb.yaml"),
        "steps:\n  - cmd: busybox true\n  - cmd: busybox true\n    stepz: 1\n",
    )
    .unwrap();
    let out = validate(dir.path(), &["acb.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stdout).is_empty());
    assert!(
        text(&out.stderr).contains("acb.yaml:4:5: unknown key 'stepz' in step 2"),
        "{}",
        text(&out.stderr)
    );

    std::fs::write(
        dir.path().join("dag.yaml"),
        "steps:\n  - id: a\n    cmd: busybox true\n    when: [b]\n  - id: b\n    cmd: busybox true\n    when: [a, a b]\n",
    )
    .unwrap();
    let out = validate(dir.path(), &["dag.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("dag.yaml:4:12: 'when' names 'b', a later step"),
        "{stderr}"
    );
    assert!(
        stderr.contains("dag.yaml:7:15: 'when' names 'a b', which is not a step"),
        "{stderr}"
    );
}

#[test]
fn missing_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = validate(dir.path(), &["nope.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot read nope.yaml"),
        "{}",
        text(&out.stderr)
    );
    std::fs::write(
        dir.path().join("acb.yaml"),
        "steps:\n  - cmd: busybox true\n",
    )
    .unwrap();
    let out = validate(dir.path(), &["acb.yaml", "--values", "missing.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("values file missing.yaml: no such file"),
        "{}",
        text(&out.stderr)
    );
}
