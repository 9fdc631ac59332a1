//! The flags of a built-in command (`kiln purge`, `kiln scan`) as given on the command line,
//! turned back into words the server reads exactly as a task's `cmd` step would.

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Args};

/// The arguments of `A` given on the command line: `--flag` or `--flag=value` words (one per
/// value, in order), then positional values; `A::from_words`-style parsers read them back
/// the same.
pub fn given_words<A: Args>(matches: &ArgMatches) -> Vec<String> {
    let command = A::augment_args(clap::Command::new("words"));
    let mut words = Vec::new();
    let mut positional = Vec::new();
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        if matches.value_source(id) != Some(ValueSource::CommandLine) {
            continue;
        }
        let raw = || {
            matches
                .get_raw(id)
                .into_iter()
                .flatten()
                .map(|raw| raw.to_string_lossy().into_owned())
        };
        match (arg.get_long(), arg.get_action()) {
            (Some(long), ArgAction::SetTrue) => words.push(format!("--{long}")),
            (Some(long), _) => words.extend(raw().map(|value| format!("--{long}={value}"))),
            (None, _) if arg.is_positional() => positional.extend(raw()),
            (None, _) => {}
        }
    }
    words.extend(positional);
    words
}
