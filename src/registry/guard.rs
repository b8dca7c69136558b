//! Which hosts archgate may contact. Image names are user input: without this a pod spec could
//! make the webhook probe the cloud metadata service or any internal host.
//!
//! Names are checked against the allow and deny lists; addresses (literal, or every address a name
//! resolves to, as the HTTP client's resolver asks) against the always-blocked networks and the
//! deny list's CIDRs, so a name pointing at 169.254.169.254 is refused as surely as the literal.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A host or address the guard refused; the message says which rule and how to change it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("registry {0} is not in the registry config's allow list: add it there to let archgate ask it")]
    NotAllowed(String),
    #[error("registry {0} is in the registry config's deny list")]
    Denied(String),
    #[error("registry {host} resolves to {ip}, a link-local, cloud metadata or other never-contacted address")]
    Blocked { host: String, ip: IpAddr },
    #[error("registry {host} resolves to {ip}, in the registry config's denied network {network}")]
    DeniedNetwork {
        host: String,
        ip: IpAddr,
        network: String,
    },
}

/// An IP network (`10.0.0.0/8`, `fe80::/10`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn parse(s: &str) -> Option<Network> {
        let (addr, prefix) = s.split_once('/')?;
        let addr: IpAddr = addr.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Network { addr, prefix })
    }

    const fn v4(a: [u8; 4], prefix: u8) -> Network {
        Network {
            addr: IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])),
            prefix,
        }
    }

    const fn v6(segments: [u16; 8], prefix: u8) -> Network {
        let [a, b, c, d, e, f, g, h] = segments;
        Network {
            addr: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)),
            prefix,
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Never contacted, whatever the lists say: a registry has no business there, and a metadata
/// service answers with cloud credentials.
const ALWAYS_BLOCKED: [Network; 10] = [
    Network::v4([169, 254, 0, 0], 16), // link-local: AWS, GCP, Azure, OCI metadata
    Network::v4([100, 100, 100, 200], 32), // Alibaba Cloud metadata
    Network::v4([168, 63, 129, 16], 32), // Azure WireServer
    Network::v4([0, 0, 0, 0], 8),      // "this network"
    Network::v4([224, 0, 0, 0], 4),    // multicast
    Network::v4([255, 255, 255, 255], 32), // broadcast
    Network::v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), // link-local
    Network::v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128), // AWS metadata over IPv6
    Network::v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), // multicast
    Network::v6([0, 0, 0, 0, 0, 0, 0, 0], 128), // unspecified
];

/// The host rules, built once from the registry configuration.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allow: Vec<String>,
    deny_hosts: Vec<String>,
    deny_networks: Vec<Network>,
}

impl Guard {
    /// `allow` empty means any host; `deny` holds host patterns and CIDRs. `configured` (hosts
    /// and mirrors the operator named in the configuration) are allowed as if listed.
    pub fn new(allow: &[String], deny: &[String], configured: &[String]) -> Guard {
        let mut allow = allow.to_vec();
        if !allow.is_empty() {
            allow.extend(configured.iter().cloned());
        }
        let (networks, hosts): (Vec<&String>, Vec<&String>) =
            deny.iter().partition(|d| d.contains('/'));
        Guard {
            allow,
            deny_hosts: hosts.into_iter().cloned().collect(),
            deny_networks: networks.iter().filter_map(|n| Network::parse(n)).collect(),
        }
    }

    /// May archgate ask the registry `host` (host[:port] from an image name or a mirror)?
    pub fn check_registry(&self, host: &str) -> Result<(), GuardError> {
        if !self.allow.is_empty() && !self.allow.iter().any(|p| host_matches(p, host)) {
            return Err(GuardError::NotAllowed(host.to_string()));
        }
        self.check_other(host)
    }

