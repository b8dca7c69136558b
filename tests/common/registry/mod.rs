//! A real registry for the tests: Debian's `docker-registry` (Docker's reference registry 2.8) on a
//! free loopback port with temporary storage, optionally behind TLS, htpasswd Basic auth, or token
//! auth whose issuer ([`TokenIssuer`]) runs in the test and signs real ES256 JWTs. Images are
//! pushed through the distribution API; the access log counts requests.

use base64::Engine;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;

mod token;
pub use token::TokenIssuer;

pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_SCHEMA2: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// How long a registry may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// How the registry authenticates.
pub enum Auth {
    None,
    /// htpasswd Basic auth with these (user, password) pairs.
    Htpasswd(Vec<(String, String)>),
    /// Token auth, tokens from this issuer.
    Token(Arc<TokenIssuer>),
}

/// A running `docker-registry serve`, killed on drop.
pub struct Registry {
    child: Child,
    pub port: u16,
    /// `127.0.0.1:PORT`, as images name it.
    pub host: String,
    pub scheme: &'static str,
    /// The CA that signed the TLS certificate, when TLS is on.
    pub ca: Option<PathBuf>,
    pub dir: TempDir,
    log: Arc<Mutex<String>>,
    push_auth: PushAuth,
}

#[derive(Clone)]
enum PushAuth {
    None,
    Basic(String),
    Token(Arc<TokenIssuer>),
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

impl Registry {
    /// Plain HTTP, no auth.
    pub fn plain() -> Registry {
        Registry::start(false, Auth::None)
    }

