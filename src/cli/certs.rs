//! `archgate certs`: a development CA and a serving certificate signed by it, written as
//! `ca.crt`, `tls.crt` and `tls.key` (the names a kubernetes.io/tls Secret uses).

use anyhow::Context;
use clap::Args;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// `archgate certs`'s options: where to write, and the names and lifetime of the serving
/// certificate.
#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Directory to write ca.crt, tls.crt and tls.key into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// DNS names of the serving certificate, e.g. archgate.archgate.svc (repeatable).
    #[arg(long = "dns", required = true)]
    pub dns: Vec<String>,
    /// IP addresses of the serving certificate (repeatable).
    #[arg(long = "ip")]
    pub ip: Vec<IpAddr>,
    /// Validity in days.
    #[arg(long, default_value_t = 365)]
    pub days: i64,
}

/// PEM text of a generated CA and a serving pair.
pub struct Generated {
    /// The development CA's certificate (`ca.crt`): what the webhook configuration's `caBundle`
    /// trusts.
    pub ca_pem: String,
    /// The serving certificate (`tls.crt`), signed by the CA, for the given names and addresses.
    pub cert_pem: String,
    /// The serving certificate's private key (`tls.key`); written readable by its owner only.
    pub key_pem: String,
}

/// Generates a CA and a serving certificate for `dns` names and `ips`.
pub fn generate(dns: &[String], ips: &[IpAddr], days: i64) -> Result<Generated, rcgen::Error> {
    let now = OffsetDateTime::now_utc();
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "archgate development CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = now - Duration::hours(1);
    ca.not_after = now + Duration::days(days);
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;

    let mut leaf = CertificateParams::new(dns.to_vec())?;
    leaf.subject_alt_names
        .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
    leaf.distinguished_name.push(
        DnType::CommonName,
        dns.first().map_or("archgate", String::as_str),
    );
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.not_before = now - Duration::hours(1);
    leaf.not_after = now + Duration::days(days);
    let key = KeyPair::generate()?;
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key)?;
    Ok(Generated {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Runs `certs`: writes ca.crt, tls.crt and tls.key into `--out` and says what it wrote.
pub fn run(args: &CertsArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.days > 0, "--days must be positive, got {}", args.days);
    let generated =
        generate(&args.dns, &args.ip, args.days).context("cannot generate certificates")?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create directory {}", args.out.display()))?;
    write(&args.out.join("ca.crt"), &generated.ca_pem, false)?;
    write(&args.out.join("tls.crt"), &generated.cert_pem, false)?;
    write(&args.out.join("tls.key"), &generated.key_pem, true)?;
    println!(
        "wrote {0}/ca.crt, {0}/tls.crt and {0}/tls.key (valid {1} days for {2})",
        args.out.display(),
        args.days,
        args.dns
            .iter()
            .cloned()
            .chain(args.ip.iter().map(ToString::to_string))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// Writes a file; private keys are readable by their owner only.
fn write(path: &Path, text: &str, private: bool) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut options = std::fs::OpenOptions::new();
    options
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if private { 0o600 } else { 0o644 });
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // `mode` applies to new files only: an existing key file is narrowed before it is written.
    let mode = std::fs::Permissions::from_mode(if private { 0o600 } else { 0o644 });
    file.set_permissions(mode)
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
