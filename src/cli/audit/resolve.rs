//! Every distinct image looked up once, a few at a time, through the platform source `check`
//! and `serve` build; pull secrets listed once when RBAC allows; a progress bar on a terminal.

use super::list::{self, ListError};
use crate::audit::{ImageFacts, ImageStatus};
use crate::cluster::secrets::{DOCKER_CFG_FIELD, DOCKER_CONFIG_JSON_FIELD};
use crate::cluster::WatchedPullSecrets;
use crate::image::ImageRef;
use crate::platforms::{Lookup, LookupFuture, LookupRequest, PlatformSource, PullContext};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::ListParams;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher::Event;
use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::sync::Arc;

/// Lookups in flight at once: enough to hide registry latency, few enough not to look like a
/// flood to a registry's rate limit.
const CONCURRENCY: usize = 8;

/// The cluster's pull secrets and service accounts, listed once (both `type=` field selectors,
/// as the `serve` watch does: no other Secret is ever fetched).
pub async fn pull_secrets(
    client: &kube::Client,
    namespace: Option<&str>,
) -> Result<WatchedPullSecrets, ListError> {
    let mut stores = [Writer::<Secret>::default(), Writer::<Secret>::default()];
    for (store, field) in stores
        .iter_mut()
        .zip([DOCKER_CONFIG_JSON_FIELD, DOCKER_CFG_FIELD])
    {
        store.apply_watcher_event(&Event::Init);
        let api = list::api::<Secret>(client, namespace);
        let params = ListParams::default().fields(field);
        list::pages(api, params, "secrets".into(), namespace, |s| {
            store.apply_watcher_event(&Event::InitApply(s));
        })
        .await?;
        store.apply_watcher_event(&Event::InitDone);
    }
    let mut accounts = Writer::<ServiceAccount>::default();
    accounts.apply_watcher_event(&Event::Init);
    let api = list::api::<ServiceAccount>(client, namespace);
    list::pages(
        api,
        ListParams::default(),
        "serviceaccounts".into(),
        namespace,
        |a| {
            accounts.apply_watcher_event(&Event::InitApply(a));
        },
    )
    .await?;
    accounts.apply_watcher_event(&Event::InitDone);
    let [json, cfg] = stores;
    Ok(WatchedPullSecrets::from_stores(
        json.as_reader(),
        cfg.as_reader(),
        accounts.as_reader(),
    ))
}

/// Looks up each image of `wanted` (as written -> who pulls it) once per normalised reference.
/// `registry` says whether registry lookups are on, for the reason an unknown image gives.
pub async fn resolve(
    source: Arc<dyn PlatformSource>,
    wanted: BTreeMap<String, PullContext>,
    registry: bool,
) -> BTreeMap<String, ImageFacts> {
    let mut facts = BTreeMap::new();
    let mut distinct: BTreeMap<String, (ImageRef, PullContext)> = BTreeMap::new();
    let mut written_as: Vec<(String, String)> = Vec::new();
    for (written, pull) in wanted {
        match ImageRef::parse(&written) {
            Ok(image) => {
                let reference = image.to_string();
                written_as.push((written, reference.clone()));
                distinct.entry(reference).or_insert((image, pull));
            }
            Err(e) => {
                let status = ImageStatus::Unresolved {
                    reason: format!("not a valid image reference: {e}"),
                    transient: false,
                };
                let reference = written.clone();
                facts.insert(written, ImageFacts { reference, status });
            }
        }
    }
    let bar = progress(distinct.len());
    let lookups = futures_util::stream::iter(distinct)
        .map(|(reference, (image, pull))| {
            let source = Arc::clone(&source);
            let bar = bar.clone();
            async move {
                let request = LookupRequest {
                    image: &image,
                    patient: false,
                    pull: &pull,
                };
                let lookup = source.lookup(request).await;
                if let Some(bar) = &bar {
                    bar.inc(1);
                }
                (reference, lookup)
            }
        })
        .buffer_unordered(CONCURRENCY);
    let found: HashMap<String, Lookup> = lookups.collect().await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    for (written, reference) in written_as {
        let status = match found.get(&reference) {
            Some(Lookup::Found(p)) => ImageStatus::Resolved(Arc::clone(p)),
            Some(Lookup::Unavailable(why)) => ImageStatus::Unresolved {
                reason: why.to_string(),
                transient: true,
            },
            Some(Lookup::Failed(why)) => ImageStatus::Unresolved {
                reason: why.to_string(),
                transient: false,
            },
            Some(Lookup::NotFound) | None => ImageStatus::Unresolved {
                reason: if registry {
                    "no source knows its platforms".to_string()
                } else {
                    "not in the --platforms file, and registry lookups are off (--registry-config, --docker-config)".to_string()
                },
                transient: false,
            },
        };
        facts.insert(written, ImageFacts { reference, status });
    }
    facts
}

fn progress(total: usize) -> Option<indicatif::ProgressBar> {
    if total < 2 || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total as u64);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} images {elapsed}")
    {
        bar.set_style(style);
    }
    Some(bar)
}

/// The resolved images as a platform source, so the admission pipeline decides from exactly
/// what the audit looked up, without asking any registry a second time.
pub struct Resolved(HashMap<String, Lookup>);

impl Resolved {
    /// The images of `images` that resolved, by normalised reference; an unresolved one is
    /// answered as not found.
    pub fn new(images: &BTreeMap<String, ImageFacts>) -> Resolved {
        let known = images
            .values()
            .filter_map(|f| match &f.status {
                ImageStatus::Resolved(p) => Some((f.reference.clone(), Lookup::Found(p.clone()))),
                ImageStatus::Unresolved { .. } => None,
            })
            .collect();
        Resolved(known)
    }
}

impl PlatformSource for Resolved {
    fn lookup<'a>(&'a self, request: LookupRequest<'a>) -> LookupFuture<'a> {
        let answer = self
            .0
            .get(&request.image.to_string())
            .cloned()
            .unwrap_or(Lookup::NotFound);
        Box::pin(std::future::ready(answer))
    }
}
