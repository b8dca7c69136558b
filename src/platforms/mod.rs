//! Where image platforms come from: the seam between the decision and the outside world.
//!
//! The webhook, `check` and the tests resolve images through [`PlatformSource`]; the static
//! platforms file is one source, a registry client another.

pub mod static_file;

use crate::arch::{Arch, ArchSet};
use crate::image::{ImageRef, Platform};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use static_file::{StaticPlatforms, StaticPlatformsError};

/// The platforms one image was built for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePlatforms {
    /// Every runnable platform, attestation entries removed, in the order the source gave them.
    pub platforms: Vec<Platform>,
    /// The linux architectures among them, for the decision's set arithmetic.
    pub linux_archs: ArchSet,
    /// Where they run when nodes execute compatible code too: arm64 runs arm (v6, v7), amd64 runs 386.
    pub compatible_archs: ArchSet,
}

impl ImagePlatforms {
    /// Derives the linux and compatible architecture sets from the platforms a source listed.
    pub fn new(platforms: Vec<Platform>) -> ImagePlatforms {
        let linux_archs: ArchSet = platforms
            .iter()
            .filter(|p| p.os == "linux")
            .filter_map(|p| Arch::from_name(&p.architecture))
            .collect();
        let runs_arm32 = platforms.iter().any(|p| {
            p.os == "linux"
                && p.architecture == "arm"
                && matches!(p.variant.as_deref(), Some("v6" | "v7") | None)
        });
        let mut compatible_archs = linux_archs;
        if runs_arm32 {
            compatible_archs = compatible_archs.with(Arch::Arm64);
        }
        if linux_archs.contains(Arch::I386) {
            compatible_archs = compatible_archs.with(Arch::Amd64);
        }
        ImagePlatforms {
            platforms,
            linux_archs,
            compatible_archs,
        }
    }

    /// The architectures this image runs on, under the policy's `compatible_execution` choice.
    pub fn archs(&self, compatible_execution: bool) -> ArchSet {
        if compatible_execution {
            self.compatible_archs
        } else {
            self.linux_archs
        }
    }

    /// The architectures the image has builds for on `os`.
    pub fn archs_on(&self, os: &str) -> ArchSet {
        self.platforms
            .iter()
            .filter(|p| p.os == os)
            .filter_map(|p| Arch::from_name(&p.architecture))
            .collect()
    }

    /// The lowest CPU variant of `arch` the image's `os` builds need, when every one of them
    /// names a variant archgate can order: a build without a variant (or with one it cannot
    /// order) runs on any CPU of the architecture.
    pub fn min_variant(&self, os: &str, arch: Arch) -> Option<&str> {
        let mut lowest: Option<&str> = None;
        for p in self
            .platforms
            .iter()
            .filter(|p| p.os == os && p.architecture == arch.as_str())
        {
            let v = p.variant.as_deref()?;
            let rank = crate::image::variant_rank(v)?;
            if lowest.is_none_or(|l| crate::image::variant_rank(l) > Some(rank)) {
                lowest = Some(v);
            }
        }
        lowest
    }

    /// The `os.version`s of the image's windows builds; empty when one of them names none (it
    /// runs on any build).
    pub fn windows_builds(&self) -> Vec<String> {
        let builds: Vec<Option<&String>> = self
            .platforms
            .iter()
            .filter(|p| p.os == "windows")
            .map(|p| p.os_version.as_ref())
            .collect();
        if builds.iter().any(Option::is_none) {
            return Vec::new();
        }
        builds.into_iter().flatten().cloned().collect()
    }

    /// "linux/amd64, linux/arm/v7" for messages.
    pub fn describe(&self) -> String {
        if self.platforms.is_empty() {
            return "no platforms".to_string();
        }
        let names: Vec<String> = self.platforms.iter().map(ToString::to_string).collect();
        names.join(", ")
    }
}

/// What a source knows about one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The source knows the image's platforms.
    Found(Arc<ImagePlatforms>),
    /// The source has no entry for the image.
    NotFound,
    /// The source could not answer in time or at all (a timeout, a registry down, 5xx, 429):
    /// asking again later may succeed, so a pod waiting on it is gated, not decided.
    Unavailable(LookupFailure),
    /// The source answered, but not with platforms (unauthorized, no such image, a broken
    /// document, a host the guard refuses); the failure says why.
    Failed(LookupFailure),
}

