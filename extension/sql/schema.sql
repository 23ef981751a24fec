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
    identity         text NOT NULL CHECK (identity IN ('login', 'setting', 'signed_setting')),
    identity_setting text,
    -- The directory's schema-qualified name, quoted, as rowsec.configure saw it. On Citus the
    -- row is copied to new workers byte for byte, `directory`'s OID with it, which there names
    -- another relation or none: each node resolves this name instead (src/citus.rs).
    directory_name   text,
    CHECK (identity = 'login' OR identity_setting IS NOT NULL)
);

-- Secrets of signed identity tokens (identity: { setting: NAME, signed: true }; src/identity.rs,
-- rowsec_core::token). Owner only: a role that could read a secret could sign for anyone. Two
-- rows during a rotation: add the new key, switch the application, delete the old one.
CREATE TABLE rowsec.identity_keys (
    key_id     text PRIMARY KEY CHECK (key_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    secret     bytea NOT NULL CHECK (octet_length(secret) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Tables protected by the current spec (written by protect_table / unprotect_table).
CREATE TABLE rowsec.protected_tables (
    tbl          regclass PRIMARY KEY,
    key_column   name NOT NULL,
    owner_column name NOT NULL,
    sharing      boolean NOT NULL,
    -- Written by the compiled script only: a SHA-256 of the table's block of the script and of the
    -- catalog state that block left (sql/compile/table_functions.sql). A later script whose block
    -- and the catalog still match skips the table: no DDL, so no ACCESS EXCLUSIVE lock.
    applied      text
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
    -- Made by someone whose right to update the row came only from this share: it ends with it
    -- (rowsec.unshare and rowsec.cleanup_expired_shares remove it, and record it, with its parent).
    -- No foreign key: on Citus this table is a reference table (src/citus.rs), and Citus re-creates
    -- a table's foreign keys on the workers, where CREATE EXTENSION made this one already, so
    -- create_reference_table (and adding a worker) would fail. Instead a share whose parent (or
    -- any ancestor) is missing grants nothing when read (src/catalog.rs, read_shares_to), and
    -- rowsec's removals take the derived shares with their parent, recorded.
    derived_from   bigint,
    -- The requested expiry was later than the parent's, and expires_at is the parent's.
    expiry_capped  boolean NOT NULL DEFAULT false,
    -- The shared table's qualified name when shared: on Citus every node reads the shares from
    -- its own copy, where `tbl` (an OID) may name another table or none (a row copied in binary
    -- holds the coordinator's OID), so Citus nodes match shares by this name (src/catalog.rs).
    tbl_name       text,
    CHECK ((grantee_person IS NULL) <> (grantee_team IS NULL)),
    CHECK (derived_from IS NOT NULL OR NOT expiry_capped)
);
CREATE INDEX shares_by_table_key ON rowsec.shares (tbl, row_key);
-- A backend reads only the shares to its current person and to their team (src/cache.rs), by
-- these two indexes, never the whole table: a share or unshare among a million costs each
-- backend one small read, not a reload of every share.
CREATE INDEX shares_to_person ON rowsec.shares (grantee_person);
CREATE INDEX shares_to_team ON rowsec.shares (grantee_team);
CREATE INDEX shares_by_parent ON rowsec.shares (derived_from) WHERE derived_from IS NOT NULL;
CREATE INDEX shares_by_expiry ON rowsec.shares (expires_at) WHERE expires_at IS NOT NULL;

-- The audit trail (SPEC item 15): every share and unshare, directory change, membership change
-- of a spec role, applied script, access request and decision, attestation, and every row change
-- of the tables under `audit.data`. Rows are appended by rowsec's functions and triggers (as the
-- extension owner); nobody updates or deletes one (rowsec.audit_log_is_append_only).
--
-- Tamper evidence: at COMMIT, a deferred constraint trigger (rowsec.audit_seal, serialised by a
-- transaction-level advisory lock) gives each of the transaction's rows the next `seq` and
-- `hash` = SHA-256(previous row's hash, this row's columns). The chain's order is commit order,
-- and a rolled-back transaction leaves nothing. rowsec.verify_audit() recomputes it.
CREATE TABLE rowsec.audit_log (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    -- The rowsec person who acted (as policies resolve them), or NULL (nobody, a DBA, a job).
    actor  bigint,
    -- session_user: the login, which on a pooled connection is the pool's.
    login  name NOT NULL DEFAULT SESSION_USER,
    kind   text NOT NULL CHECK (kind IN ('share', 'unshare', 'directory', 'membership', 'apply',
                                         'request', 'decision', 'attest', 'data')),
    -- The relation (share, unshare, directory, request, decision, attest, data), the spec role
    -- (membership) or the spec's SHA-256 (apply).
    object text,
    detail jsonb NOT NULL DEFAULT '{}',
    -- Set at commit by rowsec.audit_seal; NULL only while the inserting transaction runs.
    seq    bigint UNIQUE,
    hash   bytea
);
-- What the seal looks for at each commit: the rows not sealed yet.
CREATE INDEX audit_log_unsealed ON rowsec.audit_log (id) WHERE seq IS NULL;

-- Append-only: nothing changes or removes a row, except the seal setting seq and hash once (from
-- inside its trigger, rowsec.audit_seal: a statement run directly is at trigger depth 0).
CREATE FUNCTION rowsec.audit_log_is_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'rowsec.audit_log is append-only'
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = format('%s on rowsec.audit_log is refused for every role, its owner and superusers included.', TG_OP),
              HINT = 'Audit rows are only added, by rowsec''s functions and triggers; rowsec.verify_audit() reports a row changed with this trigger disabled.';
END
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON rowsec.audit_log FOR EACH ROW
    WHEN (pg_catalog.pg_trigger_depth() = 0
          OR OLD.seq IS NOT NULL OR OLD.hash IS NOT NULL OR NEW.seq IS NULL OR NEW.hash IS NULL
          OR (OLD.id, OLD.at, OLD.actor, OLD.login, OLD.kind, OLD.object, OLD.detail)
             IS DISTINCT FROM (NEW.id, NEW.at, NEW.actor, NEW.login, NEW.kind, NEW.object, NEW.detail))
    EXECUTE FUNCTION rowsec.audit_log_is_append_only();
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON rowsec.audit_log
    FOR EACH ROW EXECUTE FUNCTION rowsec.audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON rowsec.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION rowsec.audit_log_is_append_only();

-- The roles of `audit.readers` (rowsec.set_audit_readers). Public: the spec names them anyway.
CREATE TABLE rowsec.audit_readers (
    role name PRIMARY KEY
);

-- Tables under `audit.data` (rowsec.audit_table / rowsec.audit_only), with their audit trigger.
CREATE TABLE rowsec.audited_tables (
    tbl        regclass PRIMARY KEY,
    key_column name NOT NULL,
    redacted   name[] NOT NULL DEFAULT '{}'
);

-- The members of spec roles as rowsec last recorded them: kept by the ProcessUtility hook, and
-- compared with pg_auth_members by rowsec.reconcile_memberships() to record what changed while
-- the hook did not see it.
CREATE TABLE rowsec.spec_role_members (
    role   name NOT NULL,
    member name NOT NULL,
    PRIMARY KEY (role, member)
);

-- `requests:` of the spec (rowsec.configure_requests); no row: requests are not enabled.
CREATE TABLE rowsec.request_settings (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    max_days  integer NOT NULL CHECK (max_days > 0)
);

-- roles.<name>.limits of the spec (rowsec.configure_limits): every spec role, each command,
-- the most rows of one protected table one statement may read or change; NULL: no limit.
CREATE TABLE rowsec.role_limits (
    role     name NOT NULL,
    command  text NOT NULL CHECK (command IN ('select', 'update', 'delete')),
    max_rows bigint CHECK (max_rows >= 0),
    PRIMARY KEY (role, command)
);

-- Access requests (SPEC item 16).
CREATE TABLE rowsec.requests (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tbl          regclass NOT NULL,
    row_key      bigint NOT NULL,
    requester    bigint NOT NULL,
    access       text NOT NULL CHECK (access IN ('read', 'write')),
    until        timestamptz NOT NULL,
    reason       text,
    requested_at timestamptz NOT NULL DEFAULT now(),
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
    decided_by   bigint,
    decided_at   timestamptz,
    note         text,
    -- The share an approval created (it may since have expired or been unshared).
    share_id     bigint
);
CREATE INDEX requests_by_requester ON rowsec.requests (requester);
CREATE INDEX requests_pending ON rowsec.requests (tbl, row_key) WHERE status = 'pending';

-- Nobody but the owner reads or writes rowsec's tables; people reach them through functions.
REVOKE ALL ON rowsec.config, rowsec.identity_keys, rowsec.protected_tables, rowsec.shares, rowsec.audit_log, rowsec.audit_readers,
    rowsec.audited_tables, rowsec.spec_role_members, rowsec.request_settings, rowsec.requests, rowsec.role_limits FROM PUBLIC;
GRANT SELECT ON rowsec.audit_readers TO PUBLIC;

-- Readers: superusers (they bypass row-level security) and members of the `audit.readers` roles.
-- Everyone else may select and sees no row. FORCEd like every protected table (rowsec doctor
-- flags RLS without FORCE): the trail's writers run as the extension's owner, a superuser (rowsec
-- is not a trusted extension), which row-level security never applies to.
CREATE FUNCTION rowsec.is_audit_reader() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT FROM rowsec.audit_readers r JOIN pg_catalog.pg_roles a ON a.rolname OPERATOR(pg_catalog.=) r.role
                   WHERE pg_catalog.pg_has_role(a.oid, 'MEMBER'))
$$;
GRANT SELECT ON rowsec.audit_log TO PUBLIC;
ALTER TABLE rowsec.audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE rowsec.audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_readers_only ON rowsec.audit_log FOR SELECT TO PUBLIC USING (rowsec.is_audit_reader());

-- ===== Activity and alerts (SPEC items 13, 14; src/activity.rs) =====

-- `monitoring:` of the spec (rowsec.configure_monitoring); no row: activity is not recorded.
-- alerts: the rules as rowsec_core::monitoring reads them.
CREATE TABLE rowsec.monitoring (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    reads     boolean NOT NULL,
    alerts    jsonb NOT NULL DEFAULT '[]'
);

-- How long activity is kept (rowsec.set_activity_retention): the writer drops the daily
-- partitions that ended longer ago. Not in the spec: a DBA's decision, kept across applies.
CREATE TABLE rowsec.activity_settings (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    retention interval NOT NULL
);
INSERT INTO rowsec.activity_settings (retention) VALUES ('90 days');

-- One row per statement and protected table it touched, as the statement's session saw it:
-- `at` when it started, `person` as policies resolved them (NULL: nobody), `login` the session
-- user, `rows` the table's rows that passed its row-level security (for update and delete: the
-- rows the statement went through to change), `failed` when the statement ended in an error
-- (a limit, a rollback of the statement) after reading them. Daily partitions (UTC), created and
-- dropped by the activity writer (rowsec.activity_maintain).
CREATE SEQUENCE rowsec.activity_id_seq;
CREATE TABLE rowsec.activity (
    id        bigint NOT NULL DEFAULT nextval('rowsec.activity_id_seq'),
    at        timestamptz NOT NULL,
    person    bigint,
    login     name NOT NULL,
    relation  text NOT NULL,
    relid     oid NOT NULL,
    command   text NOT NULL CHECK (command IN ('select', 'update', 'delete', 'insert')),
    rows      bigint NOT NULL CHECK (rows >= 0),
    failed    boolean NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT pg_catalog.now()
) PARTITION BY RANGE (at);
CREATE INDEX activity_by_person ON rowsec.activity (person, at);

CREATE TABLE rowsec.alerts (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The time of the activity that fired the rule.
    at        timestamptz NOT NULL,
    person    bigint NOT NULL,
    rule      text NOT NULL CHECK (rule IN ('bulk_read', 'off_hours')),
    detail    jsonb NOT NULL,
    raised_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX alerts_by_person ON rowsec.alerts (person, rule, at);

-- Nobody changes what was recorded: rows are only appended (by the writer), and only the
-- retention removes them, a whole partition at a time.
CREATE FUNCTION rowsec.activity_is_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = format('%s is refused for every role, its owner and superusers included.', TG_OP),
              HINT = 'Activity and alerts are written by rowsec''s activity writer; old activity goes with its partition (rowsec.set_activity_retention).';
END
$$;
CREATE TRIGGER activity_no_change BEFORE UPDATE OR DELETE ON rowsec.activity
    FOR EACH ROW EXECUTE FUNCTION rowsec.activity_is_append_only();
CREATE TRIGGER activity_no_truncate BEFORE TRUNCATE ON rowsec.activity
    FOR EACH STATEMENT EXECUTE FUNCTION rowsec.activity_is_append_only();
CREATE TRIGGER alerts_no_change BEFORE UPDATE OR DELETE ON rowsec.alerts
    FOR EACH ROW EXECUTE FUNCTION rowsec.activity_is_append_only();
CREATE TRIGGER alerts_no_truncate BEFORE TRUNCATE ON rowsec.alerts
    FOR EACH STATEMENT EXECUTE FUNCTION rowsec.activity_is_append_only();

-- Readers as for the trail: superusers and audit.readers; everyone else sees no row and may
-- write none (no privilege but SELECT).
REVOKE ALL ON rowsec.monitoring, rowsec.activity_settings, rowsec.activity, rowsec.alerts, rowsec.activity_id_seq FROM PUBLIC;
GRANT SELECT ON rowsec.activity, rowsec.alerts TO PUBLIC;
ALTER TABLE rowsec.activity ENABLE ROW LEVEL SECURITY;
ALTER TABLE rowsec.activity FORCE ROW LEVEL SECURITY;
CREATE POLICY activity_readers_only ON rowsec.activity FOR SELECT TO PUBLIC USING (rowsec.is_audit_reader());
ALTER TABLE rowsec.alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE rowsec.alerts FORCE ROW LEVEL SECURITY;
CREATE POLICY alerts_readers_only ON rowsec.alerts FOR SELECT TO PUBLIC USING (rowsec.is_audit_reader());

SELECT pg_catalog.pg_extension_config_dump('rowsec.config', '');
SELECT pg_catalog.pg_extension_config_dump('rowsec.protected_tables', '');
SELECT pg_catalog.pg_extension_config_dump('rowsec.shares', '');
SELECT pg_catalog.pg_extension_config_dump('rowsec.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('rowsec.audit_readers', '');
SELECT pg_catalog.pg_extension_config_dump('rowsec.audited_tables', '');
SELECT pg_catalog.pg_extension_config_dump('rowsec.spec_role_members', '');
SELECT pg_catalog.pg_extension_config_dump('rowsec.request_settings', '');
SELECT pg_catalog.pg_extension_config_dump('rowsec.requests', '');
SELECT pg_catalog.pg_extension_config_dump('rowsec.role_limits', '');
SELECT pg_catalog.pg_extension_config_dump('rowsec.monitoring', '');