    /// May archgate follow a redirect or token realm to `host`? Registries legitimately send
    /// those elsewhere (blob storage, an auth service), so only the deny rules apply.
    pub fn check_other(&self, host: &str) -> Result<(), GuardError> {
        if self.deny_hosts.iter().any(|p| host_matches(p, host)) {
            return Err(GuardError::Denied(host.to_string()));
        }
        let (name, _) = super::config::split_host_port(host);
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(ip) => self.check_ip(host, ip),
            Err(_) => Ok(()),
        }
    }

    /// May archgate connect to `ip`, an address `host` resolved to?
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), GuardError> {
        if ALWAYS_BLOCKED.iter().any(|n| n.contains(ip)) {
            return Err(GuardError::Blocked {
                host: host.to_string(),
                ip,
            });
        }
        match self.deny_networks.iter().find(|n| n.contains(ip)) {
            Some(network) => Err(GuardError::DeniedNetwork {
                host: host.to_string(),
                ip,
                network: network.to_string(),
            }),
            None => Ok(()),
        }
    }
}

/// `pattern` is `host`, `host:port` or `*.domain[:port]` (`*` is exactly one label, as in
/// kubelet's credential matching); a pattern without a port matches every port.
fn host_matches(pattern: &str, host: &str) -> bool {
    let (p_name, p_port) = super::config::split_host_port(pattern);
    let (h_name, h_port) = super::config::split_host_port(host);
    if p_port.is_some() && p_port != h_port {
        return false;
    }
    match p_name.strip_prefix("*.") {
        Some(suffix) => h_name
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => p_name == h_name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(allow: &[&str], deny: &[&str]) -> Guard {
        let s = |v: &[&str]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        Guard::new(&s(allow), &s(deny), &[])
    }

    #[test]
    fn metadata_and_link_local_addresses_are_refused_by_default() {
        let g = Guard::default();
        for host in [
            "169.254.169.254",
            "169.254.169.254:80",
            "[fe80::1]:5000",
            "[fd00:ec2::254]",
            "100.100.100.200",
            "[::ffff:169.254.169.254]",
            "0.0.0.0:5000",
        ] {
            assert!(
                matches!(g.check_registry(host), Err(GuardError::Blocked { .. })),
                "{host}"
            );
        }
        assert_eq!(g.check_registry("127.0.0.1:5000"), Ok(()));
        assert_eq!(g.check_registry("10.1.2.3"), Ok(()));
        assert_eq!(g.check_registry("ghcr.io"), Ok(()));
        assert!(g
            .check_ip(
                "metadata.google.internal",
                "169.254.169.254"
                    .parse()
                    .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
            )
            .is_err());
    }

    #[test]
    fn allow_and_deny_lists_match_hosts_ports_and_one_label_wildcards() {
        let g = guard(
            &["docker.io", "*.internal:5000"],
            &["bad.internal:5000", "10.0.0.0/8"],
        );
        assert_eq!(g.check_registry("docker.io"), Ok(()));
        assert_eq!(g.check_registry("reg.internal:5000"), Ok(()));
        assert!(matches!(
            g.check_registry("a.b.internal:5000"),
            Err(GuardError::NotAllowed(_))
        ));
        assert!(matches!(
            g.check_registry("reg.internal:6000"),
            Err(GuardError::NotAllowed(_))
        ));
        assert!(matches!(
            g.check_registry("ghcr.io"),
            Err(GuardError::NotAllowed(_))
        ));
        assert!(matches!(
            g.check_registry("bad.internal:5000"),
            Err(GuardError::Denied(_))
        ));
        let ip: IpAddr = "10.9.8.7"
            .parse()
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert!(matches!(
            g.check_ip("x", ip),
            Err(GuardError::DeniedNetwork { .. })
        ));
        // Redirects and realms may leave the allow list but not the deny rules.
        assert_eq!(g.check_other("storage.example"), Ok(()));
        assert!(g.check_other("169.254.169.254").is_err());
    }

    #[test]
    fn networks_parse_and_contain() {
        let n = Network::parse("192.168.0.0/16").unwrap_or(ALWAYS_BLOCKED[0]);
        assert!(n.contains(
            "192.168.4.5"
                .parse()
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        ));
        assert!(!n.contains(
            "192.169.0.1"
                .parse()
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        ));
        assert!(Network::parse("10.0.0.0/33").is_none());
        assert!(Network::parse("::/0").is_some());
    }
}
