//! The log filter both binaries start with. bollard logs every Docker API request URI at
//! debug level (target `bollard::docker`), and a build's URI carries its build-arg values in
//! the query string, so that target stays at info whatever `RUST_LOG` asks for.

use tracing_subscriber::EnvFilter;

/// The bollard target that prints request URIs.
const REQUEST_URI_TARGET: &str = "bollard::docker=info";

/// `RUST_LOG`, else `default`, with bollard's request URIs always left out.
pub fn env_filter(default: &str) -> EnvFilter {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    without_request_uris(filter)
}

fn without_request_uris(filter: EnvFilter) -> EnvFilter {
    filter.add_directive(
        REQUEST_URI_TARGET
            .parse()
            .expect("the directive is well-formed"),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn build_urls_stay_out_of_debug_logs() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(without_request_uris(EnvFilter::new("debug")))
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(target: "bollard::docker", "/build?buildargs=%7B%22SECRET%22%3A%22hunter2%22%7D");
            tracing::info!(target: "bollard::docker", "bollard info stays");
            tracing::debug!(target: "kiln_worker::docker", "other debug stays");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("bollard info stays"), "{text}");
        assert!(text.contains("other debug stays"), "{text}");
    }
}
