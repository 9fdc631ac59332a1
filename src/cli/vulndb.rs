//! `kiln vulndb import PATH… [--source NAME]` and `kiln vulndb status`: the vulnerability
//! database scans are matched against. Each path is an osv.dev bulk-export zip
//! (`…/Go/all.zip`) or a folder of OSV JSON/YAML records, which is zipped in memory; the zip
//! is uploaded as it is and the server reads and stores it.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use kiln_worker::protocol::{DatabaseState, SourceState};

use super::client::KilnClient;
use super::format::{print_json, table, timestamp};
use super::{CliError, OutputArgs, OutputFormat, ServerArgs};
use crate::service::to_time;
use crate::vuln::osv::{self, has_extension};

#[derive(Debug, Subcommand)]
pub enum VulnDbCommand {
    /// Import OSV records: osv.dev bulk-export zips or folders of OSV JSON/YAML. A source is
    /// replaced whole by its new import (owners only).
    Import(ImportArgs),
    /// The imported sources: record counts, newest `modified` and when each was imported.
    Status(OutputArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// `…/<ecosystem>/all.zip` or a folder of records.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The source's name (default: a zip's folder, `Debian:12` for `osv/Debian:12/all.zip`,
    /// or the folder's own name). Only with a single path.
    #[arg(long)]
    pub source: Option<String>,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub async fn run(cmd: VulnDbCommand) -> Result<(), CliError> {
    match cmd {
        VulnDbCommand::Import(a) => import(a).await,
        VulnDbCommand::Status(a) => status(a).await,
    }
}

async fn import(a: ImportArgs) -> Result<(), CliError> {
    if a.source.is_some() && a.paths.len() > 1 {
        return Err(CliError::Input(
            "--source names one source: import one path with it".into(),
        ));
    }
    let client = KilnClient::new(&a.server)?;
    let mut imported = Vec::new();
    for path in &a.paths {
        let name = match &a.source {
            Some(name) => name.clone(),
            None => source_name(path)?,
        };
        let zip = zip_of(path)?;
        let state = client
            .import_vuln_source(&name, zip)
            .await
            .map_err(|e| in_path(path, e))?;
        if a.output == OutputFormat::Table {
            println!("{}", imported_line(&state));
        }
        imported.push(state);
    }
    if a.output == OutputFormat::Json {
        return print_json(&imported);
    }
    Ok(())
}

fn imported_line(s: &SourceState) -> String {
    let noun = if s.records == 1 { "record" } else { "records" };
    let newest = s.newest_modified.as_deref().unwrap_or("-");
    format!(
        "Imported {} {noun} into {} (newest modified {newest})",
        s.records, s.name
    )
}

/// A rejection names the path it was about.
fn in_path(path: &Path, e: CliError) -> CliError {
    match e {
        CliError::Rejected(m) => CliError::Rejected(format!("{}: {m}", path.display())),
        other => other,
    }
}

/// The source a path is imported as: a zip's folder, else a folder's own name.
pub fn source_name(path: &Path) -> Result<String, CliError> {
    let named = if path.is_dir() {
        path.canonicalize().ok()
    } else {
        path.canonicalize()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
    };
    named
        .as_deref()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| {
            CliError::Input(format!(
                "cannot tell which source {} is: name it with --source",
                path.display()
            ))
        })
}

/// The bytes to upload: a zip as it is, a folder's `.json`/`.yaml` files zipped, or one
/// record file zipped alone.
fn zip_of(path: &Path) -> Result<Vec<u8>, CliError> {
    let unreadable =
        |e: std::io::Error| CliError::Input(format!("cannot read {}: {e}", path.display()));
    let metadata = std::fs::metadata(path).map_err(unreadable)?;
    if metadata.is_file() && has_extension(path, &["zip"]) {
        return std::fs::read(path).map_err(unreadable);
    }
    let files = if metadata.is_dir() {
        osv::record_files(path).map_err(|e| CliError::Input(e.to_string()))?
    } else {
        vec![path.to_path_buf()]
    };
    let root = if metadata.is_dir() {
        path
    } else {
        path.parent().unwrap_or(Path::new(""))
    };
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    let zip_error =
        |e: zip::result::ZipError| CliError::Input(format!("cannot zip {}: {e}", path.display()));
    for file in files {
        let name = file.strip_prefix(root).unwrap_or(&file).to_string_lossy();
        writer
            .start_file(name.as_ref(), options)
            .map_err(zip_error)?;
        let bytes = std::fs::read(&file).map_err(unreadable)?;
        writer.write_all(&bytes).map_err(unreadable)?;
    }
    Ok(writer.finish().map_err(zip_error)?.into_inner())
}

async fn status(a: OutputArgs) -> Result<(), CliError> {
    let client = KilnClient::new(&a.server)?;
    let db: DatabaseState = client.vuln_status().await?;
    if a.output == OutputFormat::Json {
        return print_json(&db);
    }
    if db.sources.is_empty() {
        println!("No vulnerability data: import some with `kiln vulndb import`");
        return Ok(());
    }
    let rows: Vec<[String; 4]> = db
        .sources
        .iter()
        .map(|s| {
            [
                s.name.clone(),
                s.records.to_string(),
                s.newest_modified.clone().unwrap_or("-".into()),
                timestamp(to_time(s.imported_at)),
            ]
        })
        .collect();
    print!(
        "{}",
        table(["SOURCE", "RECORDS", "NEWEST MODIFIED", "IMPORTED"], &rows)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_named_after_the_zips_folder_or_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let debian = dir.path().join("Debian:12");
        std::fs::create_dir(&debian).unwrap();
        std::fs::write(debian.join("all.zip"), b"").unwrap();
        assert_eq!(source_name(&debian.join("all.zip")).unwrap(), "Debian:12");
        assert_eq!(source_name(&debian).unwrap(), "Debian:12");
    }

    #[test]
    fn a_folder_is_zipped_with_its_record_files_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("nested")).unwrap();
        std::fs::write(dir.path().join("a.json"), "{}").unwrap();
        std::fs::write(dir.path().join("nested/b.yaml"), "id: x").unwrap();
        std::fs::write(dir.path().join("README.md"), "no").unwrap();
        let zip = zip_of(dir.path()).unwrap();
        let archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
        let mut names: Vec<String> = archive
            .file_names()
            .map(|n| n.unwrap().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["a.json", "nested/b.yaml"]);
    }
}
