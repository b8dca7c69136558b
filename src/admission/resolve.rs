//! Resolve: each image of a pod to the platforms its source knows, all at once, each bounded by
//! the deadline; for the webhook (the admission deadline) and the placement controller (patient).

use super::Snapshot;
use crate::image::ImageRef;
use crate::platforms::{Lookup, LookupRequest};
use crate::pod::{Container, ContainerKind, Pod};
use crate::policy::evaluate::{ImageFacts, ImageStatus};
use futures_util::FutureExt;
use std::time::Instant;

impl Snapshot {
    /// Looks up the images of a gated `pod`'s init and app containers for the placement
    /// controller: patiently (`timeouts.background`, no remembered failure), bounded by
    /// `deadline`.
    pub async fn resolve_gated<'p>(
        &self,
        pod: &'p Pod,
        namespace: &str,
        deadline: Instant,
    ) -> Vec<ImageFacts<'p>> {
        let containers = pod.scheduling_containers();
        self.resolve(containers, pod, namespace, deadline, true)
            .await
    }

    /// Looks up the images of `containers` of `pod`, all at once, each bounded by `deadline`.
    pub(super) async fn resolve<'p>(
        &self,
        containers: impl Iterator<Item = (ContainerKind, &'p Container)>,
        pod: &Pod,
        namespace: &str,
        deadline: Instant,
        patient: bool,
    ) -> Vec<ImageFacts<'p>> {
        let containers: Vec<_> = containers.collect();
        let refs: Vec<Result<ImageRef, String>> = containers
            .iter()
            .map(|(_, c)| match c.image.as_deref() {
                None | Some("") => Err("has no image".to_string()),
                Some(image) => ImageRef::parse(image).map_err(|e| e.to_string()),
            })
            .collect();
        let deadline = tokio::time::Instant::from_std(deadline);
        let pull = crate::platforms::PullContext::of_pod(pod, namespace);
        // Most lookups answer at once (the static file, a warm cache): take those answers
        // directly, and wait, bounded by the deadline, only for the rest.
        let mut statuses = Vec::with_capacity(refs.len());
        let mut pending = Vec::new();
        for (i, r) in refs.iter().enumerate() {
            let image = match r {
                Ok(image) => image,
                Err(e) => {
                    statuses.push(ImageStatus::Invalid(e.clone()));
                    continue;
                }
            };
            let mut lookup = self.source.lookup(LookupRequest {
                image,
                patient,
                pull: &pull,
            });
            match (&mut lookup).now_or_never() {
                Some(found) => statuses.push(ImageStatus::Resolved(found)),
                None => {
                    // A placeholder, replaced by the answer waited for below.
                    statuses.push(ImageStatus::Resolved(Lookup::NotFound));
                    pending.push((i, lookup));
                }
            }
        }
        let waited =
            futures_util::future::join_all(pending.into_iter().map(|(i, lookup)| async move {
                match tokio::time::timeout_at(deadline, lookup).await {
                    Ok(found) => (i, found),
                    Err(_) => (
                        i,
                        Lookup::Unavailable("timed out before the admission deadline".into()),
                    ),
                }
            }))
            .await;
        for (i, found) in waited {
            statuses[i] = ImageStatus::Resolved(found);
        }
        containers
            .into_iter()
            .zip(statuses)
            .map(|((kind, c), status)| ImageFacts {
                container: &c.name,
                kind,
                image: c.image.as_deref().unwrap_or(""),
                status,
            })
            .collect()
    }
}
