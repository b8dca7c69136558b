//! The registry platform source against Docker's reference registry (Debian `docker-registry`):
//! plain HTTP, TLS with a test CA, htpasswd Basic auth and token auth with real JWTs; platforms,
//! credentials, mirrors, caches, single flight, timeouts, the host guard, and secrets kept out of
//! logs and metrics. Ends with `archgate serve` resolving a pod's image from a registry.
#![allow(clippy::unwrap_used)]

mod common;

use archgate::cli::registry_args::RegistryArgs;
use archgate::image::ImageRef;
use archgate::platforms::{
    Lookup, LookupRequest, PlatformSource, PullContext, PullSecret, PullSecretKind, PullSecrets,
};
use archgate::registry::RegistrySource;
use common::registry::{
    docker_config, Auth, Registry, Silent, TokenIssuer, DOCKER_LIST, DOCKER_SCHEMA2, OCI_INDEX,
    OCI_MANIFEST,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// A registry source from config and docker-config text, as `archgate serve` builds it.
struct Source {
    source: RegistrySource,
    metrics: prometheus::Registry,
    _dir: TempDir,
}

fn source(config: &str, docker: Option<&str>, secrets: Option<Arc<dyn PullSecrets>>) -> Source {
    let dir = tempfile::tempdir().unwrap();
    let args = RegistryArgs {
        registry_config: Some(common::write_file(dir.path(), "registries.toml", config)),
        docker_config: docker.map(|d| common::write_file(dir.path(), "config.json", d)),
    };
    let metrics = prometheus::Registry::new();
    let source = args.registry_source(secrets, Some(&metrics)).unwrap();
    Source {
        source,
        metrics,
        _dir: dir,
    }
}

fn insecure(reg: &Registry) -> String {
    format!("[registries.\"{}\"]\ninsecure = true\n", reg.host)
}

async fn lookup_in(source: &dyn PlatformSource, image: &str, pull: &PullContext) -> Lookup {
    let image = ImageRef::parse(image).unwrap();
    source
        .lookup(LookupRequest {
            image: &image,
            patient: false,
            pull,
        })
        .await
}

async fn lookup(source: &dyn PlatformSource, image: &str) -> Lookup {
    lookup_in(source, image, &PullContext::default()).await
}

fn platforms(found: &Lookup) -> Vec<String> {
    match found {
        Lookup::Found(p) => p.platforms.iter().map(ToString::to_string).collect(),
        other => panic!("expected platforms, got {other:?}"),
    }
}

fn failure(found: &Lookup) -> String {
    match found {
        Lookup::Failed(why) | Lookup::Unavailable(why) => why.to_string(),
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn metrics_text(registry: &prometheus::Registry) -> String {
    let mut out = Vec::new();
    prometheus::Encoder::encode(
        &prometheus::TextEncoder::new(),
        &registry.gather(),
        &mut out,
    )
    .unwrap();
    String::from_utf8(out).unwrap()
}

/// Pull secrets held in memory, as the cluster watch would hand them over.
struct Secrets(Vec<PullSecret>);

impl PullSecrets for Secrets {
    fn secrets_for(&self, pull: &PullContext) -> Vec<PullSecret> {
        pull.image_pull_secrets
            .iter()
            .filter_map(|name| {
                self.0
                    .iter()
                    .find(|s| s.namespace == pull.namespace && &s.name == name)
                    .cloned()
            })
            .collect()
    }
}

fn secret(namespace: &str, name: &str, json: &str) -> PullSecret {
    PullSecret {
        namespace: namespace.into(),
        name: name.into(),
        service_account: None,
        kind: PullSecretKind::DockerConfigJson,
        data: Arc::from(json.as_bytes()),
    }
}

fn pull(namespace: &str, secrets: &[&str]) -> PullContext {
    PullContext {
        namespace: namespace.into(),
        image_pull_secrets: secrets.iter().map(ToString::to_string).collect(),
        service_account: "default".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_index_platforms_without_attestations_over_plain_http() {
    let reg = Registry::plain();
    reg.push_fixture_index(
        "library/postgres",
        "17.11",
        "postgres-17.11.oci-index-with-attestations.json",
    )
    .await;
    let s = source(&insecure(&reg), None, None);
    let started = Instant::now();
    let found = lookup(&s.source, &format!("{}/library/postgres:17.11", reg.host)).await;
    let cold = started.elapsed();
    let names = platforms(&found);
    assert_eq!(names.len(), 8, "{names:?}");
    assert!(
        !names.iter().any(|n| n.contains("unknown")),
        "attestations dropped: {names:?}"
    );
    assert!(
        names.contains(&"linux/arm64".to_string()) && names.contains(&"linux/arm/v7".to_string()),
        "{names:?}"
    );
    let started = Instant::now();
    assert_eq!(
        platforms(&lookup(&s.source, &format!("{}/library/postgres:17.11", reg.host)).await),
        names
    );
    eprintln!("cold lookup {cold:?}, warm lookup {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_list_arm64_v8_is_arm64_and_windows_versions_are_kept() {
    let reg = Registry::plain();
    reg.push_fixture_index(
        "library/hello-world",
        "latest",
        "hello-world-latest.manifest-list.json",
    )
    .await;
    let s = source(&insecure(&reg), None, None);
    let Lookup::Found(found) =
        lookup(&s.source, &format!("{}/library/hello-world", reg.host)).await
    else {
        panic!("hello-world should be found")
    };
    let names: Vec<String> = found.platforms.iter().map(ToString::to_string).collect();
    assert!(names.contains(&"linux/arm64".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("v8")), "{names:?}");
    let windows: Vec<_> = found
        .platforms
        .iter()
        .filter(|p| p.os == "windows")
        .collect();
    assert_eq!(windows.len(), 2);
    assert!(windows.iter().all(|p| p
        .os_version
        .as_deref()
        .is_some_and(|v| v.starts_with("10.0."))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_platform_images_read_their_config_and_the_digest_wins_over_the_tag() {
    let reg = Registry::plain();
    reg.push_image("team/app", "v1", "linux/amd64", DOCKER_SCHEMA2)
        .await;
    let arm = reg
        .push_image("team/app", "arm", "linux/aarch64", OCI_MANIFEST)
        .await;
    let s = source(&insecure(&reg), None, None);
    assert_eq!(
        platforms(&lookup(&s.source, &format!("{}/team/app:v1", reg.host)).await),
        ["linux/amd64"]
    );
    assert_eq!(
        platforms(&lookup(&s.source, &format!("{}/team/app:arm", reg.host)).await),
        ["linux/arm64"]
    );
    // tag v1 is amd64, but the digest names the arm64 image: the digest wins.
    let both = format!("{}/team/app:v1@{arm}", reg.host);
    assert_eq!(platforms(&lookup(&s.source, &both).await), ["linux/arm64"]);
    let answer = lookup(&s.source, &format!("{}/team/app:nope", reg.host)).await;
    // An answer, not slowness: decided at once, never a reason to gate the pod.
    assert!(matches!(answer, Lookup::Failed(_)), "{answer:?}");
    let missing = failure(&answer);
    assert!(
        missing.contains("team/app:nope") && missing.contains("404"),
        "{missing}"
    );
    // The message is for the pod's creator; the typed registry error stays behind it.
    let Lookup::Failed(why) = &answer else {
        unreachable!()
    };
    let source = std::error::Error::source(why).expect("the registry error behind the message");
    assert!(
        source
            .downcast_ref::<archgate::registry::LookupError>()
            .is_some(),
        "{source:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_test_ca_from_ca_file() {
    let reg = Registry::start(true, Auth::None);
    reg.push_image("team/app", "1", "linux/arm64", OCI_MANIFEST)
        .await;
    let image = format!("{}/team/app:1", reg.host);
    let ca = reg.ca.clone().unwrap();
    let trusted = source(
        &format!(
            "[registries.\"{}\"]\nca_file = {:?}\n",
            reg.host,
            ca.display()
        ),
        None,
        None,
    );
    assert_eq!(
        platforms(&lookup(&trusted.source, &image).await),
        ["linux/arm64"]
    );
    // Named (so the guard lets archgate ask a loopback address) but without its CA.
    let untrusted = source(&format!("[registries.\"{}\"]\n", reg.host), None, None);
    let why = failure(&lookup(&untrusted.source, &image).await);
    assert!(
        why.contains(&reg.host) && why.contains("TLS handshake") && why.contains("ca_file"),
        "{why}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn htpasswd_basic_auth_with_node_credentials_and_a_wrong_password() {
    let reg = Registry::start(
        false,
        Auth::Htpasswd(vec![("alice".into(), "s3cret-pw".into())]),
    );
    reg.push_image("team/private", "1", "linux/amd64", DOCKER_SCHEMA2)
        .await;
    let image = format!("{}/team/private:1", reg.host);
    let anonymous = source(&insecure(&reg), None, None);
    let why = failure(&lookup(&anonymous.source, &image).await);
    assert!(why.contains("no credentials matched"), "{why}");
    let good = source(
        &insecure(&reg),
        Some(&docker_config(&reg.host, "alice", "s3cret-pw")),
        None,
    );
    assert_eq!(
        platforms(&lookup(&good.source, &image).await),
        ["linux/amd64"]
    );
    let bad = source(
        &insecure(&reg),
        Some(&docker_config(&reg.host, "alice", "wrong-pw-123")),
        None,
    );
    let why = failure(&lookup(&bad.source, &image).await);
    assert!(
        why.contains("credentials were rejected")
            && why.contains("team/private:1")
            && why.contains("--docker-config file"),
        "{why}"
    );
    assert!(
        !why.contains("wrong-pw-123") && !why.contains("d3JvbmctcHct"),
        "{why}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_with_pull_secrets_and_cache_scoped_by_credential() {
    let issuer = TokenIssuer::start(&[("admin", "admin-pw"), ("bob", "bob-pw")]).await;
    let reg = Registry::start(false, Auth::Token(Arc::clone(&issuer)));
    reg.push_image("public/tool", "1", "linux/arm64", OCI_MANIFEST)
        .await;
    reg.push_image("team/secret", "1", "linux/amd64", OCI_MANIFEST)
        .await;
    let secrets: Arc<dyn PullSecrets> = Arc::new(Secrets(vec![secret(
        "team",
        "regcred",
        &docker_config(&reg.host, "bob", "bob-pw"),
    )]));
    let s = source(&insecure(&reg), None, Some(secrets));
    let private = format!("{}/team/secret:1", reg.host);
    // Anonymous tokens pull public/* only.
    assert_eq!(
        platforms(&lookup(&s.source, &format!("{}/public/tool:1", reg.host)).await),
        ["linux/arm64"]
    );
    assert!(failure(&lookup(&s.source, &private).await).contains("refused access"));
    // The pod's imagePullSecret gets a token that can pull.
    assert_eq!(
        platforms(&lookup_in(&s.source, &private, &pull("team", &["regcred"])).await),
        ["linux/amd64"]
    );
    reg.settle().await;
    let gets = reg.manifest_requests("GET", "team/secret");
    // Another namespace without the secret is not served what the secret unlocked...
    let why = failure(&lookup_in(&s.source, &private, &pull("other", &[])).await);
    assert!(why.contains("refused access"), "{why}");
    // ...while the namespace with it is, from the cache, without another manifest GET.
    assert_eq!(
        platforms(&lookup_in(&s.source, &private, &pull("team", &["regcred"])).await),
        ["linux/amd64"]
    );
    reg.settle().await;
    assert_eq!(reg.manifest_requests("GET", "team/secret"), gets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_token_is_exchanged_at_the_token_service_never_sent_as_a_password() {
    let issuer = TokenIssuer::start(&[("carol", "carol-pw")]).await;
    let reg = Registry::start(false, Auth::Token(Arc::clone(&issuer)));
    reg.push_image("team/secret", "1", "linux/arm64", OCI_MANIFEST)
        .await;
    let private = format!("{}/team/secret:1", reg.host);
    // As `docker login` stores it for an OAuth2 registry: no auth, no password.
    let identity = |token: &str| {
        serde_json::json!({"auths": {reg.host.clone(): {"identitytoken": token}}}).to_string()
    };
    let good = source(
        &insecure(&reg),
        Some(&identity(&TokenIssuer::refresh_token_for("carol"))),
        None,
    );
    assert_eq!(
        platforms(&lookup(&good.source, &private).await),
        ["linux/arm64"]
    );
    // A refresh token the service does not know: refused, naming where it came from.
    let bad = source(&insecure(&reg), Some(&identity("stale")), None);
    let why = failure(&lookup(&bad.source, &private).await);
    assert!(
        why.contains("token service") && why.contains("400"),
        "{why}"
    );
    assert!(
        !why.contains("stale"),
        "the token never reaches a message: {why}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_io_images_go_to_the_configured_mirror() {
    let mirror = Registry::plain();
    mirror
        .push_fixture_index(
            "library/nginx",
            "1.23.1",
            "nginx-1.23.1.manifest-list.reformatted.json",
        )
        .await;
    let config = format!(
        "[registries.\"docker.io\"]\nmirror = \"{0}\"\n[registries.\"{0}\"]\ninsecure = true\n",
        mirror.host
    );
    let s = source(&config, None, None);
    let names = platforms(&lookup(&s.source, "nginx:1.23.1").await);
    assert_eq!(names.len(), 8, "{names:?}");
    assert!(names.contains(&"linux/amd64".to_string()));
}

/// `[registries."UPSTREAM"] mirror = "MIRROR"`, both plain HTTP, with `extra` lines for upstream.
fn mirrored(upstream: &str, mirror: &str, extra: &str) -> String {
    format!("[registries.\"{upstream}\"]\ninsecure = true\nmirror = \"{mirror}\"\n{extra}[registries.\"{mirror}\"]\ninsecure = true\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_mirror_falls_back_to_the_registry_itself_unless_mirror_only() {
    let upstream = Registry::plain();
    upstream
        .push_image("team/app", "1", "linux/arm64", OCI_MANIFEST)
        .await;
    let image = format!("{}/team/app:1", upstream.host);
    // Connection refused: nothing listens on the mirror's port.
    let dead = format!("127.0.0.1:{}", common::registry::free_port());
    let s = source(&mirrored(&upstream.host, &dead, ""), None, None);
    assert_eq!(platforms(&lookup(&s.source, &image).await), ["linux/arm64"]);
    let text = metrics_text(&s.metrics);
    let requests = |host: &str, outcome: &str| {
        common::metric(
            &text,
            "archgate_registry_requests_total",
            &[("registry", host), ("outcome", outcome)],
        )
        .unwrap_or(0.0)
    };
    assert!(requests(&dead, "error") >= 1.0, "{text}");
    assert!(requests(&upstream.host, "ok") >= 2.0, "{text}");
    // Both failing: the registry's answer, and what the mirror said first.
    let why = failure(&lookup(&s.source, &format!("{}/team/none:1", upstream.host)).await);
    assert!(
        why.contains("404") && why.contains(&format!("asked after the mirror {dead}")),
        "{why}"
    );
    // A pull-through cache without the image (404) falls back too.
    let empty = Registry::plain();
    let s = source(&mirrored(&upstream.host, &empty.host, ""), None, None);
    assert_eq!(platforms(&lookup(&s.source, &image).await), ["linux/arm64"]);
    // A mirror that never answers costs one request timeout, inside the lookup timeout.
    let silent = Silent::start().await;
    let config = format!(
        "{}[timeouts]\nlookup = \"3s\"\nrequest = \"300ms\"\n",
        mirrored(&upstream.host, &silent.addr.to_string(), "")
    );
    let s = source(&config, None, None);
    let started = Instant::now();
    assert_eq!(platforms(&lookup(&s.source, &image).await), ["linux/arm64"]);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(silent.accepted.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    // mirror_only: the registry itself is never asked.
    upstream.settle().await;
    let heads = upstream.manifest_requests("HEAD", "team/app");
    let s = source(
        &mirrored(&upstream.host, &dead, "mirror_only = true\n"),
        None,
        None,
    );
    let why = failure(&lookup(&s.source, &image).await);
    assert!(
        why.contains(&dead) && why.contains("mirror_only") && why.contains("team/app:1"),
        "{why}"
    );
    upstream.settle().await;
    assert_eq!(upstream.manifest_requests("HEAD", "team/app"), heads);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_credentials_name_their_pull_secret_never_their_contents() {
    let reg = Registry::start(
        false,
        Auth::Htpasswd(vec![("alice".into(), "s3cret-pw".into())]),
    );
    reg.push_image("team/private", "1", "linux/amd64", DOCKER_SCHEMA2)
        .await;
    let image = format!("{}/team/private:1", reg.host);
    let mut from_account = secret(
        "apps",
        "sa-cred",
        &docker_config(&reg.host, "zed-robot", "Wrong-Account-Pw"),
    );
    from_account.service_account = Some("builder".into());
    let secrets: Arc<dyn PullSecrets> = Arc::new(Secrets(vec![
        secret(
            "apps",
            "regcred",
            &docker_config(&reg.host, "zed-robot", "Wrong-Secret-Pw"),
        ),
        from_account,
    ]));
    let s = source(&insecure(&reg), None, Some(secrets));
    let pod = failure(&lookup_in(&s.source, &image, &pull("apps", &["regcred"])).await);
    let why = &pod;
    assert!(
        why.contains("pull secret apps/regcred") && why.contains("credentials were rejected"),
        "{why}"
    );
    let account = failure(&lookup_in(&s.source, &image, &pull("apps", &["sa-cred"])).await);
    assert!(
        account.contains("service account apps/builder's pull secret apps/sa-cred"),
        "{account}"
    );
    for leaked in [
        "zed-robot",
        "Wrong-Secret-Pw",
        "Wrong-Account-Pw",
        common::registry::basic("zed-robot", "Wrong-Secret-Pw").trim_start_matches("Basic "),
    ] {
        assert!(
            !pod.contains(leaked) && !account.contains(leaked),
            "{pod}\n{account}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_cached_for_the_negative_ttl() {
    let reg = Registry::plain();
    let s = source(
        &format!("{}[cache]\nnegative_ttl = \"1s\"\n", insecure(&reg)),
        None,
        None,
    );
    let image = format!("{}/team/late:1", reg.host);
    assert!(failure(&lookup(&s.source, &image).await).contains("404"));
    reg.push_image("team/late", "1", "linux/amd64", OCI_MANIFEST)
        .await;
    reg.settle().await;
    let heads = reg.manifest_requests("HEAD", "team/late");
    assert!(
        failure(&lookup(&s.source, &image).await).contains("404"),
        "still the cached failure"
    );
    reg.settle().await;
    assert_eq!(
        reg.manifest_requests("HEAD", "team/late"),
        heads,
        "no request inside the negative TTL"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(platforms(&lookup(&s.source, &image).await), ["linux/amd64"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_lookups_make_one_manifest_request() {
    let reg = Registry::plain();
    let digest = reg
        .push_image("team/burst", "1", "linux/arm64", OCI_MANIFEST)
        .await;
    reg.push_fixture_index("team/burst", "multi", "python-latest.manifest-list.json")
        .await;
    reg.settle().await;
    let s = Arc::new(source(&insecure(&reg), None, None));
    let burst = |image: String| {
        let mut tasks = Vec::new();
        for _ in 0..1000 {
            let s = Arc::clone(&s);
            let image = image.clone();
            tasks.push(tokio::spawn(async move { lookup(&s.source, &image).await }));
        }
        tasks
    };
    let by_digest = format!("{}/team/burst@{digest}", reg.host);
    let started = Instant::now();
    for t in burst(by_digest) {
        assert_eq!(platforms(&t.await.unwrap()), ["linux/arm64"]);
    }
    let digest_burst = started.elapsed();
    reg.settle().await;
    assert_eq!(
        reg.manifest_requests("GET", "team/burst"),
        1,
        "1,000 lookups by digest"
    );
    for t in burst(format!("{}/team/burst:multi", reg.host)) {
        assert_eq!(platforms(&t.await.unwrap()).len(), 10);
    }
    reg.settle().await;
    assert_eq!(
        reg.manifest_requests("HEAD", "team/burst"),
        1,
        "1,000 lookups by tag: one HEAD"
    );
    assert_eq!(
        reg.manifest_requests("GET", "team/burst"),
        2,
        "...and one GET of the index"
    );
    eprintln!("1,000 concurrent lookups by digest in {digest_burst:?}");
    // Whether a burst's stragglers hit the cache depends on timing; one more lookup always does.
    lookup(&s.source, &format!("{}/team/burst:multi", reg.host)).await;
    let text = metrics_text(&s.metrics);
    assert!(
        common::metric(
            &text,
            "archgate_registry_cache_total",
            &[("cache", "platforms"), ("event", "hit")]
        )
        .unwrap_or(0.0)
            > 0.0,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_that_never_answers_fails_the_lookup_in_time() {
    let silent = Silent::start().await;
    let host = silent.addr.to_string();
    let config = format!("[registries.\"{host}\"]\ninsecure = true\n[timeouts]\nlookup = \"400ms\"\nrequest = \"300ms\"\n");
    let s = source(&config, None, None);
    let started = Instant::now();
    let answer = lookup(&s.source, &format!("{host}/team/app:1")).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "took {took:?}");
    // Slowness may pass: the pod waiting on it is gated, and the answer is asked for again.
    assert!(matches!(answer, Lookup::Unavailable(_)), "{answer:?}");
    let why = failure(&answer);
    assert!(
        why.contains("did not answer") || why.contains("lookup timeout"),
        "{why}"
    );
    assert!(silent.accepted.load(std::sync::atomic::Ordering::SeqCst) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_refuses_metadata_denied_hosts_and_denied_resolved_addresses() {
    let s = source("", None, None);
    let started = Instant::now();
    let why = failure(&lookup(&s.source, "169.254.169.254/latest/meta-data:1").await);
    assert!(
        why.contains("cloud metadata") && started.elapsed() < Duration::from_millis(200),
        "{why}"
    );
    let silent = Silent::start().await;
    let host = silent.addr.to_string();
    let port = silent.addr.port();
    let config = format!("deny = [\"{host}\", \"127.0.0.0/8\", \"::1/128\"]\n[registries.\"localhost:{port}\"]\ninsecure = true\n");
    let s = source(&config, None, None);
    assert!(failure(&lookup(&s.source, &format!("{host}/a/b:1")).await).contains("deny list"));
    // A name is checked on the addresses it resolves to.
    let why = failure(&lookup(&s.source, &format!("localhost:{port}/a/b:1")).await);
    assert!(why.contains("network the registry config denies"), "{why}");
    let allow = source("allow = [\"ghcr.io\"]\n", None, None);
    assert!(failure(&lookup(&allow.source, &format!("{host}/a/b:1")).await).contains("allow list"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        silent.accepted.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no connection was made"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_indexes_and_missing_children_are_clear_errors() {
    let reg = Registry::plain();
    let amd = reg.child_descriptor("team/odd", "linux/amd64", true).await;
    let inner = reg
        .push_index("team/odd", "inner", OCI_INDEX, vec![amd.clone()])
        .await;
    let nested = serde_json::json!({"mediaType": OCI_INDEX, "digest": inner, "size": 1, "platform": {"os": "linux", "architecture": "amd64"}});
    reg.push_index("team/odd", "nested", OCI_INDEX, vec![nested])
        .await;
    let unlabelled = reg
        .child_descriptor("team/odd", "linux/riscv64", false)
        .await;
    reg.push_index(
        "team/odd",
        "gone",
        DOCKER_LIST,
        vec![amd, unlabelled.clone()],
    )
    .await;
    let s = source(&insecure(&reg), None, None);
    let why = failure(&lookup(&s.source, &format!("{}/team/odd:nested", reg.host)).await);
    assert!(
        why.contains("nested") && why.contains("team/odd:nested"),
        "{why}"
    );
    // An entry without a platform is read from its manifest and config...
    let names = platforms(&lookup(&s.source, &format!("{}/team/odd:gone", reg.host)).await);
    assert_eq!(names, ["linux/amd64", "linux/riscv64"]);
    // ...and when that manifest is gone, the image is an error, not a partial answer.
    reg.delete_manifest("team/odd", unlabelled["digest"].as_str().unwrap())
        .await;
    let fresh = source(&insecure(&reg), None, None);
    let why = failure(&lookup(&fresh.source, &format!("{}/team/odd:gone", reg.host)).await);
    assert!(
        why.contains(unlabelled["digest"].as_str().unwrap()) && why.contains("404"),
        "{why}"
    );
}

/// Collects every log line of the registry client, at every level.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn no_credential_reaches_a_log_line_or_a_metric() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let issuer = TokenIssuer::start(&[("admin", "admin-pw"), ("carol", "Carol-Token-Pw")]).await;
    let tokens = Registry::start(false, Auth::Token(Arc::clone(&issuer)));
    tokens
        .push_image("team/app", "1", "linux/amd64", OCI_MANIFEST)
        .await;
    let basic = Registry::start(
        false,
        Auth::Htpasswd(vec![("dave".into(), "Dave-Basic-Pw".into())]),
    );
    basic
        .push_image("team/app", "1", "linux/amd64", OCI_MANIFEST)
        .await;
    let config = format!("{}{}", insecure(&tokens), insecure(&basic));
    let docker = serde_json::json!({"auths": {
        tokens.host.clone(): {"username": "carol", "password": "Carol-Token-Pw"},
        basic.host.clone(): {"username": "dave", "password": "Dave-Basic-Pw"},
    }})
    .to_string();
    let wrong = serde_json::json!({"auths": {
        tokens.host.clone(): {"username": "carol", "password": "Wrong-Token-Pw"},
        basic.host.clone(): {"username": "dave", "password": "Wrong-Basic-Pw"},
    }})
    .to_string();
    let good = source(&config, Some(&docker), None);
    let bad = source(&config, Some(&wrong), None);
    for host in [&tokens.host, &basic.host] {
        let image = format!("{host}/team/app:1");
        assert_eq!(
            platforms(&lookup(&good.source, &image).await),
            ["linux/amd64"]
        );
        let why = failure(&lookup(&bad.source, &image).await);
        assert!(!why.contains("Wrong"), "{why}");
    }
    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let mut secrets = vec![
        "Carol-Token-Pw".to_string(),
        "Dave-Basic-Pw".into(),
        "Wrong-Token-Pw".into(),
        "Wrong-Basic-Pw".into(),
    ];
    for (user, pw) in [("dave", "Dave-Basic-Pw"), ("carol", "Carol-Token-Pw")] {
        let b64 = common::registry::basic(user, pw);
        secrets.push(b64.trim_start_matches("Basic ").to_string());
    }
    let issued = issuer.issued.lock().unwrap().clone();
    assert!(!issued.is_empty());
    secrets.extend(
        issued
            .iter()
            .map(|t| t.rsplit('.').next().unwrap().to_string()),
    );
    let metrics = format!(
        "{}{}",
        metrics_text(&good.metrics),
        metrics_text(&bad.metrics)
    );
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a credential is in the logs"
        );
        assert!(
            !metrics.contains(secret.as_str()),
            "a credential is in the metrics"
        );
    }
    assert!(
        metrics.contains("archgate_registry_requests_total"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archgate_serve_places_a_pod_by_what_its_registry_says() {
    let reg = Registry::start(
        false,
        Auth::Htpasswd(vec![("ci".into(), "Serve-Secret-Pw".into())]),
    );
    reg.push_image("shop/report", "0.9.0", "linux/arm64", OCI_MANIFEST)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_file(dir.path(), "registries.toml", &insecure(&reg));
    let docker = common::write_file(
        dir.path(),
        "config.json",
        &docker_config(&reg.host, "ci", "Serve-Secret-Pw"),
    );
    let platforms = common::write_file(dir.path(), "platforms.toml", "[images]\n");
    let server = common::registry::serve_with_registry(
        &common::homelab_policy(),
        &platforms,
        &config,
        &docker,
    );
    let mut review = common::fixture("pod-create-from-job-mutating.json");
    let image = format!("{}/shop/report:0.9.0", reg.host);
    review["request"]["object"]["spec"]["containers"][0]["image"] = image.clone().into();
    let mut client = server.client(common::Proto::H2).await;
    let answer = client.review_value("/mutate?timeout=10s", &review).await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let pod = common::apply_patch(&review["request"]["object"], &answer);
    let terms = pod
        .pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")
        .cloned()
        .unwrap_or_default();
    let want =
        serde_json::json!({"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64"]});
    assert!(
        terms.as_array().is_some_and(|t| !t.is_empty()
            && t.iter()
                .all(|t| t["matchExpressions"].as_array().unwrap().contains(&want))),
        "the registry says arm64 only: {pod}\n{}",
        server.output()
    );
    let (_, _, body) = client.get("/metrics").await;
    let metrics = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        common::metric(
            &metrics,
            "archgate_registry_requests_total",
            &[("registry", reg.host.as_str()), ("outcome", "ok")]
        )
        .unwrap_or(0.0)
            >= 2.0,
        "{metrics}"
    );
    let output = server.output();
    let secret_b64 = common::registry::basic("ci", "Serve-Secret-Pw");
    for secret in ["Serve-Secret-Pw", secret_b64.trim_start_matches("Basic ")] {
        assert!(
            !output.contains(secret) && !metrics.contains(secret),
            "a credential leaked"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_spoken_to_a_plain_http_registry_is_a_configuration_error_not_slowness() {
    let reg = Registry::plain();
    reg.push_image("team/app", "v1", "linux/amd64", OCI_MANIFEST)
        .await;
    // Named without `insecure = true`: archgate speaks TLS and the registry answers in plain HTTP.
    let s = source(&format!("[registries.\"{}\"]\n", reg.host), None, None);
    let answer = lookup(&s.source, &format!("{}/team/app:v1", reg.host)).await;
    assert!(
        matches!(answer, Lookup::Failed(_)),
        "retrying will not help, so the pod is not gated: {answer:?}"
    );
    let why = failure(&answer);
    assert!(
        why.contains("TLS handshake") && why.contains("insecure = true"),
        "{why}"
    );
    // A registry that is down (connection refused) may come back: worth waiting for.
    let port = common::registry::free_port();
    let down = source(
        &format!("[registries.\"127.0.0.1:{port}\"]\ninsecure = true\n"),
        None,
        None,
    );
    let answer = lookup(&down.source, &format!("127.0.0.1:{port}/team/app:v1")).await;
    assert!(matches!(answer, Lookup::Unavailable(_)), "{answer:?}");
    // What the pod's creator reads says what to check, not what the socket said.
    let why = failure(&answer);
    assert!(why.contains("cannot reach"), "{why}");
    for detail in ["refused", "os error", "tcp", "111"] {
        assert!(!why.to_lowercase().contains(detail), "{detail}: {why}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_are_refused_until_the_registry_config_names_the_host() {
    let reg = Registry::plain();
    reg.push_image("team/app", "1", "linux/arm64", OCI_MANIFEST)
        .await;
    let silent = Silent::start().await;
    let port = silent.addr.port();
    // Nothing named: loopback is refused by literal address and by a name resolving to it,
    // before any connection, with what to configure and not where the name pointed.
    let unnamed = source("", None, None);
    for image in [
        format!("{}/team/app:1", reg.host),
        format!("127.0.0.1:{port}/a/b:1"),
        format!("localhost:{port}/a/b:1"),
    ] {
        let answer = lookup(&unnamed.source, &image).await;
        assert!(matches!(answer, Lookup::Failed(_)), "{image}: {answer:?}");
        let why = failure(&answer);
        assert!(
            why.contains("private network") && why.contains("[registries]"),
            "{image}: {why}"
        );
        if image.starts_with("localhost") {
            assert!(!why.contains("127.0.0.1"), "{why}");
        }
    }
    // Named: asked. A named address is named with its port: another port stays refused.
    let named = source(&insecure(&reg), None, None);
    assert_eq!(
        platforms(&lookup(&named.source, &format!("{}/team/app:1", reg.host)).await),
        ["linux/arm64"]
    );
    let other_port = failure(&lookup(&named.source, &format!("127.0.0.1:{port}/a/b:1")).await);
    assert!(other_port.contains("private network"), "{other_port}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        silent.accepted.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no connection was made to an unnamed private address"
    );
}
