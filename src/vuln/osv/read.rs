//! Reading OSV records from what sources publish: an osv.dev bulk export (`<ecosystem>/all.zip`,
//! one `<ID>.json` per entry), a folder of `.json`/`.yaml` files (advisory repositories such as
//! pypa/advisory-database), or one file. Records are read one at a time, so memory stays at
//! one record however large the export; a record that does not parse is an `Err` item and
//! the ones after it are still read.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::Record;

/// Why a source or one of its records could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a readable zip archive: {source}")]
    Zip {
        path: PathBuf,
        source: zip::result::ZipError,
    },
    #[error("{entry} is not an OSV record: {message}")]
    Parse { entry: String, message: String },
}

/// The records of one source, in the order the source stores them.
pub struct Records(Box<dyn Iterator<Item = Result<Record, ReadError>> + Send>);

impl Iterator for Records {
    type Item = Result<Record, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
}

/// Reads a zip, a folder (recursively) or a single `.json`/`.yaml` file.
pub fn read_path(path: &Path) -> Result<Records, ReadError> {
    let metadata = std::fs::metadata(path).map_err(|source| io(path, source))?;
    if metadata.is_dir() {
        read_dir(path)
    } else if has_extension(path, &["zip"]) {
        read_zip(path)
    } else {
        let path = path.to_path_buf();
        Ok(Records(Box::new(std::iter::once_with(move || {
            read_file(&path)
        }))))
    }
}

/// Reads the `.json`/`.yaml`/`.yml` entries of an osv.dev bulk-export zip.
pub fn read_zip(path: &Path) -> Result<Records, ReadError> {
    let file = File::open(path).map_err(|source| io(path, source))?;
    let zip_error = |source| ReadError::Zip {
        path: path.to_path_buf(),
        source,
    };
    let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(zip_error)?;
    let path = path.to_path_buf();
    let mut index = 0;
    Ok(Records(Box::new(std::iter::from_fn(move || loop {
        if index >= archive.len() {
            return None;
        }
        let mut entry = match archive.by_index(index) {
            Ok(entry) => entry,
            Err(source) => {
                return Some(Err(ReadError::Zip {
                    path: path.clone(),
                    source,
                }))
            }
        };
        index += 1;
        let name = match entry.name() {
            Ok(name) => name.to_string(),
            Err(source) => {
                return Some(Err(ReadError::Zip {
                    path: path.clone(),
                    source,
                }))
            }
        };
        if entry.is_dir() || !has_extension(Path::new(&name), RECORD_EXTENSIONS) {
            continue;
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        if let Err(source) = entry.read_to_end(&mut bytes) {
            return Some(Err(io(&path.join(&name), source)));
        }
        return Some(parse(&name, &bytes));
    }))))
}

/// Reads every `.json`/`.yaml`/`.yml` file under `dir`, in path order.
pub fn read_dir(dir: &Path) -> Result<Records, ReadError> {
    let files = record_files(dir)?;
    Ok(Records(Box::new(
        files.into_iter().map(|path| read_file(&path)),
    )))
}

/// The `.json`/`.yaml`/`.yml` files under `dir` (recursively), in path order.
pub fn record_files(dir: &Path) -> Result<Vec<PathBuf>, ReadError> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).map_err(|source| io(&folder, source))? {
            let path = entry.map_err(|source| io(&folder, source))?.path();
            if path.is_dir() {
                pending.push(path);
            } else if has_extension(&path, RECORD_EXTENSIONS) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

const RECORD_EXTENSIONS: &[&str] = &["json", "yaml", "yml"];

fn read_file(path: &Path) -> Result<Record, ReadError> {
    let bytes = std::fs::read(path).map_err(|source| io(path, source))?;
    parse(&path.display().to_string(), &bytes)
}

/// Parses one record; the entry name's extension says JSON or YAML.
fn parse(entry: &str, bytes: &[u8]) -> Result<Record, ReadError> {
    let parsed = if has_extension(Path::new(entry), &["json"]) {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    } else {
        serde_norway::from_slice(bytes).map_err(|e| e.to_string())
    };
    parsed.map_err(|message| ReadError::Parse {
        entry: entry.to_string(),
        message,
    })
}

pub(crate) fn has_extension(path: &Path, extensions: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| extensions.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

fn io(path: &Path, source: std::io::Error) -> ReadError {
    ReadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &str = r#"{"id":"TEST-1","modified":"2024-01-02T03:04:05Z","future_field":{"x":1},
        "affected":[{"package":{"ecosystem":"CleanStart","name":"p"},
        "ranges":[{"type":"NEWTYPE","events":[{"introduced":"0"}]}]}]}"#;

    #[test]
    fn unknown_fields_range_types_and_ecosystems_still_load() {
        let record = parse("TEST-1.json", RECORD.as_bytes()).unwrap();
        assert_eq!(record.id, "TEST-1");
        assert_eq!(
            record.affected[0].ranges[0].kind,
            super::super::RangeKind::Unknown
        );
    }

    #[test]
    fn a_folder_yields_json_and_yaml_records_and_reports_a_bad_one_without_stopping() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("nested")).unwrap();
        std::fs::write(dir.path().join("a.json"), RECORD).unwrap();
        std::fs::write(dir.path().join("b.json"), "{not json").unwrap();
        std::fs::write(
            dir.path().join("nested/c.yaml"),
            "id: TEST-2\nmodified: 2024-01-02T03:04:05Z\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("README.md"), "not a record").unwrap();
        let results: Vec<_> = read_path(dir.path()).unwrap().collect();
        assert_eq!(results.len(), 3);
        assert_eq!(results[0].as_ref().unwrap().id, "TEST-1");
        let error = results[1].as_ref().unwrap_err().to_string();
        assert!(error.contains("b.json is not an OSV record"), "{error}");
        assert_eq!(results[2].as_ref().unwrap().id, "TEST-2");
    }

    #[test]
    fn a_zip_yields_its_record_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("all.zip");
        let mut writer = zip::ZipWriter::new(File::create(&path).unwrap());
        let options = zip::write::SimpleFileOptions::default();
        writer.start_file("TEST-1.json", options).unwrap();
        std::io::Write::write_all(&mut writer, RECORD.as_bytes()).unwrap();
        writer.add_directory("folder/", options).unwrap();
        writer.finish().unwrap();
        let ids: Vec<String> = read_path(&path).unwrap().map(|r| r.unwrap().id).collect();
        assert_eq!(ids, ["TEST-1"]);
        let error = read_zip(&dir.path().join("missing.zip"))
            .err()
            .unwrap()
            .to_string();
        assert!(error.starts_with("cannot read "), "{error}");
    }
}
