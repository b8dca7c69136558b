//! One image from one host with one credential: the tag by HEAD (GET when the registry sends
//! no digest), the manifest or index by digest, unlabelled index entries and config blobs as
//! needed, every body checked against its digest.

use super::client::{Endpoint, FetchError};
use super::credentials::{Credential, Scope};
use super::manifest::{self, Document, ManifestError};
use super::{Inner, LookupError};
use crate::image::ImageRef;
use crate::platforms::ImagePlatforms;
use reqwest::{Method, StatusCode};
use std::sync::Arc;

impl Inner {
    /// Resolves one image with one credential (or anonymously).
    pub(super) async fn fetch(
        &self,
        ep: &Endpoint,
        image: &ImageRef,
        credential: Option<&Credential>,
    ) -> Result<Arc<ImagePlatforms>, LookupError> {
        let scope = credential.map_or(Scope::Anonymous, Credential::scope);
        let repo = &image.repository;
        let name = image.to_string();
        let fetch_err = |source| LookupError::Fetch {
            image: name.clone(),
            source,
        };
        let digest = match (&image.digest, &image.tag) {
            (Some(d), _) => d.clone(),
            (None, tag) => {
                let tag = tag.as_deref().unwrap_or("latest");
                let path = format!("manifests/{tag}");
                let resp = self
                    .client
                    .send(ep, repo, Method::HEAD, &path, credential)
                    .await
                    .map_err(fetch_err)?;
                let resp = check_status(ep, resp, &format!("tag {tag}")).map_err(fetch_err)?;
                let digest = match header_digest(&resp) {
                    Some(d) => d,
                    // A registry that does not send the digest on HEAD: read the manifest.
                    None => {
                        let resp = self
                            .client
                            .send(ep, repo, Method::GET, &path, credential)
                            .await
                            .map_err(fetch_err)?;
                        let resp =
                            check_status(ep, resp, &format!("tag {tag}")).map_err(fetch_err)?;
                        let body = self
                            .client
                            .body(ep, resp, "manifest")
                            .await
                            .map_err(fetch_err)?;
                        if body.is_empty() {
                            return Err(LookupError::NoDigest {
                                image: name,
                                host: ep.host.clone(),
                            });
                        }
                        manifest::sha256_digest(&body)
                    }
                };
                self.caches
                    .put_tag(&ep.host, repo, tag, scope, digest.clone())
                    .await;
                if let Some(p) = self
                    .caches
                    .platforms(&ep.host, repo, &digest, &[scope])
                    .await
                {
                    return Ok(p);
                }
                digest
            }
        };
        let platforms = self.platforms_of(ep, image, &digest, credential).await?;
        let platforms = Arc::new(ImagePlatforms::new(platforms));
        self.caches
            .put_platforms(&ep.host, repo, &digest, scope, Arc::clone(&platforms))
            .await;
        Ok(platforms)
    }

    /// GETs the manifest `digest` and reads its platforms (children and config blobs as needed).
    async fn platforms_of(
        &self,
        ep: &Endpoint,
        image: &ImageRef,
        digest: &str,
        credential: Option<&Credential>,
    ) -> Result<Vec<crate::image::Platform>, LookupError> {
        let name = image.to_string();
        let doc_err = |source| LookupError::Document {
            image: name.clone(),
            source,
        };
        let (doc, _) = self.document(ep, image, digest, credential).await?;
        match doc {
            Document::Schema1(p) => Ok(vec![p]),
            Document::Image { config } => Ok(vec![
                self.config_platform(ep, image, &config.digest, credential)
                    .await?,
            ]),
            Document::Index(entries) => {
                let (mut platforms, unlabelled) =
                    manifest::index_platforms(&entries).map_err(doc_err)?;
                for child in unlabelled {
                    let child_err = |source| LookupError::Child {
                        image: name.clone(),
                        digest: child.digest.clone(),
                        source,
                    };
                    let (doc, _) = match self.document(ep, image, &child.digest, credential).await {
                        Ok(d) => d,
                        Err(LookupError::Fetch { source, .. }) => return Err(child_err(source)),
                        Err(e) => return Err(e),
                    };
                    let platform = match doc {
                        Document::Image { config } => {
                            self.config_platform(ep, image, &config.digest, credential)
                                .await?
                        }
                        Document::Schema1(p) => p,
                        Document::Index(_) => {
                            return Err(doc_err(ManifestError::NestedIndex(child.digest.clone())))
                        }
                    };
                    if !platform.is_unknown() && !platforms.contains(&platform) {
                        platforms.push(platform);
                    }
                }
                Ok(platforms)
            }
        }
    }

