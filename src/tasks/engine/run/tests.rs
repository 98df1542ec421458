use super::{
    claiming::{local_queue_capacity, wants_more},
    *,
};

#[test]
fn the_local_queue_holds_about_20_ms_of_work_per_thread() {
    assert_eq!(
        local_queue_capacity(4, None),
        4,
        "one per thread before any run"
    );
    assert_eq!(
        local_queue_capacity(4, Some(0.0001)),
        800,
        "quick tasks: hundreds"
    );
    assert_eq!(local_queue_capacity(4, Some(0.0)), MAX_LOCAL_QUEUE);
    assert_eq!(local_queue_capacity(4, Some(0.02)), 4);
    assert_eq!(
        local_queue_capacity(4, Some(30.0)),
        1,
        "slow tasks: one, the rest for others"
    );
}

#[test]
fn claims_keep_every_thread_busy_and_refill_in_batches() {
    // 4 threads, room for 800 more.
    assert!(wants_more(3, 4, 800), "a thread would be idle");
    assert!(wants_more(402, 4, 800), "half empty");
    assert!(!wants_more(403, 4, 800), "still more than half full");
    // Slow tasks: 4 threads, 1 waiting.
    assert!(!wants_more(4, 4, 1));
    assert!(wants_more(2, 4, 1));
}
