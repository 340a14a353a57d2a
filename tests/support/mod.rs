//! Helpers shared by the integration tests (`mod support;` in each file that needs one).

/// Caps this test process's address space at 4 GiB (once, for the fuzz). Dropping one dim
/// of a huge broadcast view (a reduction, an index) can leave an output of a few GiB, which
/// memory might hold: under the cap every such allocation fails at once, so the fuzz never
/// takes real memory, and an allocation made without a check aborts the run (reported as
/// the bug it is) instead of passing on a large machine.
pub fn cap_address_space() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(target_os = "linux")]
        // SAFETY: getrlimit/setrlimit only read and write the rlimit struct passed in.
        unsafe {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_AS, &mut lim) == 0 {
                lim.rlim_cur = lim.rlim_cur.min(4 << 30);
                libc::setrlimit(libc::RLIMIT_AS, &lim);
            }
        }
    });
}
