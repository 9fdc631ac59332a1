//! Multi-platform images: an OCI image index that lists one manifest per platform, pushed
//! under each tag.
//!
//! The Docker engine's classic image store holds one platform per image, so the worker builds
//! and pushes every platform on its own through the daemon. The daemon tells it each platform
//! manifest's digest and size; this module assembles those into the index and PUTs it to the
//! registry, which then serves the right manifest to every puller.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use oci_spec::image::{
    Arch, DescriptorBuilder, ImageIndexBuilder, MediaType, Os, PlatformBuilder, SCHEMA_VERSION,
};
use oci_spec::OciSpecError;
use reqwest::header::HeaderValue;
use sha2::{Digest as _, Sha256};

use crate::protocol::{Digest, Platform, RegistryCredential};

/// The media type of the documents this module builds.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// What the Docker daemon pushes for a single-platform image.
pub const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// An index may only point at image manifests (the two kinds registries and Docker accept).
const MANIFEST_MEDIA_TYPES: [&str; 2] = [
    DOCKER_MANIFEST_MEDIA_TYPE,
    "application/vnd.oci.image.manifest.v1+json",
];

/// Pushing a few hundred bytes never takes long; a silent registry should fail the run.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// One platform's image manifest, already in the repository the index is pushed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformManifest {
    pub platform: Platform,
    pub digest: Digest,
    /// The manifest's size in bytes, as `docker push` reports it (`size: N`).
    pub size: u64,
    pub media_type: String,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("an image index needs at least one platform manifest")]
    NoManifests,
    #[error("platform {0} appears twice: an image index holds one manifest per platform")]
    DuplicatePlatform(Platform),
    #[error(
        "the {platform} manifest has media type '{media_type}': an image index can only list \
         image manifests ({DOCKER_MANIFEST_MEDIA_TYPE} or application/vnd.oci.image.manifest.v1+json)"
    )]
    NotAManifest {
        platform: Platform,
        media_type: String,
    },
    #[error("cannot build the image index: {0}")]
    Spec(#[from] OciSpecError),
    #[error("cannot set up a registry client for {registry}: {source}")]
    Client {
        registry: String,
        source: OciDistributionError,
    },
    #[error("registry {registry} refused to authorize a push to {repository}: {source}")]
    Auth {
        registry: String,
        repository: String,
        source: OciDistributionError,
    },
    #[error("pushing the image index to {image} failed: {source}")]
    Push {
        image: String,
        source: OciDistributionError,
    },
    #[error("registry stored the image index for {image} as {stored}, but its digest is {sent}")]
    DigestMismatch {
        image: String,
        stored: Digest,
        sent: Digest,
    },
}

/// Builds the OCI image index for `manifests`, in their order, and returns its JSON bytes and
/// their digest. The bytes are what must be pushed: the digest covers exactly them.
pub fn build_index(manifests: &[PlatformManifest]) -> Result<(Vec<u8>, Digest), IndexError> {
    if manifests.is_empty() {
        return Err(IndexError::NoManifests);
    }
    let mut descriptors = Vec::with_capacity(manifests.len());
    for (i, m) in manifests.iter().enumerate() {
        // A puller picks the first entry matching its platform; a second one would never be used.
        if manifests[..i].iter().any(|o| o.platform == m.platform) {
            return Err(IndexError::DuplicatePlatform(m.platform.clone()));
        }
        if !MANIFEST_MEDIA_TYPES.contains(&m.media_type.as_str()) {
            return Err(IndexError::NotAManifest {
                platform: m.platform.clone(),
                media_type: m.media_type.clone(),
            });
        }
        let mut platform = PlatformBuilder::default()
            .architecture(Arch::from(m.platform.architecture.as_str()))
            .os(Os::from(m.platform.os.as_str()));
        if let Some(variant) = &m.platform.variant {
            platform = platform.variant(variant.clone());
        }
        descriptors.push(
            DescriptorBuilder::default()
                .media_type(MediaType::from(m.media_type.as_str()))
                .digest(m.digest.as_str().parse::<oci_spec::image::Digest>()?)
                .size(m.size)
                .platform(platform.build()?)
                .build()?,
        );
    }
    let index = ImageIndexBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageIndex)
        .manifests(descriptors)
        .build()?;
    let mut bytes = Vec::new();
    index.to_writer(&mut bytes)?;
    let digest = Digest::from_sha256(&Sha256::digest(&bytes));
    Ok((bytes, digest))
}

