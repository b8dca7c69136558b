//! Start-up refusals that name the file, line and key; `archgate certs`.

use super::*;

/// Runs `archgate serve` with a policy text and expects it to fail before listening.
fn serve_with_bad_policy(policy_text: &str, platforms_text: Option<&str>) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    write_certs(&certs);
    let policy = write_file(dir.path(), "bad-policy.toml", policy_text);
    let platforms = match platforms_text {
        Some(t) => write_file(dir.path(), "bad-platforms.toml", t),
        None => common::homelab_platforms(),
    };
    let mut child = Command::new(common::bin())
        .arg("serve")
        .arg("--policy")
        .arg(&policy)
        .arg("--platforms")
        .arg(&platforms)
        .arg("--tls-cert")
        .arg(certs.join("tls.crt"))
        .arg("--tls-key")
        .arg(certs.join("tls.key"))
        .args(["--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "archgate serve with a bad file is still running after 10 s\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !status.success(),
        "must exit non-zero, got {status}\n{stderr}"
    );
    assert!(
        !stdout.contains("\"listening\"") && !stdout.contains("listening"),
        "must never start listening:\n{stdout}"
    );
    let named = match platforms_text {
        Some(_) => platforms,
        None => policy,
    };
    assert!(
        stderr.contains(&*named.to_string_lossy()),
        "stderr must name the file {}:\n{stderr}",
        named.display()
    );
    (stdout, stderr)
}

#[test]
fn serve_refuses_a_policy_with_an_unknown_key_naming_file_line_column_and_key() {
    let (_, stderr) = serve_with_bad_policy(
        "[cluster]\nplatforms = [\"linux/amd64\"]\n\n[defaults]\nmode = \"mutate\"\nunknown_imagez = \"warn\"\n",
        None,
    );
    assert!(stderr.contains("unknown field"), "{stderr}");
    assert!(stderr.contains("unknown_imagez"), "{stderr}");
    assert!(stderr.contains("line 6"), "line of the key:\n{stderr}");
    assert!(stderr.contains("column 1"), "column of the key:\n{stderr}");
}

#[test]
fn serve_refuses_a_policy_with_a_wrong_type_naming_file_line_and_column() {
    let (_, stderr) =
        serve_with_bad_policy("# comment\n[cluster]\nplatforms = \"linux/amd64\"\n", None);
    assert!(stderr.contains("invalid type"), "{stderr}");
    assert!(stderr.contains("line 3"), "line of the value:\n{stderr}");
    assert!(
        stderr.contains("column 13"),
        "column of the value:\n{stderr}"
    );
}

#[test]
fn serve_refuses_a_platforms_file_with_an_unknown_key() {
    let (_, stderr) = serve_with_bad_policy(
        PLAIN_POLICY,
        Some("[image]\n\"docker.io/library/nginx:1.27\" = [\"linux/amd64\"]\n"),
    );
    assert!(stderr.contains("unknown field"), "{stderr}");
    assert!(stderr.contains("image"), "{stderr}");
    assert!(stderr.contains("line 1"), "{stderr}");
}

#[test]
fn certs_writes_a_ca_a_certificate_and_a_key_readable_by_its_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("new/certs");
    write_certs(&out);
    for (file, begin) in [
        ("ca.crt", "-----BEGIN CERTIFICATE-----"),
        ("tls.crt", "-----BEGIN CERTIFICATE-----"),
        ("tls.key", "-----BEGIN PRIVATE KEY-----"),
    ] {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        assert!(text.starts_with(begin), "{file}: {text}");
        assert!(text.trim_end().ends_with("-----"), "{file}: {text}");
    }
    let mode = std::fs::metadata(out.join("tls.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "tls.key mode {:o}", mode & 0o777);
    let ca = std::fs::read(out.join("ca.crt")).unwrap();
    assert_eq!(
        rustls_pemfile::certs(&mut &ca[..]).count(),
        1,
        "ca.crt holds one certificate"
    );
}

#[tokio::test]
async fn the_generated_certificate_verifies_as_localhost_and_as_127_0_0_1_over_both_protocols() {
    let server = Server::start();
    for name in ["localhost", "127.0.0.1"] {
        for proto in [Proto::H2, Proto::H1] {
            let mut c = Client::connect(server.addr, &server.ca, name, proto)
                .await
                .unwrap_or_else(|e| panic!("{name} {proto:?}: {e:#}"));
            assert_eq!(
                c.get("/healthz").await.0,
                StatusCode::OK,
                "{name} {proto:?}"
            );
        }
    }
    assert!(
        Client::connect(server.addr, &server.ca, "archgate.example", Proto::H2)
            .await
            .is_err(),
        "a name not in the certificate must not verify"
    );
}
