//! A profile's RTP port range. Freed ports go to the back of the queue so a port is not
//! handed to a new call while late packets of the old one may still arrive.

use crate::config::PortRange;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr, UdpSocket};

pub struct RtpPorts {
    bind: IpAddr,
    free: VecDeque<u16>,
}

impl RtpPorts {
    pub fn new(bind: IpAddr, range: PortRange) -> Self {
        RtpPorts {
            bind,
            free: (range.lo..=range.hi).collect(),
        }
    }

    pub fn bind_ip(&self) -> IpAddr {
        self.bind
    }

    /// A bound, non-blocking socket on a free port; ports taken by other programs are skipped.
    pub fn open(&mut self) -> Option<(UdpSocket, u16)> {
        for _ in 0..self.free.len().min(64) {
            let port = self.free.pop_front()?;
            match UdpSocket::bind(SocketAddr::new(self.bind, port)) {
                Ok(s) if s.set_nonblocking(true).is_ok() => return Some((s, port)),
                _ => self.free.push_back(port),
            }
        }
        None
    }

    pub fn release(&mut self, port: u16) {
        self.free.push_back(port);
    }
}
