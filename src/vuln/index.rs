//! Records in memory, keyed by (ecosystem, normalised name) as the database will key them, so
//! an inventory is matched by looking each package up rather than reading every record.

use std::collections::{HashMap, HashSet};

use super::affected::{evaluate, Package, Verdict};
use super::osv::Record;
use super::versions::Ecosystem;

/// Records by the packages they name.
#[derive(Debug, Default)]
pub struct Index {
    records: Vec<Record>,
    by_package: HashMap<(Ecosystem, String), Vec<usize>>,
    ecosystems: HashSet<Ecosystem>,
}

/// A record that affects a package, or may (`Verdict::Unknown`).
#[derive(Debug, Clone, PartialEq)]
pub struct Match<'a> {
    pub record: &'a Record,
    pub verdict: Verdict,
}

impl Index {
    /// Indexes `records`; withdrawn ones are left out, as they match nothing.
    pub fn from_records(records: impl IntoIterator<Item = Record>) -> Index {
        let mut index = Index::default();
        for record in records {
            index.insert(record);
        }
        index
    }

    pub fn insert(&mut self, record: Record) {
        if record.withdrawn.is_some() {
            return;
        }
        let position = self.records.len();
        let mut keys: Vec<(Ecosystem, String)> = record
            .affected
            .iter()
            .filter_map(|a| a.package.as_ref())
            .map(|p| {
                let ecosystem = Ecosystem::parse(&p.ecosystem);
                let name = ecosystem.normalise_name(&p.name);
                (ecosystem, name)
            })
            .collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            self.ecosystems.insert(key.0.clone());
            self.by_package.entry(key).or_default().push(position);
        }
        self.records.push(record);
    }

    /// The number of records held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Whether any record names a package of `ecosystem`: a scan of an image with packages
    /// of an ecosystem the database lacks must say so rather than report "clean".
    pub fn covers(&self, ecosystem: &Ecosystem) -> bool {
        self.ecosystems.contains(ecosystem)
    }

    /// The records that affect `package` or may affect it, in the order they were added.
    pub fn matches(&self, package: &Package) -> Vec<Match<'_>> {
        let key = (
            package.ecosystem.clone(),
            package.ecosystem.normalise_name(&package.name),
        );
        let Some(positions) = self.by_package.get(&key) else {
            return Vec::new();
        };
        positions
            .iter()
            .map(|&i| &self.records[i])
            .filter_map(|record| match evaluate(record, package) {
                Verdict::NotAffected => None,
                verdict => Some(Match { record, verdict }),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(id: &str, ecosystem: &str, name: &str, withdrawn: bool) -> Record {
        let mut value = json!({"id": id, "modified": "2024-01-01T00:00:00Z", "affected": [
            {"package": {"ecosystem": ecosystem, "name": name},
             "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}]}]});
        if withdrawn {
            value["withdrawn"] = json!("2024-02-01T00:00:00Z");
        }
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn packages_are_looked_up_by_ecosystem_and_normalised_name() {
        let index = Index::from_records([
            record("A", "PyPI", "Foo_Bar", false),
            record("B", "PyPI", "foo-bar", false),
            record("C", "PyPI", "foo-bar", true),
            record("D", "Debian:12", "foo-bar", false),
        ]);
        assert_eq!(index.len(), 3, "the withdrawn record is left out");
        let package = Package {
            ecosystem: Ecosystem::PyPI,
            name: "Foo.Bar".into(),
            version: "1.0".into(),
        };
        let ids: Vec<&str> = index
            .matches(&package)
            .iter()
            .map(|m| m.record.id.as_str())
            .collect();
        assert_eq!(ids, ["A", "B"]);
        let fixed = Package {
            version: "2.0".into(),
            ..package
        };
        assert!(index.matches(&fixed).is_empty());
        assert!(index.covers(&Ecosystem::parse("Debian:12")));
        assert!(!index.covers(&Ecosystem::parse("Debian:11")));
        assert!(!index.covers(&Ecosystem::Npm));
    }
}
