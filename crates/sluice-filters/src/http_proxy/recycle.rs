//! A per-thread stock of emptied `HeaderMap`s, so that a proxied HTTP/1 request allocates
//! no header map once the worker is warm.
//!
//! Every request parses two maps (its own head, then the upstream's response head) and drops
//! two (the request's once it is written upstream, the response's once it is written to the
//! client). A map sized for a dozen fields is over 1 KiB, past glibc's per-thread cache, so
//! each allocation and free took the allocator's slow path: with building the empty index,
//! about 1,300 instructions of a keep-alive request (`bench/http_instructions.sh`). An
//! emptied map keeps its memory, so one dropped is handed to the next parse instead.

use std::cell::RefCell;

use http::HeaderMap;

/// At most this many maps wait per thread: twice the requests that finish together, bounded.
const MAX_STOCK: usize = 32;
/// A map grown for more fields than this (a client sending many headers) is freed instead:
/// the stock stays small whatever passed through it.
const MAX_CAPACITY: usize = 48;

thread_local! {
    static STOCK: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
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
