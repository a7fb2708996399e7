//! Cluster membership: who the members are (from `MOSTDB_CLUSTER_URLS`, as the original
//! deploys it), which one is this node, and the quorum size ([`quorum`], the one place it is
//! computed). Passive state: the membership is fixed at start; the node-wide view of each
//! member's health ([`health::Health`]) is written by the peer links and their monitor and
//! read by the API.
//!
//! Must not import `http`, `api`, `replication` or `storage`.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};

use crate::config::Settings;

pub mod health;

/// One member of the cluster.
#[derive(Debug)]
pub struct Member {
    /// The URL as configured (for logs and the cluster view).
    pub url: String,
    /// `host:port`, resolved anew on every connection attempt (container names may resolve
    /// only once their container is up).
    pub authority: String,
    pub is_self: bool,
}

/// How many replicas make a majority of `n`: Q = ⌊n/2⌋ + 1. Any two majorities share a
/// replica, which is what every quorum rule of DESIGN §3 rests on.
pub fn quorum(n: usize) -> usize {
    n / 2 + 1
}

/// The members, this node among them. A member's index is this node's own numbering of the
/// replicas; other nodes may number them differently, and nothing on the wire depends on it.
#[derive(Debug)]
pub struct Membership {
    pub members: Vec<Member>,
    pub self_index: usize,
}

impl Membership {
    /// N: every member, this node included.
    pub fn size(&self) -> usize {
        self.members.len()
    }

    /// Q: how many members make a majority.
    pub fn quorum(&self) -> usize {
        quorum(self.size())
    }

    pub fn peers(&self) -> impl Iterator<Item = (usize, &Member)> {
        self.members.iter().enumerate().filter(|(_, m)| !m.is_self)
    }

    pub fn is_single(&self) -> bool {
        self.size() == 1
    }

    /// Reads the member list from the settings. This node is the member whose URL equals
    /// `MOSTDB_SERVER_URL` (ignoring case and a trailing `/`), else the one whose address is
    /// the one this node listens on; when none is, this node is an extra member (the
    /// original also allowed listing only the other nodes).
    pub fn from_settings(settings: &Settings) -> Result<Membership, String> {
        let own_url = settings.server_url.as_deref().map(url_identity);
        let mut urls: Vec<String> = settings.cluster_urls.clone();
        if let Some(own) = &settings.server_url {
            if !urls.iter().any(|u| Some(url_identity(u)) == own_url) && !urls.is_empty() {
                urls.push(own.clone());
            }
        }
        let mut members: Vec<Member> = urls
            .iter()
            .map(|url| {
                let authority = authority(url)?;
                let is_self = match &own_url {
                    Some(own) => url_identity(url) == *own,
                    None => is_own_address(&authority, settings),
                };
                Ok(Member {
                    url: url.clone(),
                    authority,
                    is_self,
                })
            })
            .collect::<Result<_, String>>()?;
        match members.iter().filter(|m| m.is_self).count() {
            0 => members.push(Member {
                url: format!("http://{}:{}", settings.host, settings.port),
                authority: format!("{}:{}", settings.host, settings.port),
                is_self: true,
            }),
            1 => {}
            _ => return Err("MOSTDB_CLUSTER_URLS names this node more than once".to_string()),
        }
        let self_index = members.iter().position(|m| m.is_self).unwrap_or_default();
        Ok(Membership {
            members,
            self_index,
        })
    }
}

/// `http://Host:5379/` and `http://host:5379` are the same member.
pub fn url_identity(url: &str) -> String {
    url.trim_end_matches('/').to_ascii_lowercase()
}

/// `host:port` of an `http://host:port[/]` URL (validated by `config`).
fn authority(url: &str) -> Result<String, String> {
    let rest = url
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case("http://"))
        .map(|_| &url[7..])
        .ok_or_else(|| format!("{url}: expected http://host:port"))?;
    Ok(rest.trim_end_matches('/').to_string())
}

/// Whether `authority` names the address this node listens on: the same port, and either
/// the listen address itself or, when listening on every address, an address of this machine.
fn is_own_address(authority: &str, settings: &Settings) -> bool {
    let Ok(addrs) = authority.to_socket_addrs() else {
        return false;
    };
    addrs.into_iter().any(|addr: SocketAddr| {
        addr.port() == settings.port
            && if settings.host.is_unspecified() {
                is_local_ip(addr.ip())
            } else {
                addr.ip() == settings.host
            }
    })
}

/// An address of this machine: one a socket can be bound to.
fn is_local_ip(ip: IpAddr) -> bool {
    ip.is_loopback() || UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(env: &[(&str, &str)]) -> Settings {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        match crate::config::parse(Vec::new(), env) {
            Ok(crate::config::Command::Run(s, _)) => *s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_node_without_members_is_single() {
        let m = Membership::from_settings(&settings(&[])).unwrap();
        assert!(m.is_single());
        assert_eq!((m.size(), m.quorum(), m.self_index), (1, 1, 0));
    }

    #[test]
    fn the_originals_deployment_names_itself_by_server_url() {
        let urls = "http://10.9.9.1:5379;http://10.9.9.2:5379;http://10.9.9.3:5379";
        let m = Membership::from_settings(&settings(&[
            ("MOSTDB_SERVER_URL", "http://10.9.9.2:5379/"),
            ("MOSTDB_CLUSTER_URLS", urls),
        ]))
        .unwrap();
        assert_eq!((m.size(), m.quorum(), m.self_index), (3, 2, 1));
        assert_eq!(m.peers().map(|(i, _)| i).collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(m.members[2].authority, "10.9.9.3:5379");
    }

    #[test]
    fn listing_only_the_others_adds_this_node() {
        let urls = "http://10.9.9.1:5379,http://10.9.9.3:5379";
        let m = Membership::from_settings(&settings(&[
            ("MOSTDB_SERVER_URL", "http://10.9.9.2:5379"),
            ("MOSTDB_CLUSTER_URLS", urls),
        ]))
        .unwrap();
        assert_eq!((m.size(), m.quorum(), m.self_index), (3, 2, 2));
        let m = Membership::from_settings(&settings(&[
            ("MOSTDB_HOST", "127.0.0.1"),
            ("MOSTDB_SERVER_PORT", "5383"),
            (
                "MOSTDB_CLUSTER_URLS",
                "http://127.0.0.1:5381;http://127.0.0.1:5382",
            ),
        ]))
        .unwrap();
        assert_eq!((m.size(), m.self_index), (3, 2));
    }

    #[test]
    fn without_server_url_it_finds_its_own_listen_address() {
        let m = Membership::from_settings(&settings(&[
            ("MOSTDB_HOST", "127.0.0.12"),
            ("MOSTDB_SERVER_PORT", "5379"),
            (
                "MOSTDB_CLUSTER_URLS",
                "http://127.0.0.11:5379;http://127.0.0.12:5379;http://127.0.0.13:5379",
            ),
        ]))
        .unwrap();
        assert_eq!((m.size(), m.self_index), (3, 1));
        let m = Membership::from_settings(&settings(&[
            ("MOSTDB_SERVER_PORT", "5382"),
            (
                "MOSTDB_CLUSTER_URLS",
                "http://127.0.0.1:5381;http://localhost:5382;http://127.0.0.1:5383",
            ),
        ]))
        .unwrap();
        assert_eq!((m.size(), m.self_index), (3, 1));
    }
}
