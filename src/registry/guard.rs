//! Which hosts archgate may contact. Image names are user input: without this a pod spec could
//! make the webhook probe the cloud metadata service or any internal host.
//!
//! Names are checked against the allow and deny lists; addresses (literal, or every address a name
//! resolves to, as the HTTP client's resolver asks) against the always-blocked networks and the
//! deny list's CIDRs, so a name pointing at 169.254.169.254 is refused as surely as the literal.
//!
//! Private networks (loopback, RFC 1918, RFC 4193, shared address space, where cluster Services
//! and the node's own ports live) are refused unless the operator named the host: a key or mirror
//! under `[registries]`, or an `allow` entry. A homelab registry at 192.168.1.10 works once named;
//! an image called `10.96.0.1:443/x` does not make the webhook talk to the API server.
//!
//! Refusals never say which address a name resolved to: the message reaches whoever created the
//! pod, and must not be a way to map the internal network.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A host or address the guard refused; the message says which rule and how to change it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// The allow list is not empty and no entry matches the registry host (given).
    #[error("registry {0} is not in the registry config's allow list: add it there to let archgate ask it")]
    NotAllowed(String),
    /// A host pattern of the deny list matches the host (given).
    #[error("registry {0} is in the registry config's deny list")]
    Denied(String),
    /// The host is, or resolves to, an address that is never contacted (metadata services,
    /// link-local, multicast), whatever the lists say.
    #[error("registry {host} is on a link-local, cloud metadata or other never-contacted network")]
    Blocked {
        /// The host checked: a registry, mirror, redirect target or token realm.
        host: String,
        /// The refused address, for archgate's log only: messages never show it.
        ip: IpAddr,
    },
    /// The host is, or resolves to, an address in a CIDR of the deny list.
    #[error("registry {host} is in a network the registry config denies")]
    DeniedNetwork {
        /// The host checked: a registry, mirror, redirect target or token realm.
        host: String,
        /// The refused address, for archgate's log only: messages never show it.
        ip: IpAddr,
        /// The deny-list network it fell in, e.g. `10.0.0.0/8`.
        network: String,
    },
    /// The host is, or resolves to, a private address (loopback, RFC 1918/4193, shared space)
    /// and the operator has not named it under `[registries]` or in `allow`.
    #[error("registry {host} is on a private network (loopback, RFC 1918/4193 or cluster-internal): name it under [registries] in the registry config to let archgate ask it")]
    Private {
        /// The host checked: a registry, mirror, redirect target or token realm.
        host: String,
        /// The refused address, for archgate's log only: messages never show it.
        ip: IpAddr,
    },
}

/// An IP network (`10.0.0.0/8`, `fe80::/10`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `addr/prefix`; None for a bare address or a prefix longer than the address.
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

    /// Whether `ip` is in the network; IPv4-mapped IPv6 addresses count as their IPv4 address.
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

/// Contacted only when the operator named the host: where a cluster's Services, its nodes' own
/// ports and a home network live.
const PRIVATE: [Network; 7] = [
    Network::v4([127, 0, 0, 0], 8),                // loopback
    Network::v4([10, 0, 0, 0], 8),                 // RFC 1918
    Network::v4([172, 16, 0, 0], 12),              // RFC 1918
    Network::v4([192, 168, 0, 0], 16),             // RFC 1918
    Network::v4([100, 64, 0, 0], 10),              // shared address space (CGNAT, overlays)
    Network::v6([0, 0, 0, 0, 0, 0, 0, 1], 128),    // loopback
    Network::v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), // RFC 4193 unique local
];

/// The host rules, built once from the registry configuration.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allow: Vec<String>,
    /// Hosts the operator named (allow entries, `[registries]` keys and mirrors): the only ones
    /// that may be on a private network.
    named: Vec<String>,
    deny_hosts: Vec<String>,
    deny_networks: Vec<Network>,
}

impl Guard {
    /// `allow` empty means any public host; `deny` holds host patterns and CIDRs. `configured`
    /// (hosts and mirrors the operator named in the configuration) are allowed as if listed,
    /// and may be on private networks.
    pub fn new(allow: &[String], deny: &[String], configured: &[String]) -> Guard {
        let named: Vec<String> = allow.iter().chain(configured).cloned().collect();
        let allow = if allow.is_empty() {
            Vec::new()
        } else {
            named.clone()
        };
        let (networks, hosts): (Vec<&String>, Vec<&String>) =
            deny.iter().partition(|d| d.contains('/'));
        Guard {
            allow,
            named,
            deny_hosts: hosts.into_iter().cloned().collect(),
            deny_networks: networks.iter().filter_map(|n| Network::parse(n)).collect(),
        }
    }

