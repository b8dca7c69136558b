//! Helpers for the end-to-end tests: run the real `archgate` binary, talk to it over TLS with
//! HTTP/2 or HTTP/1.1, and read what it answers.
#![allow(clippy::unwrap_used, dead_code)]

pub mod apiserver;
pub mod audit;
pub mod kubeapi;
pub mod registry;

// Fixtures and reading answers: also used on their own (`#[path]`) where nothing else is needed.
pub mod fixtures;
pub use fixtures::*;

use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Frame};
use hyper::header::{HeaderMap, HeaderValue, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use serde_json::Value;
use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Every single request must be answered within this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `archgate serve` may take to log its listening line.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_archgate")
}

/// Runs the built binary with `args` from the project root, with no `KUBECONFIG` from the
/// environment, killing it after `timeout`; returns (exit code, stdout, stderr).
pub fn run_bounded<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(
    args: &[S],
    timeout: Duration,
) -> (i32, String, String) {
    use std::io::Read;
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(manifest_path(""))
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).unwrap();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("archgate {args:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status.code().unwrap_or(-1),
        out.join().unwrap(),
        err.join().unwrap(),
    )
}

/// What `output` returns once it contains `needle` (a server writes its log lines in batches,
/// up to 20 ms after logging them), or as it is after `within`.
pub fn output_containing(output: impl Fn() -> String, needle: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let text = output();
        if text.contains(needle) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `archgate certs --out DIR --dns localhost --ip 127.0.0.1` and checks it succeeded.
pub fn write_certs(out: &Path) {
    let output = Command::new(bin())
        .args(["certs", "--out"])
        .arg(out)
        .args(["--dns", "localhost", "--ip", "127.0.0.1"])
        .output()
        .expect("cannot run archgate certs");
    assert!(
        output.status.success(),
        "archgate certs failed ({}): stdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Writes `text` into `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A running `archgate serve`, killed on drop.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// The CA that signed the serving certificate the server started with.
    pub ca: PathBuf,
    /// Holds the certificates (and anything else the test put there) until the server is gone.
    pub dir: TempDir,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

/// What `archgate serve` is started with; `None` policy/platforms mean the homelab example.
#[derive(Default)]
pub struct ServeOptions {
    pub policy: Option<PathBuf>,
    pub platforms: Option<PathBuf>,
    /// Serving pair and CA; when absent, `archgate certs` writes a fresh set into the tempdir.
    pub tls: Option<(PathBuf, PathBuf, PathBuf)>,
    /// More flags for `archgate serve` (registry options, ...).
    pub extra_args: Vec<std::ffi::OsString>,
    /// Environment for the process (e.g. `ARCHGATE_LOG`).
    pub env: Vec<(String, String)>,
    /// `--inventory` (default `static`); `watch` needs `--kubeconfig` in `extra_args`.
    pub inventory: Option<&'static str>,
}

impl Server {
    /// `archgate serve` with the homelab policy and platforms and fresh certificates.
    pub fn start() -> Server {
        Server::start_with(ServeOptions::default(), tempfile::tempdir().unwrap())
    }

    /// `archgate serve` with a given policy and platforms file.
    pub fn start_policy(policy: &Path, platforms: &Path, dir: TempDir) -> Server {
        Server::start_with(
            ServeOptions {
                policy: Some(policy.to_path_buf()),
                platforms: Some(platforms.to_path_buf()),
                ..ServeOptions::default()
            },
            dir,
        )
    }

    pub fn start_with(options: ServeOptions, dir: TempDir) -> Server {
        let (cert, key, ca) = match options.tls {
            Some(tls) => tls,
            None => {
                let certs = dir.path().join("certs");
                write_certs(&certs);
                (
                    certs.join("tls.crt"),
                    certs.join("tls.key"),
                    certs.join("ca.crt"),
                )
            }
        };
        let mut child = Command::new(bin())
            .arg("serve")
            .arg("--policy")
            .arg(options.policy.unwrap_or_else(homelab_policy))
            .arg("--platforms")
            .arg(options.platforms.unwrap_or_else(homelab_platforms))
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            // Static: a developer's ~/.kube/config must not turn these tests into a cluster watch.
            .args([
                "--listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
                "--inventory",
                options.inventory.unwrap_or("static"),
            ])
            .args(&options.extra_args)
            .envs(options.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start archgate serve");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<String>();
        // Both pipes are drained for the child's whole life, so logging can never block it.
        drain(child.stdout.take().unwrap(), stdout.clone(), Some(tx));
        drain(child.stderr.take().unwrap(), stderr.clone(), None);

        let deadline = Instant::now() + START_TIMEOUT;
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = listening_addr(&line) {
                        break addr;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait().ok();
                    // Give the drain threads a moment to collect the last output.
                    std::thread::sleep(Duration::from_millis(100));
                    panic!(
                        "archgate serve did not log its listening line within {START_TIMEOUT:?} (exit: {status:?})\nstdout:\n{}\nstderr:\n{}",
                        stdout.lock().unwrap(),
                        stderr.lock().unwrap()
                    );
                }
            }
        };
        Server {
            child,
            addr,
            ca,
            dir,
            stdout,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server wrote to stdout and stderr so far.
    pub fn output(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            self.stdout.lock().unwrap(),
            self.stderr.lock().unwrap()
        )
    }

    /// The output once it contains `needle`, or as it is after 5 s.
    pub fn output_containing(&self, needle: &str) -> String {
        output_containing(|| self.output(), needle, Duration::from_secs(5))
    }

    /// Sends SIGTERM with the `kill` command.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("cannot run kill");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Waits up to `timeout` for the process to exit, and asserts that it exited 0.
    pub fn assert_exits_0(&mut self, timeout: Duration) {
        let status = self
            .wait_exit(timeout)
            .unwrap_or_else(|| panic!("still running {timeout:?} later\n{}", self.output()));
        assert!(status.success(), "exit status {status}\n{}", self.output());
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A new TLS connection verified with the server's starting CA, speaking `proto`.
    pub async fn client(&self, proto: Proto) -> Client {
        Client::connect(self.addr, &self.ca, "localhost", proto)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to archgate: {e:#}\n{}", self.output()))
    }

    /// GET /metrics over a fresh connection.
    pub async fn metrics(&self) -> String {
        let mut c = self.client(Proto::H2).await;
        let (status, _, body) = c.get("/metrics").await;
        assert_eq!(status, StatusCode::OK);
        String::from_utf8(body.to_vec()).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn drain(
    pipe: impl std::io::Read + Send + 'static,
    into: Arc<Mutex<String>>,
    lines: Option<mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        let reader = BufReader::new(pipe);
        for line in reader.lines() {
            let Ok(line) = line else { break };
            {
                let mut all = into.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
            if let Some(tx) = &lines {
                // The starter stops listening once it has the address; that is fine.
                let _ = tx.send(line);
            }
        }
    });
}

/// The address of a JSON log line `{"message":"listening","addr":"127.0.0.1:PORT",...}`.
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    let v: Value = serde_json::from_str(line).ok()?;
    if v.get("message")?.as_str()? != "listening" {
        return None;
    }
    v.get("addr")?.as_str()?.parse().ok()
}

/// HTTP/2 or HTTP/1.1, negotiated with ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    H2,
    H1,
}

impl Proto {
    pub fn alpn(self) -> &'static [u8] {
        match self {
            Proto::H2 => b"h2",
            Proto::H1 => b"http/1.1",
        }
    }
}

pub type ReqBody = UnsyncBoxBody<Bytes, Infallible>;

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<ReqBody>),
    H2(hyper::client::conn::http2::SendRequest<ReqBody>),
}

/// One TLS connection to the server; every request goes over it.
pub struct Client {
    sender: Sender,
    authority: String,
    pub proto: Proto,
}

/// A rustls client configuration that trusts only the CA in `ca` and offers `alpn`.
pub fn tls_connector(ca: &Path, alpn: &[u8]) -> anyhow::Result<TlsConnector> {
    let pem = std::fs::read(ca)?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &pem[..]) {
        roots.add(cert?)?;
    }
    anyhow::ensure!(!roots.is_empty(), "{} holds no certificate", ca.display());
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

impl Client {
    /// Connects to `addr`, verifies the server as `server_name` (a DNS name or an IP) with the CA
    /// in `ca`, checks that ALPN picked `proto`, and completes the HTTP handshake.
    pub async fn connect(
        addr: SocketAddr,
        ca: &Path,
        server_name: &str,
        proto: Proto,
    ) -> anyhow::Result<Client> {
        let connector = tls_connector(ca, proto.alpn())?;
        let name = ServerName::try_from(server_name.to_string())?;
        let tcp = tokio::time::timeout(REQUEST_TIMEOUT, TcpStream::connect(addr)).await??;
        let tls = tokio::time::timeout(REQUEST_TIMEOUT, connector.connect(name, tcp)).await??;
        let negotiated = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        anyhow::ensure!(
            negotiated.as_deref() == Some(proto.alpn()),
            "ALPN negotiated {:?}, expected {:?}",
            negotiated.map(|p| String::from_utf8_lossy(&p).into_owned()),
            String::from_utf8_lossy(proto.alpn())
        );
        let io = TokioIo::new(tls);
        let sender = match proto {
            Proto::H2 => {
                let (sender, conn) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Sender::H2(sender)
            }
            Proto::H1 => {
                let (sender, conn) = hyper::client::conn::http1::handshake(io).await?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Sender::H1(sender)
            }
        };
        Ok(Client {
            sender,
            authority: format!("localhost:{}", addr.port()),
            proto,
        })
    }

    /// Sends one request; errors (connection closed, timeout) are returned, not panicked on.
    pub async fn try_send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: ReqBody,
    ) -> anyhow::Result<(StatusCode, HeaderMap, Bytes)> {
        let uri = match self.proto {
            Proto::H2 => format!("https://{}{path}", self.authority),
            Proto::H1 => path.to_string(),
        };
        let mut req = Request::builder().method(method).uri(uri);
        if self.proto == Proto::H1 {
            req = req.header(HOST, HeaderValue::from_str(&self.authority)?);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(body)?;
        let fut = async {
            let resp = match &mut self.sender {
                Sender::H1(s) => {
                    s.ready().await?;
                    s.send_request(req).await?
                }
                Sender::H2(s) => {
                    s.ready().await?;
                    s.send_request(req).await?
                }
            };
            let (parts, body) = resp.into_parts();
            let bytes = body.collect().await?.to_bytes();
            anyhow::Ok((parts.status, parts.headers, bytes))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, fut)
            .await
            .map_err(|_| anyhow::anyhow!("no answer within {REQUEST_TIMEOUT:?}"))?
    }

    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: ReqBody,
    ) -> (StatusCode, HeaderMap, Bytes) {
        self.try_send(method.clone(), path, headers, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path} over {:?} failed: {e:#}", self.proto))
    }

    pub async fn post(
        &mut self,
        path: &str,
        content_type: &str,
        body: impl Into<Bytes>,
    ) -> (StatusCode, HeaderMap, Bytes) {
        self.send(
            Method::POST,
            path,
            &[("content-type", content_type)],
            full(body),
        )
        .await
    }

    pub async fn get(&mut self, path: &str) -> (StatusCode, HeaderMap, Bytes) {
        self.send(Method::GET, path, &[], full(Bytes::new())).await
    }

    /// POSTs an AdmissionReview value and returns the answered review (HTTP 200, JSON).
    pub async fn review_value(&mut self, path: &str, review: &Value) -> Value {
        let body = serde_json::to_vec(review).unwrap();
        let (status, headers, body) = self.post(path, "application/json", body).await;
        answered_review(status, &headers, &body, &format!("POST {path}"))
    }

    /// POSTs a fixture byte for byte, as the API server sent it, and returns the answered review.
    pub async fn review(&mut self, path: &str, fixture_name: &str) -> Value {
        let (status, _, body) = self
            .post(path, "application/json", fixture_text(fixture_name))
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "POST {path} {fixture_name}: {}",
            String::from_utf8_lossy(&body)
        );
        serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!(
                "POST {path} {fixture_name}: answer is not JSON ({e}): {}",
                String::from_utf8_lossy(&body)
            )
        })
    }
}

pub fn full(body: impl Into<Bytes>) -> ReqBody {
    Full::new(body.into()).boxed_unsync()
}

/// A request body whose chunks the test sends when it wants: the request stays in flight until
/// the sender is dropped.
pub struct ChannelBody(pub tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}
