//! The words of decisions: messages that name each image, its platforms, and what to change.
//! Kept apart from the evaluator so the decision logic reads as set arithmetic.

use super::evaluate::{ImageFacts, ImageStatus};
use crate::arch::ArchSet;
use crate::inventory::NodeInfo;
use crate::platforms::{ImagePlatforms, Lookup};
use crate::pod::Toleration;
use std::fmt::Write;

/// How many node names a message lists before "and N more".
const MAX_NODES_NAMED: usize = 4;

/// `image X (container "c") is built for linux/amd64`, for every image with known platforms that
/// cannot run on some architecture of `lacking` (every such image when `lacking` is ALL), with
/// "no s390x nodes in this cluster" when none of its platforms exists in the cluster.
pub fn describe_images(
    images: &[ImageFacts<'_>],
    lacking: ArchSet,
    cluster: ArchSet,
    compat: bool,
) -> String {
    let mut out = String::new();
    for img in images {
        let ImageStatus::Resolved(Lookup::Found(p)) = &img.status else {
            continue;
        };
        let archs = p.archs(compat);
        if lacking != ArchSet::ALL && lacking.is_subset(archs) {
            continue;
        }
        let sep = if out.is_empty() { "" } else { "; " };
        let _ = write!(
            out,
            "{sep}image {} ({} \"{}\") is built for {}",
            img.image,
            img.kind.as_str(),
            img.container,
            platforms_text(p)
        );
        if p.linux_archs.is_empty() && !p.platforms.is_empty() {
            out.push_str(": it has no linux build");
        } else if archs.intersect(cluster).is_empty() {
            let _ = write!(
                out,
                ": there are no {} nodes in this cluster",
                absent_platforms(p)
            );
        }
    }
    out
}

/// "arm/v7 or s390x": the image's linux platforms, without the os, for "no ... nodes".
fn absent_platforms(p: &ImagePlatforms) -> String {
    let mut names: Vec<String> = p
        .platforms
        .iter()
        .filter(|pl| pl.os == "linux")
        .map(|pl| match &pl.variant {
            Some(v) => format!("{}/{v}", pl.architecture),
            None => pl.architecture.clone(),
        })
        .collect();
    names.dedup();
    if names.is_empty() {
        return "linux".to_string();
    }
    names.join(" or ")
}

fn platforms_text(p: &ImagePlatforms) -> String {
    if p.platforms.is_empty() {
        "no platform".to_string()
    } else {
        p.describe()
    }
}

/// `gpu.nvidia.com/gpu:Exists:NoSchedule` style, for "lacks toleration ...".
pub fn describe_toleration(t: &Toleration) -> String {
    let part = |o: &Option<String>| o.clone().unwrap_or_default();
    let op = t.operator.clone().unwrap_or_else(|| "Equal".into());
    format!("{}:{op}:{}", part(&t.key), part(&t.effect))
}

/// "durnan, elaith, jarlaxle, mirt and 1 more".
pub fn node_names(nodes: &[&NodeInfo]) -> String {
    let shown: Vec<&str> = nodes
        .iter()
        .take(MAX_NODES_NAMED)
        .map(|n| n.name.as_str())
        .collect();
    let more = nodes.len().saturating_sub(MAX_NODES_NAMED);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}
