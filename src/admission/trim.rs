//! A pod's review cut down to the members the decision reads, before serde_json decodes it.
//!
//! Two thirds of a review from a ReplicaSet is members nothing here reads: the pod's
//! managedFields and volumes, each container's env, mounts and probes, the requesting user. The
//! walk below copies the members [`ReviewIn`](super::review::ReviewIn) and
//! [`Pod`](crate::pod::Pod) decode into a new body and steps over the rest with
//! [`skip::Skipper`], four times faster than serde_json reading past them. serde_json then decodes
//! the copy into the same types. The walk only descends the fixed shapes below, so however deep a
//! hostile body nests, it recurses at most six levels.
//!
//! The walk gives up (and the caller decodes the whole body) on anything it does not expect: a
//! review of something other than a pod, an `oldObject`, a member name with escapes, JSON that
//! ends early. So every error a review can get still comes from serde_json reading all of it.

use super::skip;

/// The objects the walk goes into; every other member of theirs is copied whole or skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Review,
    Request,
    Pod,
    Meta,
    Spec,
    Container,
}

/// What becomes of a member of a [`Shape`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Member {
    /// Copied whole.
    Keep,
    /// An object of the shape, walked into.
    Enter(Shape),
    /// An array of objects of the shape, each walked into.
    EnterEach(Shape),
}

use Member::{Enter, EnterEach, Keep};

/// The members a shape keeps: the fields of the type it decodes into (a test holds them equal).
struct Members {
    names: &'static [(&'static str, Member)],
    /// Bit n is set when a kept name is n bytes long: most members are dropped, and most of those
    /// on their length alone.
    lengths: u64,
}

impl Members {
    const fn new(names: &'static [(&'static str, Member)]) -> Members {
        let (mut lengths, mut i) = (0u64, 0);
        while i < names.len() {
            assert!(names[i].0.len() < 64);
            lengths |= 1 << names[i].0.len();
            i += 1;
        }
        Members { names, lengths }
    }
}

const REVIEW: Members = Members::new(&[
    ("apiVersion", Keep),
    ("kind", Keep),
    ("request", Enter(Shape::Request)),
]);
const REQUEST: Members = Members::new(&[
    ("uid", Keep),
    ("kind", Keep),
    ("subResource", Keep),
    ("name", Keep),
    ("namespace", Keep),
    ("operation", Keep),
    ("dryRun", Keep),
    // Walked only once `kind` has said it is a pod; and a non-null oldObject ends the walk.
    ("object", Enter(Shape::Pod)),
    ("oldObject", Keep),
]);
const POD: Members = Members::new(&[
    ("metadata", Enter(Shape::Meta)),
    ("spec", Enter(Shape::Spec)),
]);
const META: Members = Members::new(&[
    ("name", Keep),
    ("generateName", Keep),
    ("namespace", Keep),
    ("labels", Keep),
    ("annotations", Keep),
    ("ownerReferences", Keep),
]);
const SPEC: Members = Members::new(&[
    ("containers", EnterEach(Shape::Container)),
    ("initContainers", EnterEach(Shape::Container)),
    ("ephemeralContainers", EnterEach(Shape::Container)),
    ("nodeSelector", Keep),
    ("affinity", Keep),
    ("tolerations", Keep),
    ("nodeName", Keep),
    ("imagePullSecrets", Keep),
    ("serviceAccountName", Keep),
]);
const CONTAINER: Members = Members::new(&[
    ("name", Keep),
    ("image", Keep),
    ("imagePullPolicy", Keep),
    ("resources", Keep),
]);

impl Shape {
    fn members(self) -> &'static Members {
        match self {
            Shape::Review => &REVIEW,
            Shape::Request => &REQUEST,
            Shape::Pod => &POD,
            Shape::Meta => &META,
            Shape::Spec => &SPEC,
            Shape::Container => &CONTAINER,
        }
    }

    fn member(self, name: &[u8]) -> Option<Member> {
        let members = self.members();
        if name.len() >= 64 || members.lengths & (1 << name.len()) == 0 {
            return None;
        }
        members
            .names
            .iter()
            .find(|(n, _)| n.as_bytes() == name)
            .map(|&(_, m)| m)
    }
}

/// The review in `body` with only the members the decision reads, when it is a review of a pod
/// (with no `oldObject`) in the shape the API server sends; `None` otherwise.
pub fn trim(body: &[u8]) -> Option<Vec<u8>> {
    let mut walk = Walk {
        body,
        skipper: skip::Skipper::new(body),
        out: Vec::with_capacity(body.len() / 2),
    };
    let start = walk.space(0);
    let end = walk.object(start, Shape::Review)?;
    (walk.space(end) == body.len()).then_some(walk.out)
}

struct Walk<'b> {
    body: &'b [u8],
    skipper: skip::Skipper<'b>,
    out: Vec<u8>,
}