/// Pushes image indexes to one registry.
pub struct IndexPusher {
    registry: String,
    auth: RegistryAuth,
    client: Client,
}

impl IndexPusher {
    /// A pusher for `registry` (`host[:port]`), with `credentials` or anonymously. Loopback
    /// registries (127.0.0.0/8, localhost, [::1]) are spoken to over plain HTTP, as Docker
    /// does; others over HTTPS.
    pub fn new(
        registry: &str,
        credentials: Option<&RegistryCredential>,
    ) -> Result<IndexPusher, IndexError> {
        let protocol = if is_loopback(registry) {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        };
        let config = ClientConfig {
            protocol,
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(READ_TIMEOUT),
            ..ClientConfig::default()
        };
        // `Client::new` would fall back to a default (HTTPS-only) client on error; fail instead.
        let client = Client::try_from(config).map_err(|source| IndexError::Client {
            registry: registry.to_string(),
            source,
        })?;
        let auth = match credentials {
            Some(c) => RegistryAuth::Basic(c.username.clone(), c.password.expose().to_string()),
            None => RegistryAuth::Anonymous,
        };
        Ok(IndexPusher {
            registry: registry.to_string(),
            auth,
            client,
        })
    }

    /// PUTs `index` (bytes from [`build_index`]) under `repository:tag` and returns the digest
    /// the registry stored it as. The repository must already hold every listed manifest.
    pub async fn push(
        &self,
        repository: &str,
        tag: &str,
        index: &[u8],
    ) -> Result<Digest, IndexError> {
        let reference = Reference::with_tag(
            self.registry.clone(),
            repository.to_string(),
            tag.to_string(),
        );
        let image = format!("{}/{repository}:{tag}", self.registry);
        // Authorizing up front surfaces a refusal as such, not as a bare 401 on the PUT.
        self.client
            .auth(&reference, &self.auth, RegistryOperation::Push)
            .await
            .map_err(|source| IndexError::Auth {
                registry: self.registry.clone(),
                repository: repository.to_string(),
                source,
            })?;
        let location = self
            .client
            .push_manifest_raw(
                &reference,
                index.to_vec(),
                HeaderValue::from_static(INDEX_MEDIA_TYPE),
            )
            .await
            .map_err(|source| IndexError::Push {
                image: image.clone(),
                source,
            })?;
        let sent = Digest::from_sha256(&Sha256::digest(index));
        // Registries answer with the manifest's by-digest URL; a different digest there would
        // mean the registry rewrote the index, and the run would report the wrong digest.
        match digest_in_location(&location) {
            Some(stored) if stored != sent => Err(IndexError::DigestMismatch {
                image,
                stored,
                sent,
            }),
            _ => Ok(sent),
        }
    }
}

/// The digest at the end of a manifest URL (`…/manifests/sha256:…`), if it ends in one.
fn digest_in_location(location: &str) -> Option<Digest> {
    location.rsplit('/').next()?.parse().ok()
}

