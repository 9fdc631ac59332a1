//! `task-schemas/`: every example is checked against the JSON Schema, and Kiln's own parser
//! agrees with the schema on each (valid examples pass both, invalid ones fail both).

use std::path::{Path, PathBuf};

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("task-schemas")
}

fn examples(kind: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(schema_dir().join("examples").join(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no {kind} examples");
    files
}

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(schema_dir().join("acr-task.schema.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    jsonschema::draft202012::meta::validate(&schema).expect("the schema is valid draft 2020-12");
    jsonschema::draft202012::new(&schema).unwrap()
}

/// The schema's verdict and Kiln's, with their messages.
fn verdicts(path: &Path) -> (Result<(), String>, Result<(), String>) {
    let text = std::fs::read_to_string(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let schema = match serde_norway::from_str::<serde_json::Value>(&text) {
        Err(e) => Err(format!("not YAML: {e}")),
        Ok(doc) => {
            let errors: Vec<String> = validator()
                .iter_errors(&doc)
                .map(|e| format!("{}: {e}", e.instance_path()))
                .collect();
            if errors.is_empty() {
                Ok(())
            } else {
                Err(errors.join("; "))
            }
        }
    };
    let kiln = kiln::taskfile::validate(&name, &text).map_err(|e| e.to_string());
    (schema, kiln)
}

#[test]
fn valid_examples_pass_the_schema_and_kiln() {
    for path in examples("valid") {
        let (schema, kiln) = verdicts(&path);
        assert_eq!(schema, Ok(()), "schema refuses {}", path.display());
        assert_eq!(kiln, Ok(()), "kiln refuses {}", path.display());
    }
}

#[test]
fn invalid_examples_fail_the_schema_and_kiln() {
    for path in examples("invalid") {
        let (schema, kiln) = verdicts(&path);
        println!(
            "{}:\n  schema: {schema:?}\n  kiln:   {kiln:?}",
            path.display()
        );
        assert!(schema.is_err(), "schema accepts {}", path.display());
        let kiln = kiln.expect_err(&format!("kiln accepts {}", path.display()));
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(kiln.starts_with(&format!("{name}:")), "{kiln}");
    }
}

#[test]
fn examples_name_the_schema_for_editors() {
    for path in examples("valid").into_iter().chain(examples("invalid")) {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=../../acr-task.schema.json\n"),
            "{}",
            path.display()
        );
    }
}
