//! Ports: the runner's `meshctl up` runs on free ports (so CI never collides with a
//! student's mesh or anything else), and the `export` lines a student types with
//! `meshctl up`'s default ports are rewritten to the runner's.
//!
//! `meshctl up` defaults: gateway 8080, control plane 15010, and workload slot `i` on
//! the block of ten from 15100 + 10 i (seven slots, the gateway's last). The three blocks
//! after them (15170 to 15199) are for workloads a lab adds (`labs/bin/add-workload.sh`).

use std::net::{Ipv4Addr, TcpListener};

/// The student's gateway port.
pub const DEFAULT_GATEWAY: u16 = 8080;
/// The student's control plane port.
pub const DEFAULT_CONTROL: u16 = 15010;
/// The student's first workload port.
pub const DEFAULT_BASE: u16 = 15100;
/// Ports of the workload blocks: meshctl's seven slots of ten and three added ones.
pub const BLOCKS: u16 = 100;
/// Ports of one plan's window: the blocks, then control and gateway.
const WINDOW: u16 = 200;

/// Where the runner's `meshctl up` listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// `--base-port`.
    pub base: u16,
    /// `--control-port`.
    pub control: u16,
    /// `--gateway-port`.
    pub gateway: u16,
}

impl Plan {
    /// The plan in a window of 200 ports from `first`: blocks, then control, then gateway.
    pub fn at(first: u16) -> Self {
        Self {
            base: first,
            control: first + 150,
            gateway: first + 190,
        }
    }

    /// The `meshctl up` flags of this plan.
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--base-port".to_owned(),
            self.base.to_string(),
            "--control-port".to_owned(),
            self.control.to_string(),
            "--gateway-port".to_owned(),
            self.gateway.to_string(),
        ]
    }

    /// This plan's port for a student's default port; other ports stay as they are.
    pub fn map(&self, port: u16) -> u16 {
        match port {
            DEFAULT_GATEWAY => self.gateway,
            DEFAULT_CONTROL => self.control,
            p if (DEFAULT_BASE..DEFAULT_BASE + BLOCKS).contains(&p) => {
                self.base + (p - DEFAULT_BASE)
            }
            p => p,
        }
    }

    /// Rewrites every `:PORT` of `text` (a host:port or URL in an `export` line) with
    /// [`Plan::map`].
    pub fn translate(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(colon) = rest.find(':') {
            out.push_str(&rest[..=colon]);
            rest = &rest[colon + 1..];
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            match rest[..digits].parse::<u16>() {
                Ok(port) if digits >= 2 => out.push_str(&self.map(port).to_string()),
                _ => out.push_str(&rest[..digits]),
            }
            rest = &rest[digits..];
        }
        out.push_str(rest);
        out
    }

    /// Whether every port of the plan can be bound on 127.0.0.1 now.
    fn free(&self) -> bool {
        (self.base..self.base + BLOCKS)
            .chain([self.control, self.gateway])
            .all(|p| TcpListener::bind((Ipv4Addr::LOCALHOST, p)).is_ok())
    }
}

/// A plan whose ports are free, searched from a starting window that differs from run
/// to run (two runners at once rarely try the same window first). The windows lie below
/// Linux's ephemeral range (32768+), so outgoing connections do not take them meanwhile.
pub fn free_plan(seed: u32) -> Option<Plan> {
    const FIRST: u16 = 20_000;
    const WINDOWS: u16 = 60;
    let start = (seed % u32::from(WINDOWS)) as u16;
    (0..WINDOWS)
        .map(|i| Plan::at(FIRST + WINDOW * ((start + i) % WINDOWS)))
        .find(Plan::free)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn student_ports_map_to_the_plan() {
        let p = Plan::at(24_000);
        assert_eq!(
            (p.map(8080), p.map(15010), p.map(15100), p.map(15133)),
            (24_190, 24_150, 24_000, 24_033)
        );
        assert_eq!(
            (p.map(15173), p.map(15200), p.map(9080), p.map(80)),
            (24_073, 15200, 9080, 80)
        );
        assert_eq!(
            p.translate("export GATEWAY_URL=127.0.0.1:8080 ADMIN=127.0.0.1:15133\nexport CONTROL=http://127.0.0.1:15010/ X=a:b:9080"),
            "export GATEWAY_URL=127.0.0.1:24190 ADMIN=127.0.0.1:24033\nexport CONTROL=http://127.0.0.1:24150/ X=a:b:9080"
        );
        assert_eq!(p.translate("ends with a colon:"), "ends with a colon:");
    }

    #[test]
    fn a_free_plan_is_bindable_and_a_taken_window_is_skipped() {
        let plan = free_plan(7).unwrap();
        let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, plan.gateway)).unwrap();
        assert!(!plan.free());
        let other = free_plan(7).unwrap();
        assert_ne!(other, plan);
        drop(taken);
        assert_eq!(plan.flags()[1], plan.base.to_string());
    }
}