    async fn document(
        &self,
        ep: &Endpoint,
        image: &ImageRef,
        digest: &str,
        credential: Option<&Credential>,
    ) -> Result<(Document, Vec<u8>), LookupError> {
        let path = format!("manifests/{digest}");
        let (content_type, body) = self
            .get_verified(ep, image, &path, "manifest", digest, credential)
            .await?;
        let doc = manifest::parse(content_type.as_deref(), &body).map_err(|source| {
            LookupError::Document {
                image: image.to_string(),
                source,
            }
        })?;
        Ok((doc, body))
    }

    async fn config_platform(
        &self,
        ep: &Endpoint,
        image: &ImageRef,
        digest: &str,
        credential: Option<&Credential>,
    ) -> Result<crate::image::Platform, LookupError> {
        let path = format!("blobs/{digest}");
        let (_, body) = self
            .get_verified(ep, image, &path, "image config", digest, credential)
            .await?;
        manifest::config_platform(&body).map_err(|source| LookupError::Document {
            image: image.to_string(),
            source,
        })
    }

    /// GETs a manifest or blob (`kind`, for messages) by digest and checks the body against the
    /// digest, returning the content type and the body.
    async fn get_verified(
        &self,
        ep: &Endpoint,
        image: &ImageRef,
        path: &str,
        kind: &str,
        digest: &str,
        credential: Option<&Credential>,
    ) -> Result<(Option<String>, Vec<u8>), LookupError> {
        let fetch_err = |source| LookupError::Fetch {
            image: image.to_string(),
            source,
        };
        let resp = self
            .client
            .send(ep, &image.repository, Method::GET, path, credential)
            .await
            .map_err(fetch_err)?;
        let resp = check_status(ep, resp, &format!("{kind} {digest}")).map_err(fetch_err)?;
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let kind = if path.starts_with("blobs/") {
            "image config"
        } else {
            "manifest"
        };
        let body = self.client.body(ep, resp, kind).await.map_err(fetch_err)?;
        // Schema1 digests cover the payload without its signatures: not checkable from the body.
        let schema1 = content_type
            .as_deref()
            .is_some_and(|c| c.starts_with(manifest::DOCKER_SCHEMA1));
        if !schema1 {
            manifest::verify_digest(digest, &body).map_err(|source| LookupError::Document {
                image: image.to_string(),
                source,
            })?;
        }
        Ok((content_type, body))
    }
}

fn check_status(
    ep: &Endpoint,
    resp: reqwest::Response,
    what: &str,
) -> Result<reqwest::Response, FetchError> {
    match resp.status() {
        s if s.is_success() => Ok(resp),
        StatusCode::NOT_FOUND => Err(FetchError::NotFound {
            host: ep.host.clone(),
            what: what.to_string(),
        }),
        s => Err(FetchError::Status {
            host: ep.host.clone(),
            status: s.as_u16(),
            what: what.to_string(),
        }),
    }
}

fn header_digest(resp: &reqwest::Response) -> Option<String> {
    let d = resp.headers().get("docker-content-digest")?.to_str().ok()?;
    d.contains(':').then(|| d.to_string())
}
