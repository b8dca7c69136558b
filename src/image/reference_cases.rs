//! The reference tables the image reference tests run: accepted references with their parts and
//! canonical form, and refused ones with their error, ported from distribution's own suites.

use super::super::ReferenceError;

macro_rules! ff64 {
    () => {
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
    };
}
macro_rules! ff128 {
    () => {
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
    };
}
macro_rules! be17 {
    () => {
        "be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912"
    };
}
macro_rules! dbcc {
    () => {
        "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c"
    };
}
macro_rules! busy {
    () => {
        "86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa"
    };
}

/// (input, registry, repository, tag, digest, canonical)
pub(super) type Valid = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    &'static str,
);

#[rustfmt::skip]
pub(super) const VALID: &[Valid] = &[
    // reference_test.go TestReferenceParse, with ParseNormalizedNamed semantics.
    ("test_com", "docker.io", "library/test_com", Some("latest"), None, "docker.io/library/test_com:latest"),
    ("test.com:tag", "docker.io", "library/test.com", Some("tag"), None, "docker.io/library/test.com:tag"),
    ("test.com:5000", "docker.io", "library/test.com", Some("5000"), None, "docker.io/library/test.com:5000"),
    ("test.com/repo:tag", "test.com", "repo", Some("tag"), None, "test.com/repo:tag"),
    ("test:5000/repo", "test:5000", "repo", Some("latest"), None, "test:5000/repo:latest"),
    ("test:5000/repo:tag", "test:5000", "repo", Some("tag"), None, "test:5000/repo:tag"),
    (concat!("test:5000/repo@sha256:", ff64!()), "test:5000", "repo", None, Some(concat!("sha256:", ff64!())), concat!("test:5000/repo@sha256:", ff64!())),
    (concat!("test:5000/repo:tag@sha256:", ff64!()), "test:5000", "repo", Some("tag"), Some(concat!("sha256:", ff64!())), concat!("test:5000/repo:tag@sha256:", ff64!())),
    ("lowercase:Uppercase", "docker.io", "library/lowercase", Some("Uppercase"), None, "docker.io/library/lowercase:Uppercase"),
    ("sub-dom1.foo.com/bar/baz/quux", "sub-dom1.foo.com", "bar/baz/quux", Some("latest"), None, "sub-dom1.foo.com/bar/baz/quux:latest"),
    ("sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com", "bar/baz/quux", Some("some-long-tag"), None, "sub-dom1.foo.com/bar/baz/quux:some-long-tag"),
    ("b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io", "test.example.com/my-app", Some("test.example.com"), None, "b.gcr.io/test.example.com/my-app:test.example.com"),
    ("xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com", "myimage", Some("xn--n3h.com"), None, "xn--n3h.com/myimage:xn--n3h.com"),
    (concat!("xn--7o8h.com/myimage:xn--7o8h.com@sha512:", ff128!()), "xn--7o8h.com", "myimage", Some("xn--7o8h.com"), Some(concat!("sha512:", ff128!())), concat!("xn--7o8h.com/myimage:xn--7o8h.com@sha512:", ff128!())),
    ("foo_bar.com:8080", "docker.io", "library/foo_bar.com", Some("8080"), None, "docker.io/library/foo_bar.com:8080"),
    ("foo/foo_bar.com:8080", "docker.io", "foo/foo_bar.com", Some("8080"), None, "docker.io/foo/foo_bar.com:8080"),
    ("192.168.1.1", "docker.io", "library/192.168.1.1", Some("latest"), None, "docker.io/library/192.168.1.1:latest"),
    ("192.168.1.1:tag", "docker.io", "library/192.168.1.1", Some("tag"), None, "docker.io/library/192.168.1.1:tag"),
    ("192.168.1.1:5000", "docker.io", "library/192.168.1.1", Some("5000"), None, "docker.io/library/192.168.1.1:5000"),
    ("192.168.1.1/repo", "192.168.1.1", "repo", Some("latest"), None, "192.168.1.1/repo:latest"),
    ("192.168.1.1:5000/repo", "192.168.1.1:5000", "repo", Some("latest"), None, "192.168.1.1:5000/repo:latest"),
    ("192.168.1.1:5000/repo:5050", "192.168.1.1:5000", "repo", Some("5050"), None, "192.168.1.1:5000/repo:5050"),
    ("[2001:db8::1]/repo", "[2001:db8::1]", "repo", Some("latest"), None, "[2001:db8::1]/repo:latest"),
    ("[2001:db8:1:2:3:4:5:6]/repo:tag", "[2001:db8:1:2:3:4:5:6]", "repo", Some("tag"), None, "[2001:db8:1:2:3:4:5:6]/repo:tag"),
    ("[2001:db8::1]:5000/repo", "[2001:db8::1]:5000", "repo", Some("latest"), None, "[2001:db8::1]:5000/repo:latest"),
    ("[2001:db8::1]:5000/repo:tag", "[2001:db8::1]:5000", "repo", Some("tag"), None, "[2001:db8::1]:5000/repo:tag"),
    (concat!("[2001:db8::1]:5000/repo@sha256:", ff64!()), "[2001:db8::1]:5000", "repo", None, Some(concat!("sha256:", ff64!())), concat!("[2001:db8::1]:5000/repo@sha256:", ff64!())),
    (concat!("[2001:db8::1]:5000/repo:tag@sha256:", ff64!()), "[2001:db8::1]:5000", "repo", Some("tag"), Some(concat!("sha256:", ff64!())), concat!("[2001:db8::1]:5000/repo:tag@sha256:", ff64!())),
    ("[2001:db8::]:5000/repo", "[2001:db8::]:5000", "repo", Some("latest"), None, "[2001:db8::]:5000/repo:latest"),
    ("[::1]:5000/repo", "[::1]:5000", "repo", Some("latest"), None, "[::1]:5000/repo:latest"),
    // normalize_test.go TestValidateReferenceName (valid).
    ("docker/docker", "docker.io", "docker/docker", Some("latest"), None, "docker.io/docker/docker:latest"),
    ("library/debian", "docker.io", "library/debian", Some("latest"), None, "docker.io/library/debian:latest"),
    ("debian", "docker.io", "library/debian", Some("latest"), None, "docker.io/library/debian:latest"),
    ("docker.io/docker/docker", "docker.io", "docker/docker", Some("latest"), None, "docker.io/docker/docker:latest"),
    ("docker.io/library/debian", "docker.io", "library/debian", Some("latest"), None, "docker.io/library/debian:latest"),
    ("docker.io/debian", "docker.io", "library/debian", Some("latest"), None, "docker.io/library/debian:latest"),
    ("index.docker.io/docker/docker", "docker.io", "docker/docker", Some("latest"), None, "docker.io/docker/docker:latest"),
    ("index.docker.io/library/debian", "docker.io", "library/debian", Some("latest"), None, "docker.io/library/debian:latest"),
    ("index.docker.io/debian", "docker.io", "library/debian", Some("latest"), None, "docker.io/library/debian:latest"),
    ("127.0.0.1:5000/docker/docker", "127.0.0.1:5000", "docker/docker", Some("latest"), None, "127.0.0.1:5000/docker/docker:latest"),
    ("127.0.0.1:5000/library/debian", "127.0.0.1:5000", "library/debian", Some("latest"), None, "127.0.0.1:5000/library/debian:latest"),
    ("127.0.0.1:5000/debian", "127.0.0.1:5000", "debian", Some("latest"), None, "127.0.0.1:5000/debian:latest"),
    ("192.168.0.1", "docker.io", "library/192.168.0.1", Some("latest"), None, "docker.io/library/192.168.0.1:latest"),
    ("192.168.0.1:80", "docker.io", "library/192.168.0.1", Some("80"), None, "docker.io/library/192.168.0.1:80"),
    ("192.168.0.1:8/debian", "192.168.0.1:8", "debian", Some("latest"), None, "192.168.0.1:8/debian:latest"),
    ("192.168.0.2:25000/debian", "192.168.0.2:25000", "debian", Some("latest"), None, "192.168.0.2:25000/debian:latest"),
    ("thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", "docker.io", "library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", Some("latest"), None, "docker.io/library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev:latest"),
    ("[fc00::1]:5000/docker", "[fc00::1]:5000", "docker", Some("latest"), None, "[fc00::1]:5000/docker:latest"),
    ("[fc00::1]:5000/docker/docker", "[fc00::1]:5000", "docker/docker", Some("latest"), None, "[fc00::1]:5000/docker/docker:latest"),
    ("[fc00:1:2:3:4:5:6:7]:5000/library/debian", "[fc00:1:2:3:4:5:6:7]:5000", "library/debian", Some("latest"), None, "[fc00:1:2:3:4:5:6:7]:5000/library/debian:latest"),
    ("docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", "docker.io", "library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", Some("latest"), None, "docker.io/library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a:latest"),
    ("Docker/docker", "Docker", "docker", Some("latest"), None, "Docker/docker:latest"),
    ("DOCKER/docker", "DOCKER", "docker", Some("latest"), None, "DOCKER/docker:latest"),
    // normalize_test.go TestValidateRemoteName (valid).
    ("docker-rules/docker", "docker.io", "docker-rules/docker", Some("latest"), None, "docker.io/docker-rules/docker:latest"),
    ("docker---rules/docker", "docker.io", "docker---rules/docker", Some("latest"), None, "docker.io/docker---rules/docker:latest"),
    ("doc/docker", "docker.io", "doc/docker", Some("latest"), None, "docker.io/doc/docker:latest"),
    ("d/docker", "docker.io", "d/docker", Some("latest"), None, "docker.io/d/docker:latest"),
    ("jess/t", "docker.io", "jess/t", Some("latest"), None, "docker.io/jess/t:latest"),
    ("dock__er/docker", "docker.io", "dock__er/docker", Some("latest"), None, "docker.io/dock__er/docker:latest"),
    // normalize_test.go TestParseRepositoryInfo.
    ("fooo/bar", "docker.io", "fooo/bar", Some("latest"), None, "docker.io/fooo/bar:latest"),
    ("index.docker.io/fooo/bar", "docker.io", "fooo/bar", Some("latest"), None, "docker.io/fooo/bar:latest"),
    ("ubuntu", "docker.io", "library/ubuntu", Some("latest"), None, "docker.io/library/ubuntu:latest"),
    ("nonlibrary/ubuntu", "docker.io", "nonlibrary/ubuntu", Some("latest"), None, "docker.io/nonlibrary/ubuntu:latest"),
    ("other/library", "docker.io", "other/library", Some("latest"), None, "docker.io/other/library:latest"),
    ("127.0.0.1:8000/private/moonbase", "127.0.0.1:8000", "private/moonbase", Some("latest"), None, "127.0.0.1:8000/private/moonbase:latest"),
    ("127.0.0.1:8000/privatebase", "127.0.0.1:8000", "privatebase", Some("latest"), None, "127.0.0.1:8000/privatebase:latest"),
    ("example.com/private/moonbase", "example.com", "private/moonbase", Some("latest"), None, "example.com/private/moonbase:latest"),
    ("example.com/privatebase", "example.com", "privatebase", Some("latest"), None, "example.com/privatebase:latest"),
    ("example.com:8000/private/moonbase", "example.com:8000", "private/moonbase", Some("latest"), None, "example.com:8000/private/moonbase:latest"),
    ("example.com:8000/privatebasee", "example.com:8000", "privatebasee", Some("latest"), None, "example.com:8000/privatebasee:latest"),
    ("ubuntu-12.04-base", "docker.io", "library/ubuntu-12.04-base", Some("latest"), None, "docker.io/library/ubuntu-12.04-base:latest"),
    ("index.docker.io/library/ubuntu-12.04-base", "docker.io", "library/ubuntu-12.04-base", Some("latest"), None, "docker.io/library/ubuntu-12.04-base:latest"),
    ("docker.io/foo", "docker.io", "library/foo", Some("latest"), None, "docker.io/library/foo:latest"),
    ("library/foo/bar", "docker.io", "library/foo/bar", Some("latest"), None, "docker.io/library/foo/bar:latest"),
    ("store/foo/bar", "docker.io", "store/foo/bar", Some("latest"), None, "docker.io/store/foo/bar:latest"),
    ("Foo/bar", "Foo", "bar", Some("latest"), None, "Foo/bar:latest"),
    ("FOO/bar", "FOO", "bar", Some("latest"), None, "FOO/bar:latest"),
    // normalize_test.go TestParseReferenceWithTagAndDigest.
    (concat!("busybox:latest@sha256:", busy!()), "docker.io", "library/busybox", Some("latest"), Some(concat!("sha256:", busy!())), concat!("docker.io/library/busybox:latest@sha256:", busy!())),
    // normalize_test.go TestParseAnyReference (named forms).
    ("redis", "docker.io", "library/redis", Some("latest"), None, "docker.io/library/redis:latest"),
    ("redis:latest", "docker.io", "library/redis", Some("latest"), None, "docker.io/library/redis:latest"),
    (concat!("redis@sha256:", dbcc!()), "docker.io", "library/redis", None, Some(concat!("sha256:", dbcc!())), concat!("docker.io/library/redis@sha256:", dbcc!())),
    (concat!("docker.io/library/redis@sha256:", dbcc!()), "docker.io", "library/redis", None, Some(concat!("sha256:", dbcc!())), concat!("docker.io/library/redis@sha256:", dbcc!())),
    ("dmcgowan/myapp", "docker.io", "dmcgowan/myapp", Some("latest"), None, "docker.io/dmcgowan/myapp:latest"),
    ("docker.io/mcgowan/myapp:latest", "docker.io", "mcgowan/myapp", Some("latest"), None, "docker.io/mcgowan/myapp:latest"),
    (concat!("dmcgowan/myapp@sha256:", dbcc!()), "docker.io", "dmcgowan/myapp", None, Some(concat!("sha256:", dbcc!())), concat!("docker.io/dmcgowan/myapp@sha256:", dbcc!())),
    ("dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9", "docker.io", "library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9", Some("latest"), None, "docker.io/library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9:latest"),
    ("dbcc1", "docker.io", "library/dbcc1", Some("latest"), None, "docker.io/library/dbcc1:latest"),
    // normalize_test.go TestNormalizedSplitHostname.
    ("test.com/foo", "test.com", "foo", Some("latest"), None, "test.com/foo:latest"),
    ("test_com/foo", "docker.io", "test_com/foo", Some("latest"), None, "docker.io/test_com/foo:latest"),
    ("docker/migrator", "docker.io", "docker/migrator", Some("latest"), None, "docker.io/docker/migrator:latest"),
    ("test.com:8080/foo", "test.com:8080", "foo", Some("latest"), None, "test.com:8080/foo:latest"),
    ("test-com:8080/foo", "test-com:8080", "foo", Some("latest"), None, "test-com:8080/foo:latest"),
    ("xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo", Some("latest"), None, "xn--n3h.com:18080/foo:latest"),
    ("docker.io/library/foo/bar", "docker.io", "library/foo/bar", Some("latest"), None, "docker.io/library/foo/bar:latest"),
    // regexp_test.go TestFullNameRegexp / TestReferenceRegexp (matching forms).
    ("localhost/foo", "localhost", "foo", Some("latest"), None, "localhost/foo:latest"),
    ("localhost:8080/bar", "localhost:8080", "bar", Some("latest"), None, "localhost:8080/bar:latest"),
    (concat!("localhost:8080@sha256:", be17!()), "docker.io", "library/localhost", Some("8080"), Some(concat!("sha256:", be17!())), concat!("docker.io/library/localhost:8080@sha256:", be17!())),
    (concat!("localhost:8080/name@sha256:", be17!()), "localhost:8080", "name", None, Some(concat!("sha256:", be17!())), concat!("localhost:8080/name@sha256:", be17!())),
    (concat!("localhost@sha256:", be17!()), "docker.io", "library/localhost", None, Some(concat!("sha256:", be17!())), concat!("docker.io/library/localhost@sha256:", be17!())),
    (concat!("registry.com:8080/myapp:tag2@sha256:", be17!()), "registry.com:8080", "myapp", Some("tag2"), Some(concat!("sha256:", be17!())), concat!("registry.com:8080/myapp:tag2@sha256:", be17!())),
    ("aa-a/a", "docker.io", "aa-a/a", Some("latest"), None, "docker.io/aa-a/a:latest"),
    ("a/a/a/a", "docker.io", "a/a/a/a", Some("latest"), None, "docker.io/a/a/a/a:latest"),
    ("example.com/xn--7o8h.com/myimage", "example.com", "xn--7o8h.com/myimage", Some("latest"), None, "example.com/xn--7o8h.com/myimage:latest"),
    ("example.com/some_separator__underscore/myimage", "example.com", "some_separator__underscore/myimage", Some("latest"), None, "example.com/some_separator__underscore/myimage:latest"),
    ("do__cker/docker", "docker.io", "do__cker/docker", Some("latest"), None, "docker.io/do__cker/docker:latest"),
    ("registry.io/foo/project--id.module--name.ver---sion--name", "registry.io", "foo/project--id.module--name.ver---sion--name", Some("latest"), None, "registry.io/foo/project--id.module--name.ver---sion--name:latest"),
    ("Asdf.com/foo/bar", "Asdf.com", "foo/bar", Some("latest"), None, "Asdf.com/foo/bar:latest"),
    // Shapes seen in Kubernetes pod specs.
    ("nginx:1.27", "docker.io", "library/nginx", Some("1.27"), None, "docker.io/library/nginx:1.27"),
    ("ghcr.io/acme/api:v1.2.3", "ghcr.io", "acme/api", Some("v1.2.3"), None, "ghcr.io/acme/api:v1.2.3"),
    (concat!("ghcr.io/acme/api@sha256:", be17!()), "ghcr.io", "acme/api", None, Some(concat!("sha256:", be17!())), concat!("ghcr.io/acme/api@sha256:", be17!())),
    ("localhost:5000/foo:dev", "localhost:5000", "foo", Some("dev"), None, "localhost:5000/foo:dev"),
    ("[::1]:5000/foo", "[::1]:5000", "foo", Some("latest"), None, "[::1]:5000/foo:latest"),
    ("[2001:db8::1]/foo", "[2001:db8::1]", "foo", Some("latest"), None, "[2001:db8::1]/foo:latest"),
    ("registry.k8s.io/pause:3.9", "registry.k8s.io", "pause", Some("3.9"), None, "registry.k8s.io/pause:3.9"),
    ("quay.io/prometheus/node-exporter:v1.8.2", "quay.io", "prometheus/node-exporter", Some("v1.8.2"), None, "quay.io/prometheus/node-exporter:v1.8.2"),
    ("nginx:_private", "docker.io", "library/nginx", Some("_private"), None, "docker.io/library/nginx:_private"),
];