impl Walk<'_> {
    /// The first index from `at` that is not JSON whitespace.
    fn space(&self, mut at: usize) -> usize {
        while matches!(self.body.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            at += 1;
        }
        at
    }

    fn expect(&self, at: usize, byte: u8) -> Option<usize> {
        (*self.body.get(at)? == byte).then_some(at + 1)
    }

    /// Copies the object at `at` with the members `shape` keeps; returns the index past it.
    fn object(&mut self, at: usize, shape: Shape) -> Option<usize> {
        let mut at = self.space(self.expect(at, b'{')?);
        self.out.push(b'{');
        let mut first = true;
        let mut is_pod = false;
        if self.body.get(at) == Some(&b'}') {
            self.out.push(b'}');
            return Some(at + 1);
        }
        loop {
            let name_start = at;
            let name_end = skip::name_end(self.body, self.expect(at, b'"')?)?;
            let name = &self.body[name_start + 1..name_end - 1];
            let value = self.space(self.expect(self.space(name_end), b':')?);
            let member = shape.member(name);
            let end = match member {
                None => self.skipper.value_end(value)?,
                Some(member) => {
                    if !first {
                        self.out.push(b',');
                    }
                    first = false;
                    self.out.extend_from_slice(&self.body[name_start..name_end]);
                    self.out.push(b':');
                    match (shape, name, member) {
                        (Shape::Request, b"object", _) if !is_pod => return None,
                        (Shape::Request, b"oldObject", _)
                            if !self.body[value..].starts_with(b"null") =>
                        {
                            return None
                        }
                        (_, _, Enter(inner)) => self.object(value, inner)?,
                        (_, _, EnterEach(inner)) => self.array(value, inner)?,
                        (_, _, Keep) => {
                            let end = self.skipper.value_end(value)?;
                            let copied = self.body.get(value..end)?;
                            if shape == Shape::Request && name == b"kind" {
                                is_pod = names_a_pod(copied);
                            }
                            self.out.extend_from_slice(copied);
                            end
                        }
                    }
                }
            };
            at = self.space(end);
            match *self.body.get(at)? {
                b',' => at = self.space(at + 1),
                b'}' => {
                    self.out.push(b'}');
                    return Some(at + 1);
                }
                _ => return None,
            }
        }
    }

    /// Copies the array of objects at `at`, each with the members `shape` keeps.
    fn array(&mut self, at: usize, shape: Shape) -> Option<usize> {
        let mut at = self.space(self.expect(at, b'[')?);
        self.out.push(b'[');
        if self.body.get(at) == Some(&b']') {
            self.out.push(b']');
            return Some(at + 1);
        }
        loop {
            let end = self.object(at, shape)?;
            at = self.space(end);
            match *self.body.get(at)? {
                b',' => {
                    self.out.push(b',');
                    at = self.space(at + 1);
                }
                b']' => {
                    self.out.push(b']');
                    return Some(at + 1);
                }
                _ => return None,
            }
        }
    }
}

/// Whether a request's `kind` is core/v1 Pod, as [`RequestIn`](super::review::RequestIn) decides
/// it: the API server writes `{"group":"","version":"v1","kind":"Pod"}`.
fn names_a_pod(kind: &[u8]) -> bool {
    kind == br#"{"group":"","version":"v1","kind":"Pod"}"#
        || serde_json::from_slice::<super::review::GroupVersionKind>(kind)
            .is_ok_and(|k| k.group.is_empty() && k.kind == "Pod")
}

