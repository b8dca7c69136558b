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
mod tests {
    use super::*;

    fn p(os: &str, arch: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.to_owned(),
            architecture: arch.to_owned(),
            variant: variant.map(str::to_owned),
            os_version: None,
        }
    }

    fn parse(s: &str) -> Platform {
        match s.parse() {
            Ok(platform) => platform,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    #[test]
    fn os_is_lowercased_and_macos_becomes_darwin() {
        assert_eq!(Platform::new("Linux", "amd64", None).os, "linux");
        assert_eq!(Platform::new("WINDOWS", "amd64", None).os, "windows");
        assert_eq!(Platform::new("macos", "arm64", None).os, "darwin");
        assert_eq!(Platform::new("MacOS", "arm64", None).os, "darwin");
        assert_eq!(Platform::new("darwin", "arm64", None).os, "darwin");
        assert_eq!(Platform::new("freebsd", "amd64", None).os, "freebsd");
    }

    #[test]
    fn x86_32_spellings_become_386_without_variant() {
        for arch in ["i386", "i486", "i586", "i686", "I686", "386"] {
            assert_eq!(
                Platform::new("linux", arch, None),
                p("linux", "386", None),
                "{arch}"
            );
        }
        assert_eq!(
            Platform::new("linux", "i386", Some("sse2")),
            p("linux", "386", None)
        );
    }

    #[test]
    fn amd64_spellings_and_variants() {
        for arch in ["x86_64", "x86-64", "amd64", "AMD64", "X86_64"] {
            assert_eq!(
                Platform::new("linux", arch, None),
                p("linux", "amd64", None),
                "{arch}"
            );
        }
        assert_eq!(
            Platform::new("linux", "amd64", Some("v1")),
            p("linux", "amd64", None)
        );
        assert_eq!(
            Platform::new("linux", "x86_64", Some("V1")),
            p("linux", "amd64", None)
        );
        for v in ["v2", "v3", "v4"] {
            assert_eq!(
                Platform::new("linux", "amd64", Some(v)),
                p("linux", "amd64", Some(v))
            );
        }
        assert_eq!(
            Platform::new("linux", "x86_64", Some("v3")),
            p("linux", "amd64", Some("v3"))
        );
    }

    #[test]
    fn arm64_spellings_and_variants() {
        for arch in ["aarch64", "arm64", "AArch64"] {
            assert_eq!(
                Platform::new("linux", arch, None),
                p("linux", "arm64", None),
                "{arch}"
            );
        }
        for v in ["8", "v8", "v8.0", "8.0", "V8"] {
            assert_eq!(
                Platform::new("linux", "arm64", Some(v)),
                p("linux", "arm64", None),
                "{v}"
            );
        }
        for v in ["9", "9.0", "v9.0", "v9"] {
            assert_eq!(
                Platform::new("linux", "aarch64", Some(v)),
                p("linux", "arm64", Some("v9")),
                "{v}"
            );
        }
        assert_eq!(
            Platform::new("linux", "arm64", Some("8.2")),
            p("linux", "arm64", Some("v8.2"))
        );
        assert_eq!(
            Platform::new("linux", "arm64", Some("v8.2")),
            p("linux", "arm64", Some("v8.2"))
        );
        // Non-numeric variants are not guessed at.
        assert_eq!(
            Platform::new("linux", "arm64", Some("sve")),
            p("linux", "arm64", Some("sve"))
        );
    }

    #[test]
    fn debian_arm_names() {
        assert_eq!(
            Platform::new("linux", "armhf", None),
            p("linux", "arm", Some("v7"))
        );
        assert_eq!(
            Platform::new("linux", "armhf", Some("v6")),
            p("linux", "arm", Some("v7"))
        );
        assert_eq!(
            Platform::new("linux", "armel", None),
            p("linux", "arm", Some("v6"))
        );
    }

    #[test]
    fn arm_variants() {
        assert_eq!(
            Platform::new("linux", "arm", None),
            p("linux", "arm", Some("v7"))
        );
        assert_eq!(
            Platform::new("linux", "arm", Some("")),
            p("linux", "arm", Some("v7"))
        );
        for (given, want) in [("5", "v5"), ("6", "v6"), ("7", "v7"), ("8", "v8")] {
            assert_eq!(
                Platform::new("linux", "arm", Some(given)),
                p("linux", "arm", Some(want))
            );
            assert_eq!(
                Platform::new("linux", "arm", Some(want)),
                p("linux", "arm", Some(want))
            );
        }
        assert_eq!(
            Platform::new("linux", "ARM", Some("V6")),
            p("linux", "arm", Some("v6"))
        );
    }

    #[test]
    fn other_architectures_are_only_lowercased() {
        assert_eq!(
            Platform::new("linux", "ppc64le", None),
            p("linux", "ppc64le", None)
        );
        assert_eq!(
            Platform::new("linux", "S390X", None),
            p("linux", "s390x", None)
        );
        assert_eq!(
            Platform::new("linux", "riscv64", Some("")),
            p("linux", "riscv64", None)
        );
        assert_eq!(
            Platform::new("linux", "aarch64_be", None),
            p("linux", "aarch64_be", None)
        );
        assert_eq!(
            Platform::new("linux", "mips64le", Some("X")),
            p("linux", "mips64le", Some("x"))
        );
    }

    #[test]
    fn from_oci_keeps_os_version_and_normalises() {
        let win = Platform::from_oci("windows", "amd64", None, Some("10.0.17763.1234"));
        assert_eq!(win.os_version.as_deref(), Some("10.0.17763.1234"));
        assert_eq!(win.to_string(), "windows/amd64");
        let linux = Platform::from_oci("linux", "aarch64", Some("v8"), Some(""));
        assert_eq!(linux, p("linux", "arm64", None));
        let arm = Platform::from_oci("linux", "arm", Some(""), None);
        assert_eq!(arm, p("linux", "arm", Some("v7")));
    }

    #[test]
    fn unknown_marks_attestations() {
        assert!(Platform::from_oci("unknown", "unknown", None, None).is_unknown());
        assert!(Platform::new("linux", "unknown", None).is_unknown());
        assert!(Platform::new("unknown", "amd64", None).is_unknown());
        assert!(!Platform::new("linux", "amd64", None).is_unknown());
    }

    #[test]
    fn display() {
        assert_eq!(p("linux", "amd64", None).to_string(), "linux/amd64");
        assert_eq!(p("linux", "arm", Some("v7")).to_string(), "linux/arm/v7");
        assert_eq!(
            Platform::new("windows", "x86_64", None).to_string(),
            "windows/amd64"
        );
    }

    #[test]
    fn from_str_parses_and_normalises() {
        assert_eq!(parse("linux/amd64"), p("linux", "amd64", None));
        assert_eq!(parse("linux/arm/v7"), p("linux", "arm", Some("v7")));
        assert_eq!(parse("linux/arm64/v8"), p("linux", "arm64", None));
        assert_eq!(parse("windows/amd64"), p("windows", "amd64", None));
        assert_eq!(parse("linux/x86_64"), p("linux", "amd64", None));
        assert_eq!(parse("linux/arm"), p("linux", "arm", Some("v7")));
        assert_eq!(parse("linux/armhf"), p("linux", "arm", Some("v7")));
        assert_eq!(parse("linux/arm/6"), p("linux", "arm", Some("v6")));
        assert_eq!(parse("macos/arm64"), p("darwin", "arm64", None));
        assert_eq!(parse("linux/amd64/v1"), p("linux", "amd64", None));
        assert_eq!(parse("linux/amd64/v3"), p("linux", "amd64", Some("v3")));
    }

    #[test]
    fn display_from_str_round_trip() {
        for s in [
            "linux/amd64",
            "linux/amd64/v3",
            "linux/arm64",
            "linux/arm64/v9",
            "linux/arm/v5",
            "linux/arm/v6",
            "linux/arm/v7",
            "linux/386",
            "linux/ppc64le",
            "linux/s390x",
            "linux/riscv64",
            "windows/amd64",
            "darwin/arm64",
        ] {
            assert_eq!(parse(s).to_string(), s);
        }
        // Non-canonical inputs settle on a fixed point after one round.
        for s in [
            "linux/aarch64/8",
            "linux/x86-64/v1",
            "linux/armel",
            "macos/arm64",
            "linux/i686",
        ] {
            let once = parse(s);
            assert_eq!(parse(&once.to_string()), once, "{s}");
        }
    }

    #[test]
    fn from_str_rejects_malformed_input() {
        let cases = [
            ("", "platform is empty"),
            ("linux", "architecture is missing"),
            ("linux/", "components must not be empty"),
            ("/amd64", "components must not be empty"),
            ("linux/arm/", "components must not be empty"),
            ("linux//amd64", "components must not be empty"),
            ("a/b/c/d", "too many '/'-separated components"),
            ("Linux/amd64", "platform must be lowercase"),
            ("linux/AMD64", "platform must be lowercase"),
            (
                "linux/amd64 ",
                "components may only contain a-z, 0-9, '.', '_' and '-'",
            ),
            (
                " linux/amd64",
                "components may only contain a-z, 0-9, '.', '_' and '-'",
            ),
            (
                "linux /amd64",
                "components may only contain a-z, 0-9, '.', '_' and '-'",
            ),
            (
                "windows/amd64:10.0",
                "components may only contain a-z, 0-9, '.', '_' and '-'",
            ),
            (
                "linux/amd64\n",
                "components may only contain a-z, 0-9, '.', '_' and '-'",
            ),
        ];
        for (input, reason) in cases {
            let err = input.parse::<Platform>();
            assert_eq!(
                err,
                Err(PlatformError {
                    input: input.to_owned(),
                    reason
                }),
                "{input:?}"
            );
        }
    }

    #[test]
    fn error_message_names_input_and_expected_form() {
        let Err(err) = "linux".parse::<Platform>() else {
            panic!("\"linux\" should be rejected");
        };
        let msg = err.to_string();
        assert!(msg.contains("\"linux\""), "{msg}");
        assert!(msg.contains("os/arch[/variant]"), "{msg}");
    }

    #[test]
    fn ordering_is_by_os_then_architecture_then_variant() {
        let mut v = [
            parse("linux/arm64"),
            parse("linux/amd64"),
            parse("linux/arm/v7"),
        ];
        v.sort();
        let sorted: Vec<String> = v.iter().map(ToString::to_string).collect();
        assert_eq!(sorted, ["linux/amd64", "linux/arm/v7", "linux/arm64"]);
    }
}