use ReferenceError as E;
pub(super) type Ctor = fn(String) -> ReferenceError;

#[rustfmt::skip]
pub(super) const INVALID: &[(&str, Ctor)] = &[
    // reference_test.go TestReferenceParse (errors).
    (":justtag", E::InvalidFormat),
    (concat!("@sha256:", ff64!()), E::InvalidFormat),
    ("repo@sha256:ffffffffffffffffffffffffffffffffff", E::InvalidDigest),
    (concat!("validname@invaliddigest:", ff64!()), E::UnsupportedDigest),
    ("Uppercase:tag", E::UppercaseRepository),
    ("test:5000/Uppercase/lowercase:tag", E::UppercaseRepository),
    ("aa/asdf$$^/aa", E::InvalidRepository),
    ("[2001:db8::1]", E::InvalidRepository),
    ("[2001:db8::1]:5000", E::InvalidRepository),
    ("[2001:db8::1]:tag", E::InvalidRepository),
    ("[fe80::1%eth0]:5000/repo", E::InvalidRegistry),
    ("[fe80::1%@invalidzone]:5000/repo", E::InvalidRepository),
    // normalize_test.go TestValidateReferenceName (invalid).
    ("https://github.com/docker/docker", E::InvalidRegistry),
    ("docker/Docker", E::UppercaseRepository),
    ("-docker", E::InvalidRepository),
    ("-docker/docker", E::InvalidRepository),
    ("-docker.io/docker/docker", E::InvalidRegistry),
    ("docker///docker", E::InvalidRepository),
    ("docker.io/docker/Docker", E::UppercaseRepository),
    ("docker.io/docker///docker", E::InvalidRepository),
    ("[fc00::1]", E::InvalidRepository),
    ("[fc00::1]:5000", E::InvalidRepository),
    ("fc00::1:5000/debian", E::InvalidRegistry),
    ("[fe80::1%eth0]:5000/debian", E::InvalidRegistry),
    ("[2001:db8:3:4::192.0.2.33]:5000/debian", E::InvalidRegistry),
    ("1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", E::HexIdentifier),
    // normalize_test.go TestValidateRemoteName (invalid). A '.' in the first
    // component makes Docker read it as a registry, hence InvalidRegistry.
    ("docker-/docker", E::InvalidRepository),
    ("-docker-/docker", E::InvalidRepository),
    ("____/____", E::InvalidRepository),
    ("_docker/_docker", E::InvalidRepository),
    ("dock..er/docker", E::InvalidRegistry),
    ("dock_.er/docker", E::InvalidRegistry),
    ("dock-.er/docker", E::InvalidRegistry),
    ("docker/", E::InvalidRepository),
    ("this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255/docker", E::TooLong),
    // normalize_test.go TestInvalidReferenceComponents.
    ("-foo", E::InvalidRepository),
    ("busybox:-foo", E::InvalidTag),
    ("busybox@foo", E::InvalidDigest),
    // regexp_test.go TestFullNameRegexp / TestReferenceRegexp (non-matching forms).
    ("a/a/a/a/", E::InvalidRepository),
    ("a//a/a", E::InvalidRepository),
    ("foo.com/", E::InvalidRepository),
    ("foo.com:http/bar", E::InvalidRegistry),
    ("a^a", E::InvalidRepository),
    ("asdf$$^/aa", E::InvalidRepository),
    ("a-/a/a/a", E::InvalidRepository),
    ("foo.com/a-/a/a", E::InvalidRepository),
    ("foo/bar-", E::InvalidRepository),
    ("foo/-bar", E::InvalidRepository),
    ("_foo/bar", E::InvalidRepository),
    ("foo_bar.com:8080/app", E::InvalidRegistry),
    ("docker_/docker_", E::InvalidRepository),
    ("example.com/__underscore/myimage", E::InvalidRepository),
    ("example.com/..dots/myimage", E::InvalidRepository),
    ("example.com/.dots/myimage", E::InvalidRepository),
    ("example.com/nodouble..dots/myimage", E::InvalidRepository),
    ("docker./docker", E::InvalidRegistry),
    (".docker/docker", E::InvalidRegistry),
    ("do..cker/docker", E::InvalidRegistry),
    ("do__cker:8080/docker", E::InvalidRegistry),
    ("Foo/FarB", E::UppercaseRepository),
    ("registry.com:8080/myapp@sha256:badbadbadbad", E::InvalidDigest),
    ("registry.com:8080/myapp:invalid~tag", E::InvalidTag),
    ("bad_hostname.com:8080/myapp:tag", E::InvalidRegistry),
    (concat!("localhost:http/name@sha256:", be17!()), E::InvalidRegistry),
    ("registry.com:8080/myapp@bad", E::InvalidDigest),
    ("registry.com:8080/myapp@2bad", E::InvalidDigest),
    // Required by the admission webhook on top of distribution's tables.
    ("Nginx", E::UppercaseRepository),
    (" nginx", E::InvalidFormat),
    ("nginx ", E::InvalidFormat),
    ("ngi nx:1", E::InvalidFormat),
    ("nginx:1.27\n", E::InvalidFormat),
    ("nginx\t", E::InvalidFormat),
    ("/nginx", E::InvalidFormat),
    ("nginx:", E::InvalidTag),
    ("nginx@", E::InvalidDigest),
    ("nginx:1.27@", E::InvalidDigest),
    ("a//b", E::InvalidRepository),
    (":tag", E::InvalidFormat),
    ("nginx:.hidden", E::InvalidTag),
    ("nginx:a:b", E::InvalidTag),
    ("nginx:tag/x", E::InvalidRegistry),
    ("localhost:5000/", E::InvalidRepository),
    ("nginx@sha256", E::InvalidDigest),
    ("nginx@sha256:", E::InvalidDigest),
    (concat!("nginx@SHA256:", ff64!()), E::UnsupportedDigest),
    (concat!("nginx@md5:", ff64!()), E::UnsupportedDigest),
    ("nginx@sha256:FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", E::InvalidDigest),
    (concat!("nginx@sha256:", ff64!(), "0"), E::InvalidDigest),
    (concat!("nginx@sha512:", ff64!()), E::InvalidDigest),
    (concat!("nginx@sha256:", ff64!(), "@x"), E::InvalidDigest),
    ("nginx@sha256:zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", E::InvalidDigest),
    // No '.', ':' or upper case, so "[]" is a path component, not a host.
    ("[]/foo", E::InvalidRepository),
    ("[::1/foo", E::InvalidRegistry),
    ("[::1]5000/foo", E::InvalidRegistry),
    ("[::1]::5000/foo", E::InvalidRegistry),
    ("example.com:/foo", E::InvalidRegistry),
    ("ngînx", E::InvalidRepository),
];