/// Why a source could not give an image's platforms: the message the pod's creator reads, and
/// the typed error behind it, if any. Cheap to clone: one failure answers every pod that asked
/// for the image until the negative cache forgets it.
#[derive(Debug, Clone)]
pub struct LookupFailure {
    message: Arc<str>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl LookupFailure {
    /// A failure with `message` and `source` behind it (`source()` gives it back).
    pub fn caused_by(
        message: impl Into<Arc<str>>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> LookupFailure {
        LookupFailure {
            message: message.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// What the pod's creator reads.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for LookupFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LookupFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Two failures are the same answer when they say the same: the error behind them is detail.
impl PartialEq for LookupFailure {
    fn eq(&self, other: &LookupFailure) -> bool {
        self.message == other.message
    }
}

impl Eq for LookupFailure {}

/// A failure that is only a message (a deadline passed, a test's answer).
impl From<&str> for LookupFailure {
    fn from(message: &str) -> LookupFailure {
        LookupFailure {
            message: message.into(),
            source: None,
        }
    }
}

impl From<String> for LookupFailure {
    fn from(message: String) -> LookupFailure {
        LookupFailure {
            message: message.into(),
            source: None,
        }
    }
}

/// A boxed future, so sources can be stored behind `dyn`.
pub type LookupFuture<'a> = Pin<Box<dyn Future<Output = Lookup> + Send + 'a>>;

/// Who is pulling: what a registry source needs to pick credentials the way kubelet would, and to
/// keep one namespace's private images from answering another's pods.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PullContext {
    /// The pod's namespace: the pull secrets and service account are looked up there.
    pub namespace: String,
    /// The pod's `imagePullSecrets` names, in order.
    pub image_pull_secrets: Vec<String>,
    /// The pod's service account (`default` when unset); its pull secrets come after the pod's.
    pub service_account: String,
}

impl PullContext {
    /// Who pulls `pod`'s images in `namespace`: its pull secrets and service account.
    pub fn of_pod(pod: &crate::pod::Pod, namespace: &str) -> PullContext {
        PullContext {
            namespace: namespace.to_string(),
            image_pull_secrets: pod
                .spec
                .image_pull_secrets
                .iter()
                .flatten()
                .filter(|r| !r.name.is_empty())
                .map(|r| r.name.clone())
                .collect(),
            service_account: pod
                .spec
                .service_account_name
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "default".to_string()),
        }
    }
}

/// One image to look up, for one pod.
#[derive(Debug, Clone)]
pub struct LookupRequest<'a> {
    /// The image as the pod's container names it.
    pub image: &'a ImageRef,
    /// Asked by the placement controller for a gated pod, not within an admission deadline:
    /// the source may take `timeouts.background` and asks again rather than answer a failure
    /// it remembers.
    pub patient: bool,
    /// Whose credentials to pull with.
    pub pull: &'a PullContext,
}

/// Anything that can tell which platforms an image was built for.
pub trait PlatformSource: Send + Sync {
    /// What the source knows about the request's image; failures are answers too
    /// ([`Lookup::Unavailable`], [`Lookup::Failed`]).
    fn lookup<'a>(&'a self, request: LookupRequest<'a>) -> LookupFuture<'a>;
}

/// The kinds of Secret kubelet reads pull credentials from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullSecretKind {
    /// `kubernetes.io/dockerconfigjson`, key `.dockerconfigjson`.
    DockerConfigJson,
    /// `kubernetes.io/dockercfg`, key `.dockercfg` (the legacy format).
    DockerCfg,
}

/// The raw contents of one pull secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSecret {
    /// The namespace the Secret lives in (the pod's).
    pub namespace: String,
    /// The Secret's name.
    pub name: String,
    /// The service account that lists it, when it came from there rather than the pod's own
    /// `imagePullSecrets` (named in error messages).
    pub service_account: Option<String>,
    /// The Secret's type, which says which key holds the credentials and in what format.
    pub kind: PullSecretKind,
    /// The bytes under that key, still in the docker config format (not base64).
    pub data: Arc<[u8]>,
}

/// Where pull secrets come from (a watch of the cluster's Secrets and ServiceAccounts).
pub trait PullSecrets: Send + Sync {
    /// The secrets for `pull`, in kubelet's order: the pod's imagePullSecrets, then its service
    /// account's. Secrets that do not exist or have another type are skipped.
    fn secrets_for(&self, pull: &PullContext) -> Vec<PullSecret>;
}

/// Sources asked in order: the first that finds the image answers. The static platforms file goes
/// first, so an operator's entry wins over what a registry says (and costs no request).
pub struct Layered {
    sources: Vec<Arc<dyn PlatformSource>>,
}

impl Layered {
    /// Asks `sources` in the order given.
    pub fn new(sources: Vec<Arc<dyn PlatformSource>>) -> Layered {
        Layered { sources }
    }

    /// The source of a server or a `check`: the static platforms file first (when given), then
    /// the registry (when enabled); with neither, a source that knows no image. `serve` keeps
    /// the two layers apart and stacks them again when either is reloaded.
    pub fn stack(
        static_layer: Option<Arc<dyn PlatformSource>>,
        registry: Option<Arc<dyn PlatformSource>>,
    ) -> Arc<dyn PlatformSource> {
        match (static_layer, registry) {
            (Some(first), Some(then)) => Arc::new(Layered::new(vec![first, then])),
            (Some(only), None) | (None, Some(only)) => only,
            (None, None) => Arc::new(StaticPlatforms::default()),
        }
    }
}

impl PlatformSource for Layered {
    fn lookup<'a>(&'a self, request: LookupRequest<'a>) -> LookupFuture<'a> {
        Box::pin(async move {
            // A failure is reported only if no later source finds the image.
            let mut answer = Lookup::NotFound;
            for source in &self.sources {
                match source.lookup(request.clone()).await {
                    Lookup::Found(p) => return Lookup::Found(p),
                    failed @ (Lookup::Failed(_) | Lookup::Unavailable(_)) => answer = failed,
                    Lookup::NotFound => {}
                }
            }
            answer
        })
    }
}
