-- Wake-up generations: every change of a desired state that servers announce to each other
-- (NOTIFY ferry_wakeups) takes the next number, so the numbers agents long-poll past
-- compare across every server sharing the database.
CREATE SEQUENCE wakeup_generation;
