-- The Unix user an application's commands run as on targets whose agent runs as root
-- (`ferry app set APP --run-as USER`); NULL: none.
ALTER TABLE apps ADD COLUMN run_as TEXT;
