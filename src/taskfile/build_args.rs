//! The argument string of a `build` step, as `docker build` takes it. Only the flags Kiln can
//! honour are accepted; any other flag is refused rather than silently ignored.

use std::collections::BTreeMap;

/// A parsed `build:` string, before paths are resolved against the working directory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct BuildArgs {
    pub tags: Vec<String>,
    pub dockerfile: Option<String>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub platform: Option<String>,
    pub no_cache: bool,
    pub context: String,
}

/// Parses `args`; a bare `--build-arg K` takes `K` from `env` (the step's merged `K=V` list),
/// as `docker build` takes it from its environment.
pub(crate) fn parse(args: &str, env: &[String]) -> Result<BuildArgs, String> {
    let words =
        shell_words::split(args).map_err(|e| format!("cannot split build arguments: {e}"))?;
    let mut parsed = BuildArgs::default();
    let mut context: Option<String> = None;
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let (flag, inline) = match word.split_once('=') {
            Some((flag, value)) if word.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (word.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| words.next())
                .ok_or_else(|| format!("build flag '{name}' needs a value"))
        };
        match flag.as_str() {
            "-t" | "--tag" => parsed.tags.push(value(&flag)?),
            "-f" | "--file" => parsed.dockerfile = Some(value(&flag)?),
            "--target" => parsed.target = Some(value(&flag)?),
            "--platform" => parsed.platform = Some(value(&flag)?),
            "--no-cache" => parsed.no_cache = true,
            "--build-arg" => {
                let arg = value(&flag)?;
                let (key, val) = match arg.split_once('=') {
                    Some((k, v)) => (k.to_owned(), v.to_owned()),
                    None => {
                        let from_env = env.iter().find_map(|e| {
                            e.split_once('=').filter(|(k, _)| *k == arg).map(|(_, v)| v)
                        });
                        let val = from_env.ok_or_else(|| {
                            format!("build argument '{arg}' has no value and the step's env does not set it")
                        })?;
                        (arg, val.to_owned())
                    }
                };
                parsed.build_args.insert(key, val);
            }
            f if f.starts_with('-') && f != "-" => {
                return Err(format!(
                    "build flag '{f}' is not supported by Kiln (supported: -t/--tag, -f/--file, --build-arg, --target, --platform, --no-cache)"
                ))
            }
            _ => {
                if let Some(first) = &context {
                    return Err(format!(
                        "a build step takes one context, got '{first}' and '{word}'"
                    ));
                }
                context = Some(word);
            }
        }
    }
    parsed.context = context.ok_or("a build step needs a context, e.g. '.'")?;
    if parsed.context == "-" || parsed.context.contains("://") || parsed.context.starts_with("git@")
    {
        return Err(format!(
            "build context '{}' must be a folder of the workspace; fetch remote sources in an earlier cmd step",
            parsed.context
        ));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_supported_flags() {
        let env = vec!["TOKEN=abc".to_owned()];
        let p = parse(
            "-t app:1 --tag=app:2 -f docker/Dockerfile --build-arg A=1 --build-arg TOKEN \
             --target final --platform linux/arm64 --no-cache 'my dir'",
            &env,
        )
        .unwrap();
        assert_eq!(p.tags, ["app:1", "app:2"]);
        assert_eq!(p.dockerfile.as_deref(), Some("docker/Dockerfile"));
        assert_eq!(p.build_args["A"], "1");
        assert_eq!(p.build_args["TOKEN"], "abc");
        assert_eq!(p.target.as_deref(), Some("final"));
        assert_eq!(p.platform.as_deref(), Some("linux/arm64"));
        assert!(p.no_cache);
        assert_eq!(p.context, "my dir");
    }

    #[test]
    fn refuses_what_kiln_cannot_honour() {
        for (args, needle) in [
            ("--cache-from=ubuntu .", "'--cache-from' is not supported"),
            ("-t app", "needs a context"),
            ("-t", "needs a value"),
            (". other", "one context"),
            ("https://github.com/a/b.git", "folder of the workspace"),
            ("--build-arg MISSING .", "'MISSING' has no value"),
            ("'unclosed .", "cannot split"),
        ] {
            let err = parse(args, &[]).unwrap_err();
            assert!(err.contains(needle), "{args}: {err}");
        }
    }
}
