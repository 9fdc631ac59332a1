//! A Kiln server's URL as users type it. `--server`, `KILN_SERVER` and `kiln login` take what
//! `docker login` takes, `127.0.0.1:8080` or `buildhost:8080`, as well as full URLs, and every
//! binary turns them into the same canonical form, which also keys the credentials file.

use std::net::IpAddr;

/// `http(s)://host[:port][/path]` with no trailing slash. Without a scheme, loopback hosts
/// (`localhost`, `127.0.0.0/8`, `::1`) get `http://`, as Docker trusts plain HTTP there only,
/// and every other host `https://`, so a token is never sent in clear on a guess.
pub fn normalize(typed: &str) -> Result<String, String> {
    let trimmed = typed.trim();
    if trimmed.is_empty() {
        return Err("the server URL is empty: use e.g. http://127.0.0.1:8080".into());
    }
    let full = if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        let scheme = if is_loopback(trimmed) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{trimmed}")
    };
    let url = url::Url::parse(&full).map_err(|e| format!("'{typed}' is not a server URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "'{typed}' is not a server URL: use http:// or https://, not {}://",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("'{typed}' is not a server URL: it names no host"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(format!(
            "'{typed}' is not a server URL: it may not carry a query, a fragment or a user"
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// The host of `host[:port][/path]`, brackets and port removed.
fn authority_host(s: &str) -> &str {
    let authority = s.split('/').next().unwrap_or(s);
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// Whether `host[:port][/path]` names this machine: `localhost`, `127.0.0.0/8` or `::1`.
pub fn is_loopback(authority: &str) -> bool {
    let host = authority_host(authority);
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Docker's name for the registry a server serves: `host[:port]` of its URL, as `docker push
/// host:port/app:1` and a Docker config's `auths` keys spell it.
pub fn registry_host(server: &str) -> Result<String, String> {
    let url = url::Url::parse(server).map_err(|e| format!("'{server}' is not a URL: {e}"))?;
    let host = url
        .host_str()
        .ok_or_else(|| format!("'{server}' names no host"))?;
    Ok(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_default_to_http_and_others_to_https() {
        for (typed, want) in [
            ("127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("localhost:8080", "http://localhost:8080"),
            ("LOCALHOST:8080/", "http://localhost:8080"),
            ("127.1.2.3:9", "http://127.1.2.3:9"),
            ("[::1]:8080", "http://[::1]:8080"),
            ("buildhost:8080", "https://buildhost:8080"),
            ("kiln.example.com", "https://kiln.example.com"),
            (
                "kiln.example.com/prefix/",
                "https://kiln.example.com/prefix",
            ),
            ("http://buildhost:8080/", "http://buildhost:8080"),
            ("https://buildhost", "https://buildhost"),
            (" http://127.0.0.1:8080 ", "http://127.0.0.1:8080"),
        ] {
            assert_eq!(normalize(typed).as_deref(), Ok(want), "{typed}");
        }
    }

    #[test]
    fn what_is_not_a_server_url_is_refused() {
        for bad in [
            "",
            "ftp://host",
            "file:///etc/passwd",
            "http://",
            "http://host?x=1",
            "http://host#x",
            "http://user:pw@host",
            "host:notaport",
        ] {
            assert!(normalize(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_registry_host_is_the_url_authority() {
        assert_eq!(
            registry_host("http://127.0.0.1:8080").as_deref(),
            Ok("127.0.0.1:8080")
        );
        assert_eq!(
            registry_host("https://kiln.example.com").as_deref(),
            Ok("kiln.example.com")
        );
    }
}