    pub fn start(tls: bool, auth: Auth) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: archgate-tests\n",
            dir.path().join("storage").display()
        );
        let mut ca = None;
        if tls {
            let certs = dir.path().join("certs");
            super::write_certs(&certs);
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                certs.join("tls.crt").display(),
                certs.join("tls.key").display()
            ));
            ca = Some(certs.join("ca.crt"));
        }
        let push_auth = match &auth {
            Auth::None => PushAuth::None,
            Auth::Htpasswd(users) => {
                let file = dir.path().join("htpasswd");
                for (i, (user, password)) in users.iter().enumerate() {
                    let mut cmd = Command::new("htpasswd");
                    cmd.arg("-bB");
                    if i == 0 {
                        cmd.arg("-c");
                    }
                    let out = cmd.arg(&file).arg(user).arg(password).output().unwrap();
                    assert!(out.status.success(), "htpasswd failed: {out:?}");
                }
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: archgate-tests\n    path: {}\n",
                    file.display()
                ));
                let (user, password) = &users[0];
                PushAuth::Basic(basic(user, password))
            }
            Auth::Token(issuer) => {
                let bundle = dir.path().join("token-root.pem");
                std::fs::write(&bundle, &issuer.cert_pem).unwrap();
                config.push_str(&format!(
                    "auth:\n  token:\n    realm: http://{}/token\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    issuer.addr, TokenIssuer::SERVICE, TokenIssuer::ISSUER, bundle.display()
                ));
                PushAuth::Token(Arc::clone(issuer))
            }
        };
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start docker-registry: scripts/test installs it (apt-get install docker-registry)");
        let log = Arc::new(Mutex::new(String::new()));
        drain(child.stdout.take().unwrap(), log.clone());
        drain(child.stderr.take().unwrap(), log.clone());
        let registry = Registry {
            child,
            port,
            host: format!("127.0.0.1:{port}"),
            scheme: if tls { "https" } else { "http" },
            ca,
            dir,
            log,
            push_auth,
        };
        registry.wait_ready();
        registry
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!(
            "docker-registry did not listen within {START_TIMEOUT:?}:\n{}",
            self.log()
        );
    }

    /// Everything the registry logged (its access log included).
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Requests to `/v2/{repo}/manifests/...` with `method`, from the access log.
    pub fn manifest_requests(&self, method: &str, repo: &str) -> usize {
        let needle = format!("\"{method} /v2/{repo}/manifests/");
        self.log().lines().filter(|l| l.contains(&needle)).count()
    }

    /// Gives the registry a moment to write its access log (it is written as requests finish).
    pub async fn settle(&self) {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    /// An HTTP client for pushing, trusting the registry's CA.
    fn http(&self) -> reqwest::Client {
        let mut b = reqwest::Client::builder().timeout(Duration::from_secs(20));
        if let Some(ca) = &self.ca {
            let pem = std::fs::read(ca).unwrap();
            b = b.use_preconfigured_tls(client_tls(&pem))
        }
        b.build().unwrap()
    }

    async fn authorization(&self, repo: &str) -> Option<String> {
        match &self.push_auth {
            PushAuth::None => None,
            PushAuth::Basic(h) => Some(h.clone()),
            PushAuth::Token(issuer) => Some(format!(
                "Bearer {}",
                issuer.mint("admin", &format!("repository:{repo}:pull,push,delete"))
            )),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.host)
    }

    /// Uploads a blob (POST, then PUT with `&digest=`) and returns its digest.
    pub async fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let http = self.http();
        let auth = self.authorization(repo).await;
        let mut post = http.post(self.url(&format!("/v2/{repo}/blobs/uploads/")));
        if let Some(a) = &auth {
            post = post.header("authorization", a);
        }
        let resp = post.send().await.unwrap();
        assert_eq!(
            resp.status().as_u16(),
            202,
            "blob upload start: {:?}",
            resp.text().await
        );
        let location = resp.headers()["location"].to_str().unwrap().to_string();
        let location = if location.starts_with("http") {
            location
        } else {
            self.url(&location)
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let mut put = http
            .put(format!("{location}{sep}digest={digest}"))
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec());
        if let Some(a) = &auth {
            put = put.header("authorization", a);
        }
        let resp = put.send().await.unwrap();
        assert_eq!(
            resp.status().as_u16(),
            201,
            "blob upload: {:?}",
            resp.text().await
        );
        digest
    }

    /// PUTs a manifest or index under `reference` (a tag or its digest); returns its digest.
    pub async fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> String {
        let auth = self.authorization(repo).await;
        let mut put = self
            .http()
            .put(self.url(&format!("/v2/{repo}/manifests/{reference}")))
            .header("content-type", media_type)
            .body(bytes.to_vec());
        if let Some(a) = &auth {
            put = put.header("authorization", a);
        }
        let resp = put.send().await.unwrap();
        let status = resp.status().as_u16();
        assert_eq!(
            status,
            201,
            "manifest push {repo}:{reference}: {:?}",
            resp.text().await
        );
        sha256(bytes)
    }

    pub async fn delete_manifest(&self, repo: &str, digest: &str) {
        let auth = self.authorization(repo).await;
        let mut del = self
            .http()
            .delete(self.url(&format!("/v2/{repo}/manifests/{digest}")));
        if let Some(a) = &auth {
            del = del.header("authorization", a);
        }
        let resp = del.send().await.unwrap();
        assert_eq!(
            resp.status().as_u16(),
            202,
            "delete {digest}: {:?}",
            resp.text().await
        );
    }

    /// A single-platform image (config blob, one small layer, manifest of `media_type`) pushed
    /// under `tag`; returns the manifest digest. `platform` is "os/arch[/variant]".
    pub async fn push_image(
        &self,
        repo: &str,
        tag: &str,
        platform: &str,
        media_type: &str,
    ) -> String {
        let (manifest, _) = self.push_child(repo, platform, None, media_type).await;
        self.push_manifest(repo, tag, media_type, &manifest).await
    }

    /// Pushes a config and a manifest for `platform` by digest; returns (manifest bytes, digest).
    async fn push_child(
        &self,
        repo: &str,
        platform: &str,
        os_version: Option<&str>,
        media_type: &str,
    ) -> (Vec<u8>, String) {
        let parts: Vec<&str> = platform.split('/').collect();
        let mut config = json!({
            "os": parts[0], "architecture": parts[1],
            "rootfs": {"type": "layers", "diff_ids": []},
            "config": {"Labels": {"platform": platform}},
        });
        if let Some(v) = parts.get(2) {
            config["variant"] = json!(v);
        }
        if let Some(v) = os_version {
            config["os.version"] = json!(v);
        }
        let config = serde_json::to_vec(&config).unwrap();
        let config_digest = self.push_blob(repo, &config).await;
        let layer = format!("layer of {platform} {}", os_version.unwrap_or("")).into_bytes();
        let layer_digest = self.push_blob(repo, &layer).await;
        let (config_type, layer_type) = if media_type == OCI_MANIFEST {
            (
                "application/vnd.oci.image.config.v1+json",
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        } else {
            (
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
            )
        };
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": config_type, "size": config.len(), "digest": config_digest},
            "layers": [{"mediaType": layer_type, "size": layer.len(), "digest": layer_digest}],
        }))
        .unwrap();
        let digest = sha256(&manifest);
        self.push_manifest(repo, &digest, media_type, &manifest)
            .await;
        (manifest, digest)
    }

    /// Pushes a fixture index from tests/fixtures/image-indexes under `tag`, each child replaced
    /// by a generated image of the same platform (the originals' layers are not in the fixtures);
    /// every other byte of structure (platforms, annotations, attestations) is kept.
    pub async fn push_fixture_index(&self, repo: &str, tag: &str, fixture: &str) -> String {
        let path = super::manifest_path("tests/fixtures/image-indexes").join(fixture);
        let mut index: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let media_type = index["mediaType"].as_str().unwrap_or(OCI_INDEX).to_string();
        let entries = index["manifests"].as_array_mut().unwrap();
        for entry in entries.iter_mut() {
            let p = &entry["platform"];
            let mut platform = format!(
                "{}/{}",
                p["os"].as_str().unwrap_or("unknown"),
                p["architecture"].as_str().unwrap_or("unknown")
            );
            if let Some(v) = p["variant"].as_str() {
                platform = format!("{platform}/{v}");
            }
            let child_type = entry["mediaType"]
                .as_str()
                .unwrap_or(DOCKER_SCHEMA2)
                .to_string();
            let (bytes, digest) = self
                .push_child(repo, &platform, p["os.version"].as_str(), &child_type)
                .await;
            entry["digest"] = json!(digest);
            entry["size"] = json!(bytes.len());
        }
        let bytes = serde_json::to_vec_pretty(&index).unwrap();
        self.push_manifest(repo, tag, &media_type, &bytes).await
    }

    /// Pushes an index of `media_type` with `entries` (descriptor JSON) under `tag`.
    pub async fn push_index(
        &self,
        repo: &str,
        tag: &str,
        media_type: &str,
        entries: Vec<Value>,
    ) -> String {
        let bytes = serde_json::to_vec(
            &json!({"schemaVersion": 2, "mediaType": media_type, "manifests": entries}),
        )
        .unwrap();
        self.push_manifest(repo, tag, media_type, &bytes).await
    }

    /// Pushes a child image by digest and returns its descriptor (with or without platform).
    pub async fn child_descriptor(&self, repo: &str, platform: &str, labelled: bool) -> Value {
        let (bytes, digest) = self.push_child(repo, platform, None, OCI_MANIFEST).await;
        let mut d = json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": bytes.len()});
        if labelled {
            let parts: Vec<&str> = platform.split('/').collect();
            d["platform"] = json!({"os": parts[0], "architecture": parts[1]});
        }
        d
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn drain(pipe: impl std::io::Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let mut all = into.lock().unwrap();
            all.push_str(&line);
            all.push('\n');
        }
    });
}

