-- rowsec's own tables. Column order matters: src/catalog.rs reads config and shares by position
-- (after checking their columns' types against its own list).

GRANT USAGE ON SCHEMA rowsec TO PUBLIC;

-- The single configuration row written by rowsec.configure.
CREATE TABLE rowsec.config (
    singleton        boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    directory        regclass NOT NULL,
    id_column        name NOT NULL,
    manager_column   name NOT NULL,
    team_column      name,
    login_column     name,
    active_column    name,
    identity         text NOT NULL CHECK (identity IN ('login', 'setting')),
    identity_setting text,
    CHECK (identity = 'login' OR identity_setting IS NOT NULL)
);

-- Tables protected by the current spec (written by protect_table / unprotect_table).
CREATE TABLE rowsec.protected_tables (
    tbl          regclass PRIMARY KEY,
    key_column   name NOT NULL,
    owner_column name NOT NULL,
    sharing      boolean NOT NULL
);

CREATE TABLE rowsec.shares (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tbl            regclass NOT NULL,
    row_key        bigint NOT NULL,
    grantee_person bigint,
    grantee_team   text,
    access         text NOT NULL CHECK (access IN ('read', 'write')),
    expires_at     timestamptz,
    granted_by     bigint NOT NULL,
    granted_at     timestamptz NOT NULL DEFAULT now(),
    reason         text,
    CHECK ((grantee_person IS NULL) <> (grantee_team IS NULL))
);
CREATE INDEX shares_by_table_key ON rowsec.shares (tbl, row_key);

-- Append-only trail of every share and unshare.
CREATE TABLE rowsec.share_audit (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action         text NOT NULL CHECK (action IN ('share', 'unshare')),
    share_id       bigint NOT NULL,
    tbl            regclass NOT NULL,
    row_key        bigint NOT NULL,
    grantee_person bigint,
    grantee_team   text,
    access         text NOT NULL,
    expires_at     timestamptz,
    actor_person   bigint,
    actor_role     name NOT NULL,
    at             timestamptz NOT NULL DEFAULT now(),
    reason         text
);

-- Nobody but the owner reads or writes rowsec's tables; people reach them through functions.
REVOKE ALL ON rowsec.config, rowsec.protected_tables, rowsec.shares, rowsec.share_audit FROM PUBLIC;

CREATE FUNCTION rowsec.share_audit_is_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'rowsec.share_audit is append-only'
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = format('%s on rowsec.share_audit is refused for every role, its owner included.', TG_OP),
              HINT = 'Audit rows are only added, by rowsec.share and rowsec.unshare.';
END
$$;

CREATE TRIGGER share_audit_no_update_delete BEFORE UPDATE OR DELETE ON rowsec.share_audit
    FOR EACH ROW EXECUTE FUNCTION rowsec.share_audit_is_append_only();
CREATE TRIGGER share_audit_no_truncate BEFORE TRUNCATE ON rowsec.share_audit
    FOR EACH STATEMENT EXECUTE FUNCTION rowsec.share_audit_is_append_only();

SELECT pg_catalog.pg_extension_config_dump('rowsec.config', '');
SELECT pg_catalog.pg_extension_config_dump('rowsec.protected_tables', '');
SELECT pg_catalog.pg_extension_config_dump('rowsec.shares', '');
SELECT pg_catalog.pg_extension_config_dump('rowsec.share_audit', '');
