//! PyPI versions: PEP 440 (`N!release[{a,b,rc}N][.postN][.devN][+local]`), parsed and ordered
//! by `pep440_rs`, which normalises as Python's `packaging` does (`1.0-1` is `1.0.post1`,
//! `1.0alpha1` is `1.0a1`, a leading `v` is allowed).

use super::{Scheme, VersionError};

/// PEP 440's version order.
pub struct Pep440;

impl Scheme for Pep440 {
    type Version = pep440_rs::Version;
    const NAME: &'static str = "PEP 440";

    fn parse(text: &str) -> Result<pep440_rs::Version, VersionError> {
        // `packaging` ignores surrounding whitespace; pep440_rs does not.
        text.trim()
            .parse()
            .map_err(|_| VersionError::new::<Self>(text))
    }
}
