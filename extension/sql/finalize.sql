-- Runs after every function exists.

-- Configuration belongs to the extension owner.
REVOKE EXECUTE ON FUNCTION rowsec.configure(regclass, name, name, name, name, name, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION rowsec.protect_table(regclass, name, name, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION rowsec.unprotect_table(regclass) FROM PUBLIC;

-- A change to the shares invalidates every backend's shares cache (transactionally).
CREATE TRIGGER rowsec_shares_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON rowsec.shares
    FOR EACH STATEMENT EXECUTE FUNCTION rowsec.invalidate_caches();
