use super::{
    claiming::{local_queue_capacity, wants_more},
    gathering::{GATHER_AT_MOST, gather_until},
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

#[test]
fn a_limited_bound_node_gathers_outcomes_until_every_attempt_reported_or_a_millisecond() {
    let first_in = Instant::now();
    let soon = first_in + Duration::from_micros(300);
    let until = first_in + GATHER_AT_MOST;

    assert_eq!(
        gather_until(true, 12, Some(first_in), soon),
        Some(until),
        "attempts still to report: hold the outcomes that are in"
    );
    assert_eq!(
        gather_until(true, 0, Some(first_in), soon),
        None,
        "every attempt reported: write them all (and refill every slot)"
    );
    assert_eq!(
        gather_until(true, 12, Some(first_in), until),
        None,
        "a millisecond since the first: a slow program does not hold the others' slots"
    );
    assert_eq!(
        gather_until(true, 12, None, soon),
        None,
        "nothing to write: nothing to hold"
    );
}

#[test]
fn outcomes_are_never_held_when_the_node_is_not_limited_bound() {
    // Plain work, shutdown, a wake or an urgent task: the engine passes `limited_bound`
    // false, and the outcomes go at once, whatever still runs.
    let first_in = Instant::now();
    assert_eq!(gather_until(false, 12, Some(first_in), first_in), None);
}
