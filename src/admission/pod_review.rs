//! A pod's review decoded straight from the body: only the members the decision reads are read.
//!
//! Two thirds of a review from a ReplicaSet is members nothing here reads: the pod's
//! managedFields and volumes, each container's env, mounts and probes, the requesting user.
//! [`skip::value_end`] steps over those four times faster than serde_json reads past them. And even
//! the ~1.1 KB that matter took serde_json's derived visitors ~2.6 us to decode, ten times what
//! building the same values costs, so the walk below builds [`ReviewIn`] and [`Pod`] itself. The
//! deeper, rarer members (affinity, tolerations, owner references, resources, image pull secrets,
//! a request kind other than the API server's spelling of core/v1 Pod) are handed to serde_json one
//! member at a time, so their rules are serde's own.
//!
//! The walk gives up (and the caller decodes the whole body with serde_json) on anything it does
//! not expect: a review of something other than a pod, an `oldObject`, a member name with escapes,
//! a member named twice, a value whose type is not its field's, JSON that ends early. So every
//! error a review can get still comes from serde_json reading all of it. The walk only descends
//! the fixed shapes below, so however deep a hostile body nests, it recurses at most five levels.

use super::review::{GroupVersionKind, ObjectIn, RequestIn, ReviewIn};
use super::skip;
use crate::pod::{Container, ObjectMeta, OwnerReference, Pod, PodSpec, Resources, Toleration};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

/// The review in `text` (the body, checked as UTF-8 once by the caller, not once per string)
/// when it is a review of a pod (with no `oldObject`) in the shape the API server sends; `None`
/// otherwise.
pub fn decode<'a>(text: &str) -> Option<ReviewIn<'a>> {
    let body = text.as_bytes();
    let walk = Walk { text, body };
    let (review, end) = walk.review(walk.space(0))?;
    (walk.space(end) == body.len()).then_some(review)
}

/// The members of an object that are read, by name: the fields of the type it decodes into (a
/// test holds them equal).
struct Fields<F: 'static> {
    names: &'static [(&'static str, F)],
    /// Bit n is set when a field's name is n bytes long: most members are not read, and most of
    /// those are told apart on their length alone.
    lengths: u64,
    /// Whether another member makes the object one serde refuses (`deny_unknown_fields`).
    strict: bool,
}

impl<F: Copy> Fields<F> {
    const fn new(names: &'static [(&'static str, F)]) -> Fields<F> {
        Fields::with(names, false)
    }

    const fn strict(names: &'static [(&'static str, F)]) -> Fields<F> {
        Fields::with(names, true)
    }

    const fn with(names: &'static [(&'static str, F)], strict: bool) -> Fields<F> {
        let (mut lengths, mut i) = (0u64, 0);
        assert!(names.len() <= 64);
        while i < names.len() {
            assert!(names[i].0.len() < 64);
            lengths |= 1 << names[i].0.len();
            i += 1;
        }
        Fields {
            names,
            lengths,
            strict,
        }
    }

    /// The field named `name`, with its index.
    fn get(&self, name: &str) -> Option<(usize, F)> {
        if name.len() >= 64 || self.lengths & (1 << name.len()) == 0 {
            return None;
        }
        let i = self.names.iter().position(|(n, _)| *n == name)?;
        Some((i, self.names[i].1))
    }
}

#[derive(Clone, Copy)]
enum ReviewField {
    ApiVersion,
    Kind,
    Request,
}
const REVIEW: Fields<ReviewField> = Fields::new(&[
    ("apiVersion", ReviewField::ApiVersion),
    ("kind", ReviewField::Kind),
    ("request", ReviewField::Request),
]);

#[derive(Clone, Copy)]
enum RequestField {
    Uid,
    Kind,
    SubResource,
    Name,
    Namespace,
    Operation,
    DryRun,
    Object,
    OldObject,
}
const REQUEST: Fields<RequestField> = Fields::new(&[
    ("uid", RequestField::Uid),
    ("kind", RequestField::Kind),
    ("subResource", RequestField::SubResource),
    ("name", RequestField::Name),
    ("namespace", RequestField::Namespace),
    ("operation", RequestField::Operation),
    ("dryRun", RequestField::DryRun),
    ("object", RequestField::Object),
    ("oldObject", RequestField::OldObject),
]);

