//! The token service of the registry's `auth.token` mode, run by the test on loopback: real
//! ES256 JWTs with an `x5c` certificate that the registry's `rootcertbundle` trusts.

use base64::Engine;
use http_body_util::Full;
use hyper::body::Bytes;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// A token service for the registry's `auth.token` mode: checks Basic credentials against its
/// users and signs ES256 JWTs with an `x5c` certificate the registry trusts. Anonymous callers
/// get pull access to `public/*` only; users get what they ask for.
pub struct TokenIssuer {
    pub addr: SocketAddr,
    pub cert_pem: String,
    cert_der: Vec<u8>,
    key: ring::signature::EcdsaKeyPair,
    users: HashMap<String, String>,
    /// Tokens issued (for asserting they never leak).
    pub issued: Mutex<Vec<String>>,
    pub requests: AtomicUsize,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl TokenIssuer {
    pub const SERVICE: &'static str = "archgate-test-registry";
    pub const ISSUER: &'static str = "archgate-test-issuer";

    /// Starts on a loopback port on the current tokio runtime.
    pub async fn start(users: &[(&str, &str)]) -> Arc<TokenIssuer> {
        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["token-issuer".to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "archgate test token issuer");
        let cert = params.self_signed(&key_pair).unwrap();
        let rng = ring::rand::SystemRandom::new();
        let key = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key_pair.serialize_der(),
            &rng,
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let issuer = Arc::new(TokenIssuer {
            addr,
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key,
            users: users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            issued: Mutex::new(Vec::new()),
            requests: AtomicUsize::new(0),
            _shutdown: tx,
        });
        let weak = Arc::downgrade(&issuer);
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    _ = &mut rx => return,
                    accepted = listener.accept() => match accepted { Ok((s, _)) => s, Err(_) => return },
                };
                let weak = weak.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let issuer = weak.upgrade();
                            async move {
                                let (head, body) = req.into_parts();
                                let body = http_body_util::BodyExt::collect(body)
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let resp = match issuer {
                                    Some(issuer) if head.method == hyper::Method::POST => {
                                        issuer.refresh(&body)
                                    }
                                    Some(issuer) => {
                                        issuer.answer(&hyper::Request::from_parts(head, ()))
                                    }
                                    None => (503, String::new()),
                                };
                                let mut r = hyper::Response::new(Full::new(Bytes::from(resp.1)));
                                *r.status_mut() = hyper::StatusCode::from_u16(resp.0).unwrap();
                                Ok::<_, std::convert::Infallible>(r)
                            }
                        },
                    );
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        issuer
    }

    fn answer<B>(&self, req: &hyper::Request<B>) -> (u16, String) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let query = req.uri().query().unwrap_or("");
        let scopes: Vec<String> = query
            .split('&')
            .filter_map(|kv| kv.strip_prefix("scope="))
            .map(percent_decode)
            .collect();
        let user = match req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
        {
            None => None,
            Some(h) => {
                let raw = h
                    .strip_prefix("Basic ")
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
                let raw = raw
                    .and_then(|r| String::from_utf8(r).ok())
                    .unwrap_or_default();
                let (u, p) = raw.split_once(':').unwrap_or(("", ""));
                if self.users.get(u).map(String::as_str) != Some(p) {
                    return (
                        401,
                        r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#
                            .into(),
                    );
                }
                Some(u.to_string())
            }
        };
        let scope = scopes.join(" ");
        let token = match &user {
            Some(u) => self.mint(u, &scope),
            None => {
                let public: Vec<&str> = scopes
                    .iter()
                    .map(String::as_str)
                    .filter(|s| s.starts_with("repository:public/"))
                    .collect();
                self.mint_for(None, &public.join(" "), true)
            }
        };
        (200, json!({"token": token, "expires_in": 300}).to_string())
    }

    /// The identity token (OAuth2 refresh token) `docker login` would store for `user`.
    pub fn refresh_token_for(user: &str) -> String {
        format!("refresh-token-for-{user}")
    }

    /// Docker's OAuth2 token endpoint: a form with `grant_type=refresh_token`, the refresh token,
    /// `service`, `client_id` and `scope`; answered with an `access_token`.
    fn refresh(&self, body: &[u8]) -> (u16, String) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let form: HashMap<String, String> = String::from_utf8_lossy(body)
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), percent_decode(&v.replace('+', " "))))
            .collect();
        let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
        let user = self
            .users
            .keys()
            .find(|u| TokenIssuer::refresh_token_for(u) == field("refresh_token"));
        match (field("grant_type"), user) {
            ("refresh_token", Some(user))
                if field("service") == Self::SERVICE && !field("client_id").is_empty() =>
            {
                let token = self.mint(user, field("scope"));
                (
                    200,
                    json!({"access_token": token, "expires_in": 300, "scope": field("scope")})
                        .to_string(),
                )
            }
            _ => (
                400,
                r#"{"error":"invalid_grant","error_description":"refresh token not valid"}"#.into(),
            ),
        }
    }

    /// A token granting `scope` ("repository:name:actions", space-separated) to `user`.
    pub fn mint(&self, user: &str, scope: &str) -> String {
        self.mint_for(Some(user), scope, false)
    }

    fn mint_for(&self, user: Option<&str>, scope: &str, pull_only: bool) -> String {
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let access: Vec<Value> = scope
            .split(' ')
            .filter_map(|s| {
                let mut parts = s.splitn(3, ':');
                let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                let actions: Vec<&str> = actions
                    .split(',')
                    .filter(|a| !pull_only || *a == "pull")
                    .collect();
                Some(json!({"type": kind, "name": name, "actions": actions}))
            })
            .collect();
        let header = json!({"typ": "JWT", "alg": "ES256", "x5c": [base64::engine::general_purpose::STANDARD.encode(&self.cert_der)]});
        let claims = json!({
            "iss": Self::ISSUER, "sub": user.unwrap_or(""), "aud": Self::SERVICE,
            "exp": now + 300, "nbf": now - 30, "iat": now - 30, "jti": format!("{now}-{}", self.requests.load(Ordering::SeqCst)),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self
            .key
            .sign(&ring::rand::SystemRandom::new(), signing_input.as_bytes())
            .unwrap();
        let token = format!("{signing_input}.{}", b64(sig.as_ref()));
        self.issued.lock().unwrap().push(token.clone());
        token
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
