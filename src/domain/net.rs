//! Client addresses and the networks they are matched against.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use super::Invalid;

/// The address of the client a decision is about. IPv4-mapped IPv6 addresses
/// (`::ffff:10.0.0.1`) are stored as IPv4, so `10.0.0.0/8` matches them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(IpAddr);

impl ClientAddr {
    /// The canonical form of `ip`.
    pub fn new(ip: IpAddr) -> ClientAddr {
        ClientAddr(ip.to_canonical())
    }

    /// The address.
    pub fn ip(self) -> IpAddr {
        self.0
    }
}

impl From<IpAddr> for ClientAddr {
    fn from(ip: IpAddr) -> ClientAddr {
        ClientAddr::new(ip)
    }
}

impl fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A list of networks (`allowed_networks`, `trusted_proxies`), in
/// configuration order so that a match can be named by its index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks(Vec<IpNet>);

impl Networks {
    /// Parse one entry: a CIDR, or a bare address (a single-host network).
    /// Host bits are cleared (`10.1.2.3/8` is `10.0.0.0/8`).
    pub fn parse_one(raw: &str) -> Result<IpNet, Invalid> {
        let t = raw.trim();
        if let Ok(net) = t.parse::<IpNet>() {
            return Ok(net.trunc());
        }
        if let Ok(ip) = t.parse::<IpAddr>() {
            return Ok(IpNet::from(ip));
        }
        Err(Invalid::new(match t.split_once('/') {
            Some((addr, _)) if addr.parse::<IpAddr>().is_err() => {
                format!("{addr:?} is not an IP address")
            }
            Some((_, len)) => format!("prefix length {len:?} is out of range"),
            None => "not an IP address".to_string(),
        }))
    }

    /// The networks of a list already parsed.
    pub fn new(nets: Vec<IpNet>) -> Networks {
        Networks(nets)
    }

    /// Loopback only: `127.0.0.1/32` and `::1/128` (the default `trusted_proxies`).
    pub fn loopback() -> Networks {
        Networks(vec![
            IpNet::from(IpAddr::from([127, 0, 0, 1])),
            IpNet::from(IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])),
        ])
    }

    /// The index of the first network holding `addr`.
    pub fn position(&self, addr: ClientAddr) -> Option<usize> {
        self.0.iter().position(|n| n.contains(&addr.0))
    }

    /// Whether any network holds `addr`.
    pub fn contains(&self, addr: ClientAddr) -> bool {
        self.position(addr).is_some()
    }

    /// The network at `index`, for explanations.
    pub fn get(&self, index: usize) -> Option<&IpNet> {
        self.0.get(index)
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many networks there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The networks, in order.
    pub fn iter(&self) -> impl Iterator<Item = &IpNet> {
        self.0.iter()
    }
}

impl fmt::Display for Networks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            n.fmt(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
