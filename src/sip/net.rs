//! Address blocks the SIP edge matches sources against (`trusted_peers`): an address or CIDR
//! block, parsed from its text form. A plain data type: the config converts its entries into it,
//! the endpoint and the TCP limits ask it whether a source is inside.
//!
//! Must not know: the config file, sockets.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// An address or CIDR block (`192.0.2.10`, `10.0.0.0/8`, `2001:db8::/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct PeerNet(pub IpNet);

impl PeerNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // IPv4-mapped IPv6 sources (dual-stack sockets) match IPv4 blocks.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.0.contains(&ip)
    }
}

impl TryFrom<String> for PeerNet {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(PeerNet(net));
        }
        s.parse::<IpAddr>()
            .map(|ip| PeerNet(IpNet::from(ip)))
            .map_err(|_| format!("{s:?} is not an IP address or CIDR block"))
    }
}

impl From<PeerNet> for String {
    fn from(p: PeerNet) -> String {
        p.0.to_string()
    }
}