pub fn sha256(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

pub fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// `{"auths": {host: {"auth": base64(user:password)}}}`.
pub fn docker_config(host: &str, user: &str, password: &str) -> String {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    json!({"auths": {host: {"auth": auth}}}).to_string()
}

fn client_tls(ca_pem: &[u8]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &ca_pem[..]) {
        roots.add(cert.unwrap()).unwrap();
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// A listener that accepts connections and never answers; counts accepts. Closed on drop.
pub struct Silent {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Silent {
    pub async fn start() -> Silent {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                tokio::select! {
                    _ = &mut rx => return,
                    accepted = listener.accept() => match accepted {
                        Ok((s, _)) => { count.fetch_add(1, Ordering::SeqCst); held.push(s); }
                        Err(_) => return,
                    },
                }
            }
        });
        Silent {
            addr,
            accepted,
            _shutdown: tx,
        }
    }
}

/// `archgate serve --policy P --platforms F --registry-config R --docker-config D`, logging
/// everything (so tests can check that no credential reaches a log line).
pub fn serve_with_registry(
    policy: &std::path::Path,
    platforms: &std::path::Path,
    registry_config: &std::path::Path,
    docker_config: &std::path::Path,
) -> super::Server {
    let options = super::ServeOptions {
        policy: Some(policy.to_path_buf()),
        platforms: Some(platforms.to_path_buf()),
        extra_args: vec![
            "--registry-config".into(),
            registry_config.into(),
            "--docker-config".into(),
            docker_config.into(),
        ],
        env: vec![("ARCHGATE_LOG".into(), "trace".into())],
        ..super::ServeOptions::default()
    };
    super::Server::start_with(options, tempfile::tempdir().unwrap())
}
