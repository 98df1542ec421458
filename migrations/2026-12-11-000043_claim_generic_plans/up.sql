-- The claim plans its statements once per connection. Left to choose (plan_cache_mode auto),
-- PostgreSQL kept planning some of task_claim's statements anew at every call (a custom plan
-- looked cheaper than the generic one for the partitioned table), and planning was most of
-- an idle node's claim of one task: 0.86 ms a claim, 0.54 ms with the generic plans (psql,
-- steady state). That claim is what a queued task waits for on an idle node. Every statement
-- in it walks an index in its own order (the queue's, a program's, the primary key), whatever
-- the values, so the generic plan is the custom plan.
ALTER FUNCTION task_claim(TEXT, INTEGER, INTEGER, TIMESTAMPTZ, BIGINT, BOOLEAN)
    SET plan_cache_mode = force_generic_plan;
