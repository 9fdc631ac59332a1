//! Compiling whole task files: defaults, the DAG, and errors at their line and column.

use std::collections::BTreeMap;

use chrono::TimeZone;
use kiln_worker::protocol::{Secret, StepAction, StepsJob};

use super::*;

fn input() -> CompileInput {
    CompileInput {
        run: RunVars {
            id: "ca7".into(),
            registry: Some("kiln.test:8080".into()),
            date: Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap(),
            os: "linux".into(),
            architecture: "amd64".into(),
            commit: None,
            branch: None,
            task_name: Some("ci".into()),
            shared_volume: Some("kiln_vol_ca7".into()),
        },
        values: Values {
            plain: BTreeMap::from([("tag".into(), "v2".into())]),
            secret: BTreeMap::from([("pw".into(), Secret::new("hunter2"))]),
        },
        platforms: PlatformSet::default(),
        allow_privileged: false,
        default_registry: None,
    }
}

fn ok(text: &str) -> StepsJob {
    compile("acb.yaml", text, &input()).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> String {
    compile("acb.yaml", text, &input()).unwrap_err().to_string()
}

#[test]
fn defaults_and_the_dag() {
    let job = ok("version: v1.1.0
stepTimeout: 300
workingDirectory: src
env: [A=task, B=task]
steps:
  - build: -t app:{{.Values.tag}} -f Dockerfile .
    env: [B=step]
  - cmd: app:v2 test --pw {{.Values.pw}}
    timeout: 20
    retryDelay: 0
  - id: lint
    cmd: busybox true
    when: [\"-\"]
    workingDirectory: /tmp
  - push: [app:v2, app:v2, other]
    when: [acb_step_1, lint]
");
    let ids: Vec<_> = job.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["acb_step_0", "acb_step_1", "lint", "acb_step_3"]);
    let when: Vec<_> = job.steps.iter().map(|s| s.when.clone()).collect();
    assert_eq!(when[0], Vec::<String>::new());
    assert_eq!(when[1], ["acb_step_0"]);
    assert!(when[2].is_empty());
    assert_eq!(when[3], ["acb_step_1", "lint"]);
    assert_eq!(job.steps[0].timeout_secs, 300);
    assert_eq!(job.steps[1].timeout_secs, 20);
    assert_eq!(job.steps[1].retry_delay_secs, 5);
    assert_eq!(job.steps[0].env, ["A=task", "B=step"]);
    assert_eq!(job.steps[0].working_directory, "/workspace/src");
    assert_eq!(job.steps[2].working_directory, "/tmp");
    let StepAction::Build(build) = &job.steps[0].action else {
        panic!("build")
    };
    assert_eq!(build.context_dir, "src");
    assert_eq!(build.images[0].to_string(), "kiln.test:8080/app:v2");
    let StepAction::Cmd(cmd) = &job.steps[1].action else {
        panic!("cmd")
    };
    assert_eq!(
        cmd.image, "kiln.test:8080/app:v2",
        "a cmd may run what a build step built"
    );
    assert_eq!(cmd.args, ["test", "--pw", "hunter2"]);
    let StepAction::Cmd(cmd) = &job.steps[2].action else {
        panic!("cmd")
    };
    assert_eq!(cmd.image, "busybox", "other images are Docker's");
    let StepAction::Push(push) = &job.steps[3].action else {
        panic!("push")
    };
    let pushed: Vec<_> = push.images.iter().map(ToString::to_string).collect();
    assert_eq!(
        pushed,
        ["kiln.test:8080/app:v2", "kiln.test:8080/other:latest"]
    );
    assert_eq!(job.masked, [Secret::new("hunter2")]);
}

#[test]
fn aliases_volumes_and_networks() {
    let job = ok("version: v1.1.0
alias:
  values:
    tools: busybox:1.36
volumes:
  - name: certs
    secret:
      key.pem: {{ .Values.pw | b64enc }}
networks:
  - name: net1
  - name: net2
    isDefault: true
steps:
  - cmd: tools echo $Registry $ID $$HOME
    network: net1
    volumeMounts:
      - name: certs
        mountPath: /certs
");
    let StepAction::Cmd(cmd) = &job.steps[0].action else {
        panic!("cmd")
    };
    assert_eq!(cmd.image, "busybox:1.36");
    assert_eq!(cmd.args, ["echo", "kiln.test:8080", "ca7", "$HOME"]);
    assert_eq!(job.volumes[0].files["key.pem"], Secret::new("hunter2"));
    assert_eq!(
        job.masked,
        [Secret::new("hunter2")],
        "secret files are masked once"
    );
    assert!(job.networks[1].is_default && !job.networks[0].is_default);
    assert_eq!(job.steps[0].network.as_deref(), Some("net1"));
}

#[test]
fn errors_name_file_line_and_column() {
    assert_eq!(
        err("steps:\n  - cmd: a\n  - cmd: b\n    stepz: 1\n"),
        "acb.yaml:4:5: unknown key 'stepz' in step 2"
    );
    assert_eq!(
        err("steps:\n  - cmd: a\n    timeout: soon\n")
            .lines()
            .count(),
        1
    );
    assert_eq!(
        err("steps:\n  - cmd: a\n    timeout: soon\n"),
        "acb.yaml:3:14: invalid type: string \"soon\", expected a whole number in step 1"
    );
    assert!(
        err("steps: [\n").starts_with("acb.yaml:2:1: "),
        "{}",
        err("steps: [\n")
    );
    let all = err("version: v9
secrets:
  - id: x
    keyvault: https://v.vault.azure.net/secrets/x
env: [NOEQUALS]
steps:
  - id: a b
    cmd: x
  - id: b
    cmd: x
    build: .
  - id: c
  - id: d
    cmd: x
    when: [e]
  - id: e
    cmd: x
    when: [\"-\", d]
  - id: e
    cmd: x
    when: [e, nope]
  - id: acb_root
    push: [a]
    cache: sometimes
    privileged: true
    isolation: hyperv
");
    let expected = [
        "acb.yaml:1:10: invalid version 'v9'",
        "acb.yaml:2:1: Key Vault secrets are not supported by Kiln; pass the value with --set-secret and use {{.Values.name}}",
        "acb.yaml:5:7: env entry 'NOEQUALS' is not KEY=VALUE",
        "acb.yaml:7:9: step id 'a b' contains spaces",
        "acb.yaml:9:5: step 2 has more than one of 'build', 'cmd' and 'push'",
        "acb.yaml:12:5: step 3 has none of 'build', 'cmd' or 'push'",
        "acb.yaml:15:12: 'when' names 'e', a later step",
        "acb.yaml:18:11: 'when' cannot mix \"-\" with step ids",
        "acb.yaml:19:9: duplicate step id 'e'",
        "acb.yaml:21:12: step 'e' cannot wait for itself",
        "acb.yaml:21:15: 'when' names 'nope', which is not a step of this task",
        "acb.yaml:22:9: step id 'acb_root' is reserved",
        "acb.yaml:25:5: 'privileged' applies to cmd steps only",
        "acb.yaml:24:5: 'cache' applies to build steps only",
        "acb.yaml:24:12: cache must be 'enabled' or 'disabled'",
        "acb.yaml:25:5: privileged steps are not allowed by this Kiln server",
        "acb.yaml:26:5: 'isolation' is for Windows containers",
    ];
    let lines: Vec<&str> = all.lines().collect();
    for want in expected {
        assert!(
            lines.iter().any(|l| l.starts_with(want)),
            "missing {want:?} in\n{all}"
        );
    }
}

#[test]
fn volume_and_alias_mistakes() {
    let all = err("version: v1.1.0
alias:
  src: [https://example.com/aliases.yaml]
volumes:
  - name: v
    secret:
      f: not base64!
steps:
  - cmd: az login
    volumeMounts:
      - name: w
        mountPath: /a
      - name: v
        mountPath: /a
");
    assert!(
        all.starts_with("acb.yaml:3:9: alias source 'https://example.com/aliases.yaml' is a URL"),
        "{all}"
    );
    let all = err("version: v1.1.0
volumes:
  - name: v
    secret:
      f: not base64!
steps:
  - cmd: az login
    volumeMounts:
      - name: w
        mountPath: /a
      - name: v
        mountPath: /a
");
    for want in [
        "acb.yaml:5:10: the content of 'f' must be base64",
        "acb.yaml:7:10: 'az' is an ACR image alias for a Microsoft image",
    ] {
        assert!(
            all.lines().any(|l| l.starts_with(want)),
            "missing {want:?} in\n{all}"
        );
    }
    let all = err("version: v1.1.0
volumes:
  - name: v
    secret: {}
steps:
  - cmd: busybox true
    volumeMounts:
      - name: w
        mountPath: /a
      - name: v
        mountPath: /a
");
    assert!(
        all.contains("acb.yaml:8:15: volume 'w' is not declared"),
        "{all}"
    );
    assert!(
        all.contains("acb.yaml:11:20: mountPath '/a' is used twice"),
        "{all}"
    );
}

#[test]
fn templates_fail_naming_the_variable_and_line() {
    assert_eq!(
        err("steps:\n  - cmd: busybox echo {{.Values.nope}}\n"),
        "acb.yaml:2:23: no value for '.Values.nope': pass it with --set, --set-secret or --values, or use '| default \"...\"'"
    );
    assert_eq!(
        err("steps:\n  - cmd: busybox echo {{.Values.tag | md5}}\n"),
        "acb.yaml:2:23: unknown template function 'md5'"
    );
    // A template in a comment line never renders.
    ok("# {{.Values.nope}}\nsteps:\n  - cmd: busybox echo {{.Values.tag | default \"x\"}}\n");
}

#[test]
fn privileged_needs_the_server_to_allow_it() {
    let text = "steps:\n  - cmd: busybox true\n    privileged: true\n";
    assert!(err(text).contains("privileged steps are not allowed"));
    let allowed = CompileInput {
        allow_privileged: true,
        ..input()
    };
    let job = compile("acb.yaml", text, &allowed).unwrap();
    let StepAction::Cmd(cmd) = &job.steps[0].action else {
        panic!("cmd")
    };
    assert!(cmd.privileged);
}

#[test]
fn a_cmd_is_one_step_with_aliases() {
    let job = compile_cmd("$Registry/tools:1 make 'a b'", &input()).unwrap();
    assert_eq!(job.steps.len(), 1);
    let StepAction::Cmd(cmd) = &job.steps[0].action else {
        panic!("cmd")
    };
    assert_eq!(cmd.image, "kiln.test:8080/tools:1");
    assert_eq!(cmd.args, ["make", "a b"]);
    assert_eq!(job.steps[0].timeout_secs, 600);
    assert_eq!(job.steps[0].working_directory, "/workspace");
    let e = compile_cmd("", &input()).unwrap_err().to_string();
    assert!(e.contains("needs an image"), "{e}");
}

#[test]
fn alias_files_come_from_the_context() {
    let text = "version: v1.1.0\nalias:\n  src: [aliases.yaml]\nsteps:\n  - cmd: $img true\n";
    assert_eq!(alias_sources(text), ["aliases.yaml"]);
    let read = |path: &str| (path == "aliases.yaml").then(|| "img: busybox".to_owned());
    let job = compile_with_files("acb.yaml", text, &input(), &read).unwrap();
    let StepAction::Cmd(cmd) = &job.steps[0].action else {
        panic!("cmd")
    };
    assert_eq!(cmd.image, "busybox");
    let e = compile("acb.yaml", text, &input()).unwrap_err().to_string();
    assert!(
        e.starts_with("acb.yaml:3:9: alias source 'aliases.yaml' is not a file of the context"),
        "{e}"
    );
    let job = validate_with_values("acb.yaml", text, &Values::default(), Some(&read)).unwrap();
    assert_eq!(job.steps.len(), 1);
}

#[test]
fn acr_purge_is_a_built_in_step_with_the_run_registry() {
    let job = ok("version: v1.1.0
steps:
  - cmd: acr purge --registry $Registry --filter 'app/.*:.*' --ago 30d --untagged
  - cmd: kiln purge --untagged-only --dry-run
  - cmd: busybox acr purge
");
    let StepAction::Purge(purge) = &job.steps[0].action else {
        panic!("purge")
    };
    assert_eq!(
        purge.words,
        [
            "--registry",
            "kiln.test:8080",
            "--filter",
            "app/.*:.*",
            "--ago",
            "30d",
            "--untagged"
        ]
    );
    assert_eq!(purge.registry, "kiln.test:8080");
    let StepAction::Purge(purge) = &job.steps[1].action else {
        panic!("purge")
    };
    // The server settles a purge without --registry on its own registry.
    assert_eq!(purge.registry, "");
    assert!(matches!(job.steps[2].action, StepAction::Cmd(_)));
    let job = compile_cmd(
        "acr purge --filter 'app/.*:.*' --ago 30d --untagged",
        &input(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(job.steps[0].action, StepAction::Purge(_)));
}

#[test]
fn bad_purge_arguments_are_errors_at_the_step() {
    let e = err("steps:\n  - cmd: acr purge --filter a:b\n");
    assert!(
        e.starts_with("acb.yaml:2:10: invalid purge command:") && e.contains("--ago"),
        "{e}"
    );
    let e = err("steps:\n  - cmd: acr tag list\n");
    assert!(e.contains("ACR image alias for a Microsoft image"), "{e}");
}

#[test]
fn an_acr_alias_the_file_defines_is_an_image() {
    let job = ok("version: v1.1.0
alias:
  values:
    acr: myregistry.example.com/acr-cli:1
steps:
  - cmd: acr purge --filter a:b --ago 1d
");
    let StepAction::Cmd(cmd) = &job.steps[0].action else {
        panic!("cmd")
    };
    assert_eq!(cmd.image, "myregistry.example.com/acr-cli:1");
}
