//! The port plan of `meshctl up`, and the check that every port is free before anything
//! starts (a half-started mesh on a busy port is much harder to understand than a refusal).
//!
//! Layout: the control plane on `--control-port`, the gateway on `--gateway-port`, and for
//! workload slot `i` a block of ten ports from `--base-port + 10 * i`: app, outbound,
//! inbound, admin.

use std::net::{Ipv4Addr, TcpListener};

use crate::CtlError;
use crate::workloads::GATEWAY_SLOT;

/// Ports of one workload (or of the gateway, which uses the same block layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockPorts {
    /// The app's `PORT`.
    pub app: u16,
    /// The sidecar's outbound listener (`HTTP_PROXY` of the app).
    pub outbound: u16,
    /// The sidecar's inbound listener (where the service's traffic arrives).
    pub inbound: u16,
    /// The sidecar's admin listener (`/ready`).
    pub admin: u16,
}

/// All ports of one `up`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortPlan {
    /// First port of the workload blocks.
    pub base: u16,
    /// Control plane API and dashboard.
    pub control: u16,
    /// Product page entry (gateway, or productpage itself with `--no-mesh`).
    pub gateway: u16,
}

/// Ports per block.
pub const BLOCK: u16 = 10;

impl PortPlan {
    /// Checks that the blocks fit below 65536.
    pub fn new(base: u16, control: u16, gateway: u16) -> Result<Self, CtlError> {
        let last = u32::from(base) + u32::from(BLOCK) * (u32::from(GATEWAY_SLOT) + 1);
        if base == 0 || last > 65_535 {
            return Err(CtlError::Usage(format!(
                "invalid --base-port {base}: the {} internal ports from it must fit below 65536",
                BLOCK * (GATEWAY_SLOT + 1)
            )));
        }
        if control == 0 || gateway == 0 {
            return Err(CtlError::Usage("ports must be from 1 to 65535".to_owned()));
        }
        Ok(Self {
            base,
            control,
            gateway,
        })
    }

    /// The block of slot `slot`.
    pub fn block(&self, slot: u16) -> BlockPorts {
        let first = self.base + BLOCK * slot;
        BlockPorts {
            app: first,
            outbound: first + 1,
            inbound: first + 2,
            admin: first + 3,
        }
    }

    /// The gateway's own block (its admin listener and unused sidecar listeners).
    pub fn gateway_block(&self) -> BlockPorts {
        self.block(GATEWAY_SLOT)
    }
}

/// A port `up` will bind, who binds it, and which flag moves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The port.
    pub port: u16,
    /// Who binds it: `reviews-v2 (inbound)`.
    pub owner: String,
    /// The flag that moves it: `--base-port`.
    pub flag: &'static str,
}

/// Refuses duplicate claims and ports something already listens on.
pub fn check(claims: &[Claim]) -> Result<(), CtlError> {
    for (i, a) in claims.iter().enumerate() {
        if let Some(b) = claims[i + 1..].iter().find(|b| b.port == a.port) {
            return Err(CtlError::Usage(format!(
                "port {} would be used by both {} and {}: choose another {} or {}",
                a.port, a.owner, b.owner, a.flag, b.flag
            )));
        }
    }
    for c in claims {
        if TcpListener::bind((Ipv4Addr::LOCALHOST, c.port)).is_err() {
            let by = listener_of(c.port)
                .map(|(pid, name)| format!(" by {name} (pid {pid})"))
                .unwrap_or_default();
            return Err(CtlError::Failed(format!(
                "port {} for {} is already in use{by}: stop it (another `meshctl up`?) or choose another {}",
                c.port, c.owner, c.flag
            )));
        }
    }
    Ok(())
}

/// Who listens on `port`, from /proc (Linux; `None` elsewhere or when not allowed).
pub fn listener_of(port: u16) -> Option<(u32, String)> {
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .find_map(|table| listening_inode(&table, port))?;
    let needle = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let owns = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == needle));
        if owns {
            let name = std::fs::read_to_string(entry.path().join("comm"))
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "?".to_owned());
            return Some((pid, name));
        }
    }
    None
}

/// The socket inode listening on `port` in a /proc/net/tcp table.
fn listening_inode(table: &str, port: u16) -> Option<String> {
    let want = format!("{port:04X}");
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let local = cols.get(1)?;
        let (_, p) = local.rsplit_once(':')?;
        // State 0A is LISTEN.
        (p == want && cols.get(3) == Some(&"0A")).then(|| cols.get(9).map(|s| (*s).to_owned()))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_of_ten_from_the_base() {
        let p = PortPlan::new(15100, 15010, 8080).unwrap();
        assert_eq!(
            p.block(3),
            BlockPorts {
                app: 15130,
                outbound: 15131,
                inbound: 15132,
                admin: 15133
            }
        );
        assert_eq!(p.gateway_block().admin, 15163);
        assert!(PortPlan::new(65500, 15010, 8080).is_err());
        assert!(PortPlan::new(0, 15010, 8080).is_err());
    }

    fn claim(port: u16, owner: &str) -> Claim {
        Claim {
            port,
            owner: owner.into(),
            flag: "--base-port",
        }
    }

    #[test]
    fn duplicates_are_named() {
        let e = check(&[claim(1, "a"), claim(2, "b"), claim(1, "c")]).unwrap_err();
        assert!(
            e.to_string()
                .contains("port 1 would be used by both a and c"),
            "{e}"
        );
    }

    #[test]
    fn a_busy_port_is_refused_and_its_owner_named() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let e = check(&[claim(port, "reviews-v2 (app)")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!(
                "port {port} for reviews-v2 (app) is already in use"
            )),
            "{e}"
        );
        if std::path::Path::new("/proc/net/tcp").exists() {
            assert!(e.contains(&format!("(pid {})", std::process::id())), "{e}");
        }
        drop(l);
        check(&[claim(port, "reviews-v2 (app)")]).unwrap();
    }

    #[test]
    fn reads_proc_net_tcp() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0\n   1: 0100007F:1F91 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 999 1 0\n";
        assert_eq!(listening_inode(table, 8080).as_deref(), Some("12345"));
        assert_eq!(listening_inode(table, 8081), None);
    }
}
