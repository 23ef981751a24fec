-- Runs after every function exists.

-- Configuration belongs to the extension owner.
REVOKE EXECUTE ON FUNCTION rowsec.configure(regclass, name, name, name, name, name, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION rowsec.protect_table(regclass, name, name, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION rowsec.unprotect_table(regclass) FROM PUBLIC;
-- Removing expired shares is a maintenance job (pg_cron, a scheduler), not a person's call.
REVOKE EXECUTE ON FUNCTION rowsec.cleanup_expired_shares() FROM PUBLIC;

-- Each person's view of the shares that concern them (rowsec.my_shares() decides which, as the
-- caller: a view runs its functions as the querying role, not as the view's owner).
CREATE VIEW rowsec.my_shares AS SELECT * FROM rowsec.my_shares();
GRANT SELECT ON rowsec.my_shares TO PUBLIC;

-- A change to the shares invalidates every backend's shares cache (transactionally).
CREATE TRIGGER rowsec_shares_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON rowsec.shares
    FOR EACH STATEMENT EXECUTE FUNCTION rowsec.invalidate_caches();
