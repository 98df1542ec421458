-- The W3C traceparent of the request that queued a task, when spans are exported: the
-- attempt's span joins that request's trace. NULL when tracing is off or nothing queued it
-- from a traced request.
ALTER TABLE tasks ADD COLUMN traceparent text;