#[derive(Clone, Copy)]
enum PodField {
    Metadata,
    Spec,
}
const POD: Fields<PodField> =
    Fields::new(&[("metadata", PodField::Metadata), ("spec", PodField::Spec)]);

#[derive(Clone, Copy)]
enum MetaField {
    Name,
    GenerateName,
    Namespace,
    Labels,
    Annotations,
    OwnerReferences,
}
const META: Fields<MetaField> = Fields::new(&[
    ("name", MetaField::Name),
    ("generateName", MetaField::GenerateName),
    ("namespace", MetaField::Namespace),
    ("labels", MetaField::Labels),
    ("annotations", MetaField::Annotations),
    ("ownerReferences", MetaField::OwnerReferences),
]);

#[derive(Clone, Copy)]
enum SpecField {
    Containers,
    InitContainers,
    EphemeralContainers,
    NodeSelector,
    Affinity,
    Tolerations,
    NodeName,
    ImagePullSecrets,
    ServiceAccountName,
}
const SPEC: Fields<SpecField> = Fields::new(&[
    ("containers", SpecField::Containers),
    ("initContainers", SpecField::InitContainers),
    ("ephemeralContainers", SpecField::EphemeralContainers),
    ("nodeSelector", SpecField::NodeSelector),
    ("affinity", SpecField::Affinity),
    ("tolerations", SpecField::Tolerations),
    ("nodeName", SpecField::NodeName),
    ("imagePullSecrets", SpecField::ImagePullSecrets),
    ("serviceAccountName", SpecField::ServiceAccountName),
]);

#[derive(Clone, Copy)]
enum ContainerField {
    Name,
    Image,
    ImagePullPolicy,
    Resources,
}
const CONTAINER: Fields<ContainerField> = Fields::new(&[
    ("name", ContainerField::Name),
    ("image", ContainerField::Image),
    ("imagePullPolicy", ContainerField::ImagePullPolicy),
    ("resources", ContainerField::Resources),
]);

#[derive(Clone, Copy)]
enum OwnerField {
    Kind,
    Name,
    Controller,
}
const OWNER: Fields<OwnerField> = Fields::new(&[
    ("kind", OwnerField::Kind),
    ("name", OwnerField::Name),
    ("controller", OwnerField::Controller),
]);

#[derive(Clone, Copy)]
enum ResourcesField {
    Limits,
    Requests,
}
const RESOURCES: Fields<ResourcesField> = Fields::new(&[
    ("limits", ResourcesField::Limits),
    ("requests", ResourcesField::Requests),
]);

#[derive(Clone, Copy)]
enum TolerationField {
    Key,
    Operator,
    Value,
    Effect,
    Seconds,
}
// Without the TOML spelling `toleration_seconds`, which serde also takes: a toleration that uses
// it is serde's to read.
const TOLERATION: Fields<TolerationField> = Fields::strict(&[
    ("key", TolerationField::Key),
    ("operator", TolerationField::Operator),
    ("value", TolerationField::Value),
    ("effect", TolerationField::Effect),
    ("tolerationSeconds", TolerationField::Seconds),
]);

/// How the API server spells core/v1 Pod, compared before asking serde_json.
const POD_KIND: &[u8] = br#"{"group":"","version":"v1","kind":"Pod"}"#;

/// Each reader takes the index where a value starts (no leading whitespace) and returns what it
/// read or where the value ends.
struct Walk<'b> {
    text: &'b str,
    /// `text` as bytes.
    body: &'b [u8],
}

