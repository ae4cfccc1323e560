//! Per-thread pool of transfer buffers.
//!
//! A proxied connection needs a buffer only while bytes are in flight: between a read that
//! returned data and the write that drained it. Taking buffers from here for just that window
//! (and giving them back when empty, or when a read would block) makes an idle connection cost
//! no buffer at all, which is what lets thousands of idle connections stay cheap. The pool is
//! thread-local, so take and give are a `Vec` push/pop with no synchronisation; a buffer taken
//! on one worker and returned on another (work stealing) simply changes pools.

use std::cell::RefCell;

/// Bytes a thread keeps cached for reuse; beyond this, returned buffers are freed.
const MAX_CACHED_BYTES: usize = 4 << 20;

thread_local! {
    static POOL: RefCell<Pool> = const { RefCell::new(Pool { buffers: Vec::new(), bytes: 0 }) };
}

struct Pool {
    buffers: Vec<Box<[u8]>>,
    bytes: usize,
}

/// A buffer of exactly `size` bytes, reused if one is cached.
pub fn take(size: usize) -> Box<[u8]> {
    let cached = POOL.with_borrow_mut(|p| {
        let i = p.buffers.iter().rposition(|b| b.len() == size)?;
        p.bytes -= size;
        Some(p.buffers.swap_remove(i))
    });
    cached.unwrap_or_else(|| vec![0u8; size].into_boxed_slice())
}

/// Returns a buffer for reuse (or frees it if the pool is full).
pub fn give(buf: Box<[u8]>) {
    POOL.with_borrow_mut(|p| {
        if p.bytes + buf.len() <= MAX_CACHED_BYTES {
            p.bytes += buf.len();
            p.buffers.push(buf);
        }
    });
}

/// Bytes cached on this thread (for tests).
#[cfg(test)]
fn cached_bytes() -> usize {
    POOL.with_borrow(|p| p.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_by_size_and_bounded() {
        let a = take(1024);
        let ptr = a.as_ptr();
        give(a);
        assert_eq!(cached_bytes(), 1024);
        let b = take(1024);
        assert_eq!(b.as_ptr(), ptr, "the cached buffer is handed out again");
        assert_eq!(take(2048).len(), 2048);
        give(b);
        for _ in 0..(MAX_CACHED_BYTES / 1024 + 10) {
            give(vec![0u8; 1024].into_boxed_slice());
        }
        assert!(cached_bytes() <= MAX_CACHED_BYTES);
    }
}