/// The fields serde derives for `T`: what a [`Shape`] must keep to decode into it unchanged.
#[cfg(test)]
fn fields_of<'de, T: serde::Deserialize<'de>>() -> Vec<&'static str> {
    use serde::de::{self, Visitor};
    struct Fields(Vec<&'static str>);
    #[derive(Debug)]
    struct Done;
    impl std::fmt::Display for Done {
        fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("done")
        }
    }
    impl std::error::Error for Done {}
    impl de::Error for Done {
        fn custom<M: std::fmt::Display>(_: M) -> Done {
            Done
        }
    }
    impl<'de> de::Deserializer<'de> for &mut Fields {
        type Error = Done;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Done> {
            Err(Done)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Done> {
            self.0 = fields.to_vec();
            Err(Done)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut fields = Fields(Vec::new());
    let _ = T::deserialize(&mut fields);
    fields.0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::pod::{Container, ObjectMeta, Pod, PodSpec};

    fn names(shape: Shape) -> Vec<&'static str> {
        let mut names: Vec<_> = shape.members().names.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names
    }

    fn sorted(mut fields: Vec<&'static str>) -> Vec<&'static str> {
        fields.sort_unstable();
        fields
    }

    #[test]
    fn each_shape_keeps_the_fields_of_its_type() {
        assert_eq!(names(Shape::Pod), sorted(fields_of::<Pod>()));
        assert_eq!(names(Shape::Meta), sorted(fields_of::<ObjectMeta>()));
        assert_eq!(names(Shape::Spec), sorted(fields_of::<PodSpec>()));
        assert_eq!(names(Shape::Container), sorted(fields_of::<Container>()));
        assert_eq!(
            names(Shape::Review),
            sorted(fields_of::<super::super::review::ReviewIn>())
        );
        // RequestIn is decoded by hand; its fields are the lenient envelope's.
        assert_eq!(
            names(Shape::Request),
            sorted(fields_of::<super::super::review::LenientRequestIn>())
        );
    }

    use crate::admission::review::{decode, decode_trimmed, decode_whole, ObjectIn};
    use std::path::Path;

    /// Every AdmissionReview request fixture: pods, workloads, updates, pretty and byte-exact.
    fn fixtures() -> Vec<(String, Vec<u8>)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/admission-reviews");
        let mut out = Vec::new();
        for dir in [root.clone(), root.join("raw")] {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if name.ends_with(".json") && !name.starts_with("response") {
                    out.push((name, std::fs::read(&path).unwrap()));
                }
            }
        }
        assert!(out.len() > 40, "{} fixtures", out.len());
        out
    }

    #[test]
    fn a_trimmed_review_decodes_as_the_whole_one_does() {
        let mut trimmed = 0;
        for (name, body) in fixtures() {
            let whole = format!("{:?}", decode_whole(&body));
            assert_eq!(format!("{:?}", decode(&body)), whole, "{name}");
            if let Some(review) = trim(&body).and_then(|t| decode_trimmed(&t)) {
                let whole = decode_whole(&body).unwrap();
                assert_eq!(format!("{review:?}"), format!("{whole:?}"), "{name}");
                trimmed += 1;
            }
        }
        // Every pod CREATE fixture takes the trimmed path; workloads and updates do not.
        assert_eq!(trimmed, 30, "fixtures trimmed");
    }

    #[test]
    fn only_pod_reviews_without_an_old_object_are_trimmed() {
        for (name, body) in fixtures() {
            let review: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let request = &review["request"];
            let expected = request["kind"]["kind"] == "Pod" && request["oldObject"].is_null();
            assert_eq!(trim(&body).is_some(), expected, "{name}");
        }
    }

    /// The review a kube-apiserver sent for a ReplicaSet's pod, byte for byte.
    fn byte_exact() -> Vec<u8> {
        include_bytes!(
            "../../tests/fixtures/admission-reviews/raw/013-mutate-Pod-CREATE-real.request.json"
        )
        .to_vec()
    }

    #[test]
    fn the_byte_exact_review_keeps_a_third_of_its_bytes() {
        let body = byte_exact();
        let trimmed = String::from_utf8(trim(&body).unwrap()).unwrap();
        assert!(trimmed.len() * 3 < body.len() + 200, "{}", trimmed.len());
        for gone in [
            "managedFields",
            "volumes",
            "userInfo",
            "terminationMessagePath",
            "status",
        ] {
            assert!(!trimmed.contains(gone), "{gone} in {trimmed}");
        }
        for kept in [
            "\"uid\"",
            "ownerReferences",
            "tolerations",
            "\"image\"",
            "initContainers",
        ] {
            assert!(trimmed.contains(kept), "{kept} not in {trimmed}");
        }
    }

    /// Cut short or with one byte changed, a review decodes as before wherever the whole body
    /// still decodes; and an error is serde_json's own, read from the whole body.
    #[test]
    fn damaged_reviews_decode_as_the_whole_body_does() {
        let body = byte_exact();
        let check = |damaged: &[u8]| {
            let whole = decode_whole(damaged);
            let either = decode(damaged);
            match (&whole, &either) {
                (Ok(_), _) | (_, Err(_)) => {
                    assert_eq!(format!("{either:?}"), format!("{whole:?}"));
                }
                // Damage to a member nothing reads goes unnoticed (see skip.rs).
                (Err(_), Ok(_)) => assert!(trim(damaged).is_some()),
            }
        };
        for cut in 0..body.len() {
            check(&body[..cut]);
        }
        for at in 0..body.len() {
            for byte in [b'"', b'{', b']', b'\\', b',', b'x', b' '] {
                let mut damaged = body.clone();
                damaged[at] = byte;
                check(&damaged);
            }
        }
    }

    #[test]
    fn deep_nesting_is_stepped_over_without_recursion() {
        let body = byte_exact();
        let text = String::from_utf8(body).unwrap();
        let deep = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
        // In a member nothing reads: stepped over, the pod decodes as without it.
        let skipped = text.replacen(
            "\"managedFields\":",
            &format!("\"deep\":{deep},\"managedFields\":"),
            1,
        );
        let whole = format!("{:?}", decode_whole(text.as_bytes()).unwrap());
        assert!(format!("{:?}", decode(skipped.as_bytes()).unwrap()) == whole);
        // In a member the decision reads: serde_json's recursion limit stops the pod's decode,
        // and the review is read as before, with the pod raw (the denial says it is malformed).
        let kept = text.replacen("\"labels\":", &format!("\"labels\":{deep},\"x\":"), 1);
        let review = decode(kept.as_bytes()).unwrap();
        assert!(matches!(
            review.request.as_ref().unwrap().object,
            ObjectIn::Raw(_)
        ));
        assert!(format!("{review:?}") == format!("{:?}", decode_whole(kept.as_bytes()).unwrap()));
    }
}
