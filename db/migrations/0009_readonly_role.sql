-- Dashboards read through this role. It can log in only once `tower migrate` has set its password
-- from TOWER_READONLY_PASSWORD; no password is ever written in a file.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tower_readonly') THEN
        CREATE ROLE tower_readonly NOLOGIN;
    END IF;
END $$;
GRANT USAGE ON SCHEMA ops TO tower_readonly;
GRANT SELECT ON ALL TABLES IN SCHEMA ops TO tower_readonly;
ALTER DEFAULT PRIVILEGES IN SCHEMA ops GRANT SELECT ON TABLES TO tower_readonly;
