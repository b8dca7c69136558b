#![allow(clippy::unwrap_used)]

use super::*;
use crate::cli::placement_args::PlacementArgs;
use crate::image::ImageRef;
use crate::platforms::{Lookup, LookupRequest, PullContext};
use crate::policy::model::OnLookupTimeout;
use futures_util::FutureExt;
use prometheus::Opts;
use std::time::Duration;

const POLICY: &str = "[cluster]\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n";
const PLATFORMS: &str = "[images]\n\"docker.io/library/nginx:1.27\" = [\"linux/amd64\"]\n";
const DOCKER_CONFIG: &str = r#"{"auths": {"registry.internal:5000": {"auth": "dTpw"}}}"#;

struct Setup {
    dir: tempfile::TempDir,
    admission: Admission,
    reloader: Reloader,
    reloads: IntCounterVec,
}

impl Setup {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap();
    }

    fn count(&self, file: &str, result: &str) -> u64 {
        self.reloads.with_label_values(&[file, result]).get()
    }

    fn registry_source(&self) -> Arc<dyn PlatformSource> {
        self.reloader.files.registry.as_ref().unwrap().source()
    }
}

/// A reloader over a policy and a platforms file, and a registry layer with a docker config
/// when `registry` (nothing is ever asked of a registry here), as `serve` builds them; the
/// policy it starts with decides at once, so no controller runs.
async fn setup(registry: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let policy_path = dir.path().join("policy.toml");
    let platforms_path = dir.path().join("platforms.toml");
    std::fs::write(&policy_path, POLICY).unwrap();
    std::fs::write(&platforms_path, PLATFORMS).unwrap();
    let mut policy_file = Tracked::new(policy_path);
    let mut policy = policy_file.load(parse_policy).unwrap();
    policy.placement.on_lookup_timeout = OnLookupTimeout::Decide;
    let placement = PlacementArgs {
        namespace: Some("archgate-ns".into()),
        lease_duration: Duration::from_secs(15),
    };
    let preparation = placement.prepare(&policy, None).await;
    assert_eq!(preparation.apply(&mut policy), None);
    let mut platforms_file = Tracked::new(platforms_path);
    let platforms = platforms_file.load(parse_platforms).unwrap();
    let mut args = RegistryArgs::default();
    if registry {
        let docker = dir.path().join("config.json");
        std::fs::write(&docker, DOCKER_CONFIG).unwrap();
        args.docker_config = Some(docker);
    }
    let files = ConfigFiles {
        policy: Some(policy_file),
        platforms: Some(platforms_file),
        static_layer: Some(Arc::new(platforms)),
        registry: RegistryLayer::load(&args, None, &prometheus::Registry::new()).unwrap(),
    };
    let admission = Admission::new(Arc::new(policy), files.source());
    let reloads = IntCounterVec::new(Opts::new("reloads", "test"), &["file", "result"]).unwrap();
    let reloader = Reloader::new(admission.clone(), preparation, reloads.clone(), files);
    Setup {
        dir,
        admission,
        reloader,
        reloads,
    }
}

/// Whether the source in service knows `image` at once (the static layer answers without I/O).
fn knows(admission: &Admission, image: &str) -> bool {
    let image = ImageRef::parse(image).unwrap();
    let pull = PullContext::default();
    let source = admission.source();
    let answer = source
        .lookup(LookupRequest {
            image: &image,
            patient: false,
            pull: &pull,
        })
        .now_or_never();
    matches!(answer, Some(Lookup::Found(_)))
}

#[tokio::test]
async fn unchanged_bytes_reload_nothing_and_count_nothing() {
    let mut s = setup(false).await;
    let policy = s.admission.policy();
    let source = s.admission.source();
    s.write("policy.toml", POLICY);
    s.write("platforms.toml", PLATFORMS);
    s.reloader.check();
    assert!(Arc::ptr_eq(&policy, &s.admission.policy()));
    assert!(Arc::ptr_eq(&source, &s.admission.source()));
    assert_eq!(s.count("policy", "ok") + s.count("platforms", "ok"), 0);
}

