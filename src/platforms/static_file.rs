//! The static platforms file: image references mapped to platform strings, for air-gapped
//! clusters and for tests.
//!
//! ```toml
//! [images]
//! "docker.io/library/nginx:1.27" = ["linux/amd64", "linux/arm64", "linux/arm/v7"]
//! ```

use super::{ImagePlatforms, Lookup, LookupFuture, LookupRequest, PlatformSource};
use crate::image::{ImageRef, Platform};
use crate::text::line_col;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toml::Spanned;

/// Why a platforms file could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum StaticPlatformsError {
    /// The file could not be read.
    #[error("cannot read platforms file {path}: {source}")]
    Read {
        /// The platforms file.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// The text is not TOML or does not fit the schema (a key other than `images`, a value that
    /// is not a list of strings); the message, from `toml`, says where.
    #[error("platforms file {path}: {message}")]
    Parse {
        /// The platforms file.
        path: PathBuf,
        /// `toml`'s error, with its line, column and source excerpt.
        message: String,
    },
    /// An entry is wrong (a bad image reference or platform string, an image listed twice);
    /// located in the file.
    #[error("platforms file {path}:{line}:{column}: {message}")]
    Invalid {
        /// The platforms file.
        path: PathBuf,
        /// 1-based line of the offending image name or platform string.
        line: usize,
        /// 1-based column on that line, counted in bytes.
        column: usize,
        /// What is wrong with the entry.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    #[serde(default)]
    images: BTreeMap<Spanned<String>, Spanned<Vec<Spanned<String>>>>,
}

/// Image platforms read from a file, keyed by normalised reference.
#[derive(Debug, Clone, Default)]
pub struct StaticPlatforms {
    by_key: HashMap<String, Arc<ImagePlatforms>>,
}

impl StaticPlatforms {
    /// Reads and parses the platforms file at `path`.
    pub fn load(path: &Path) -> Result<StaticPlatforms, StaticPlatformsError> {
        let source =
            std::fs::read_to_string(path).map_err(|source| StaticPlatformsError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        StaticPlatforms::from_toml(&source, path)
    }

    /// Parses platforms file text; `path` only names it in errors.
    pub fn from_toml(source: &str, path: &Path) -> Result<StaticPlatforms, StaticPlatformsError> {
        let spec: FileSpec = toml::from_str(source).map_err(|e| StaticPlatformsError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let invalid = |span: std::ops::Range<usize>, message: String| {
            let (line, column) = line_col(source, span.start);
            StaticPlatformsError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                message,
            }
        };
        let mut by_key = HashMap::with_capacity(spec.images.len());
        for (name, platforms) in spec.images {
            let image =
                ImageRef::parse(name.get_ref()).map_err(|e| invalid(name.span(), e.to_string()))?;
            let mut parsed = Vec::with_capacity(platforms.get_ref().len());
            for p in platforms.get_ref() {
                let platform: Platform = p
                    .get_ref()
                    .parse()
                    .map_err(|e| invalid(p.span(), format!("image \"{}\": {e}", name.get_ref())))?;
                parsed.push(platform);
            }
            let key = image.lookup_key();
            if by_key
                .insert(key.clone(), Arc::new(ImagePlatforms::new(parsed)))
                .is_some()
            {
                return Err(invalid(
                    name.span(),
                    format!(
                        "image \"{}\" is listed twice (both normalise to {key})",
                        name.get_ref()
                    ),
                ));
            }
        }
        Ok(StaticPlatforms { by_key })
    }

    /// How many images the file lists.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether the file lists no image (or no file was given).
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// The entry for an image, by its normalised reference (digest first, as the digest wins).
    pub fn get(&self, image: &ImageRef) -> Option<&Arc<ImagePlatforms>> {
        self.by_key.get(&image.lookup_key())
    }
}

impl PlatformSource for StaticPlatforms {
    fn lookup<'a>(&'a self, request: LookupRequest<'a>) -> LookupFuture<'a> {
        let found = match self.get(request.image) {
            Some(p) => Lookup::Found(Arc::clone(p)),
            None => Lookup::NotFound,
        };
        Box::pin(std::future::ready(found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<StaticPlatforms, StaticPlatformsError> {
        StaticPlatforms::from_toml(text, Path::new("platforms.toml"))
    }

    #[test]
    fn short_names_in_pods_find_normalised_keys() {
        let p = load(
            r#"[images]
"docker.io/library/nginx:1.27" = ["linux/amd64", "linux/arm64", "linux/arm/v7"]
"ghcr.io/acme/api@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" = ["linux/amd64"]
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let nginx = ImageRef::parse("nginx:1.27").unwrap_or_else(|e| panic!("{e}"));
        let found = p.get(&nginx).map(|p| p.describe());
        assert_eq!(
            found.as_deref(),
            Some("linux/amd64, linux/arm64, linux/arm/v7")
        );
        let tagged = ImageRef::parse(
            "ghcr.io/acme/api:v1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            p.get(&tagged).is_some(),
            "tag+digest is looked up by digest"
        );
        let latest = ImageRef::parse("nginx").unwrap_or_else(|e| panic!("{e}"));
        assert!(p.get(&latest).is_none());
    }

    #[test]
    fn bad_entries_name_the_line_and_the_problem() {
        let err =
            load("[images]\n\"nginx:1\" = [\"linux/amd64\"]\n\"Bad Image\" = [\"linux/amd64\"]\n")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
        assert!(
            err.starts_with("platforms file platforms.toml:3:1:"),
            "{err}"
        );
        let err = load("[images]\n\"nginx:1\" = [\"linux\"]\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("platforms.toml:2:14"), "{err}");
        let err = load(
            "[images]\n\"nginx\" = [\"linux/amd64\"]\n\"docker.io/library/nginx:latest\" = []\n",
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("listed twice"), "{err}");
        let err = load("[imagez]\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("unknown field `imagez`"), "{err}");
    }
}
