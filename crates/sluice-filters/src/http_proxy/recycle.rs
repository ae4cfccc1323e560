//! Per-thread stocks that spare a proxied HTTP/1 request its allocations once the worker is
//! warm: emptied `HeaderMap`s, and a buffer that request heads going upstream are written to.
//!
//! Every request parses two maps (its own head, then the upstream's response head) and drops
//! two (the request's once it is written upstream, the response's once it is written to the
//! client). A map sized for a dozen fields is over 1 KiB, past glibc's per-thread cache, so
//! each allocation and free took the allocator's slow path: with building the empty index,
//! about 1,300 instructions of a keep-alive request (`bench/http_instructions.sh`). An
//! emptied map keeps its memory, so one dropped is handed to the next parse instead.

use std::cell::RefCell;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;

/// At most this many maps wait per thread: twice the requests that finish together, bounded.
const MAX_STOCK: usize = 32;
/// A map grown for more fields than this (a client sending many headers) is freed instead:
/// the stock stays small whatever passed through it.
const MAX_CAPACITY: usize = 48;

/// The heads buffer grows by this much at a time: some thirty request heads.
const HEADS_CHUNK: usize = 8 * 1024;

thread_local! {
    static STOCK: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
    static HEADS: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// A head written by `encode`, split off the thread's heads buffer. A buffer of its own per
/// request cost two allocations (the bytes, and the shared header `Bytes` adds when the head
/// is cloned for a possible resend); split off a common one, the chunk is allocated once for
/// many heads and reused once they are all sent.
pub fn encode_head(encode: impl FnOnce(&mut BytesMut)) -> Bytes {
    HEADS.with(|heads| {
        let mut heads = heads.borrow_mut();
        if heads.capacity() < HEADS_CHUNK / 8 {
            heads.reserve(HEADS_CHUNK);
        }
        encode(&mut heads);
        heads.split().freeze()
    })
}

/// An empty map with room for `capacity` fields, from the stock if it has one.
pub fn header_map(capacity: usize) -> HeaderMap {
    let stocked = STOCK.with(|stock| stock.borrow_mut().pop());
    match stocked {
        Some(mut map) => {
            if map.capacity() < capacity {
                map.reserve(capacity);
            }
            map
        }
        None => HeaderMap::with_capacity(capacity),
    }
}

/// Puts `map` back in stock, emptied, unless it is too big or the stock is full.
pub fn give_back(mut map: HeaderMap) {
    if map.capacity() > MAX_CAPACITY {
        return;
    }
    map.clear();
    STOCK.with(|stock| {
        let mut stock = stock.borrow_mut();
        if stock.len() < MAX_STOCK {
            stock.push(map);
        }
    });
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn a_given_back_map_comes_back_empty_with_its_room() {
        let mut map = header_map(10);
        let room = map.capacity();
        assert!(room >= 10);
        map.insert("x-a", HeaderValue::from_static("1"));
        map.append("x-a", HeaderValue::from_static("2"));
        give_back(map);
        let again = header_map(4);
        assert!(again.is_empty());
        assert_eq!(again.capacity(), room);
        assert!(again.get("x-a").is_none());
        // One asked for more than it has grows.
        give_back(again);
        assert!(header_map(40).capacity() >= 40);
    }

    #[test]
    fn heads_are_split_off_one_buffer() {
        let a = encode_head(|b| b.extend_from_slice(b"GET /a HTTP/1.1\r\n\r\n"));
        let b = encode_head(|b| b.extend_from_slice(b"GET /b HTTP/1.1\r\n\r\n"));
        assert_eq!(&a[..], b"GET /a HTTP/1.1\r\n\r\n");
        assert_eq!(&b[..], b"GET /b HTTP/1.1\r\n\r\n");
        // A head bigger than what is left grows the buffer rather than failing.
        let big = encode_head(|b| b.extend_from_slice(&[b'x'; 3 * HEADS_CHUNK]));
        assert_eq!(big.len(), 3 * HEADS_CHUNK);
        assert_eq!(&a[..6], b"GET /a");
    }

    #[test]
    fn big_maps_and_a_full_stock_are_not_kept() {
        STOCK.with(|s| s.borrow_mut().clear());
        give_back(HeaderMap::with_capacity(MAX_CAPACITY * 2));
        assert_eq!(STOCK.with(|s| s.borrow().len()), 0);
        for _ in 0..MAX_STOCK + 5 {
            give_back(HeaderMap::with_capacity(4));
        }
        assert_eq!(STOCK.with(|s| s.borrow().len()), MAX_STOCK);
    }
}
