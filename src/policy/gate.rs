//! The scheduling gate: when a pod's image platforms are not known by the admission deadline,
//! the mutating stage admits it gated instead of letting the scheduler guess, and the placement
//! controller places it once its lookups finish.
//!
//! Which pods may be gated is decided here, as a pure function of the policy, the pod and its
//! lookups; the patch that gates and the update that ungates live with the other patches.

use super::evaluate::{ImageFacts, ImageStatus};
use super::model::OnLookupTimeout;
use super::Policy;
use crate::platforms::Lookup;

/// The scheduling gate archgate adds, and removes when it has placed the pod.
pub const GATE: &str = "archgate.io/placement";
/// The label on gated pods, so the placement controller watches only them (`=gated`).
pub const GATED_LABEL: &str = "archgate.io/placement";
/// The value of [`GATED_LABEL`] while the pod is gated.
pub const GATED_VALUE: &str = "gated";
/// Why the pod was gated, and later how the controller decided.
pub const PLACEMENT_ANNOTATION: &str = "archgate.io/placement";

/// Whether the mutating stage gates `pod` rather than deciding now: the policy gates, some of
/// its image lookups could not be answered in time (timed out, registry down or overloaded),
/// and nothing about the pod forbids it. A registry that answered "unauthorized" or "no such
/// image" has said all it will: that pod is decided at once by `unknown_images`.
///
/// Never gated: pods in the namespaces of [`super::Placement::never_gate`] (a gate there could
/// wait on archgate to start archgate), pods already bound to a node (`nodeName`; the scheduler
/// is not asked) and mirror pods (the kubelet runs them already).
pub fn applies(
    policy: &Policy,
    pod: &crate::pod::Pod,
    namespace: &str,
    images: &[ImageFacts<'_>],
) -> bool {
    policy.placement.on_lookup_timeout == OnLookupTimeout::Gate
        && !policy.placement.never_gate.iter().any(|n| n == namespace)
        && pod.node_name().is_none()
        && !pod.is_mirror()
        && images.iter().any(|i| unavailable(i).is_some())
}

/// The lookups that failed, named, for the annotation and the Events: "image x (container
/// "c"): registry timed out".
pub fn reason(images: &[ImageFacts<'_>]) -> String {
    let failed: Vec<String> = images
        .iter()
        .filter_map(|i| {
            unavailable(i).map(|why| {
                format!(
                    "image {} ({} \"{}\"): {why}",
                    i.image,
                    i.kind.as_str(),
                    i.container
                )
            })
        })
        .collect();
    format!("waiting for the platforms of {}", failed.join("; "))
}

/// Why `image`'s lookup did not answer in time, when it did not: what gates a pod, and what the
/// placement controller waits out.
pub fn unavailable<'a>(image: &'a ImageFacts<'_>) -> Option<&'a str> {
    match &image.status {
        ImageStatus::Resolved(Lookup::Unavailable(why)) => Some(why.message()),
        _ => None,
    }
}
