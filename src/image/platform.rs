//! OCI platforms (`os/arch[/variant]`), normalised as containerd's
//! `platforms.Normalize` does.
//!
//! Image indexes, image configs and user policy all spell the same platform
//! differently (`aarch64` vs `arm64/v8`, `armhf` vs `arm/v7`). Comparing them
//! only after normalisation keeps a policy for `linux/arm64` from silently
//! missing an index entry that says `linux/arm64/v8`.

use std::fmt;
use std::str::FromStr;

/// A normalised OCI platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Platform {
    /// Operating system, lowercase, e.g. `linux`, `windows`, `darwin`.
    pub os: String,
    /// Architecture in Go/OCI naming, e.g. `amd64`, `arm64`, `arm`, `386`.
    pub architecture: String,
    /// CPU variant, e.g. `v7` for `arm`; `None` where the variant is implied
    /// by the architecture (`arm64` v8, `amd64` v1).
    pub variant: Option<String>,
    /// OS version from the OCI `os.version` field (Windows build numbers);
    /// kept verbatim and not part of the textual form.
    pub os_version: Option<String>,
}

/// Why a string is not a platform specifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid platform {input:?}: {reason}; expected the form \"os/arch[/variant]\", e.g. \"linux/amd64\" or \"linux/arm/v7\""
)]
pub struct PlatformError {
    /// The rejected input, verbatim.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Platform {
    /// Builds a platform from its parts, normalising them.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform::from_oci(os, architecture, variant, None)
    }

    /// From the fields of an OCI index entry / image config (`os`,
    /// `architecture`, `variant`, `os.version`); normalises. Empty strings
    /// count as absent, since OCI JSON often carries `"variant": ""`.
    pub fn from_oci(
        os: &str,
        architecture: &str,
        variant: Option<&str>,
        os_version: Option<&str>,
    ) -> Platform {
        let (architecture, variant) = normalize_arch(architecture, variant.unwrap_or(""));
        Platform {
            os: normalize_os(os),
            architecture,
            variant,
            os_version: os_version.filter(|v| !v.is_empty()).map(str::to_owned),
        }
    }

    /// True for entries with `os` or `architecture` set to `unknown`, which
    /// BuildKit uses for attestation manifests rather than runnable images.
    pub fn is_unknown(&self) -> bool {
        self.os == "unknown" || self.architecture == "unknown"
    }
}

fn normalize_os(os: &str) -> String {
    let os = os.to_lowercase();
    match os.as_str() {
        "macos" => "darwin".to_owned(),
        _ => os,
    }
}

/// Port of containerd `normalizeArch`, extended to the other i?86 spellings.
fn normalize_arch(architecture: &str, variant: &str) -> (String, Option<String>) {
    let architecture = architecture.to_lowercase();
    let variant = variant.to_lowercase();
    let (architecture, variant) = match architecture.as_str() {
        // 386 has no variants in OCI, so any given one is noise.
        "i386" | "i486" | "i586" | "i686" => ("386".to_owned(), String::new()),
        "x86_64" | "x86-64" | "amd64" => {
            // v1 is the baseline every amd64 CPU meets, so it says nothing.
            let variant = if variant == "v1" {
                String::new()
            } else {
                variant
            };
            ("amd64".to_owned(), variant)
        }
        "aarch64" | "arm64" => ("arm64".to_owned(), normalize_arm64_variant(variant)),
        "armhf" => ("arm".to_owned(), "v7".to_owned()),
        "armel" => ("arm".to_owned(), "v6".to_owned()),
        "arm" => {
            let variant = match variant.as_str() {
                // containerd assumes v7 for a bare "arm", the common case on real hardware.
                "" | "7" => "v7".to_owned(),
                "5" | "6" | "8" => format!("v{variant}"),
                _ => variant,
            };
            ("arm".to_owned(), variant)
        }
        _ => (architecture, variant),
    };
    let variant = Some(variant).filter(|v| !v.is_empty());
    (architecture, variant)
}

/// v8 is the arm64 baseline and is dropped; numeric variants get a leading
/// `v` and lose a trailing `.0` (containerd maps `9`, `9.0`, `v9.0` to `v9`).
fn normalize_arm64_variant(variant: String) -> String {
    let mut bare = variant.strip_prefix('v').unwrap_or(&variant);
    // Every trailing ".0" ("8.0.0" is v8), so normalising twice changes nothing.
    while let Some(shorter) = bare.strip_suffix(".0") {
        bare = shorter;
    }
    let numeric = !bare.is_empty()
        && bare.starts_with(|c: char| c.is_ascii_digit())
        && bare.chars().all(|c| c.is_ascii_digit() || c == '.');
    if !numeric {
        return variant;
    }
    if bare == "8" {
        String::new()
    } else {
        format!("v{bare}")
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    /// Parses `os/arch[/variant]` and normalises it. Unlike containerd's
    /// `platforms.Parse`, a lone `os` or `arch` is rejected: policy must not
    /// depend on the host the webhook happens to run on.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason| {
            Err(PlatformError {
                input: s.to_owned(),
                reason,
            })
        };
        if s.is_empty() {
            return fail("platform is empty");
        }
        let parts: Vec<&str> = s.split('/').collect();
        match parts.len() {
            1 => return fail("architecture is missing"),
            2 | 3 => {}
            _ => return fail("too many '/'-separated components"),
        }
        for part in &parts {
            if part.is_empty() {
                return fail("components must not be empty");
            }
            if part.chars().any(char::is_uppercase) {
                return fail("platform must be lowercase");
            }
            let allowed =
                |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b);
            if !part.bytes().all(allowed) {
                return fail("components may only contain a-z, 0-9, '.', '_' and '-'");
            }
        }
        Ok(Platform::new(parts[0], parts[1], parts.get(2).copied()))
    }
}

#[cfg(test)]
#[path = "platform_tests.rs"]
mod tests;
