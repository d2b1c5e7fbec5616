//! Reading Parquet on many threads at once leaves the process's panic hook working: the
//! decoder's guard used to swap the global hook per call, and concurrent calls could leave
//! its silent hook installed for good (a server's later panics then printed nothing).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[test]
fn concurrent_reads_keep_the_panic_hook() {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    std::panic::set_hook(Box::new(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    }));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..300u32 {
                    // Not Parquet: refused after the guard is entered and left.
                    let mut bytes = b"PAR1".to_vec();
                    bytes.extend_from_slice(&(t * 1000 + i).to_le_bytes());
                    bytes.extend_from_slice(b"\x08\x00\x00\x00PAR1");
                    assert!(skvault_table::read_parquet(bytes.clone()).is_err());
                    assert!(skvault_table::read_parquet_frame(bytes).is_err());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let panicked = std::thread::spawn(|| panic!("a panic outside the Parquet reader"));
    assert!(panicked.join().is_err());
    assert_eq!(
        seen.load(Ordering::SeqCst),
        1,
        "the panic hook was replaced"
    );
}