    /// Whether the operator named `host` (`host[:port]`; a name the resolver asks about has no
    /// port, and matches a named host on any port).
    fn is_named(&self, host: &str) -> bool {
        let (_, port) = super::config::split_host_port(host);
        self.named.iter().any(|p| match port {
            Some(_) => host_matches(p, host),
            None => host_matches(super::config::split_host_port(p).0, host),
        })
    }

    /// May archgate ask the registry `host` (host[:port] from an image name or a mirror)?
    pub fn check_registry(&self, host: &str) -> Result<(), GuardError> {
        if !self.allow.is_empty() && !self.allow.iter().any(|p| host_matches(p, host)) {
            return Err(GuardError::NotAllowed(host.to_string()));
        }
        self.check_other(host)?;
        // A private address is named with its port: naming 127.0.0.1:5000 is no licence to
        // probe 127.0.0.1:22.
        match literal_ip(host) {
            Some(ip) if PRIVATE.iter().any(|n| n.contains(ip)) && !self.is_named(host) => {
                let host = host.to_string();
                Err(GuardError::Private { host, ip })
            }
            _ => Ok(()),
        }
    }

    /// May archgate follow a redirect or token realm to `host`? Registries legitimately send
    /// those elsewhere (blob storage, an auth service on another port), so the allow list does
    /// not apply and a named host's name is enough.
    pub fn check_other(&self, host: &str) -> Result<(), GuardError> {
        if self.deny_hosts.iter().any(|p| host_matches(p, host)) {
            return Err(GuardError::Denied(host.to_string()));
        }
        match literal_ip(host) {
            Some(ip) => self.check_ip(super::config::split_host_port(host).0, ip),
            None => Ok(()),
        }
    }

    /// May archgate connect to `ip`, an address `host` resolved to?
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), GuardError> {
        let host = host.to_string();
        if ALWAYS_BLOCKED.iter().any(|n| n.contains(ip)) {
            return Err(GuardError::Blocked { host, ip });
        }
        if let Some(network) = self.deny_networks.iter().find(|n| n.contains(ip)) {
            let network = network.to_string();
            return Err(GuardError::DeniedNetwork { host, ip, network });
        }
        if PRIVATE.iter().any(|n| n.contains(ip)) && !self.is_named(&host) {
            return Err(GuardError::Private { host, ip });
        }
        Ok(())
    }
}

/// The address in `host[:port]` when it is written as one (`10.0.0.1:5000`, `[::1]`).
fn literal_ip(host: &str) -> Option<IpAddr> {
    let (name, _) = super::config::split_host_port(host);
    name.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
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
        assert_eq!(g.check_registry("8.8.8.8:5000"), Ok(()));
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

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn private_networks_are_refused_unless_the_host_is_named() {
        let s = |v: &[&str]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        let g = Guard::new(&[], &[], &s(&["127.0.0.1:5000", "registry.home.lan:5000"]));
        for host in [
            "127.0.0.1:22",
            "127.0.0.2:5000",
            "10.96.0.1:443",
            "172.20.0.5",
            "192.168.1.10:5000",
            "100.64.0.1",
            "[::1]:5000",
            "[fd12:3456::1]:5000",
        ] {
            assert!(
                matches!(g.check_registry(host), Err(GuardError::Private { .. })),
                "{host}"
            );
        }
        assert_eq!(g.check_registry("127.0.0.1:5000"), Ok(()));
        // The resolver asks about names without a port.
        assert_eq!(g.check_ip("registry.home.lan", ip("192.168.1.10")), Ok(()));
        assert!(matches!(
            g.check_ip("gitea.svc.cluster.local", ip("10.96.4.2")),
            Err(GuardError::Private { .. })
        ));
        // Public addresses need no naming; the message never says where a name pointed.
        assert_eq!(g.check_ip("ghcr.io", ip("140.82.121.34")), Ok(()));
        let refused = g.check_ip("internal.example", ip("10.1.2.3"));
        let text = refused.map_err(|e| e.to_string()).err().unwrap_or_default();
        assert!(
            text.contains("internal.example") && !text.contains("10.1.2.3"),
            "{text}"
        );
        // Naming through the allow list works too, and deny rules still win over naming.
        let g = Guard::new(&s(&["*.home.lan"]), &s(&["192.168.9.0/24"]), &[]);
        assert_eq!(g.check_ip("nas.home.lan", ip("192.168.1.2")), Ok(()));
        assert!(matches!(
            g.check_ip("nas.home.lan", ip("192.168.9.2")),
            Err(GuardError::DeniedNetwork { .. })
        ));
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
