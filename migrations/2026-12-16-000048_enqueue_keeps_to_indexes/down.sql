ALTER FUNCTION task_enqueue(text, jsonb, integer, text, interval, bigint[], bigint)
    RESET enable_seqscan;