#[tokio::test]
async fn a_broken_policy_keeps_the_previous_one_until_it_is_fixed() {
    let mut s = setup(false).await;
    let before = s.admission.policy();
    s.write("policy.toml", "[cluster\nplatforms = 1\n");
    s.reloader.check();
    assert!(Arc::ptr_eq(&before, &s.admission.policy()));
    assert_eq!(s.count("policy", "error"), 1);
    // The same broken bytes again (another event in the directory) count nothing more.
    s.reloader.check();
    assert_eq!(s.count("policy", "error"), 1);

    s.write(
        "policy.toml",
        &format!("{POLICY}[defaults]\nmode = \"warn\"\n"),
    );
    s.reloader.check();
    assert!(!Arc::ptr_eq(&before, &s.admission.policy()));
    assert_eq!(s.count("policy", "ok"), 1);
}

#[tokio::test]
async fn a_reloaded_policy_is_prepared_as_the_first_was() {
    let mut s = setup(false).await;
    // The default is to gate; no controller runs, so the reloaded policy must not gate.
    s.write("policy.toml", &format!("{POLICY}# gating on\n"));
    s.reloader.check();
    let policy = s.admission.policy();
    assert_eq!(s.count("policy", "ok"), 1);
    assert_eq!(policy.placement.on_lookup_timeout, OnLookupTimeout::Decide);
    assert!(policy
        .placement
        .never_gate
        .iter()
        .any(|n| n == "archgate-ns"));
}

#[tokio::test]
async fn a_platforms_change_replaces_the_static_layer_alone() {
    let mut s = setup(true).await;
    let registry = s.registry_source();
    assert!(!knows(&s.admission, "docker.io/library/redis:7"));
    s.write(
        "platforms.toml",
        &format!("{PLATFORMS}\"docker.io/library/redis:7\" = [\"linux/arm64\"]\n"),
    );
    s.reloader.check();
    assert!(knows(&s.admission, "docker.io/library/redis:7"));
    assert_eq!(s.count("platforms", "ok"), 1);
    assert!(
        Arc::ptr_eq(&registry, &s.registry_source()),
        "the registry source (and its caches) must be kept"
    );
}

#[tokio::test]
async fn a_docker_config_change_rebuilds_the_registry_layer_and_a_broken_one_keeps_it() {
    let mut s = setup(true).await;
    let registry = s.registry_source();
    s.write("config.json", "{\"auths\": ");
    s.reloader.check();
    assert_eq!(s.count("docker_config", "error"), 1);
    assert!(Arc::ptr_eq(&registry, &s.registry_source()));

    s.write(
        "config.json",
        r#"{"auths": {"registry.internal:5000": {"auth": "dTpx"}}}"#,
    );
    s.reloader.check();
    assert_eq!(s.count("docker_config", "ok"), 1);
    assert!(!Arc::ptr_eq(&registry, &s.registry_source()));
    // The static layer is still asked first.
    assert!(knows(&s.admission, "docker.io/library/nginx:1.27"));
}

#[tokio::test]
async fn an_edit_that_changes_nothing_in_effect_keeps_the_registry_source_and_its_caches() {
    let mut s = setup(true).await;
    let registry = s.registry_source();
    // Other bytes, the same credentials: counted as a reload, the caches kept.
    s.write(
        "config.json",
        "{\n  \"auths\": {\"registry.internal:5000\": {\"auth\": \"dTpw\"}}\n}\n",
    );
    s.reloader.check();
    assert_eq!(s.count("docker_config", "ok"), 1);
    assert!(
        Arc::ptr_eq(&registry, &s.registry_source()),
        "emptying the caches for nothing sends every pod's images to the registries at once"
    );
}

#[test]
fn a_file_that_is_not_utf8_is_a_read_error_naming_it() {
    let path = Path::new("/etc/archgate/policy.toml");
    let e = parse_policy(path, Ok(vec![0xff, 0xfe])).unwrap_err();
    assert!(e.to_string().contains("/etc/archgate/policy.toml"), "{e}");
}
