//! Normalisation cases, from containerd's own tests and real image indexes.

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
