//! A cache prefetch hint for an address (`Store::prefetch_stripe`, `prefetch_slot`, `Swarm::prefetch`): the line is
//! fetched while other work goes on, and nothing is read or written.

/// Asks the CPU to bring the cache line holding `addr` closer. Any address
/// will do, dangling or null included: a prefetch is a hint that never
/// faults and has no visible effect besides timing. A no-op off x86-64.
#[inline]
pub fn prefetch(addr: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint: it does not change program behaviour
    // and raises no exception for any address (Intel SDM vol. 2,
    // PREFETCHh), so it reads nothing Rust can observe. SSE is part of
    // the x86-64 baseline: the instruction exists on every x86-64 CPU.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(addr.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_address_is_fine() {
        let x = [1u8; 64];
        prefetch(x.as_ptr());
        prefetch(std::ptr::null());
        prefetch(usize::MAX as *const u8);
        assert_eq!(x[0], 1);
    }
}