/// Whether `registry` (`host[:port]`) is on this machine: Docker's default insecure registries.
pub(crate) fn is_loopback(registry: &str) -> bool {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest
            .split(']')
            .next()
            .and_then(|h| h.parse::<Ipv6Addr>().ok())
            .is_some_and(|ip| ip.is_loopback());
    }
    let host = registry.split(':').next().unwrap_or(registry);
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const REGISTRY: &str = "127.0.0.1:5000";

    fn manifest(platform: &str, fill: char) -> PlatformManifest {
        PlatformManifest {
            platform: platform.parse().unwrap(),
            digest: format!("sha256:{}", fill.to_string().repeat(64))
                .parse()
                .unwrap(),
            size: 527,
            media_type: DOCKER_MANIFEST_MEDIA_TYPE.to_string(),
        }
    }

    #[test]
    fn index_lists_one_entry_per_platform() {
        let manifests = [manifest("linux/amd64", 'a'), manifest("linux/arm/v7", 'b')];
        let (bytes, _) = build_index(&manifests).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["schemaVersion"], 2);
        assert_eq!(json["mediaType"], INDEX_MEDIA_TYPE);
        let entries = json["manifests"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        for (entry, m) in entries.iter().zip(&manifests) {
            assert_eq!(entry["mediaType"], DOCKER_MANIFEST_MEDIA_TYPE);
            assert_eq!(entry["digest"], m.digest.as_str());
            assert_eq!(entry["size"], 527);
            assert_eq!(entry["platform"]["os"], "linux");
            assert_eq!(entry["platform"]["architecture"], m.platform.architecture);
        }
        assert!(entries[0]["platform"].get("variant").is_none());
        assert_eq!(entries[1]["platform"]["variant"], "v7");
    }

    #[test]
    fn digest_covers_exactly_the_bytes() {
        let manifests = [manifest("linux/amd64", 'a'), manifest("linux/arm64", 'b')];
        let (bytes, digest) = build_index(&manifests).unwrap();
        assert_eq!(digest, Digest::from_sha256(&Sha256::digest(&bytes)));
        // Every tag of a run gets the same index, so the same input must give the same bytes.
        assert_eq!(build_index(&manifests).unwrap(), (bytes, digest));
    }

    #[test]
    fn rejects_what_no_index_should_hold() {
        assert!(matches!(build_index(&[]), Err(IndexError::NoManifests)));
        let twice = [manifest("linux/arm64", 'a'), manifest("linux/aarch64", 'b')];
        assert!(matches!(
            build_index(&twice),
            Err(IndexError::DuplicatePlatform(p)) if p.to_string() == "linux/arm64"
        ));
        let mut nested = manifest("linux/amd64", 'a');
        nested.media_type = INDEX_MEDIA_TYPE.to_string();
        let err = build_index(&[nested]).unwrap_err();
        assert!(matches!(err, IndexError::NotAManifest { .. }), "{err}");
    }

    #[test]
    fn loopback_registries_are_recognised() {
        for local in [
            "127.0.0.1:5000",
            "127.3.2.1",
            "localhost",
            "LocalHost:5000",
            "[::1]:5000",
        ] {
            assert!(is_loopback(local), "{local}");
        }
        for remote in [
            "registry.example.com",
            "10.0.0.1:5000",
            "localhost.example.com:5000",
            "[2001:db8::1]:5000",
        ] {
            assert!(!is_loopback(remote), "{remote}");
        }
    }

    #[test]
    fn finds_the_digest_in_a_location() {
        let d = format!("sha256:{}", "c".repeat(64));
        assert_eq!(
            digest_in_location(&format!("http://r:5000/v2/a/b/manifests/{d}")),
            Some(d.parse().unwrap())
        );
        assert_eq!(
            digest_in_location("http://r:5000/v2/a/manifests/latest"),
            None
        );
    }

    fn run(cmd: &mut Command) -> Vec<u8> {
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// The manifest scripts/setup.sh pushed as `busybox:<arch>`, exactly as the registry holds it.
    async fn busybox_manifest(http: &reqwest::Client, arch: &str) -> PlatformManifest {
        let url = format!("http://{REGISTRY}/v2/busybox/manifests/{arch}");
        let res = http
            .get(&url)
            .header("Accept", MANIFEST_MEDIA_TYPES.join(", "))
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!("registry at {REGISTRY} is down (run scripts/setup.sh): {e}")
            })
            .error_for_status()
            .unwrap();
        let media_type = res.headers()["content-type"].to_str().unwrap().to_string();
        let bytes = res.bytes().await.unwrap();
        PlatformManifest {
            platform: format!("linux/{arch}").parse().unwrap(),
            digest: Digest::from_sha256(&Sha256::digest(&bytes)),
            size: bytes.len() as u64,
            media_type,
        }
    }

    #[tokio::test]
    async fn pushes_an_index_the_registry_serves_back() {
        let http = reqwest::Client::new();
        let manifests = [
            busybox_manifest(&http, "amd64").await,
            busybox_manifest(&http, "arm64").await,
        ];
        let repository = format!("kiln-test/index-{}", uuid::Uuid::new_v4().simple());
        // The registry accepts an index only if its repository holds every listed manifest.
        for arch in ["amd64", "arm64"] {
            run(Command::new("skopeo").args([
                "copy",
                "--quiet",
                "--preserve-digests",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                &format!("docker://{REGISTRY}/busybox:{arch}"),
                &format!("docker://{REGISTRY}/{repository}:{arch}"),
            ]));
        }
        let (index, digest) = build_index(&manifests).unwrap();
        let pusher = IndexPusher::new(REGISTRY, None).unwrap();
        assert_eq!(
            pusher.push(&repository, "v1", &index).await.unwrap(),
            digest
        );

        let served = run(Command::new("skopeo").args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{REGISTRY}/{repository}:v1"),
        ]));
        assert_eq!(
            String::from_utf8_lossy(&served),
            String::from_utf8_lossy(&index)
        );
    }
}
