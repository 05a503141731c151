//! The few system calls std and mio do not offer: kernel receive timestamps, a timerfd for
//! the one media tick, socket buffer sizes, the process's CPU time and descriptor limit.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Asks the kernel to stamp each datagram with its arrival time (SO_TIMESTAMPNS), so the
/// interarrival figures measure the server's pacing and not this loop's scheduling.
pub fn enable_timestamps(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            &on as *const _ as *const libc::c_void,
            std::mem::size_of_val(&on) as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

pub fn set_buffers(fd: RawFd, bytes: usize) {
    let v = bytes as libc::c_int;
    for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
        // Best effort: the kernel caps it at net.core.[rw]mem_max.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                &v as *const _ as *const libc::c_void,
                std::mem::size_of_val(&v) as libc::socklen_t,
            );
        }
    }
}

/// Receives one datagram; returns its length and kernel arrival time in ns (realtime clock,
/// only differences are used), or the current time when the kernel gave none.
pub fn recv_stamped(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, u64)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    let mut cmsg = [0u64; 8];
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = std::mem::size_of_val(&cmsg) as _;
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut at = None;
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                at = Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    let at = at.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    Ok((n as usize, at))
}

/// A periodic CLOCK_MONOTONIC timerfd: one wake-up per media tick for every call, with
/// nanosecond precision (epoll's own timeout is whole milliseconds).
pub struct TickTimer(OwnedFd);

impl TickTimer {
    pub fn new(period: Duration) -> io::Result<TickTimer> {
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let ts = libc::timespec {
            tv_sec: period.as_secs() as _,
            tv_nsec: period.subsec_nanos() as _,
        };
        let spec = libc::itimerspec {
            it_interval: ts,
            it_value: ts,
        };
        if unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(TickTimer(fd))
    }

    /// Ticks elapsed since the last read (0 if none).
    pub fn expirations(&self) -> u64 {
        let mut n = 0u64;
        let r = unsafe {
            libc::read(
                self.0.as_raw_fd(),
                &mut n as *mut u64 as *mut libc::c_void,
                8,
            )
        };
        if r == 8 {
            n
        } else {
            0
        }
    }

    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// nice -10 for this process; false without the permission.
pub fn raise_priority() -> bool {
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, -10) == 0 }
}

/// User + system CPU seconds of this process.
pub fn cpu_seconds() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Raises the soft descriptor limit to the hard one: a socket per call.
pub fn raise_nofile() -> u64 {
    let mut rl: libc::rlimit = unsafe { std::mem::zeroed() };
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
        rl.rlim_cur = rl.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
    }
    rl.rlim_cur as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamped_receive_and_tick() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        enable_timestamps(b.as_raw_fd()).unwrap();
        a.send_to(b"x1", b.local_addr().unwrap()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let mut buf = [0u8; 16];
        let (n, at) = recv_stamped(b.as_raw_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"x1");
        assert!(at > 1_600_000_000 * 1_000_000_000);
        assert!(
            recv_stamped(b.as_raw_fd(), &mut buf).is_err(),
            "nothing more"
        );
        let t = TickTimer::new(Duration::from_millis(2)).unwrap();
        std::thread::sleep(Duration::from_millis(9));
        assert!((3..=5).contains(&t.expirations()));
        assert!(cpu_seconds() > 0.0);
    }
}