impl Walk<'_> {
    fn review<'a>(&self, at: usize) -> Option<(ReviewIn<'a>, usize)> {
        let mut review = ReviewIn {
            api_version: None,
            kind: None,
            request: None,
        };
        let end = self.object(at, &REVIEW, |field, at| match field {
            ReviewField::ApiVersion => {
                self.optional(at, &mut review.api_version, |at| self.string(at))
            }
            ReviewField::Kind => self.optional(at, &mut review.kind, |at| self.string(at)),
            ReviewField::Request => put(&mut review.request, self.request(at).map(some)),
        })?;
        Some((review, end))
    }

    /// As `RequestVisitor` decodes it, for a pod: `kind` first, then the object.
    fn request<'a>(&self, at: usize) -> Option<(RequestIn<'a>, usize)> {
        let (mut uid, mut kind) = (None, None::<GroupVersionKind>);
        let mut request = RequestIn::default();
        let end = self.object(at, &REQUEST, |field, at| match field {
            RequestField::Uid => put(&mut uid, self.string(at).map(some)),
            RequestField::Kind => {
                let gvk = if self.body[at..].starts_with(POD_KIND) {
                    Some((pod_kind(), at + POD_KIND.len()))
                } else {
                    self.serde(at)
                };
                put(&mut kind, gvk.map(some))
            }
            RequestField::SubResource => {
                self.optional(at, &mut request.sub_resource, |at| self.string(at))
            }
            RequestField::Name => self.optional(at, &mut request.name, |at| self.string(at)),
            RequestField::Namespace => {
                self.optional(at, &mut request.namespace, |at| self.string(at))
            }
            RequestField::Operation => {
                let mut operation = None;
                let end = self.optional(at, &mut operation, |at| self.string(at))?;
                request.operation = operation.unwrap_or_default();
                Some(end)
            }
            RequestField::DryRun => self.optional(at, &mut request.dry_run, |at| self.bool(at)),
            // Anything but a pod, or a pod before its kind, is for the whole-body decode.
            RequestField::Object => {
                kind.as_ref().filter(|k| k.is_pod())?;
                let mut pod = None;
                let end = self.optional(at, &mut pod, |at| self.pod(at))?;
                request.object = pod.map_or(ObjectIn::Absent, ObjectIn::Pod);
                Some(end)
            }
            RequestField::OldObject => self.null(at),
        })?;
        request.uid = uid?;
        request.kind = kind?;
        Some((request, end))
    }

    fn pod(&self, at: usize) -> Option<(Box<Pod>, usize)> {
        let mut pod = Box::<Pod>::default();
        let end = self.object(at, &POD, |field, at| match field {
            PodField::Metadata => put(&mut pod.metadata, self.meta(at)),
            PodField::Spec => put(&mut pod.spec, self.spec(at)),
        })?;
        Some((pod, end))
    }

    fn meta(&self, at: usize) -> Option<(ObjectMeta, usize)> {
        let mut meta = ObjectMeta::default();
        let end = self.object(at, &META, |field, at| match field {
            MetaField::Name => self.optional(at, &mut meta.name, |at| self.string(at)),
            MetaField::GenerateName => {
                self.optional(at, &mut meta.generate_name, |at| self.string(at))
            }
            MetaField::Namespace => self.optional(at, &mut meta.namespace, |at| self.string(at)),
            MetaField::Labels => self.optional(at, &mut meta.labels, |at| self.map(at, |v| v)),
            MetaField::Annotations => {
                self.optional(at, &mut meta.annotations, |at| self.map(at, |v| v))
            }
            MetaField::OwnerReferences => self.optional(at, &mut meta.owner_references, |at| {
                self.array(at, |at| self.or_serde(at, |at| self.owner_reference(at)))
            }),
        })?;
        Some((meta, end))
    }

    fn spec(&self, at: usize) -> Option<(PodSpec, usize)> {
        let mut spec = PodSpec::default();
        let end = self.object(at, &SPEC, |field, at| match field {
            SpecField::Containers => put(&mut spec.containers, self.containers(at)),
            SpecField::InitContainers => {
                self.optional(at, &mut spec.init_containers, |at| self.containers(at))
            }
            SpecField::EphemeralContainers => {
                self.optional(at, &mut spec.ephemeral_containers, |at| self.containers(at))
            }
            SpecField::NodeSelector => {
                self.optional(at, &mut spec.node_selector, |at| self.map(at, |v| v))
            }
            SpecField::Affinity => put(&mut spec.affinity, self.serde(at)),
            SpecField::Tolerations => self.optional(at, &mut spec.tolerations, |at| {
                self.array(at, |at| self.or_serde(at, |at| self.toleration(at)))
            }),
            SpecField::NodeName => self.optional(at, &mut spec.node_name, |at| self.string(at)),
            SpecField::ImagePullSecrets => put(&mut spec.image_pull_secrets, self.serde(at)),
            SpecField::ServiceAccountName => {
                self.optional(at, &mut spec.service_account_name, |at| self.string(at))
            }
        })?;
        Some((spec, end))
    }

    fn containers(&self, at: usize) -> Option<(Vec<Container>, usize)> {
        self.array(at, |at| {
            let mut container = Container::default();
            let end = self.object(at, &CONTAINER, |field, at| match field {
                ContainerField::Name => put(&mut container.name, self.string(at)),
                ContainerField::Image => {
                    self.optional(at, &mut container.image, |at| self.string(at))
                }
                ContainerField::ImagePullPolicy => {
                    self.optional(at, &mut container.image_pull_policy, |at| self.string(at))
                }
                ContainerField::Resources => self.optional(at, &mut container.resources, |at| {
                    self.or_serde(at, |at| self.resources(at))
                }),
            })?;
            Some((container, end))
        })
    }

    fn owner_reference(&self, at: usize) -> Option<(OwnerReference, usize)> {
        let mut owner = OwnerReference::default();
        let end = self.object(at, &OWNER, |field, at| match field {
            OwnerField::Kind => put(&mut owner.kind, self.string(at)),
            OwnerField::Name => put(&mut owner.name, self.string(at)),
            OwnerField::Controller => self.optional(at, &mut owner.controller, |at| self.bool(at)),
        })?;
        Some((owner, end))
    }

    fn toleration(&self, at: usize) -> Option<(Toleration, usize)> {
        let mut toleration = Toleration::default();
        let end = self.object(at, &TOLERATION, |field, at| match field {
            TolerationField::Key => self.optional(at, &mut toleration.key, |at| self.string(at)),
            TolerationField::Operator => {
                self.optional(at, &mut toleration.operator, |at| self.string(at))
            }
            TolerationField::Value => {
                self.optional(at, &mut toleration.value, |at| self.string(at))
            }
            TolerationField::Effect => {
                self.optional(at, &mut toleration.effect, |at| self.string(at))
            }
            TolerationField::Seconds => {
                self.optional(at, &mut toleration.toleration_seconds, |at| {
                    self.integer(at)
                })
            }
        })?;
        Some((toleration, end))
    }

    /// Resources whose quantities are all strings, as the API server writes them.
    fn resources(&self, at: usize) -> Option<(Resources, usize)> {
        let mut resources = Resources::default();
        let end = self.object(at, &RESOURCES, |field, at| {
            let quantities = match field {
                ResourcesField::Limits => &mut resources.limits,
                ResourcesField::Requests => &mut resources.requests,
            };
            self.optional(at, quantities, |at| self.map(at, serde_json::Value::String))
        })?;
        Some((resources, end))
    }

    /// `read`'s value into `slot`, or `slot` left `None` for a null (it starts `None`: a field
    /// given twice ends the walk).
    fn optional<T>(
        &self,
        at: usize,
        slot: &mut Option<T>,
        read: impl FnOnce(usize) -> Option<(T, usize)>,
    ) -> Option<usize> {
        match self.null(at) {
            Some(end) => Some(end),
            None => put(slot, read(at).map(some)),
        }
    }

    /// What `read` makes of the value at `at`, or else what serde_json does: `read` takes the
    /// usual spellings and leaves the rest (numbers as floats, aliases) to serde.
    fn or_serde<T: DeserializeOwned>(
        &self,
        at: usize,
        read: impl FnOnce(usize) -> Option<(T, usize)>,
    ) -> Option<(T, usize)> {
        read(at).or_else(|| self.serde(at))
    }

    /// Reads the object at `at`: `read` gets each member `fields` names and where its value
    /// starts, and returns where the value ends; other members are stepped over. `None` for a
    /// member named twice, which serde refuses.
    fn object<F: Copy>(
        &self,
        at: usize,
        fields: &Fields<F>,
        mut read: impl FnMut(F, usize) -> Option<usize>,
    ) -> Option<usize> {
        let mut seen = 0u64;
        self.members(at, |name, at| match fields.get(name) {
            None if fields.strict => None,
            None => skip::value_end(self.body, at),
            Some((i, field)) => {
                if seen & (1 << i) != 0 {
                    return None;
                }
                seen |= 1 << i;
                read(field, at)
            }
        })
    }

    /// Calls `read` with each member's name (which must have no escapes or control characters)
    /// and where its value starts; `read` returns where the value ends. Returns where the object
    /// ends.
    fn members(
        &self,
        at: usize,
        mut read: impl FnMut(&str, usize) -> Option<usize>,
    ) -> Option<usize> {
        let mut at = self.space(self.expect(at, b'{')?);
        if self.body.get(at) == Some(&b'}') {
            return Some(at + 1);
        }
        loop {
            let name_end = skip::plain_string_end(self.body, self.expect(at, b'"')?)?;
            let name = self.text.get(at + 1..name_end - 1)?;
            let value = self.space(self.expect(self.space(name_end), b':')?);
            at = self.space(read(name, value)?);
            match *self.body.get(at)? {
                b',' => at = self.space(at + 1),
                b'}' => return Some(at + 1),
                _ => return None,
            }
        }
    }

    /// The elements `read` makes of the array at `at`; `read` returns each with where it ends.
    fn array<T>(
        &self,
        at: usize,
        mut read: impl FnMut(usize) -> Option<(T, usize)>,
    ) -> Option<(Vec<T>, usize)> {
        let mut items = Vec::new();
        let mut at = self.space(self.expect(at, b'[')?);
        if self.body.get(at) == Some(&b']') {
            return Some((items, at + 1));
        }
        loop {
            let (item, end) = read(at)?;
            items.push(item);
            at = self.space(end);
            match *self.body.get(at)? {
                b',' => at = self.space(at + 1),
                b']' => return Some((items, at + 1)),
                _ => return None,
            }
        }
    }

    /// A string. One with escapes (or a control character, which serde refuses) is serde_json's
    /// to read.
    fn string(&self, at: usize) -> Option<(String, usize)> {
        let start = self.expect(at, b'"')?;
        if let Some(end) = skip::plain_string_end(self.body, start) {
            return Some((self.text.get(start..end - 1)?.to_owned(), end));
        }
        let end = skip::string_end(self.body, start)?;
        Some((serde_json::from_str(self.text.get(at..end)?).ok()?, end))
    }

    /// An object of strings (labels, annotations, a node selector, quantities), each value made
    /// into a `V`.
    fn map<V>(
        &self,
        at: usize,
        value: impl Fn(String) -> V,
    ) -> Option<(BTreeMap<String, V>, usize)> {
        let mut map = BTreeMap::new();
        let end = self.members(at, |name, at| {
            let (text, end) = self.string(at)?;
            // A key given twice keeps its last value, as serde_json's map does.
            map.insert(name.to_owned(), value(text));
            Some(end)
        })?;
        Some((map, end))
    }

    /// An integer as serde_json reads one into an `i64`; `None` for anything it might read
    /// otherwise (a fraction, an exponent, leading zeros, 19 digits or more).
    fn integer(&self, at: usize) -> Option<(i64, usize)> {
        let rest = self.body.get(at..)?;
        let sign = usize::from(rest.first() == Some(&b'-'));
        let digits = rest[sign..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 || digits > 18 || (digits > 1 && rest[sign] == b'0') {
            return None;
        }
        if matches!(rest.get(sign + digits), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let magnitude = rest[sign..sign + digits]
            .iter()
            .fold(0i64, |n, &d| n * 10 + i64::from(d - b'0'));
        let value = if sign == 1 { -magnitude } else { magnitude };
        Some((value, at + sign + digits))
    }

    fn bool(&self, at: usize) -> Option<(bool, usize)> {
        let rest = self.body.get(at..)?;
        if rest.starts_with(b"true") {
            Some((true, at + 4))
        } else if rest.starts_with(b"false") {
            Some((false, at + 5))
        } else {
            None
        }
    }

    /// Where a `null` at `at` ends; `None` when there is none.
    fn null(&self, at: usize) -> Option<usize> {
        self.body.get(at..)?.starts_with(b"null").then_some(at + 4)
    }

    /// The value at `at` as serde_json decodes it on its own.
    fn serde<T: DeserializeOwned>(&self, at: usize) -> Option<(T, usize)> {
        let end = skip::value_end(self.body, at)?;
        Some((serde_json::from_str(self.text.get(at..end)?).ok()?, end))
    }

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
}

/// A field's value, read with where it ends, into its slot; where it ends.
fn put<T>(slot: &mut T, read: Option<(T, usize)>) -> Option<usize> {
    let (value, end) = read?;
    *slot = value;
    Some(end)
}

/// A read value wrapped for an `Option` slot.
fn some<T>((value, end): (T, usize)) -> (Option<T>, usize) {
    (Some(value), end)
}

fn pod_kind() -> GroupVersionKind {
    GroupVersionKind {
        group: String::new(),
        version: "v1".into(),
        kind: "Pod".into(),
    }
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
    use crate::pod::{Container, ObjectMeta, OwnerReference, Pod, PodSpec, Resources, Toleration};

    fn names<F>(fields: &Fields<F>) -> Vec<&'static str> {
        let mut names: Vec<_> = fields.names.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names
    }

    fn sorted(mut fields: Vec<&'static str>) -> Vec<&'static str> {
        fields.sort_unstable();
        fields
    }

    #[test]
    fn each_shape_keeps_the_fields_of_its_type() {
        assert_eq!(names(&POD), sorted(fields_of::<Pod>()));
        assert_eq!(names(&META), sorted(fields_of::<ObjectMeta>()));
        assert_eq!(names(&SPEC), sorted(fields_of::<PodSpec>()));
        assert_eq!(names(&CONTAINER), sorted(fields_of::<Container>()));
        assert_eq!(names(&OWNER), sorted(fields_of::<OwnerReference>()));
        assert_eq!(names(&RESOURCES), sorted(fields_of::<Resources>()));
        // The TOML spelling is left to serde (see TOLERATION).
        let mut toleration = sorted(fields_of::<Toleration>());
        toleration.retain(|f| *f != "toleration_seconds");
        assert_eq!(names(&TOLERATION), toleration);
        assert_eq!(
            names(&REVIEW),
            sorted(fields_of::<super::super::review::ReviewIn>())
        );
        // RequestIn is decoded by hand; its fields are the lenient envelope's.
        assert_eq!(
            names(&REQUEST),
            sorted(fields_of::<super::super::review::LenientRequestIn>())
        );
    }

    use crate::admission::review::{self, decode_whole, ObjectIn};
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

    /// What the walk makes of `body`, as `review::decode` calls it.
    fn walked(body: &[u8]) -> Option<ReviewIn<'static>> {
        decode(std::str::from_utf8(body).ok()?)
    }

    /// `review::decode` (this walk, or serde_json when it gives up) against serde_json alone;
    /// whether the walk decoded it.
    fn agrees(body: &[u8]) -> bool {
        let whole = format!("{:?}", decode_whole(body));
        assert_eq!(format!("{:?}", review::decode(body)), whole);
        match walked(body) {
            Some(walked) => {
                assert_eq!(format!("{:?}", Ok::<_, ()>(walked)), whole);
                true
            }
            None => false,
        }
    }

    #[test]
    fn a_pod_review_decodes_as_serde_json_decodes_it() {
        let mut walked = 0;
        for (name, body) in fixtures() {
            let review: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let request = &review["request"];
            let is_pod = request["kind"]["kind"] == "Pod" && request["oldObject"].is_null();
            let decoded = std::panic::catch_unwind(|| agrees(&body))
                .unwrap_or_else(|_| panic!("{name} decodes otherwise"));
            // Only pod reviews without an oldObject are walked; workloads and updates are not.
            assert_eq!(decoded, is_pod, "{name}");
            walked += usize::from(decoded);
        }
        assert_eq!(walked, 30, "fixtures walked");
    }

    /// The review a kube-apiserver sent for a ReplicaSet's pod, byte for byte.
    fn byte_exact() -> Vec<u8> {
        include_bytes!(
            "../../tests/fixtures/admission-reviews/raw/013-mutate-Pod-CREATE-real.request.json"
        )
        .to_vec()
    }

    /// The byte-exact review with its first `from` replaced by `to`.
    fn edited(from: &str, to: &str) -> Vec<u8> {
        let text = String::from_utf8(byte_exact()).unwrap();
        assert!(text.contains(from), "{from}");
        text.replacen(from, to, 1).into_bytes()
    }

    #[test]
    fn escapes_nulls_and_other_spellings_are_read_as_serde_reads_them() {
        for (from, to) in [
            // Escaped strings are serde_json's to unescape.
            (r#""app":"web""#, r#""app":"w\u00e9b\"\n""#),
            (r#""name":"web""#, r#""name":"\ud83d\ude00""#),
            // Nulls where the field is optional.
            (
                r#""generateName":"web-68fd9d67f4-""#,
                r#""generateName":null"#,
            ),
            (r#""dryRun":false"#, r#""dryRun":null"#),
            (r#""dryRun":false"#, r#""dryRun":true"#),
            (
                r#""serviceAccountName":"default""#,
                r#""nodeSelector":null"#,
            ),
            (
                r#""serviceAccountName":"default""#,
                r#""ephemeralContainers":null"#,
            ),
            (r#""serviceAccountName":"default""#, r#""affinity":null"#),
            // The request kind as another client might spell it.
            (
                r#"{"group":"","version":"v1","kind":"Pod"}"#,
                r#"{ "kind" : "Pod", "version":"v1" }"#,
            ),
            // Tolerations, owners and resources in spellings left to serde.
            (r#""tolerationSeconds":300"#, r#""toleration_seconds":300"#),
            (r#""tolerationSeconds":300"#, r#""tolerationSeconds":-300"#),
            (r#""tolerationSeconds":300"#, r#""tolerationSeconds":null"#),
            (r#""controller":true"#, r#""controller":null"#),
            (r#""memory":"256Mi""#, r#""memory":268435456"#),
            (r#""memory":"256Mi""#, r#""memory":0.5"#),
            (r#""limits":{"#, r#""claims":[],"limits":{"#),
            (r#""resources":{}"#, r#""resources":null"#),
            // A label key given twice keeps its last value.
            (r#""app":"web""#, r#""app":"api","app":"web""#),
            (r#""memory":"256Mi""#, r#""memory":"256Mi","memory":"1Gi""#),
            (r#""labels":{"#, r#""labels": { "#),
        ] {
            assert!(agrees(&edited(from, to)), "{to}");
        }
    }

    #[test]
    fn what_serde_refuses_or_the_walk_does_not_expect_goes_to_serde_json() {
        for (from, to) in [
            // A field given twice: serde's derive refuses it.
            (r#""name":"web""#, r#""name":"web","name":"api""#),
            (
                r#""kind":"AdmissionReview""#,
                r#""kind":"AdmissionReview","kind":"x""#,
            ),
            // Values of another type than the field's.
            (r#""name":"web""#, r#""name":null"#),
            (r#""name":"web""#, r#""name":5"#),
            (r#""app":"web""#, r#""app":null"#),
            (r#""dryRun":false"#, r#""dryRun":"false""#),
            (r#""serviceAccountName":"default""#, r#""containers":null"#),
            (r#""serviceAccountName":"default""#, r#""affinity":5"#),
            (r#""uid":"3d37cdfe"#, r#""uid":null,"x":"3d37cdfe"#),
            (r#""controller":true"#, r#""controller":1"#),
            (r#""kind":"ReplicaSet""#, r#""kind":null"#),
            (r#""tolerationSeconds":300"#, r#""tolerationSeconds":"300""#),
            (
                r#""effect":"NoExecute","#,
                r#""effect":"NoExecute","unknown":1,"#,
            ),
            (r#""tolerationSeconds":300"#, r#""tolerationSeconds":1e3"#),
            (
                r#""tolerationSeconds":300"#,
                r#""tolerationSeconds":99999999999999999999"#,
            ),
            (
                r#""tolerationSeconds":300"#,
                r#""tolerationSeconds":300,"toleration_seconds":1"#,
            ),
            // A control character in a string, in a map key, in the name of a member skipped;
            // an escaped member name.
            (r#""app":"web""#, "\"app\":\"w\u{1}b\""),
            (r#""app":"web""#, "\"a\u{1}p\":\"web\""),
            (r#""dnsPolicy":"#, "\"dns\u{1f}Policy\":"),
            (r#""labels":{"#, r#""lab\u0065ls":{"#),
            // The object before its kind; an old object.
            (r#""oldObject":null"#, r#""oldObject":{}"#),
        ] {
            assert!(!agrees(&edited(from, to)), "{to}");
        }
        let text = String::from_utf8(byte_exact()).unwrap();
        let object = text.find(r#","object":"#).unwrap();
        let kind = text.find(r#","kind":{"#).unwrap();
        let moved = format!(
            "{}{}{}",
            &text[..kind],
            &text[object..text.find(r#","oldObject""#).unwrap()],
            &text[kind..object]
        ) + &text[text.find(r#","oldObject""#).unwrap()..];
        assert!(!agrees(moved.as_bytes()), "object before kind");
    }

    /// Cut short or with one byte changed, a review decodes as before wherever the whole body
    /// still decodes; and an error is serde_json's own, read from the whole body.
    #[test]
    fn damaged_reviews_decode_as_the_whole_body_does() {
        let body = byte_exact();
        let check = |damaged: &[u8]| {
            let whole = decode_whole(damaged);
            let either = review::decode(damaged);
            match (&whole, &either) {
                (Ok(_), _) | (_, Err(_)) => {
                    assert_eq!(format!("{either:?}"), format!("{whole:?}"));
                }
                // Damage to a member nothing reads goes unnoticed (see skip.rs).
                (Err(_), Ok(_)) => assert!(walked(damaged).is_some()),
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
        assert!(format!("{:?}", walked(skipped.as_bytes()).unwrap()) == whole);
        // In a member handed to serde_json: it steps over the unknown member as the whole-body
        // decode does.
        let in_affinity = text.replacen(
            "\"serviceAccountName\":",
            &format!("\"affinity\":{{\"nodeAffinity\":{{\"x\":{deep}}}}},\"serviceAccountName\":"),
            1,
        );
        assert!(agrees(in_affinity.as_bytes()));
        // Where a map of strings was expected: the review is read as before, with the pod raw
        // (the denial says it is malformed).
        let kept = text.replacen("\"labels\":", &format!("\"labels\":{deep},\"x\":"), 1);
        assert!(!agrees(kept.as_bytes()));
        let review = review::decode(kept.as_bytes()).unwrap();
        assert!(matches!(
            review.request.as_ref().unwrap().object,
            ObjectIn::Raw(_)
        ));
    }
}
