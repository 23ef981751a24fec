--! The `rowsec` schema in plain SQL and PL/pgSQL: the second backend (issue 15), for managed
--! PostgreSQL where no C extension may be installed. `rowsec compile --backend sql` puts this file
--! where the extension's script says `CREATE EXTENSION rowsec`. The generated policies do not call
--! functions per row on this backend: they probe tables kept by triggers (generator/src/sql/
--! extension_api.rs, `Backend::Sql`), each readable by everyone through row-level security that
--! shows a person only their own rows. Idempotent: every object is created when missing or
--! replaced, so running a later script converges. Rendered by generator/src/sql/script.rs;
--! lines starting with --! are left out.
--!   {{rowsec_version}}  the generator's version, in the schema's comment (which build installed it)
-- ===== rowsec, SQL backend (no C extension): schema, tables, functions =====
-- One DO block: psql prints one command tag for all of it.
DO $rowsec$
BEGIN
-- Quiet while objects that exist are skipped (a re-run); the level is restored at the end.
BEGIN
    PERFORM pg_catalog.set_config('rowsec_sql_backend.saved_client_min_messages', pg_catalog.current_setting('client_min_messages'), true);
    PERFORM pg_catalog.set_config('client_min_messages', 'warning', true);
    IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'rowsec') THEN
        RAISE EXCEPTION 'the rowsec extension is installed in this database: a script compiled with --backend sql cannot be applied over it'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Compile with --backend extension (the default), or DROP EXTENSION rowsec CASCADE first (its shares and audit trail go with it).';
    END IF;
END;
CREATE SCHEMA IF NOT EXISTS rowsec;
REVOKE CREATE ON SCHEMA rowsec FROM PUBLIC;
GRANT USAGE ON SCHEMA rowsec TO PUBLIC;
EXECUTE pg_catalog.format('COMMENT ON SCHEMA rowsec IS %L', 'rowsec SQL backend ' || {{rowsec_version}});

CREATE TABLE IF NOT EXISTS rowsec.config (
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

CREATE TABLE IF NOT EXISTS rowsec.protected_tables (
    tbl          regclass PRIMARY KEY,
    key_column   name NOT NULL,
    owner_column name NOT NULL,
    sharing      boolean NOT NULL,
    applied      text
);

-- The directory as rowsec reads it, copied by the directory's triggers in the changing
-- statement (SPEC item 10: a change is seen by the changing transaction at once, by every
-- other one from its next statement after the commit). Owner only: the org chart.
CREATE TABLE IF NOT EXISTS rowsec.people (
    id      bigint PRIMARY KEY,
    manager bigint,
    team    text,
    login   text,
    active  boolean NOT NULL
);
IF to_regclass('rowsec.people_by_manager') IS NULL THEN CREATE INDEX people_by_manager ON rowsec.people (manager); END IF;

-- Hierarchy as a closure table: (ancestor, descendant) for every person and everyone in their
-- subtree, themselves included. A row is readable only by the ancestor (row-level security),
-- so a person sees their own subtree, as rowsec.subtree() shows it, and nothing else.
CREATE TABLE IF NOT EXISTS rowsec.closure (
    ancestor   bigint NOT NULL,
    descendant bigint NOT NULL,
    PRIMARY KEY (ancestor, descendant)
);
IF to_regclass('rowsec.closure_by_descendant') IS NULL THEN CREATE INDEX closure_by_descendant ON rowsec.closure (descendant); END IF;
-- The policies' plans: `ancestor = (SELECT ...)` is estimated from the average subtree (some
-- 7 rows at 100,000 people), so the planner would hash the whole set of a person who sees
-- everyone to look up one row. Estimated as 1/20 of the table, it probes per row when a plan
-- reads few rows and hashes the set when it reads many (docs/performance.md, the SQL backend).
IF NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = 'rowsec.closure'::regclass AND a.attname = 'ancestor'
               AND 'n_distinct=20' = ANY (a.attoptions)) THEN
    ALTER TABLE rowsec.closure ALTER COLUMN ancestor SET (n_distinct = 20);
END IF;

-- People whose subtree holds at least an eighth of the directory: the generated policies
-- take another shape for them (see rowsec.subtree_is_large_at_plan). Kept by
-- rowsec.closure_refresh for the people a change touches.
CREATE TABLE IF NOT EXISTS rowsec.large_subtrees (
    person bigint PRIMARY KEY
);

-- Teams: each person with a non-null team; a person reads the rows of their own team only.
CREATE TABLE IF NOT EXISTS rowsec.team_members (
    team   text NOT NULL,
    person bigint NOT NULL,
    PRIMARY KEY (team, person)
);
IF to_regclass('rowsec.team_members_by_person') IS NULL THEN CREATE INDEX team_members_by_person ON rowsec.team_members (person); END IF;

-- Active people with a login; a login reads its own row only: how identity `login` resolves
-- without a SECURITY DEFINER function (which would see its owner as current_user).
-- `name`, compared with CURRENT_USER as name: in collation "C", as its primary key is (a text
-- column compared with CURRENT_USER::text is not, in a database of another collation, and the
-- key could not serve it).
CREATE TABLE IF NOT EXISTS rowsec.login_people (
    login  name NOT NULL,
    person bigint NOT NULL,
    team   text,
    PRIMARY KEY (login, person)
);

CREATE TABLE IF NOT EXISTS rowsec.shares (
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
    derived_from   bigint REFERENCES rowsec.shares (id),
    expiry_capped  boolean NOT NULL DEFAULT false,
    CHECK ((grantee_person IS NULL) <> (grantee_team IS NULL)),
    CHECK (derived_from IS NOT NULL OR NOT expiry_capped)
);
IF to_regclass('rowsec.shares_by_table_key') IS NULL THEN CREATE INDEX shares_by_table_key ON rowsec.shares (tbl, row_key); END IF;
-- The owner of the shared row, for rowsec.my_shares (its owner and their managers list the
-- share): the extension reads it from the row, past the table's policies, which this backend
-- cannot. Written from the sharer's proof, then kept by triggers on the table
-- (rowsec.shared_row_moved, rowsec.shared_rows_gone); NULL once the row is gone.
-- (Checked first: ADD COLUMN IF NOT EXISTS would lock the table until the apply commits.)
IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'rowsec.shares'::regclass AND attname = 'row_owner' AND NOT attisdropped) THEN
    ALTER TABLE rowsec.shares ADD COLUMN row_owner bigint;
END IF;
IF to_regclass('rowsec.shares_by_row_owner') IS NULL THEN
    CREATE INDEX shares_by_row_owner ON rowsec.shares (row_owner) WHERE row_owner IS NOT NULL;
END IF;
IF to_regclass('rowsec.shares_by_expiry') IS NULL THEN CREATE INDEX shares_by_expiry ON rowsec.shares (expires_at) WHERE expires_at IS NOT NULL; END IF;

-- Proof that the caller may update a row, written as the caller: row-level security admits a
-- row only when the caller's own policies let them lock the row FOR UPDATE in this very
-- transaction. rowsec.share and rowsec.unshare (SECURITY DEFINER parts) act only on a proof,
-- and consume it: the owner's half never trusts an argument for who may do what.
CREATE UNLOGGED TABLE IF NOT EXISTS rowsec.update_proofs (
    tbl     regclass NOT NULL,
    row_key bigint NOT NULL,
    person  bigint NOT NULL,
    -- Whether the right is the caller's own (their role's update scope), or comes only from a
    -- share: then a share made from it is derived (it ends with, and cannot outlast, its parent).
    own     boolean NOT NULL,
    xid     bigint NOT NULL DEFAULT pg_catalog.txid_current()
);
IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'rowsec.update_proofs'::regclass AND attname = 'own' AND NOT attisdropped) THEN
    ALTER TABLE rowsec.update_proofs ADD COLUMN own boolean NOT NULL DEFAULT false;
END IF;
-- The row's owner as the caller reads it (checked by the proof's policy; NULL: not given).
IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'rowsec.update_proofs'::regclass AND attname = 'row_owner' AND NOT attisdropped) THEN
    ALTER TABLE rowsec.update_proofs ADD COLUMN row_owner bigint;
END IF;

-- The audit trail, append-only and chained as the extension's (the same hash, byte for byte:
-- rowsec_core::audit::chain_hash). At COMMIT a deferred constraint trigger (rowsec.audit_seal,
-- serialised on the row of rowsec.audit_head) gives each of the transaction's rows the next
-- `seq` and `hash` = SHA-256(previous row's hash, this row's columns): the chain's order is
-- commit order, and a rolled-back transaction leaves nothing. rowsec.verify_audit() walks it.
CREATE TABLE IF NOT EXISTS rowsec.audit_log (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    actor  bigint,
    login  name NOT NULL DEFAULT SESSION_USER,
    kind   text NOT NULL CHECK (kind IN ('share', 'unshare', 'directory', 'membership', 'apply',
                                         'request', 'decision', 'attest', 'data')),
    object text,
    detail jsonb NOT NULL DEFAULT '{}',
    -- Set at commit by rowsec.audit_seal; NULL only while the inserting transaction runs.
    seq    bigint UNIQUE,
    hash   bytea
);
IF to_regclass('rowsec.audit_log_unsealed') IS NULL THEN
    CREATE INDEX audit_log_unsealed ON rowsec.audit_log (id) WHERE seq IS NULL;
END IF;
CREATE TABLE IF NOT EXISTS rowsec.audit_readers (
    role name PRIMARY KEY
);
-- The end of the sealed chain. Sealers lock its row: one at a time, each after the last has
-- committed (in READ COMMITTED the lock returns the row as committed; a REPEATABLE READ or
-- SERIALIZABLE transaction whose snapshot predates the last seal fails with 40001, to retry).
CREATE TABLE IF NOT EXISTS rowsec.audit_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    seq       bigint NOT NULL,
    hash      bytea NOT NULL
);
INSERT INTO rowsec.audit_head (singleton, seq, hash)
    SELECT true, coalesce(max(l.seq), 0),
           coalesce((SELECT l2.hash FROM rowsec.audit_log l2 WHERE l2.seq IS NOT NULL ORDER BY l2.seq DESC LIMIT 1),
                    pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex'))
    FROM rowsec.audit_log l
    ON CONFLICT (singleton) DO NOTHING;

-- One column of the chain: NULL as 0x00, a value as 0x01, its length (8 bytes, big-endian) and
-- its UTF-8 bytes; then the chain's hash: SHA-256 over the previous row's hash and this row's
-- columns (`at` in microseconds since 2000-01-01 UTC, `detail` as jsonb's text output), as
-- rowsec_core::audit::chain_hash. STABLE and without a SET clause so that the planner inlines
-- them into the seal's and the verification's expressions (42 us a row called, 2 us inlined);
-- every name in them is schema-qualified, as no search_path is pinned.
CREATE OR REPLACE FUNCTION rowsec.chain_field(v text) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN v IS NULL THEN pg_catalog.decode('00', 'hex')
                ELSE pg_catalog.decode('01', 'hex') OPERATOR(pg_catalog.||) pg_catalog.int8send(pg_catalog.octet_length(pg_catalog.convert_to(v, 'UTF8'))::pg_catalog.int8)
                     OPERATOR(pg_catalog.||) pg_catalog.convert_to(v, 'UTF8') END
$$;
CREATE OR REPLACE FUNCTION rowsec.chain_hash(prev bytea, seq bigint, id bigint, at timestamptz, actor bigint,
                                             login text, kind text, object text, detail text) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.sha256('rowsec audit chain v1'::pg_catalog.bytea OPERATOR(pg_catalog.||) pg_catalog.decode('00', 'hex') OPERATOR(pg_catalog.||) prev
                  OPERATOR(pg_catalog.||) pg_catalog.int8send(seq) OPERATOR(pg_catalog.||) pg_catalog.int8send(id)
                  OPERATOR(pg_catalog.||) pg_catalog.int8send(((pg_catalog.extract('epoch', at) OPERATOR(pg_catalog.-) 946684800) OPERATOR(pg_catalog.*) 1000000)::pg_catalog.int8)
                  OPERATOR(pg_catalog.||) CASE WHEN actor IS NULL THEN pg_catalog.decode('00', 'hex') ELSE pg_catalog.decode('01', 'hex') OPERATOR(pg_catalog.||) pg_catalog.int8send(actor) END
                  OPERATOR(pg_catalog.||) rowsec.chain_field(login) OPERATOR(pg_catalog.||) rowsec.chain_field(kind) OPERATOR(pg_catalog.||) rowsec.chain_field(object)
                  OPERATOR(pg_catalog.||) rowsec.chain_field(detail))
$$;

-- The deferred trigger's function: at COMMIT (or SET CONSTRAINTS ... IMMEDIATE), chains every
-- row not sealed yet, in id order, after the head. One event per row: the first seals them all,
-- the later events find their row sealed and return (asked of the row itself: a marker in a
-- setting would be one any session can set).
CREATE OR REPLACE FUNCTION rowsec.audit_seal() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    head_seq bigint;
    head_hash bytea;
    ids bigint[] := '{}';
    seqs bigint[] := '{}';
    hashes bytea[] := '{}';
    r record;
BEGIN
    IF (SELECT l.seq IS NOT NULL FROM rowsec.audit_log l WHERE l.id = NEW.id) THEN
        RETURN NULL;
    END IF;
    SELECT h.seq, h.hash INTO head_seq, head_hash FROM rowsec.audit_head h FOR UPDATE;
    FOR r IN SELECT l.id, l.at, l.actor, l.login::text AS login, l.kind, l.object, l.detail::text AS detail
             FROM rowsec.audit_log l WHERE l.seq IS NULL ORDER BY l.id LOOP
        head_seq := head_seq + 1;
        head_hash := rowsec.chain_hash(head_hash, head_seq, r.id, r.at, r.actor, r.login, r.kind, r.object, r.detail);
        ids := ids || r.id;
        seqs := seqs || head_seq;
        hashes := hashes || head_hash;
    END LOOP;
    IF cardinality(ids) > 0 THEN
        UPDATE rowsec.audit_log a SET seq = u.seq, hash = u.hash
        FROM unnest(ids, seqs, hashes) AS u (id, seq, hash) WHERE a.id = u.id;
        UPDATE rowsec.audit_head h SET seq = head_seq, hash = head_hash;
    END IF;
    RETURN NULL;
END
$$;
REVOKE EXECUTE ON FUNCTION rowsec.audit_seal() FROM PUBLIC;

CREATE OR REPLACE FUNCTION rowsec.audit_log_is_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'rowsec.audit_log is append-only'
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = format('%s on rowsec.audit_log is refused for every role, its owner and superusers included.', TG_OP),
              HINT = 'Audit rows are only added, by rowsec''s functions and triggers; rowsec.verify_audit() reports a row changed with this trigger disabled.';
END
$$;
-- Nothing changes or removes a row, except the seal setting seq and hash once (from inside its
-- trigger: a statement run directly is at trigger depth 0). An earlier version had one trigger
-- for UPDATE and DELETE, and no seal: the three are made again unless all are as here.
IF (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'rowsec.audit_log'::regclass AND tgenabled = 'O'
    AND tgname IN ('audit_log_no_update', 'audit_log_no_delete', 'audit_log_no_truncate')
    AND (tgname <> 'audit_log_no_update' OR pg_get_triggerdef(oid) LIKE '%pg_trigger_depth()%')) <> 3 THEN
    CREATE OR REPLACE TRIGGER audit_log_no_update BEFORE UPDATE ON rowsec.audit_log FOR EACH ROW
        WHEN (pg_catalog.pg_trigger_depth() = 0
              OR OLD.seq IS NOT NULL OR OLD.hash IS NOT NULL OR NEW.seq IS NULL OR NEW.hash IS NULL
              OR (OLD.id, OLD.at, OLD.actor, OLD.login, OLD.kind, OLD.object, OLD.detail)
                 IS DISTINCT FROM (NEW.id, NEW.at, NEW.actor, NEW.login, NEW.kind, NEW.object, NEW.detail))
        EXECUTE FUNCTION rowsec.audit_log_is_append_only();
    CREATE OR REPLACE TRIGGER audit_log_no_delete BEFORE DELETE ON rowsec.audit_log
        FOR EACH ROW EXECUTE FUNCTION rowsec.audit_log_is_append_only();
    CREATE OR REPLACE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON rowsec.audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION rowsec.audit_log_is_append_only();
END IF;
-- Made again when missing or disabled (CREATE OR REPLACE does not take a constraint trigger).
IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = 'rowsec.audit_log'::regclass AND tgname = 'audit_log_seal' AND tgenabled = 'O') THEN
    DROP TRIGGER IF EXISTS audit_log_seal ON rowsec.audit_log;
    CREATE CONSTRAINT TRIGGER audit_log_seal AFTER INSERT ON rowsec.audit_log
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION rowsec.audit_seal();
END IF;

REVOKE ALL ON rowsec.config, rowsec.protected_tables, rowsec.people, rowsec.closure, rowsec.large_subtrees, rowsec.team_members,
    rowsec.login_people, rowsec.shares, rowsec.update_proofs, rowsec.audit_log, rowsec.audit_readers, rowsec.audit_head FROM PUBLIC;
-- What policies probe (as the querying role) is readable, each row by whom it concerns only.
GRANT SELECT ON rowsec.closure, rowsec.large_subtrees, rowsec.team_members, rowsec.login_people, rowsec.shares, rowsec.audit_log,
    rowsec.audit_readers TO PUBLIC;
-- Table and column names only (the catalog shows them anyway): rowsec.shared_write_keeps_owner reads them as the caller.
GRANT SELECT (tbl, key_column, owner_column, sharing) ON rowsec.protected_tables TO PUBLIC;
GRANT INSERT (tbl, row_key, person, own, row_owner) ON rowsec.update_proofs TO PUBLIC;
IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'rowsec.closure'::regclass) THEN ALTER TABLE rowsec.closure ENABLE ROW LEVEL SECURITY; END IF;
IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'rowsec.large_subtrees'::regclass) THEN ALTER TABLE rowsec.large_subtrees ENABLE ROW LEVEL SECURITY; END IF;
IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'rowsec.team_members'::regclass) THEN ALTER TABLE rowsec.team_members ENABLE ROW LEVEL SECURITY; END IF;
IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'rowsec.login_people'::regclass) THEN ALTER TABLE rowsec.login_people ENABLE ROW LEVEL SECURITY; END IF;
IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'rowsec.shares'::regclass) THEN ALTER TABLE rowsec.shares ENABLE ROW LEVEL SECURITY; END IF;
IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'rowsec.update_proofs'::regclass) THEN ALTER TABLE rowsec.update_proofs ENABLE ROW LEVEL SECURITY; END IF;
IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'rowsec.audit_log'::regclass) THEN ALTER TABLE rowsec.audit_log ENABLE ROW LEVEL SECURITY; END IF;

-- ===== Identity =====

-- (An earlier version parsed the setting in rowsec.person_id_from_setting(text); configure
-- now writes the parse into each function's query, where the planner evaluates it inline.)
DROP FUNCTION IF EXISTS rowsec.person_id_from_setting(text);

-- Until rowsec.configure runs: nobody (configure replaces both for the spec's identity).
BEGIN
    IF to_regprocedure('rowsec.current_person()') IS NULL THEN
        CREATE FUNCTION rowsec.current_person() RETURNS bigint
        LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $f$
        BEGIN
            RAISE EXCEPTION 'rowsec is not configured' USING ERRCODE = 'object_not_in_prerequisite_state',
                HINT = 'Run the script generated by `rowsec compile --backend sql`.';
        END
        $f$;
        CREATE FUNCTION rowsec.current_team() RETURNS text
        LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $f$ SELECT NULL::text $f$;
    END IF;
END;

-- Policy `name` on rowsec's table `tbl` as `definition` (what follows the table in CREATE
-- POLICY). Its comment names the definition's hash: a run that finds it leaves the policy, and
-- its table's lock, alone; a changed definition is made again (an earlier version marked them
-- all "version 1", which a change had to remember to bump).
CREATE OR REPLACE FUNCTION rowsec.ensure_policy(tbl regclass, name name, definition text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    mark text := 'rowsec SQL backend policy ' || pg_catalog.md5(definition);
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_policy p WHERE p.polrelid = tbl AND p.polname = name
               AND pg_catalog.obj_description(p.oid, 'pg_policy') = mark) THEN
        RETURN;
    END IF;
    EXECUTE pg_catalog.format('DROP POLICY IF EXISTS %I ON %s', name, tbl);
    EXECUTE pg_catalog.format('CREATE POLICY %I ON %s %s', name, tbl, definition);
    EXECUTE pg_catalog.format('COMMENT ON POLICY %I ON %s IS %L', name, tbl, mark);
END
$$;
REVOKE EXECUTE ON FUNCTION rowsec.ensure_policy(regclass, name, text) FROM PUBLIC;

-- Row-level security of the tables policies probe: each person reads their own rows only.
BEGIN
    PERFORM rowsec.ensure_policy('rowsec.closure', 'own_subtree',
        'FOR SELECT TO PUBLIC
        USING (ancestor = (SELECT rowsec.current_person()))');
    -- A login reads whether its own person is there (identity setting reads it as the owner).
    PERFORM rowsec.ensure_policy('rowsec.large_subtrees', 'own_large',
        'FOR SELECT TO PUBLIC
        USING (person IN (SELECT l.person FROM rowsec.login_people l WHERE l.login = CURRENT_USER))');
    PERFORM rowsec.ensure_policy('rowsec.team_members', 'own_team',
        'FOR SELECT TO PUBLIC
        USING (team = (SELECT rowsec.current_team()))');
    PERFORM rowsec.ensure_policy('rowsec.login_people', 'own_login',
        'FOR SELECT TO PUBLIC
        USING (login = CURRENT_USER)');
    -- rowsec_sql_backend.ignore_shares (set by rowsec.may_update_own for one call) hides every
    -- share: the policies then grant only through the caller's own scopes. Setting it oneself
    -- only takes shares away from oneself.
    PERFORM rowsec.ensure_policy('rowsec.shares', 'concerning_me',
        'FOR SELECT TO PUBLIC
        USING ((grantee_person = (SELECT rowsec.current_person()) OR grantee_team = (SELECT rowsec.current_team())
        OR granted_by = (SELECT rowsec.current_person()))
        AND (SELECT coalesce(pg_catalog.current_setting(''rowsec_sql_backend.ignore_shares'', true), '''') <> ''on''))');
END;

-- The role the session acts as, also inside a SECURITY DEFINER function (where CURRENT_USER
-- is the function's owner): the one SET ROLE chose, else the session's own. What the audit
-- trail records as the role a share was made with, and whose person identity login resolves
-- for the owner's halves (rowsec.invoking_person).
CREATE OR REPLACE FUNCTION rowsec.invoking_role() RETURNS name
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN pg_catalog.current_setting('role') = 'none' THEN SESSION_USER
                ELSE pg_catalog.current_setting('role')::name END
$$;

-- SQL for the text of column `col` of the row alias `alias`, as its type's output function
-- writes it (NULL for NULL): what the extension records. Not `::text`: a type's owner may
-- CREATE CAST (their_type AS text) WITH FUNCTION, and the SECURITY DEFINER triggers that read
-- column values would run it as rowsec's owner. format('%s') calls the output function, which
-- only C code provides. num_nulls: a composite value with every field NULL is not NULL here.
CREATE OR REPLACE FUNCTION rowsec.text_of_column(alias text, col name) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_catalog.format('CASE WHEN pg_catalog.num_nulls(%1$I.%2$I) = 1 THEN NULL ELSE pg_catalog.format(''%%s'', %1$I.%2$I) END',
                             alias, col)
$$;

-- `person` (the caller as rowsec resolves them), or 42501 saying what they tried (`doing`) and
-- which role did not resolve, as the extension refuses it.
CREATE OR REPLACE FUNCTION rowsec.require_person(person bigint, doing text, role name) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF person IS NULL THEN
        RAISE EXCEPTION 'only an active person in the directory may %', doing USING ERRCODE = 'insufficient_privilege',
            DETAIL = format('Role "%s" does not resolve to an active person.', role),
            HINT = 'Check the directory row (login, active) or the identity setting for this session.';
    END IF;
    RETURN person;
END
$$;
-- The first of `names` whose `missing` is true, refused as the extension refuses a NULL (22004).
CREATE OR REPLACE FUNCTION rowsec.require_arguments(names text[], missing boolean[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    FOR i IN 1 .. cardinality(names) LOOP
        IF missing[i] THEN
            RAISE EXCEPTION '% must not be NULL', names[i] USING ERRCODE = 'null_value_not_allowed',
                DETAIL = format('rowsec was called with a NULL %s.', names[i]), HINT = 'Pass a value.';
        END IF;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION rowsec.is_audit_reader() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT FROM rowsec.audit_readers r JOIN pg_catalog.pg_roles a ON a.rolname OPERATOR(pg_catalog.=) r.role
                   WHERE pg_catalog.pg_has_role(a.oid, 'MEMBER'))
$$;

-- Recomputes the chain in `seq` order and returns the id of the first row whose link is broken
-- (edited, a row before it deleted, reordered), then of the first committed row without a seal
-- (sealing bypassed), or NULL when the whole trail verifies. Superusers and audit.readers only;
-- run as the caller (row-level security shows readers every row).
CREATE OR REPLACE FUNCTION rowsec.verify_audit() RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    prev bytea := pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex');
    next_seq bigint := 1;
    r record;
    mine xid8 := pg_catalog.pg_current_xact_id_if_assigned();
BEGIN
    IF NOT (coalesce((SELECT a.rolsuper FROM pg_catalog.pg_roles a WHERE a.rolname = CURRENT_USER), false)
            OR rowsec.is_audit_reader()) THEN
        RAISE EXCEPTION 'permission denied for function rowsec.verify_audit' USING ERRCODE = 'insufficient_privilege',
            DETAIL = 'Only superusers and members of the spec''s audit.readers roles read the audit trail.',
            HINT = 'Ask for a role listed in audit.readers.';
    END IF;
    FOR r IN SELECT l.id, l.at, l.actor, l.login::text AS login, l.kind, l.object, l.detail::text AS detail, l.seq, l.hash
             FROM rowsec.audit_log l WHERE l.seq IS NOT NULL ORDER BY l.seq LOOP
        IF r.seq <> next_seq OR r.hash IS NULL
           OR rowsec.chain_hash(prev, r.seq, r.id, r.at, r.actor, r.login, r.kind, r.object, r.detail) <> r.hash THEN
            RETURN r.id;
        END IF;
        next_seq := r.seq + 1;
        prev := r.hash;
    END LOOP;
    -- Rows of this transaction (or its subtransactions: their xids follow its own) are sealed at
    -- its commit; any other row without a seal was committed with the seal trigger disabled.
    FOR r IN SELECT l.id, l.xmin::text::bigint AS x FROM rowsec.audit_log l WHERE l.seq IS NULL ORDER BY l.id LOOP
        IF mine IS NULL OR pg_catalog.pg_xact_status((mine::text::numeric
               + ((r.x - mine::text::numeric % 4294967296 + 6442450944) % 4294967296 - 2147483648))::text::xid8)
               IS DISTINCT FROM 'in progress' THEN
            RETURN r.id;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
GRANT EXECUTE ON FUNCTION rowsec.verify_audit() TO PUBLIC;

-- Whether the caller may update row `key` of `tbl` through their own policies: a SELECT ...
-- FOR UPDATE as the caller (it applies the UPDATE policies' USING), as the extension checks.
CREATE OR REPLACE FUNCTION rowsec.may_update(tbl regclass, key bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    key_column name;
    found_row boolean;
BEGIN
    SELECT p.key_column INTO key_column FROM rowsec.protected_tables p WHERE p.tbl = may_update.tbl;
    IF key_column IS NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('SELECT true FROM %s WHERE %I OPERATOR(pg_catalog.=) $1 FOR UPDATE', tbl, key_column)
        INTO found_row USING key;
    RETURN coalesce(found_row, false);
EXCEPTION WHEN insufficient_privilege THEN
    RETURN false;
END
$$;

-- The owner of row `key` of `tbl` as the caller reads it (NULL: no such row in their sight, or
-- no owner): what a share records as its row's owner, checked by the proof's policy, and what a
-- write share's WITH CHECK compares the new owner with (rowsec.shared_write_keeps_owner).
CREATE OR REPLACE FUNCTION rowsec.visible_owner(tbl regclass, key bigint) RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p record;
    owner bigint;
BEGIN
    SELECT t.key_column, t.owner_column INTO p FROM rowsec.protected_tables t WHERE t.tbl = visible_owner.tbl;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT %I FROM %s WHERE %I OPERATOR(pg_catalog.=) $1', p.owner_column, tbl, p.key_column)
        INTO owner USING key;
    RETURN owner;
EXCEPTION WHEN insufficient_privilege THEN
    RETURN NULL;
END
$$;

-- The same check with every share hidden, for this call only (set and put back here: a SET
-- clause of a custom setting on a function needs a superuser to create it).
CREATE OR REPLACE FUNCTION rowsec.may_update_own(tbl regclass, key bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    before text := coalesce(current_setting('rowsec_sql_backend.ignore_shares', true), '');
    own boolean;
BEGIN
    PERFORM set_config('rowsec_sql_backend.ignore_shares', 'on', true);
    own := rowsec.may_update(tbl, key);
    PERFORM set_config('rowsec_sql_backend.ignore_shares', before, true);
    RETURN own;
EXCEPTION WHEN OTHERS THEN
    PERFORM set_config('rowsec_sql_backend.ignore_shares', before, true);
    RAISE;
END
$$;

-- ===== Directory: the copies policies probe, kept by triggers on the directory =====

-- rowsec.large_subtrees for the people whose subtree may have changed size (NULL: everyone).
-- Other people keep their entry until a change touches them, though the directory's size
-- moves the line: only which plan the policies choose depends on it, never a row's visibility.
-- Only the policies of identity login read it (under a setting a pool's plans serve everyone):
-- under a setting it stays empty and a directory change does not pay for it.
CREATE OR REPLACE FUNCTION rowsec.large_subtrees_refresh(candidates bigint[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    line bigint;
BEGIN
    IF (SELECT c.identity FROM rowsec.config c) IS DISTINCT FROM 'login' THEN
        DELETE FROM rowsec.large_subtrees;
        RETURN;
    END IF;
    line := (SELECT count(*) FROM rowsec.people) / 8 + 1;
    IF candidates IS NULL OR cardinality(candidates) > 1000 THEN
        DELETE FROM rowsec.large_subtrees;
        INSERT INTO rowsec.large_subtrees (person)
        SELECT c.ancestor FROM rowsec.closure c GROUP BY c.ancestor HAVING count(*) >= line;
        RETURN;
    END IF;
    candidates := ARRAY(SELECT DISTINCT x FROM unnest(candidates || ARRAY(SELECT s.person FROM rowsec.large_subtrees s)) x);
    DELETE FROM rowsec.large_subtrees s WHERE s.person = ANY (candidates);
    INSERT INTO rowsec.large_subtrees (person)
    SELECT x FROM unnest(candidates) x
    WHERE (SELECT count(*) FROM (SELECT FROM rowsec.closure c WHERE c.ancestor = x LIMIT line) n) >= line;
END
$$;
-- Recomputes what depends on the people `changed` (inserted, deleted, or whose id or manager
-- changed) after rowsec.people was updated: their subtrees' closure rows, found both in the old
-- closure and by walking the new directory down (a statement may move several people, one under
-- another), then rowsec.large_subtrees for the ancestors whose subtree changed size. UNION
-- (not UNION ALL) in both walks: a manager cycle ends them (SPEC item 11).
CREATE OR REPLACE FUNCTION rowsec.closure_refresh(changed bigint[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    affected bigint[];
    moved bigint;
    m bigint;
    sized bigint[];
BEGIN
    IF coalesce(cardinality(changed), 0) = 0 THEN
        RETURN;
    END IF;
    -- One person moved, no cycle before or after: their subtree S is the same set, its own
    -- pairs stay; only the pairs (ancestor outside S, someone in S) change, from the old
    -- ancestors of the person to the new manager's. |S| x depth rows, without walking S.
    IF cardinality(changed) = 1 THEN
        moved := changed[1];
        SELECT p.manager INTO m FROM rowsec.people p WHERE p.id = moved;
        IF FOUND
           AND EXISTS (SELECT FROM rowsec.closure c WHERE c.ancestor = moved AND c.descendant = moved)
           AND (m IS NULL OR EXISTS (SELECT FROM rowsec.people p WHERE p.id = m))
           AND (m IS NULL OR NOT EXISTS (SELECT FROM rowsec.closure c WHERE c.ancestor = moved AND c.descendant = m))
           AND NOT EXISTS (SELECT FROM rowsec.closure a JOIN rowsec.closure b ON b.ancestor = moved AND b.descendant = a.ancestor
                           WHERE a.descendant = moved AND a.ancestor <> moved) THEN
            -- The old ancestors lose the subtree's size, the new ones gain it.
            sized := ARRAY(SELECT c.ancestor FROM rowsec.closure c WHERE c.descendant = moved AND c.ancestor <> moved);
            DELETE FROM rowsec.closure c
            WHERE c.descendant IN (SELECT s.descendant FROM rowsec.closure s WHERE s.ancestor = moved)
              AND c.ancestor NOT IN (SELECT s.descendant FROM rowsec.closure s WHERE s.ancestor = moved);
            IF m IS NOT NULL THEN
                INSERT INTO rowsec.closure (ancestor, descendant)
                SELECT a.ancestor, s.descendant FROM rowsec.closure a, rowsec.closure s
                WHERE a.descendant = m AND s.ancestor = moved;
                sized := sized || ARRAY(SELECT c.ancestor FROM rowsec.closure c WHERE c.descendant = m);
            END IF;
            PERFORM rowsec.large_subtrees_refresh(sized);
            RETURN;
        END IF;
    END IF;
    WITH RECURSIVE down(id) AS (
        SELECT unnest(changed)
        UNION
        SELECT p.id FROM rowsec.people p JOIN down d ON p.manager = d.id
    )
    SELECT array_agg(DISTINCT s.person) INTO affected FROM (
        SELECT d.id AS person FROM down d
        UNION
        SELECT c.descendant FROM rowsec.closure c WHERE c.ancestor = ANY (changed)
    ) s;
    -- Whose subtree may change size: the ancestors of the affected people before and after.
    sized := ARRAY(SELECT DISTINCT c.ancestor FROM rowsec.closure c WHERE c.descendant = ANY (affected));
    DELETE FROM rowsec.closure c WHERE c.descendant = ANY (affected);
    INSERT INTO rowsec.closure (ancestor, descendant)
    WITH RECURSIVE up(descendant, ancestor) AS (
        SELECT p.id, p.id FROM rowsec.people p WHERE p.id = ANY (affected)
        UNION
        SELECT u.descendant, m.id
        FROM up u JOIN rowsec.people p ON p.id = u.ancestor JOIN rowsec.people m ON m.id = p.manager
    )
    SELECT ancestor, descendant FROM up;
    PERFORM rowsec.large_subtrees_refresh(
        CASE WHEN cardinality(sized) > 1000 THEN NULL
             ELSE sized || ARRAY(SELECT DISTINCT c.ancestor FROM rowsec.closure c WHERE c.descendant = ANY (affected)) END);
END
$$;

-- The directory's rows `ids` (bigint[]) from the directory table into rowsec.people, login_people
-- and team_members (deleted people leave them), then the closure of whom it concerns.
CREATE OR REPLACE FUNCTION rowsec.directory_sync(old_ids bigint[], new_ids bigint[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c rowsec.config;
    ids bigint[] := ARRAY(SELECT DISTINCT x FROM unnest(coalesce(old_ids, '{}') || coalesce(new_ids, '{}')) x WHERE x IS NOT NULL);
    before jsonb;
    changed bigint[];
BEGIN
    SELECT * INTO c FROM rowsec.config;
    IF NOT FOUND OR cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    SELECT coalesce(jsonb_object_agg(p.id::text, p.manager), '{}') INTO before FROM rowsec.people p WHERE p.id = ANY (ids);
    DELETE FROM rowsec.people p WHERE p.id = ANY (ids);
    EXECUTE format('INSERT INTO rowsec.people (id, manager, team, login, active) '
                   'SELECT d.%I, d.%I, %s, %s, %s FROM %s d WHERE d.%I = ANY ($1)',
                   c.id_column, c.manager_column,
                   CASE WHEN c.team_column IS NULL THEN 'NULL' ELSE rowsec.text_of_column('d', c.team_column) END,
                   CASE WHEN c.login_column IS NULL THEN 'NULL' ELSE format('d.%I::text', c.login_column) END,
                   CASE WHEN c.active_column IS NULL THEN 'true' ELSE format('coalesce(d.%I, false)', c.active_column) END,
                   c.directory, c.id_column)
        USING ids;
    DELETE FROM rowsec.login_people l WHERE l.person = ANY (ids);
    INSERT INTO rowsec.login_people (login, person, team)
        SELECT p.login::name, p.id, p.team FROM rowsec.people p
        -- A longer login names no role (name would cut it to another).
        WHERE p.id = ANY (ids) AND p.active AND p.login IS NOT NULL AND octet_length(p.login) <= 63;
    DELETE FROM rowsec.team_members t WHERE t.person = ANY (ids);
    INSERT INTO rowsec.team_members (team, person)
        SELECT p.team, p.id FROM rowsec.people p WHERE p.id = ANY (ids) AND p.team IS NOT NULL;
    -- Only a new, removed or moved person changes subtrees.
    changed := ARRAY(
        SELECT x FROM unnest(ids) x
        WHERE (before ? x::text) IS DISTINCT FROM EXISTS (SELECT FROM rowsec.people p WHERE p.id = x)
           OR (before ->> x::text)::bigint IS DISTINCT FROM (SELECT p.manager FROM rowsec.people p WHERE p.id = x));
    PERFORM rowsec.closure_refresh(changed);
END
$$;

-- Everything from the directory again (rowsec.configure with a new directory, TRUNCATE).
CREATE OR REPLACE FUNCTION rowsec.directory_rebuild() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c rowsec.config;
    ids bigint[];
BEGIN
    DELETE FROM rowsec.people;
    DELETE FROM rowsec.closure;
    DELETE FROM rowsec.large_subtrees;
    DELETE FROM rowsec.login_people;
    DELETE FROM rowsec.team_members;
    SELECT * INTO c FROM rowsec.config;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    EXECUTE format('SELECT array_agg(%I) FROM %s', c.id_column, c.directory) INTO ids;
    PERFORM rowsec.directory_sync(NULL, ids);
    -- directory_sync refreshed only the people whose manager changed: all of them, from empty.
END
$$;

-- The audit trail's rows of a directory change (SPEC item 15, kind `directory`), as the
-- extension's row trigger writes them: one per person added, removed, or whose manager, team,
-- login or active changed, with old and new, and what a change of manager or team did to
-- access. `rows`: [{id, old, new}], old and new the person's fields ({id, manager, team, login,
-- active}, NULL for a row that did not or does not exist), paired by id. Run before the
-- copies are synchronised: what the change did is measured against the directory as it was.
CREATE OR REPLACE FUNCTION rowsec.directory_audit_before(rows jsonb) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    -- Each team a row names counted once (a bulk change of one team's people would count it
    -- per row).
    WITH sizes AS (
        SELECT m.team, count(*) AS n FROM rowsec.team_members m
        WHERE m.team IN (SELECT x.r -> s ->> 'team' FROM jsonb_array_elements(rows) x (r), unnest(ARRAY['old', 'new']) s)
        GROUP BY m.team)
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'op', CASE WHEN r.old IS NULL THEN 'insert' WHEN r.new IS NULL THEN 'delete' ELSE 'update' END,
               'id', r.id, 'changes', ch.changes,
               'manager_moved', coalesce(r.old -> 'manager', 'null') <> coalesce(r.new -> 'manager', 'null'),
               'above_before', (SELECT coalesce(jsonb_agg(a.ancestor ORDER BY a.depth DESC, a.ancestor), '[]') FROM (
                                    SELECT c.ancestor, (SELECT count(*) FROM rowsec.closure d WHERE d.descendant = c.ancestor) AS depth
                                    FROM rowsec.closure c WHERE c.descendant = r.id AND c.ancestor <> r.id) a),
               'people_moved', greatest(1, (SELECT count(*) FROM rowsec.closure c WHERE c.ancestor = r.id)),
               'team', CASE WHEN (SELECT g.team_column FROM rowsec.config g) IS NOT NULL
                             AND coalesce(r.old -> 'team', 'null') <> coalesce(r.new -> 'team', 'null') THEN
                   jsonb_build_object(
                       'teammates_lost', coalesce((SELECT z.n FROM sizes z WHERE z.team = r.old ->> 'team'), 0)
                           - (SELECT count(*) FROM rowsec.team_members m WHERE m.team = r.old ->> 'team' AND m.person = r.id),
                       'teammates_gained', coalesce((SELECT z.n FROM sizes z WHERE z.team = r.new ->> 'team'), 0)
                           - (SELECT count(*) FROM rowsec.team_members m WHERE m.team = r.new ->> 'team' AND m.person = r.id))
               END) ORDER BY r.id), '[]')
    FROM jsonb_to_recordset(rows) AS r (id bigint, old jsonb, new jsonb)
    CROSS JOIN LATERAL (
        SELECT jsonb_object_agg(k, jsonb_build_object('old', coalesce(r.old -> k, 'null'), 'new', coalesce(r.new -> k, 'null'))) AS changes
        FROM unnest(ARRAY['id', 'manager', 'team', 'login', 'active']) k
        WHERE coalesce(r.old -> k, 'null') <> coalesce(r.new -> k, 'null')) ch
    WHERE ch.changes IS NOT NULL
$$;

-- After the copies are synchronised: the managers above each moved person now, against before
-- (left_subtree_of: no longer above them; entered_subtree_of: newly above them, nearest first).
CREATE OR REPLACE FUNCTION rowsec.directory_audit_write(entries jsonb, directory regclass, actor bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO rowsec.audit_log (actor, kind, object, detail)
    SELECT actor, 'directory', directory::text,
           jsonb_build_object('op', e ->> 'op', 'id', e -> 'id', 'changes', e -> 'changes', 'access',
               jsonb_strip_nulls(jsonb_build_object(
                   'manager', CASE WHEN (e ->> 'manager_moved')::boolean THEN jsonb_build_object(
                       'people_moved', e -> 'people_moved',
                       'left_subtree_of', (SELECT coalesce(jsonb_agg(b.m ORDER BY b.n), '[]')
                                           FROM jsonb_array_elements(e -> 'above_before') WITH ORDINALITY b (m, n)
                                           WHERE NOT a.above @> jsonb_build_array(b.m)),
                       'entered_subtree_of', (SELECT coalesce(jsonb_agg(x.m ORDER BY x.n), '[]')
                                              FROM jsonb_array_elements(a.above) WITH ORDINALITY x (m, n)
                                              WHERE NOT (e -> 'above_before') @> jsonb_build_array(x.m))) END,
                   'team', e -> 'team')))
    FROM jsonb_array_elements(entries) WITH ORDINALITY AS w (e, n)
    CROSS JOIN LATERAL (
        SELECT coalesce(jsonb_agg(q.ancestor ORDER BY q.depth DESC, q.ancestor), '[]') AS above FROM (
            SELECT c.ancestor, (SELECT count(*) FROM rowsec.closure d WHERE d.descendant = c.ancestor) AS depth
            FROM rowsec.closure c
            WHERE (e ->> 'manager_moved')::boolean AND c.descendant = (e ->> 'id')::bigint AND c.ancestor <> (e ->> 'id')::bigint) q) a
    ORDER BY w.n
$$;

-- The directory's triggers (one per event: transition tables allow one event a trigger).
-- SECURITY DEFINER: whoever changes the directory, rowsec's copies are written as their owner.
CREATE OR REPLACE FUNCTION rowsec.directory_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c rowsec.config;
    fields text;
    team text;
    login text;
    active text;
    rows jsonb;
    entries jsonb;
    actor bigint;
BEGIN
    SELECT * INTO c FROM rowsec.config;
    IF NOT FOUND OR c.directory <> TG_RELID::regclass THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM rowsec.directory_rebuild();
        RETURN NULL;
    END IF;
    -- The rows as the audit trail records them, before and after, paired by id (a statement
    -- that changes an id records the old id removed and the new one added). The team as its
    -- type's output (a cast to text could be a function its type's owner wrote, run here as
    -- rowsec's owner); login is text, varchar or name, active boolean (rowsec.configure).
    team := CASE WHEN c.team_column IS NULL THEN 'NULL::text' ELSE rowsec.text_of_column('d', c.team_column) END;
    login := CASE WHEN c.login_column IS NULL THEN 'NULL::text' ELSE format('d.%I::text', c.login_column) END;
    active := CASE WHEN c.active_column IS NULL THEN 'NULL::boolean' ELSE format('d.%I', c.active_column) END;
    -- (%6$s: the transition table; column names go in as arguments only, never into a format.)
    fields := 'SELECT d.%1$I::bigint AS id, jsonb_build_object(''id'', d.%1$I, ''manager'', d.%2$I, ''team'', %3$s, '
              '''login'', %4$s, ''active'', %5$s) AS f FROM %6$s d';
    EXECUTE format('SELECT coalesce(jsonb_agg(jsonb_build_object(''id'', coalesce(n.id, o.id), ''old'', o.f, ''new'', n.f)), ''[]'') '
                   'FROM (%s) o FULL JOIN (%s) n ON n.id = o.id',
                   CASE WHEN TG_OP = 'INSERT' THEN 'SELECT NULL::bigint AS id, NULL::jsonb AS f WHERE false'
                        ELSE format(fields, c.id_column, c.manager_column, team, login, active, 'rowsec_old') END,
                   CASE WHEN TG_OP = 'DELETE' THEN 'SELECT NULL::bigint AS id, NULL::jsonb AS f WHERE false'
                        ELSE format(fields, c.id_column, c.manager_column, team, login, active, 'rowsec_new') END)
        INTO rows;
    entries := rowsec.directory_audit_before(rows);
    actor := rowsec.invoking_person();
    -- Every id before or after the statement (the rows are paired by it): what the copies resync.
    PERFORM rowsec.directory_sync(NULL, ARRAY(SELECT (r ->> 'id')::bigint FROM jsonb_array_elements(rows) r));
    IF jsonb_array_length(entries) > 0 THEN
        PERFORM rowsec.directory_audit_write(entries, c.directory, actor);
    END IF;
    RETURN NULL;
END
$$;
REVOKE EXECUTE ON FUNCTION rowsec.directory_changed() FROM PUBLIC;

-- ===== Configuration (owner only) =====

CREATE OR REPLACE FUNCTION rowsec.configure(
    directory regclass, id_column name, manager_column name, team_column name DEFAULT NULL,
    login_column name DEFAULT NULL, active_column name DEFAULT NULL, identity text DEFAULT 'login',
    identity_setting text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    old rowsec.config;
    col name;
    t regtype;
    -- What the identity's functions differ in (see where they are written below).
    me text;
    my_team text;
    invoker text;
    definer text;
    large_at_plan text;
    -- Identity setting: the condition on rowsec.people p that it names p, active. The value is
    -- an integer, blanks around it allowed (rowsec_core's person_id_from_setting); anything
    -- else, or a number out of bigint's range, names nobody. Written into each function's
    -- query (no function of its own: a call per statement through the SQL function executor
    -- cost some 30 us).
    person_is_caller text := pg_catalog.format(
        $w$p.id = CASE WHEN %1$s ~ '^\s*[+-]?[0-9]{1,18}\s*$'
                          OR %1$s ~ '^\s*[+-]?[0-9]{19}\s*$'
                             AND %1$s::numeric BETWEEN -9223372036854775808 AND 9223372036854775807
                     THEN %1$s::bigint END
              AND p.active$w$,
        pg_catalog.format('pg_catalog.current_setting(%L, true)', identity_setting));
BEGIN
    IF identity = 'signed_setting' THEN
        RAISE EXCEPTION 'signed identity tokens need the rowsec extension'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Use identity { setting: NAME } or login on the SQL backend, or install the extension.';
    ELSIF identity NOT IN ('login', 'setting') THEN
        RAISE EXCEPTION 'unknown identity "%"', identity USING ERRCODE = 'invalid_parameter_value';
    ELSIF identity = 'login' AND login_column IS NULL THEN
        RAISE EXCEPTION 'identity login needs a login column' USING ERRCODE = 'invalid_parameter_value';
    ELSIF identity = 'setting' AND coalesce(identity_setting, '') = '' THEN
        RAISE EXCEPTION 'identity setting needs a setting name' USING ERRCODE = 'invalid_parameter_value';
    ELSIF identity = 'setting' AND pg_catalog.strpos(identity_setting, '$') > 0 THEN
        -- The name is written into the bodies of the identity's functions, which are
        -- dollar-quoted: a "$" in it could end a body early.
        RAISE EXCEPTION 'the identity setting name "%" has a "$", which the SQL backend does not take', identity_setting
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name the setting without "$" (PostgreSQL allows it; the extension backend takes it).';
    END IF;
    IF (SELECT c.relkind FROM pg_class c WHERE c.oid = directory) <> 'r' THEN
        RAISE EXCEPTION 'the directory % is not an ordinary table', directory
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = 'rowsec keeps copies of the directory current with triggers on it.';
    END IF;
    FOREACH col IN ARRAY ARRAY[id_column, manager_column, team_column, login_column, active_column] LOOP
        CONTINUE WHEN col IS NULL;
        SELECT a.atttypid::regtype INTO t FROM pg_attribute a
        WHERE a.attrelid = directory AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'column "%" of the directory % does not exist', col, directory USING ERRCODE = 'undefined_column';
        END IF;
        IF (col = id_column OR col = manager_column) AND t NOT IN ('bigint'::regtype, 'integer'::regtype, 'smallint'::regtype)
           OR col = login_column AND t NOT IN ('text'::regtype, 'character varying'::regtype, 'name'::regtype)
           OR col = active_column AND t <> 'boolean'::regtype THEN
            RAISE EXCEPTION 'column "%" of the directory % has type %', col, directory, t USING ERRCODE = 'datatype_mismatch';
        END IF;
    END LOOP;
    IF NOT EXISTS (SELECT FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                   WHERE i.indrelid = directory AND i.indisunique AND i.indnkeyatts = 1 AND i.indpred IS NULL
                     AND a.attname = id_column) THEN
        RAISE EXCEPTION 'the id column "%" of the directory % has no unique index', id_column, directory
            USING ERRCODE = 'invalid_table_definition';
    END IF;

    SELECT * INTO old FROM rowsec.config;
    IF FOUND AND old.directory <> directory THEN
        EXECUTE format('DROP TRIGGER IF EXISTS rowsec_directory_insert ON %1$s; DROP TRIGGER IF EXISTS rowsec_directory_update ON %1$s; '
                       'DROP TRIGGER IF EXISTS rowsec_directory_delete ON %1$s; DROP TRIGGER IF EXISTS rowsec_directory_truncate ON %1$s',
                       old.directory);
    END IF;
    IF NOT FOUND OR (old.directory, old.id_column, old.manager_column, old.team_column, old.login_column, old.active_column)
                    IS DISTINCT FROM (directory, id_column, manager_column, team_column, login_column, active_column)
       OR (SELECT count(*) FROM pg_trigger g WHERE g.tgrelid = directory AND g.tgname LIKE 'rowsec\_directory\_%') <> 4 THEN
        DELETE FROM rowsec.config;
        INSERT INTO rowsec.config VALUES (true, directory, id_column, manager_column, team_column, login_column,
                                          active_column, identity, identity_setting);
        EXECUTE format('CREATE OR REPLACE TRIGGER rowsec_directory_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS rowsec_new '
                       'FOR EACH STATEMENT EXECUTE FUNCTION rowsec.directory_changed()', directory);
        EXECUTE format('CREATE OR REPLACE TRIGGER rowsec_directory_update AFTER UPDATE ON %s REFERENCING OLD TABLE AS rowsec_old NEW TABLE AS rowsec_new '
                       'FOR EACH STATEMENT EXECUTE FUNCTION rowsec.directory_changed()', directory);
        EXECUTE format('CREATE OR REPLACE TRIGGER rowsec_directory_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS rowsec_old '
                       'FOR EACH STATEMENT EXECUTE FUNCTION rowsec.directory_changed()', directory);
        EXECUTE format('CREATE OR REPLACE TRIGGER rowsec_directory_truncate AFTER TRUNCATE ON %s '
                       'FOR EACH STATEMENT EXECUTE FUNCTION rowsec.directory_changed()', directory);
        PERFORM rowsec.directory_rebuild();
    ELSIF (old.identity, old.identity_setting) IS DISTINCT FROM (identity, identity_setting) THEN
        UPDATE rowsec.config c SET identity = configure.identity, identity_setting = configure.identity_setting;
        -- Kept under identity login only (below): filled, or emptied, for the new identity.
        PERFORM rowsec.large_subtrees_refresh(NULL);
    END IF;

    -- The identity's functions, one text for both identities with what differs filled in: who
    -- the caller is (a scalar subquery), their team, whether the functions run as the owner,
    -- and the planning hint of the subtree policies' second shape.
    -- login: rowsec.login_people as the caller (its row-level security shows a login its own
    -- row; a SECURITY DEFINER function would see its owner as CURRENT_USER), and rowsec's other
    -- tables through their row-level security too.
    -- setting: the setting parsed inline, the person read as the owner, and the sets read in
    -- the same query (no nested call of current_person(), and no row-level security of rowsec's
    -- tables, whose own policies would call it again: half a statement's fixed cost).
    -- PL/pgSQL, not SQL: its query plan is kept for the session, where a SQL function's body is
    -- planned again in every query that calls it (measured: 15-20 us a query against 100 us).
    IF identity = 'login' THEN
        me := '(SELECT CASE WHEN count(*) = 1 THEN min(l.person) END FROM rowsec.login_people l WHERE l.login = CURRENT_USER)';
        -- In a SECURITY DEFINER function CURRENT_USER is the owner.
        invoker := replace(me, 'CURRENT_USER', 'rowsec.invoking_role()');
        my_team := '(SELECT CASE WHEN count(*) = 1 THEN min(l.team) END FROM rowsec.login_people l WHERE l.login = CURRENT_USER)';
        definer := '';
        -- Under login PostgreSQL remakes a plan that reads a table with row-level security when
        -- the current user changes: a plan is only ever run for the login it was made for.
        large_at_plan := pg_catalog.format('EXISTS (SELECT FROM rowsec.large_subtrees s WHERE s.person = %s)', me);
    ELSE
        me := pg_catalog.format('(SELECT p.id FROM rowsec.people p WHERE %s)', person_is_caller);
        invoker := me;
        my_team := pg_catalog.format('(SELECT p.team FROM rowsec.people p WHERE %s)', person_is_caller);
        definer := 'SECURITY DEFINER';
        -- Under a setting identity the generated policies keep the array for everyone (one pool
        -- session serves many people, and a prepared statement keeps the plan of whoever
        -- planned it first: a probe shape made for the CEO cost a rep up to 1,000x on pages and
        -- sums, docs/performance.md) and do not call the three functions of the second shape.
        -- They exist, answering "not large", for policies written for identity login until the
        -- script that changes the identity replaces them.
        large_at_plan := 'false';
    END IF;
    EXECUTE pg_catalog.format($f$
    CREATE OR REPLACE FUNCTION rowsec.current_person() RETURNS bigint
    LANGUAGE plpgsql STABLE PARALLEL SAFE %3$s SET search_path = pg_catalog, pg_temp AS $b$
    BEGIN
        RETURN %1$s;
    END
    $b$;
    CREATE OR REPLACE FUNCTION rowsec.current_team() RETURNS text
    LANGUAGE plpgsql STABLE PARALLEL SAFE %3$s SET search_path = pg_catalog, pg_temp AS $b$
    BEGIN
        RETURN %2$s;
    END
    $b$;
    -- The policies' sets.
    CREATE OR REPLACE FUNCTION rowsec.subtree() RETURNS bigint[]
    LANGUAGE plpgsql STABLE PARALLEL SAFE %3$s SET search_path = pg_catalog, pg_temp AS $b$
    BEGIN
        RETURN ARRAY(SELECT c.descendant FROM rowsec.closure c WHERE c.ancestor = %1$s ORDER BY c.descendant);
    END
    $b$;
    CREATE OR REPLACE FUNCTION rowsec.team() RETURNS bigint[]
    LANGUAGE plpgsql STABLE PARALLEL SAFE %3$s SET search_path = pg_catalog, pg_temp AS $b$
    DECLARE
        me bigint;
        my_team text;
    BEGIN
        SELECT %1$s, %2$s INTO me, my_team;
        IF me IS NULL THEN
            RETURN '{}';
        END IF;
        RETURN ARRAY(SELECT x FROM (SELECT me AS x UNION SELECT m.person FROM rowsec.team_members m WHERE m.team = my_team) s
                     ORDER BY x);
    END
    $b$;
    -- The subtree policies' second shape, for people whose subtree holds an eighth of the
    -- directory or more (rowsec.large_subtrees). IMMUTABLE on purpose, and the only function
    -- that says so falsely: the planner evaluates it once per plan, so that a plan made for such
    -- a person probes rowsec.closure per row (or hashes it, for a plan that reads the whole
    -- table) instead of building an array of everyone. Both shapes of the policy admit exactly
    -- the same rows.
    CREATE OR REPLACE FUNCTION rowsec.subtree_is_large_at_plan() RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE %3$s SET search_path = pg_catalog, pg_temp AS $b$
    BEGIN
        RETURN %4$s;
    END
    $b$;
    -- The subtree, or {} for a person with a large one (whom the policy probes instead).
    CREATE OR REPLACE FUNCTION rowsec.subtree_unless_large() RETURNS bigint[]
    LANGUAGE plpgsql STABLE PARALLEL SAFE %3$s SET search_path = pg_catalog, pg_temp AS $b$
    BEGIN
        RETURN ARRAY(SELECT c.descendant FROM rowsec.closure c
                     WHERE c.ancestor = (SELECT m.id FROM (SELECT %1$s) m(id)
                                         WHERE NOT EXISTS (SELECT FROM rowsec.large_subtrees s WHERE s.person = m.id))
                     ORDER BY c.descendant);
    END
    $b$;
    -- The current person if their subtree is large, else NULL.
    CREATE OR REPLACE FUNCTION rowsec.person_if_large() RETURNS bigint
    LANGUAGE plpgsql STABLE PARALLEL SAFE %3$s SET search_path = pg_catalog, pg_temp AS $b$
    BEGIN
        RETURN (SELECT s.person FROM rowsec.large_subtrees s WHERE s.person = %1$s);
    END
    $b$;
    -- The person the session acts as, for the owner's halves (SECURITY DEFINER) that record
    -- who did something: the audit trail's actor of a directory change, attest's caller.
    CREATE OR REPLACE FUNCTION rowsec.invoking_person() RETURNS bigint
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $b$
    BEGIN
        RETURN %5$s;
    END
    $b$;
    REVOKE EXECUTE ON FUNCTION rowsec.invoking_person() FROM PUBLIC;
    $f$, me, my_team, definer, large_at_plan, invoker);
    GRANT EXECUTE ON FUNCTION rowsec.current_person(), rowsec.current_team(), rowsec.subtree(), rowsec.team(),
        rowsec.subtree_is_large_at_plan(), rowsec.subtree_unless_large(), rowsec.person_if_large() TO PUBLIC;
END
$$;

-- rowsec.shares.row_owner follows its row: a row trigger on a table that allows sharing, fired
-- only when an update changes the row's owner or key (its WHEN clause, which sees what BEFORE
-- triggers made of the row; other updates pay only that comparison).
-- SECURITY DEFINER to write rowsec.shares; what it writes comes from the row itself, and it acts
-- only for a registered table (TG_RELID), with the columns of the registry.
CREATE OR REPLACE FUNCTION rowsec.shared_row_moved() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p record;
    old_key bigint;
    new_key bigint;
    new_owner bigint;
BEGIN
    SELECT t.key_column, t.owner_column INTO p FROM rowsec.protected_tables t WHERE t.tbl = TG_RELID;
    IF FOUND THEN
        EXECUTE format('SELECT ($1).%1$I, ($2).%1$I, ($2).%2$I', p.key_column, p.owner_column)
            INTO old_key, new_key, new_owner USING OLD, NEW;
        IF old_key IS DISTINCT FROM new_key THEN
            UPDATE rowsec.shares s SET row_owner = NULL WHERE s.tbl = TG_RELID AND s.row_key = old_key AND s.row_owner IS NOT NULL;
        END IF;
        UPDATE rowsec.shares s SET row_owner = new_owner
        WHERE s.tbl = TG_RELID AND s.row_key = new_key AND s.row_owner IS DISTINCT FROM new_owner;
    END IF;
    RETURN NULL;
END
$$;

-- Rows deleted (one statement trigger, reading the deleted keys from its transition table) or
-- the table truncated: their shares have no owner any more, and list to their parties only.
CREATE OR REPLACE FUNCTION rowsec.shared_rows_gone() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    key_column name;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        UPDATE rowsec.shares s SET row_owner = NULL WHERE s.tbl = TG_RELID AND s.row_owner IS NOT NULL;
        RETURN NULL;
    END IF;
    SELECT t.key_column INTO key_column FROM rowsec.protected_tables t WHERE t.tbl = TG_RELID;
    IF key_column IS NOT NULL AND EXISTS (SELECT FROM rowsec.shares s WHERE s.tbl = TG_RELID AND s.row_owner IS NOT NULL) THEN
        EXECUTE format('UPDATE rowsec.shares s SET row_owner = NULL FROM rowsec_gone g '
                       'WHERE s.tbl = $1 AND s.row_key = g.%I AND s.row_owner IS NOT NULL', key_column)
            USING TG_RELID;
    END IF;
    RETURN NULL;
END
$$;
REVOKE EXECUTE ON FUNCTION rowsec.shared_row_moved(), rowsec.shared_rows_gone() FROM PUBLIC;

-- The triggers of rowsec.shared_row_moved and rowsec.shared_rows_gone on `tbl` (made again with
-- the registry's columns), or none when the table does not allow sharing: then its shares, which
-- grant nothing, list to their parties only.
CREATE OR REPLACE FUNCTION rowsec.follow_shared_rows(tbl regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    p record;
BEGIN
    SELECT t.key_column, t.owner_column, t.sharing INTO p FROM rowsec.protected_tables t WHERE t.tbl = follow_shared_rows.tbl;
    IF coalesce(p.sharing, false) THEN
        EXECUTE format('CREATE OR REPLACE TRIGGER rowsec_shared_row_moved AFTER UPDATE ON %3$s FOR EACH ROW '
                       'WHEN (OLD.%1$I IS DISTINCT FROM NEW.%1$I OR OLD.%2$I IS DISTINCT FROM NEW.%2$I) '
                       'EXECUTE FUNCTION rowsec.shared_row_moved()', p.key_column, p.owner_column, tbl);
        EXECUTE format('CREATE OR REPLACE TRIGGER rowsec_shared_rows_gone AFTER DELETE ON %s REFERENCING OLD TABLE AS rowsec_gone '
                       'FOR EACH STATEMENT EXECUTE FUNCTION rowsec.shared_rows_gone()', tbl);
        EXECUTE format('CREATE OR REPLACE TRIGGER rowsec_shared_rows_truncated AFTER TRUNCATE ON %s '
                       'FOR EACH STATEMENT EXECUTE FUNCTION rowsec.shared_rows_gone()', tbl);
    ELSE
        -- Only those there (DROP TRIGGER IF EXISTS would print a notice for every table).
        FOR p IN SELECT t.tgname FROM pg_catalog.pg_trigger t
                 WHERE t.tgrelid = follow_shared_rows.tbl AND NOT t.tgisinternal
                   AND t.tgname IN ('rowsec_shared_row_moved', 'rowsec_shared_rows_gone', 'rowsec_shared_rows_truncated') LOOP
            EXECUTE format('DROP TRIGGER %I ON %s', p.tgname, tbl);
        END LOOP;
        UPDATE rowsec.shares s SET row_owner = NULL WHERE s.tbl = follow_shared_rows.tbl AND s.row_owner IS NOT NULL;
    END IF;
END
$$;
REVOKE EXECUTE ON FUNCTION rowsec.follow_shared_rows(regclass) FROM PUBLIC;
-- Tables protected by an earlier version, whose blocks this apply may leave alone: their triggers
-- now (their shares made before keep no owner: the applying role cannot read past the tables'
-- forced row-level security to fill it).
PERFORM rowsec.follow_shared_rows(p.tbl) FROM rowsec.protected_tables p
WHERE p.sharing AND EXISTS (SELECT FROM pg_class c WHERE c.oid = p.tbl)
  AND (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = p.tbl AND NOT t.tgisinternal
                     AND t.tgname IN ('rowsec_shared_row_moved', 'rowsec_shared_rows_gone', 'rowsec_shared_rows_truncated')) < 3;

CREATE OR REPLACE FUNCTION rowsec.protect_table(tbl regclass, key_column name, owner_column name, sharing boolean) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    col name;
BEGIN
    FOREACH col IN ARRAY ARRAY[key_column, owner_column] LOOP
        IF (SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped)
           IS DISTINCT FROM 'bigint'::regtype THEN
            RAISE EXCEPTION 'column "%" of % is not a bigint column', col, tbl USING ERRCODE = 'datatype_mismatch',
                HINT = 'rowsec needs bigint key and owner columns.';
        END IF;
    END LOOP;
    INSERT INTO rowsec.protected_tables AS p (tbl, key_column, owner_column, sharing)
        VALUES (tbl, key_column, owner_column, sharing)
        ON CONFLICT ON CONSTRAINT protected_tables_pkey DO UPDATE
        SET key_column = EXCLUDED.key_column, owner_column = EXCLUDED.owner_column, sharing = EXCLUDED.sharing
        WHERE (p.key_column, p.owner_column, p.sharing) IS DISTINCT FROM (EXCLUDED.key_column, EXCLUDED.owner_column, EXCLUDED.sharing);
    PERFORM rowsec.follow_shared_rows(tbl);
END
$$;

CREATE OR REPLACE FUNCTION rowsec.unprotect_table(tbl regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
BEGIN
    DELETE FROM rowsec.protected_tables p WHERE p.tbl = unprotect_table.tbl;
    PERFORM rowsec.follow_shared_rows(tbl);
END
$$;

-- ===== The interface of the policy functions (for people's own SQL; generated policies probe the tables) =====

-- The generated policies read these once per query ((SELECT rowsec.subtree()): an InitPlan),
-- in PL/pgSQL so that the session keeps their plans. rowsec.configure writes them for the
-- spec's identity (as the caller for login, as the owner for a setting); until it runs they
-- fail as rowsec.current_person() does.
BEGIN
    IF to_regprocedure('rowsec.subtree()') IS NULL THEN
        CREATE FUNCTION rowsec.subtree() RETURNS bigint[]
        LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $f$
        BEGIN
            RETURN ARRAY[rowsec.current_person()];
        END
        $f$;
    END IF;
    IF to_regprocedure('rowsec.team()') IS NULL THEN
        CREATE FUNCTION rowsec.team() RETURNS bigint[]
        LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $f$
        BEGIN
            RETURN ARRAY[rowsec.current_person()];
        END
        $f$;
    END IF;
END;
CREATE OR REPLACE FUNCTION rowsec.subtree_of(person bigint) RETURNS bigint[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(array_agg(c.descendant ORDER BY c.descendant), '{}') FROM rowsec.closure c WHERE c.ancestor = person
$$;
CREATE OR REPLACE FUNCTION rowsec.team_of(person bigint) RETURNS bigint[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN NOT EXISTS (SELECT FROM rowsec.people p WHERE p.id = person) THEN '{}'::bigint[]
                ELSE ARRAY(SELECT DISTINCT x FROM (SELECT person AS x UNION
                           SELECT m.person FROM rowsec.team_members m JOIN rowsec.people p ON p.team = m.team
                           WHERE p.id = team_of.person) s ORDER BY x) END
$$;
CREATE OR REPLACE FUNCTION rowsec.in_subtree(owner bigint) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT FROM rowsec.closure c WHERE c.ancestor = rowsec.current_person() AND c.descendant = owner)
$$;
CREATE OR REPLACE FUNCTION rowsec.in_team(owner bigint) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT owner = rowsec.current_person()
        OR EXISTS (SELECT FROM rowsec.team_members m WHERE m.team = rowsec.current_team() AND m.person = owner)
$$;
CREATE OR REPLACE FUNCTION rowsec.shared_keys(tbl regclass, access text) RETURNS bigint[]
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    me bigint := rowsec.current_person();
    my_team text;
BEGIN
    IF me IS NULL THEN
        RETURN '{}';
    END IF;
    my_team := rowsec.current_team();
    -- rowsec.shares as the caller: its row-level security also hides every share while
    -- rowsec_sql_backend.ignore_shares is on.
    RETURN ARRAY(SELECT DISTINCT s.row_key FROM rowsec.shares s
                 WHERE s.tbl = shared_keys.tbl AND (shared_keys.access = 'read' OR s.access = 'write')
                   AND (s.grantee_person = me OR s.grantee_team = my_team)
                   AND (s.expires_at IS NULL OR s.expires_at > now())
                 ORDER BY 1);
END
$$;
CREATE OR REPLACE FUNCTION rowsec.is_shared(tbl regclass, key bigint, access text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT FROM rowsec.shares s
                   WHERE s.tbl = is_shared.tbl AND s.row_key = key AND (is_shared.access = 'read' OR s.access = 'write')
                     AND (s.grantee_person = rowsec.current_person() OR s.grantee_team = rowsec.current_team())
                     AND (s.expires_at IS NULL OR s.expires_at > now()))
$$;
-- UPDATE's WITH CHECK for a write share: the row keeps the owner it had (as the statement's
-- snapshot sees it: a STABLE function reads with the caller's snapshot), read as the caller.
CREATE OR REPLACE FUNCTION rowsec.shared_write_keeps_owner(tbl regclass, key bigint, new_owner bigint) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT rowsec.is_shared(tbl, key, 'write') THEN
        RETURN false;
    END IF;
    RETURN new_owner IS NOT NULL AND rowsec.visible_owner(tbl, key) IS NOT DISTINCT FROM new_owner;
END
$$;

-- ===== Sharing =====

-- The owner's half of rowsec.share: only on the caller's proof (rowsec.update_proofs), which
-- also says whether the right is their own or comes only from a share (core/src/shares.rs:
-- choose_parent and derive say the same rules).
CREATE OR REPLACE FUNCTION rowsec.record_share(tbl regclass, key bigint, to_person bigint, to_team text, access text,
                                               expires_at timestamptz, reason text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    proof record;
    parent rowsec.shares;
    expires timestamptz := expires_at;
    capped boolean := false;
    id bigint;
BEGIN
    DELETE FROM rowsec.update_proofs p
    WHERE p.tbl = tbl AND p.row_key = key AND p.xid = txid_current()
    RETURNING p.person, p.own, p.row_owner INTO proof;
    -- The proof's person is who the session acts as: a role with BYPASSRLS, which the proof's
    -- policy does not bind, cannot write one for somebody else.
    IF proof.person IS NULL OR proof.person IS DISTINCT FROM rowsec.invoking_person() THEN
        RAISE EXCEPTION 'permission denied to share row % of %', key, tbl USING ERRCODE = 'insufficient_privilege',
            HINT = 'Call rowsec.share: it checks that you may update the row.';
    END IF;
    IF to_person IS NOT NULL AND NOT EXISTS (SELECT FROM rowsec.people p WHERE p.id = to_person) THEN
        RAISE EXCEPTION 'person % is not in the directory', to_person USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'A share goes to a person of the directory, by id.',
            HINT = 'Check the id, or share to a team with to_team.';
    END IF;
    IF to_person IS NOT NULL AND NOT EXISTS (SELECT FROM rowsec.people p WHERE p.id = to_person AND p.active) THEN
        RAISE EXCEPTION 'person % is inactive', to_person USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'A share to an inactive person would start granting the day they are reactivated.',
            HINT = 'Share to an active person, or to a team.';
    END IF;
    IF to_team IS NOT NULL AND NOT EXISTS (SELECT FROM rowsec.people p WHERE p.team = to_team) THEN
        RAISE EXCEPTION 'no person of the directory has the team "%"', to_team USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'Teams are compared as text, exactly, with the directory''s team column.',
            HINT = 'Share to a team someone of the directory has.';
    END IF;
    IF NOT proof.own THEN
        -- The parent: the caller's unexpired write share of the row lasting longest (no expiry
        -- first, then the latest expiry, then the lowest id).
        SELECT s.* INTO parent FROM rowsec.shares s
        WHERE s.tbl = tbl AND s.row_key = key AND s.access = 'write'
          AND (s.grantee_person = proof.person
               OR s.grantee_team = (SELECT p.team FROM rowsec.people p WHERE p.id = proof.person))
          AND (s.expires_at IS NULL OR s.expires_at > now())
        ORDER BY s.expires_at IS NULL DESC, s.expires_at DESC, s.id
        LIMIT 1;
        IF parent.id IS NULL THEN
            RAISE EXCEPTION 'permission denied to share row % of %', key, tbl USING ERRCODE = 'insufficient_privilege',
                DETAIL = format('Person %s may update the row only through a share, and rowsec found no unexpired write share of it to them or their team.', proof.person),
                HINT = 'Ask the row''s owner or their manager to share it.';
        END IF;
        IF parent.expires_at IS NOT NULL AND (expires_at IS NULL OR expires_at > parent.expires_at) THEN
            expires := parent.expires_at;
            capped := true;
        END IF;
    END IF;
    INSERT INTO rowsec.shares (tbl, row_key, grantee_person, grantee_team, access, expires_at, granted_by, reason,
                               derived_from, expiry_capped, row_owner)
        VALUES (tbl, key, to_person, to_team, access, expires, proof.person, reason, parent.id, capped, proof.row_owner)
        RETURNING shares.id INTO id;
    INSERT INTO rowsec.audit_log (actor, kind, object, detail)
        VALUES (proof.person, 'share', tbl::text, jsonb_build_object('share_id', id, 'key', key, 'grantee_person', to_person,
                'grantee_team', to_team, 'access', access, 'expires_at', expires, 'role', rowsec.invoking_role()::text,
                'reason', reason, 'derived_from', parent.id, 'expiry_capped', capped, 'requested_expires_at', expires_at));
    IF capped THEN
        RAISE NOTICE 'share % expires at %, when share % it derives from expires', id, expires, parent.id
            USING DETAIL = format('You may update row %s of %s only through share %s; a share made from it cannot outlast it (you asked for %s).',
                                  key, tbl, parent.id, coalesce(expires_at::text, 'no expiry')),
                  HINT = 'rowsec.my_shares lists the share and its derived_from; unsharing the parent ends this share too.';
    END IF;
    RETURN id;
END
$$;
-- Anyone may call it: it acts only on the caller's own proof, which row-level security admitted.
GRANT EXECUTE ON FUNCTION rowsec.record_share(regclass, bigint, bigint, text, text, timestamptz, text) TO PUBLIC;

-- Run as the caller: checks the arguments and the caller's right to update the row, leaves the
-- proof, then has the owner's half write the share and its audit row.
CREATE OR REPLACE FUNCTION rowsec.share(tbl regclass, key bigint, to_person bigint DEFAULT NULL, to_team text DEFAULT NULL,
                                        access text DEFAULT 'read', expires_at timestamptz DEFAULT NULL,
                                        reason text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    me bigint := rowsec.current_person();
    own boolean;
BEGIN
    IF (to_person IS NULL) = (to_team IS NULL) THEN
        RAISE EXCEPTION 'a share goes to one person or one team' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('rowsec.share was called with to_person => %s, to_team => %s.',
                            coalesce(to_person::text, 'NULL'), coalesce(quote_literal(to_team), 'NULL'));
    END IF;
    IF access IS NULL OR access NOT IN ('read', 'write') THEN
        RAISE EXCEPTION 'invalid share access "%"', access USING ERRCODE = 'invalid_parameter_value',
            HINT = 'access is ''read'' or ''write''.';
    END IF;
    IF expires_at IS NOT NULL AND expires_at <= now() THEN
        RAISE EXCEPTION 'a share''s expiry must be in the future' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT FROM rowsec.protected_tables p WHERE p.tbl = tbl AND p.sharing) THEN
        RAISE EXCEPTION 'table % does not allow sharing', tbl USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Set sharing: true for the table in the spec and apply it.';
    END IF;
    IF me IS NULL OR NOT rowsec.may_update(tbl, key) THEN
        RAISE EXCEPTION 'permission denied to share row % of %', key, tbl USING ERRCODE = 'insufficient_privilege',
            DETAIL = 'Only a person who may update a row may share it.',
            HINT = 'Ask the row''s owner or their manager.';
    END IF;
    own := rowsec.may_update_own(tbl, key);
    INSERT INTO rowsec.update_proofs (tbl, row_key, person, own, row_owner)
        VALUES (tbl, key, me, own, rowsec.visible_owner(tbl, key));
    RETURN rowsec.record_share(tbl, key, to_person, to_team, access, expires_at, reason);
END
$$;

-- Which row a share is of (the id names it to whoever asks, as the extension's errors do).
CREATE OR REPLACE FUNCTION rowsec.share_row(share_id bigint, OUT tbl regclass, OUT row_key bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.tbl, s.row_key FROM rowsec.shares s WHERE s.id = share_id
$$;

-- Removes shares `ids` and every share derived from them, transitively, recording each (the
-- named ones with `why`, the derived ones with why they went): one DELETE, so the foreign key
-- from a derived share to its parent holds at the statement's end.
CREATE OR REPLACE FUNCTION rowsec.remove_shares(ids bigint[], removed_by bigint, why text, derived_reason boolean) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    WITH RECURSIVE tree(id, root, depth) AS (
        SELECT s.id, s.id, 0 FROM rowsec.shares s WHERE s.id = ANY (ids)
        UNION
        SELECT s.id, t.root, t.depth + 1 FROM rowsec.shares s JOIN tree t ON s.derived_from = t.id
    ), logged AS (
        INSERT INTO rowsec.audit_log (actor, kind, object, detail)
        SELECT removed_by, 'unshare', s.tbl::text,
               jsonb_build_object('share_id', s.id, 'key', s.row_key, 'grantee_person', s.grantee_person,
                                  'grantee_team', s.grantee_team, 'access', s.access, 'expires_at', s.expires_at,
                                  'role', rowsec.invoking_role()::text, 'derived_from', s.derived_from, 'expiry_capped', s.expiry_capped,
                                  'reason', CASE WHEN t.depth > 0 AND derived_reason
                                                 THEN format('derived from share %s, which was removed', s.derived_from)
                                                 ELSE why END)
        FROM (SELECT DISTINCT ON (id) id, depth FROM tree ORDER BY id, depth) t JOIN rowsec.shares s ON s.id = t.id
        ORDER BY t.depth, s.id
        RETURNING 1
    )
    SELECT count(*) INTO n FROM logged;
    WITH RECURSIVE tree(id) AS (
        SELECT s.id FROM rowsec.shares s WHERE s.id = ANY (ids)
        UNION
        SELECT s.id FROM rowsec.shares s JOIN tree t ON s.derived_from = t.id
    )
    DELETE FROM rowsec.shares s USING tree t WHERE s.id = t.id;
    RETURN n;
END
$$;
REVOKE EXECUTE ON FUNCTION rowsec.remove_shares(bigint[], bigint, text, boolean) FROM PUBLIC;

CREATE OR REPLACE FUNCTION rowsec.record_unshare(share_id bigint, reason text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    s rowsec.shares;
    me bigint;
BEGIN
    SELECT * INTO s FROM rowsec.shares x WHERE x.id = share_id FOR UPDATE;
    DELETE FROM rowsec.update_proofs p
    WHERE p.tbl = s.tbl AND p.row_key = s.row_key AND p.xid = txid_current()
    RETURNING p.person INTO me;
    IF me IS NULL OR me IS DISTINCT FROM rowsec.invoking_person() THEN
        RAISE EXCEPTION 'permission denied to unshare share %', share_id USING ERRCODE = 'insufficient_privilege',
            HINT = 'Call rowsec.unshare: it checks that you may update the row.';
    END IF;
    PERFORM rowsec.remove_shares(ARRAY[share_id], me, reason, true);
END
$$;
GRANT EXECUTE ON FUNCTION rowsec.record_unshare(bigint, text) TO PUBLIC;

CREATE OR REPLACE FUNCTION rowsec.unshare(share_id bigint, reason text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    r record;
    me bigint := rowsec.current_person();
BEGIN
    SELECT * INTO r FROM rowsec.share_row(share_id);
    IF r.tbl IS NULL THEN
        RAISE EXCEPTION 'share % does not exist', share_id USING ERRCODE = 'invalid_parameter_value',
            HINT = 'SELECT * FROM rowsec.my_shares lists the shares you may see.';
    END IF;
    IF me IS NULL OR NOT rowsec.may_update(r.tbl, r.row_key) THEN
        RAISE EXCEPTION 'permission denied to unshare share %', share_id USING ERRCODE = 'insufficient_privilege',
            DETAIL = 'Only a person who may update the shared row may unshare it.';
    END IF;
    INSERT INTO rowsec.update_proofs (tbl, row_key, person, own) VALUES (r.tbl, r.row_key, me, rowsec.may_update_own(r.tbl, r.row_key));
    PERFORM rowsec.record_unshare(share_id, reason);
END
$$;

-- Expired shares (a maintenance job: owner only).
CREATE OR REPLACE FUNCTION rowsec.cleanup_expired_shares() RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    -- Derived shares of an expired one have expired with it (their expiry is capped at it).
    n := rowsec.remove_shares(ARRAY(SELECT s.id FROM rowsec.shares s WHERE s.expires_at <= now()), NULL, 'expired', false);
    DELETE FROM rowsec.update_proofs p WHERE p.xid < txid_current();
    DELETE FROM rowsec.decision_proofs p WHERE p.xid < txid_current();
    RETURN n;
END
$$;
REVOKE EXECUTE ON FUNCTION rowsec.cleanup_expired_shares() FROM PUBLIC;

-- The shares the caller may know about, as the extension's rowsec.my_shares() lists them
-- (rowsec_core::shares::Viewer): those they made, those to them or their team, and those of
-- rows owned by them or by someone in their subtree (rowsec.shares.row_owner). Share metadata
-- only. As the owner: rowsec.shares' own row-level security shows a person only the first two.
CREATE OR REPLACE FUNCTION rowsec.my_shares() RETURNS TABLE (share_id bigint, tbl regclass, row_key bigint,
    grantee_person bigint, grantee_team text, access text, expires_at timestamptz, granted_by bigint,
    granted_at timestamptz, reason text, derived_from bigint, expiry_capped boolean, seen_as text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    -- PL/pgSQL: rowsec.invoking_person() is written by rowsec.configure, after this.
    RETURN QUERY
    WITH me AS (SELECT p.id, p.team FROM rowsec.people p WHERE p.id = rowsec.invoking_person())
    SELECT s.id, s.tbl, s.row_key, s.grantee_person, s.grantee_team, s.access, s.expires_at, s.granted_by,
           s.granted_at, s.reason, s.derived_from, s.expiry_capped,
           CASE WHEN s.granted_by = me.id THEN 'granter'
                WHEN s.grantee_person = me.id OR s.grantee_team = me.team THEN 'grantee'
                WHEN s.row_owner = me.id THEN 'owner'
                ELSE 'manager' END
    FROM rowsec.shares s CROSS JOIN me
    WHERE s.granted_by = me.id OR s.grantee_person = me.id OR s.grantee_team = me.team
       OR s.row_owner IN (SELECT c.descendant FROM rowsec.closure c WHERE c.ancestor = me.id)
    ORDER BY s.id;
END
$$;
GRANT EXECUTE ON FUNCTION rowsec.my_shares() TO PUBLIC;
-- An earlier version's view read rowsec.shares as the caller.
IF coalesce(pg_catalog.pg_get_viewdef(to_regclass('rowsec.my_shares')), '') NOT LIKE '%my_shares()%' THEN
    CREATE OR REPLACE VIEW rowsec.my_shares AS SELECT * FROM rowsec.my_shares();
END IF;
GRANT SELECT ON rowsec.my_shares TO PUBLIC;

-- ===== Audit, requests, limits, monitoring: what the SQL backend does and refuses =====

-- A manager's decision to keep (or not) the access of a person in their subtree, other than
-- themselves (SPEC item 17, kind `attest`, with the spec roles the person's login holds now).
-- The owner's half only: the caller is rowsec.invoking_person(), never an argument.
CREATE OR REPLACE FUNCTION rowsec.attest(person bigint, keep boolean, note text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    manager bigint;
    login text;
    id bigint;
BEGIN
    PERFORM rowsec.require_arguments(ARRAY['person', 'keep'], ARRAY[person IS NULL, keep IS NULL]);
    manager := rowsec.require_person(rowsec.invoking_person(), 'attest access', rowsec.invoking_role());
    IF person = manager OR NOT EXISTS (SELECT FROM rowsec.closure c WHERE c.ancestor = manager AND c.descendant = person) THEN
        RAISE EXCEPTION 'permission denied to attest person %', person USING ERRCODE = 'insufficient_privilege',
            DETAIL = format('Person %s is not in person %s''s subtree, or is person %s: nobody attests their own access.',
                            person, manager, manager),
            HINT = 'A manager attests the people who report to them, directly or not.';
    END IF;
    SELECT p.login INTO login FROM rowsec.people p WHERE p.id = person;
    INSERT INTO rowsec.audit_log (actor, kind, object, detail)
    SELECT manager, 'attest', c.directory::text,
           jsonb_build_object('person', person, 'keep', keep, 'note', note, 'login', login, 'roles', to_jsonb(ARRAY(
               SELECT r.rolname::text FROM pg_roles r, pg_roles l
               WHERE l.rolname = login AND r.oid <> l.oid AND pg_has_role(l.oid, r.oid, 'MEMBER')
                 AND starts_with(shobj_description(r.oid, 'pg_authid'), 'rowsec: group role of spec role ')
               ORDER BY 1)))
    FROM rowsec.config c
    RETURNING audit_log.id INTO id;
    RETURN id;
END
$$;
GRANT EXECUTE ON FUNCTION rowsec.attest(bigint, boolean, text) TO PUBLIC;

CREATE OR REPLACE FUNCTION rowsec.set_audit_readers(readers name[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r name;
BEGIN
    FOREACH r IN ARRAY coalesce(readers, '{}') LOOP
        IF to_regrole(quote_ident(r)) IS NULL THEN
            RAISE EXCEPTION 'role "%" does not exist', r USING ERRCODE = 'undefined_object';
        END IF;
    END LOOP;
    DELETE FROM rowsec.audit_readers WHERE role <> ALL (coalesce(readers, '{}'));
    INSERT INTO rowsec.audit_readers (role) SELECT DISTINCT unnest(readers) ON CONFLICT DO NOTHING;
END
$$;

-- What needs the extension (executor hooks, shared memory, a background writer) or is not
-- built on this backend yet is refused when asked for, never silently dropped.
CREATE OR REPLACE FUNCTION rowsec.sql_backend_refuses(what text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION '% is not available on the SQL backend', what
        USING ERRCODE = 'feature_not_supported',
              HINT = 'Install the rowsec extension, or compile with --backend sql --accept-unenforced to leave it out knowingly (docs/diagnostics.md, E1701).';
END
$$;
-- Tables under `audit.data` (rowsec.audit_table), with the key and the classed columns.
CREATE TABLE IF NOT EXISTS rowsec.audited_tables (
    tbl        regclass PRIMARY KEY,
    key_column name NOT NULL,
    redacted   name[] NOT NULL DEFAULT '{}'
);
REVOKE ALL ON rowsec.audited_tables FROM PUBLIC;

-- The trigger of a table under audit.data (AFTER INSERT, UPDATE, DELETE FOR EACH STATEMENT with
-- transition tables, and AFTER TRUNCATE): one `data` row per changed row, as the extension
-- writes them, all by one INSERT. Arguments: the key column, then the classed columns, whose
-- values are recorded as "redacted". Values are the columns' text (their types' output), a
-- column listed when its text changed (an insert: those set; a delete: those that were set).
-- An UPDATE's old and new transition tables hold the rows in the same order (PostgreSQL
-- appends each pair together): they are paired by position, as the extension reads them.
CREATE OR REPLACE FUNCTION rowsec.audit_data() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    key_column text := TG_ARGV[0];
    redacted text[] := TG_ARGV[1:];
    names text[];
    row_text text;
    none text := 'SELECT NULL::bigint AS n, NULL::jsonb AS r WHERE false';
BEGIN
    IF TG_LEVEL <> 'STATEMENT' OR TG_WHEN <> 'AFTER' OR key_column IS NULL THEN
        RAISE EXCEPTION 'rowsec.audit_data() must be fired AFTER INSERT, UPDATE, DELETE or TRUNCATE FOR EACH STATEMENT with its transition tables'
            USING ERRCODE = 'trigger_protocol_violated',
                  HINT = 'Let rowsec install the triggers (rowsec.audit_table, called by the script generated by `rowsec compile`).';
    END IF;
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO rowsec.audit_log (actor, kind, object, detail)
            VALUES (rowsec.invoking_person(), 'data', TG_RELID::regclass::text, '{"op": "truncate", "key": null, "columns": {}}');
        RETURN NULL;
    END IF;
    SELECT array_agg(a.attname::text ORDER BY a.attnum),
           'jsonb_object(ARRAY[' || string_agg(quote_literal(a.attname), ', ' ORDER BY a.attnum) || ']::text[], ARRAY['
           || string_agg(rowsec.text_of_column('d', a.attname), ', ' ORDER BY a.attnum) || ']::text[])'
      INTO names, row_text
    FROM pg_attribute a WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped;
    EXECUTE format(
        $q$INSERT INTO rowsec.audit_log (actor, kind, object, detail)
           SELECT $1, 'data', $2, jsonb_build_object('op', $3, 'key', k.key, 'columns', c.columns)
           FROM (%1$s) o FULL JOIN (%2$s) n ON n.n = o.n
           -- The key as a number when its text is one that fits bigint (else null, as the extension).
           CROSS JOIN LATERAL (SELECT (coalesce(n.r, o.r)) ->> $4 AS t) kt
           CROSS JOIN LATERAL (SELECT CASE WHEN kt.t ~ '^-?[0-9]{1,19}$' THEN
                                   CASE WHEN kt.t::numeric BETWEEN -9223372036854775808 AND 9223372036854775807 THEN kt.t::bigint END
                               END AS key) k
           CROSS JOIN LATERAL (
               SELECT coalesce(jsonb_object_agg(k, CASE WHEN k = ANY ($5) THEN '{"old": "redacted", "new": "redacted"}'::jsonb
                                                       ELSE jsonb_build_object('old', o.r -> k, 'new', n.r -> k) END), '{}') AS columns
               FROM unnest($6::text[]) k
               WHERE coalesce(o.r -> k, 'null') <> coalesce(n.r -> k, 'null')) c
           ORDER BY coalesce(n.n, o.n)$q$,
        CASE WHEN TG_OP = 'INSERT' THEN none ELSE format('SELECT row_number() OVER () AS n, %s AS r FROM rowsec_old d', row_text) END,
        CASE WHEN TG_OP = 'DELETE' THEN none ELSE format('SELECT row_number() OVER () AS n, %s AS r FROM rowsec_new d', row_text) END)
    USING rowsec.invoking_person(), TG_RELID::regclass::text, lower(TG_OP), key_column, redacted, names;
    RETURN NULL;
END
$$;
REVOKE EXECUTE ON FUNCTION rowsec.audit_data() FROM PUBLIC;

-- Records every row change of `tbl` (`audit.data`) through the triggers rowsec_audit_insert,
-- _update, _delete and _truncate; the `redacted` (classed) columns' values are recorded as "redacted".
CREATE OR REPLACE FUNCTION rowsec.audit_table(tbl regclass, key_column name, redacted name[] DEFAULT '{}') RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    c name;
    args text;
    columns name[] := array_prepend(audit_table.key_column, coalesce(audit_table.redacted, '{}'));
BEGIN
    FOREACH c IN ARRAY columns LOOP
        IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = audit_table.tbl AND attname = c AND attnum > 0 AND NOT attisdropped) THEN
            RAISE EXCEPTION 'column "%" of % does not exist', c, audit_table.tbl
                USING ERRCODE = 'undefined_column',
                      DETAIL = 'rowsec.audit_table names the key column and the classed columns of an audited table.',
                      HINT = 'Run the script generated by `rowsec compile` for a spec that matches the schema.';
        END IF;
    END LOOP;
    args := (SELECT string_agg(quote_literal(a), ', ') FROM unnest(columns) a);
    -- Already so (a script re-run): no DDL, so no SHARE ROW EXCLUSIVE lock that would stop the
    -- table's writers until the script commits.
    IF EXISTS (SELECT FROM rowsec.audited_tables a WHERE a.tbl = audit_table.tbl
                 AND a.key_column = audit_table.key_column AND a.redacted = coalesce(audit_table.redacted, '{}'))
       AND (SELECT count(*) FROM pg_trigger t
            WHERE t.tgrelid = audit_table.tbl AND t.tgenabled = 'O'
              AND pg_get_triggerdef(t.oid) = ANY (ARRAY[
                  format('CREATE TRIGGER rowsec_audit_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS rowsec_new '
                         'FOR EACH STATEMENT EXECUTE FUNCTION rowsec.audit_data(%s)', audit_table.tbl, args),
                  format('CREATE TRIGGER rowsec_audit_update AFTER UPDATE ON %s REFERENCING OLD TABLE AS rowsec_old NEW TABLE AS rowsec_new '
                         'FOR EACH STATEMENT EXECUTE FUNCTION rowsec.audit_data(%s)', audit_table.tbl, args),
                  format('CREATE TRIGGER rowsec_audit_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS rowsec_old '
                         'FOR EACH STATEMENT EXECUTE FUNCTION rowsec.audit_data(%s)', audit_table.tbl, args),
                  format('CREATE TRIGGER rowsec_audit_truncate AFTER TRUNCATE ON %s '
                         'FOR EACH STATEMENT EXECUTE FUNCTION rowsec.audit_data(%s)', audit_table.tbl, args)])) = 4 THEN
        RETURN;
    END IF;
    EXECUTE format('CREATE OR REPLACE TRIGGER rowsec_audit_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS rowsec_new '
                   'FOR EACH STATEMENT EXECUTE FUNCTION rowsec.audit_data(%s)', audit_table.tbl, args);
    EXECUTE format('CREATE OR REPLACE TRIGGER rowsec_audit_update AFTER UPDATE ON %s REFERENCING OLD TABLE AS rowsec_old NEW TABLE AS rowsec_new '
                   'FOR EACH STATEMENT EXECUTE FUNCTION rowsec.audit_data(%s)', audit_table.tbl, args);
    EXECUTE format('CREATE OR REPLACE TRIGGER rowsec_audit_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS rowsec_old '
                   'FOR EACH STATEMENT EXECUTE FUNCTION rowsec.audit_data(%s)', audit_table.tbl, args);
    EXECUTE format('CREATE OR REPLACE TRIGGER rowsec_audit_truncate AFTER TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION rowsec.audit_data(%s)', audit_table.tbl, args);
    INSERT INTO rowsec.audited_tables AS a (tbl, key_column, redacted)
        VALUES (audit_table.tbl, audit_table.key_column, coalesce(audit_table.redacted, '{}'))
        ON CONFLICT (tbl) DO UPDATE SET key_column = EXCLUDED.key_column, redacted = EXCLUDED.redacted;
END
$$;

-- Stops recording the row changes of every audited table not in `tables` (tables that left
-- `audit.data`): drops their triggers. Returns how many.
CREATE OR REPLACE FUNCTION rowsec.audit_only(tables regclass[]) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t regclass;
    n bigint := 0;
BEGIN
    FOR t IN SELECT a.tbl FROM rowsec.audited_tables a WHERE a.tbl <> ALL (coalesce(audit_only.tables, '{}')) LOOP
        RAISE NOTICE 'rowsec: % left audit.data: its row changes are no longer recorded', t;
        EXECUTE format('DROP TRIGGER IF EXISTS rowsec_audit_insert ON %1$s; DROP TRIGGER IF EXISTS rowsec_audit_update ON %1$s; '
                       'DROP TRIGGER IF EXISTS rowsec_audit_delete ON %1$s; DROP TRIGGER IF EXISTS rowsec_audit_truncate ON %1$s', t);
        DELETE FROM rowsec.audited_tables a WHERE a.tbl = t;
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
-- ===== Access requests (SPEC item 16) =====

-- `requests:` of the spec (rowsec.configure_requests); no row: requests are not enabled.
CREATE TABLE IF NOT EXISTS rowsec.request_settings (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    max_days  integer NOT NULL CHECK (max_days > 0)
);
CREATE TABLE IF NOT EXISTS rowsec.requests (
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
IF to_regclass('rowsec.requests_by_requester') IS NULL THEN CREATE INDEX requests_by_requester ON rowsec.requests (requester); END IF;
IF to_regclass('rowsec.requests_pending') IS NULL THEN
    CREATE INDEX requests_pending ON rowsec.requests (tbl, row_key) WHERE status = 'pending';
END IF;
-- Proof that the caller may decide a request, written as the caller (as rowsec.update_proofs
-- for shares): its policy runs the checks with the caller's own rights; rowsec.record_decision
-- acts only on it.
CREATE UNLOGGED TABLE IF NOT EXISTS rowsec.decision_proofs (
    request bigint NOT NULL,
    person  bigint NOT NULL,
    xid     bigint NOT NULL DEFAULT pg_catalog.txid_current()
);
REVOKE ALL ON rowsec.request_settings, rowsec.requests, rowsec.decision_proofs FROM PUBLIC;
-- A request is readable by its requester, and by whoever may decide it (its row in their reach).
GRANT SELECT ON rowsec.requests TO PUBLIC;
GRANT INSERT (request, person) ON rowsec.decision_proofs TO PUBLIC;
IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'rowsec.requests'::regclass) THEN ALTER TABLE rowsec.requests ENABLE ROW LEVEL SECURITY; END IF;
IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'rowsec.decision_proofs'::regclass) THEN ALTER TABLE rowsec.decision_proofs ENABLE ROW LEVEL SECURITY; END IF;

-- Sets requests.max_days (NULL: the spec has no `requests:`, requests are refused).
CREATE OR REPLACE FUNCTION rowsec.configure_requests(max_days integer) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
BEGIN
    IF max_days IS NULL THEN
        DELETE FROM rowsec.request_settings;
    ELSIF max_days <= 0 THEN
        RAISE EXCEPTION 'max_days must be a positive number of days, not %', max_days USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'rowsec.configure_requests stores requests.max_days of the spec.',
            HINT = 'Pass a positive integer, or NULL when the spec has no requests: key.';
    ELSE
        INSERT INTO rowsec.request_settings AS s (singleton, max_days) VALUES (true, max_days)
            ON CONFLICT (singleton) DO UPDATE SET max_days = EXCLUDED.max_days WHERE s.max_days <> EXCLUDED.max_days;
    END IF;
END
$$;

-- ISO 8601 in UTC, microseconds: how the trail writes times (as the extension's).
CREATE OR REPLACE FUNCTION rowsec.iso_utc(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- Records a pending request by the current person for access to row `key` of `relation` until
-- `until`; returns its id. The key is not looked up: a request reveals nothing of the rows.
CREATE OR REPLACE FUNCTION rowsec.request_access(relation regclass, key bigint, access text, until timestamptz,
                                                 reason text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    requester bigint;
    days integer;
    id bigint;
BEGIN
    PERFORM rowsec.require_arguments(ARRAY['relation', 'key', 'access', 'until'],
                                     ARRAY[relation IS NULL, key IS NULL, access IS NULL, until IS NULL]);
    requester := rowsec.require_person(rowsec.invoking_person(), 'request access', rowsec.invoking_role());
    SELECT s.max_days INTO days FROM rowsec.request_settings s;
    IF days IS NULL THEN
        RAISE EXCEPTION 'access requests are not enabled' USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = 'The applied spec has no `requests:` key.',
            HINT = 'Add `requests: { max_days: N }` to the spec and run the script generated by `rowsec compile`.';
    END IF;
    IF NOT EXISTS (SELECT FROM rowsec.protected_tables p WHERE p.tbl = relation AND p.sharing) THEN
        RAISE EXCEPTION '% does not allow sharing', relation USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'A request asks for a share of a row, and the table is not registered in rowsec.protected_tables with sharing = true.',
            HINT = 'Request access to a table whose spec has `sharing: true`.';
    END IF;
    IF access NOT IN ('read', 'write') THEN
        RAISE EXCEPTION 'invalid share access "%"', access USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'access must be ''read'' or ''write''.',
            HINT = 'Use ''read'' (read or write shares) or ''write'' (write shares only).';
    END IF;
    IF until <= now() THEN
        RAISE EXCEPTION 'until is not in the future' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'A request asks for access until a time after now().', HINT = 'Pass e.g. now() + interval ''3 days''.';
    END IF;
    IF until - now() > make_interval(days => days) THEN
        RAISE EXCEPTION 'until is more than % days ahead', days USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('requests.max_days of the spec is %s: an approver may give access for at most %s days.', days, days),
            HINT = format('Ask for an until at most now() + interval ''%s days''.', days);
    END IF;
    INSERT INTO rowsec.requests (tbl, row_key, requester, access, until, reason)
        VALUES (relation, key, requester, access, until, reason) RETURNING requests.id INTO id;
    INSERT INTO rowsec.audit_log (actor, kind, object, detail)
        VALUES (requester, 'request', relation::text, jsonb_build_object('request', id, 'key', key, 'access', access,
                                                                      'until', rowsec.iso_utc(until), 'reason', reason));
    RETURN id;
END
$$;
GRANT EXECUTE ON FUNCTION rowsec.request_access(regclass, bigint, text, timestamptz, text) TO PUBLIC;

-- Whether row `key` of `tbl` is in the caller's reach for deciding requests: their role may
-- update the table (or a column of it), and the row, as their own row-level security shows
-- it, has an owner in their subtree. Run as the caller. rowsec.decide makes the final check
-- (the role's own update scope over that row) and may still refuse a request this admits.
CREATE OR REPLACE FUNCTION rowsec.request_in_reach(tbl regclass, key bigint) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    key_column name;
    owner_column name;
    owner bigint;
BEGIN
    SELECT p.key_column, p.owner_column INTO key_column, owner_column FROM rowsec.protected_tables p WHERE p.tbl = request_in_reach.tbl;
    -- A dropped table's regclass prints as a number, which no query could name.
    IF key_column IS NULL OR NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = tbl) OR NOT (has_table_privilege(tbl, 'UPDATE') OR has_any_column_privilege(tbl, 'UPDATE')) THEN
        RETURN false;
    END IF;
    EXECUTE format('SELECT %I FROM %s WHERE %I OPERATOR(pg_catalog.=) $1', owner_column, tbl, key_column) INTO owner USING key;
    RETURN owner IS NOT NULL
       AND EXISTS (SELECT FROM rowsec.closure c WHERE c.ancestor = rowsec.current_person() AND c.descendant = owner);
EXCEPTION WHEN insufficient_privilege OR undefined_table THEN
    RETURN false;
END
$$;

-- Whether the caller may decide request `request`: it is in their reach and their own role (not
-- a share) lets them update its row. Run as the caller (the proof's policy calls it).
CREATE OR REPLACE FUNCTION rowsec.may_decide(request bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t regclass;
    k bigint;
BEGIN
    SELECT q.tbl, q.row_key INTO t, k FROM rowsec.requests q WHERE q.id = request;
    RETURN t IS NOT NULL AND rowsec.request_in_reach(t, k) AND rowsec.may_update_own(t, k);
END
$$;

-- The owner's half of rowsec.decide: only on the caller's proof (rowsec.decision_proofs).
CREATE OR REPLACE FUNCTION rowsec.record_decision(request bigint, approve boolean, note text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    decider bigint;
    q rowsec.requests;
    share bigint;
BEGIN
    DELETE FROM rowsec.decision_proofs p WHERE p.request = request AND p.xid = txid_current() RETURNING p.person INTO decider;
    IF decider IS NULL OR decider IS DISTINCT FROM rowsec.invoking_person() THEN
        RAISE EXCEPTION 'permission denied to decide request %', request USING ERRCODE = 'insufficient_privilege',
            HINT = 'Call rowsec.decide: it checks that you may decide the request.';
    END IF;
    SELECT * INTO q FROM rowsec.requests r WHERE r.id = request FOR UPDATE;
    IF q.requester = decider THEN
        RAISE EXCEPTION 'permission denied to decide request %', request USING ERRCODE = 'insufficient_privilege',
            DETAIL = format('Request %s is person %s''s own: someone else decides it.', request, decider),
            HINT = 'A request is decided by someone who may update the row and whose subtree holds its owner; SELECT * FROM rowsec.requests_to_decide lists yours.';
    END IF;
    IF q.status <> 'pending' THEN
        RAISE EXCEPTION 'request % was already decided', request USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('Its status is %s.', q.status),
            HINT = 'SELECT * FROM rowsec.requests_to_decide lists the pending requests you may decide.';
    END IF;
    IF approve THEN
        -- The table may have stopped allowing sharing since the request was made: a share made
        -- now would grant nothing, and would start granting if sharing came back.
        IF NOT EXISTS (SELECT FROM rowsec.protected_tables p WHERE p.tbl = q.tbl AND p.sharing) THEN
            RAISE EXCEPTION '% does not allow sharing', q.tbl USING ERRCODE = 'invalid_parameter_value',
                DETAIL = 'Sharing was turned off for the table after the request was made.',
                HINT = 'Reject the request; the requester may ask again once the table allows sharing.';
        END IF;
        IF q.until <= now() THEN
            RAISE EXCEPTION 'request % asked for access until %, which has passed', request, rowsec.iso_utc(q.until)
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'Approving it would share the row with an expiry in the past.',
                      HINT = 'Reject it; the requester may ask again.';
        END IF;
        IF NOT EXISTS (SELECT FROM rowsec.people p WHERE p.id = q.requester) THEN
            RAISE EXCEPTION 'person % is not in the directory', q.requester USING ERRCODE = 'invalid_parameter_value',
                DETAIL = 'Shares go to people of the directory or to teams.', HINT = 'Check the person id.';
        END IF;
        IF NOT EXISTS (SELECT FROM rowsec.people p WHERE p.id = q.requester AND p.active) THEN
            RAISE EXCEPTION 'person % is inactive', q.requester USING ERRCODE = 'invalid_parameter_value',
                DETAIL = 'A share to an inactive person grants nothing now and would start granting the moment they are reactivated.',
                HINT = 'Share with an active person or a team; reactivate the person first if the share is meant for them.';
        END IF;
        INSERT INTO rowsec.shares (tbl, row_key, grantee_person, access, expires_at, granted_by, reason)
            VALUES (q.tbl, q.row_key, q.requester, q.access, q.until, decider, format('request %s', request))
            RETURNING shares.id INTO share;
        INSERT INTO rowsec.audit_log (actor, kind, object, detail)
            VALUES (decider, 'share', q.tbl::text, jsonb_build_object('share_id', share, 'key', q.row_key,
                    'grantee_person', q.requester, 'grantee_team', NULL, 'access', q.access, 'expires_at', q.until,
                    'role', rowsec.invoking_role()::text, 'reason', format('request %s', request), 'derived_from', NULL,
                    'expiry_capped', false, 'requested_expires_at', q.until));
    END IF;
    UPDATE rowsec.requests r SET status = CASE WHEN approve THEN 'approved' ELSE 'rejected' END, decided_by = decider,
                                 decided_at = now(), note = note, share_id = share
    WHERE r.id = request;
    INSERT INTO rowsec.audit_log (actor, kind, object, detail)
        VALUES (decider, 'decision', q.tbl::text, jsonb_build_object('request', request, 'key', q.row_key,
                'requester', q.requester, 'approve', approve, 'access', q.access, 'until', rowsec.iso_utc(q.until),
                'note', note, 'share_id', share));
    RETURN share;
END
$$;
-- Anyone may call it: it acts only on the caller's own proof, which row-level security admitted.
GRANT EXECUTE ON FUNCTION rowsec.record_decision(bigint, boolean, text) TO PUBLIC;

-- Approves or rejects a pending request; approving shares the row to the requester until the
-- request's `until`. Returns the share's id (NULL when rejected). Run as the caller.
CREATE OR REPLACE FUNCTION rowsec.decide(request bigint, approve boolean, note text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    me bigint;
BEGIN
    PERFORM rowsec.require_arguments(ARRAY['request', 'approve'], ARRAY[request IS NULL, approve IS NULL]);
    me := rowsec.require_person(rowsec.current_person(), 'decide requests', CURRENT_USER);
    -- The same refusal whether the request or its row exists or not.
    IF NOT rowsec.may_decide(request) THEN
        RAISE EXCEPTION 'permission denied to decide request %', request USING ERRCODE = 'insufficient_privilege',
            DETAIL = format('Person %s may not decide request %s, or it does not exist.', me, request),
            HINT = 'A request is decided by someone who may update the row and whose subtree holds its owner; SELECT * FROM rowsec.requests_to_decide lists yours.';
    END IF;
    INSERT INTO rowsec.decision_proofs (request, person) VALUES (request, me);
    RETURN rowsec.record_decision(request, approve, note);
END
$$;

-- The current person's own requests, and the pending requests of others they may decide
-- (row-level security of rowsec.requests).
IF to_regclass('rowsec.my_requests') IS NULL THEN
    CREATE VIEW rowsec.my_requests AS
        SELECT r.id, r.tbl, r.row_key, r.requester, r.access, r.until, r.reason, r.requested_at, r.status, r.decided_by,
               r.decided_at, r.note, r.share_id
        FROM rowsec.requests r WHERE r.requester = (SELECT rowsec.current_person()) ORDER BY r.id;
    ALTER VIEW rowsec.my_requests SET (security_invoker = true);
END IF;
IF to_regclass('rowsec.requests_to_decide') IS NULL THEN
    CREATE VIEW rowsec.requests_to_decide AS
        SELECT r.id, r.tbl, r.row_key, r.requester, r.access, r.until, r.reason, r.requested_at, r.status, r.decided_by,
               r.decided_at, r.note, r.share_id
        FROM rowsec.requests r
        WHERE r.status = 'pending' AND r.requester IS DISTINCT FROM (SELECT rowsec.current_person())
          AND rowsec.request_in_reach(r.tbl, r.row_key)
        ORDER BY r.id;
    ALTER VIEW rowsec.requests_to_decide SET (security_invoker = true);
END IF;
GRANT SELECT ON rowsec.my_requests, rowsec.requests_to_decide TO PUBLIC;

CREATE OR REPLACE FUNCTION rowsec.configure_limits(limits jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT FROM jsonb_each(coalesce(limits, '{}')) r WHERE r.value <> '{}'::jsonb) THEN
        PERFORM rowsec.sql_backend_refuses('roles.<name>.limits (SPEC item 12)');
    END IF;
END
$$;
CREATE OR REPLACE FUNCTION rowsec.configure_monitoring(reads boolean, alerts jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF reads OR coalesce(alerts, '[]') <> '[]'::jsonb THEN
        PERFORM rowsec.sql_backend_refuses('monitoring (SPEC items 13, 14)');
    END IF;
END
$$;
-- The members of the spec roles as rowsec.reconcile_memberships last recorded them.
CREATE TABLE IF NOT EXISTS rowsec.spec_role_members (
    role   name NOT NULL,
    member name NOT NULL,
    PRIMARY KEY (role, member)
);
REVOKE ALL ON rowsec.spec_role_members FROM PUBLIC;

-- Records, as `membership` rows with "reconciled": true and no actor, every difference between
-- the spec roles' members now and the members last recorded. Nothing in SQL sees a GRANT of a
-- role as it happens (the extension's ProcessUtility hook does): on this backend membership
-- changes reach the trail when this runs, at every apply and whenever it is scheduled, without
-- when or by whom. Owner only. Returns how many rows it recorded.
CREATE OR REPLACE FUNCTION rowsec.reconcile_memberships() RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    now_members jsonb;
    n bigint;
BEGIN
    -- Read once: the three statements below work from the same list.
    SELECT coalesce(jsonb_agg(jsonb_build_object('role', w.role, 'member', w.member, 'can_login', w.can_login, 'admin', w.admin)), '[]')
    INTO now_members
    FROM (SELECT r.rolname AS role, m.rolname AS member, m.rolcanlogin AS can_login, bool_or(am.admin_option) AS admin
          FROM pg_auth_members am JOIN pg_roles r ON r.oid = am.roleid JOIN pg_roles m ON m.oid = am.member
          WHERE starts_with(shobj_description(r.oid, 'pg_authid'), 'rowsec: group role of spec role ')
          GROUP BY r.rolname, m.rolname, m.rolcanlogin) w;
    WITH w AS (
        SELECT * FROM jsonb_to_recordset(now_members) AS x (role name, member name, can_login boolean, admin boolean)
    ), changes AS (
        SELECT 'revoke' AS op, s.role, s.member, coalesce(m.rolcanlogin, false) AS can_login, false AS admin
        FROM rowsec.spec_role_members s LEFT JOIN pg_roles m ON m.rolname = s.member
        WHERE NOT EXISTS (SELECT FROM w WHERE w.role = s.role AND w.member = s.member)
        UNION ALL
        SELECT 'grant', w.role, w.member, w.can_login, w.admin FROM w
        WHERE NOT EXISTS (SELECT FROM rowsec.spec_role_members s WHERE s.role = w.role AND s.member = w.member)
    ), logged AS (
        INSERT INTO rowsec.audit_log (actor, kind, object, detail)
        SELECT NULL, 'membership', c.role::text,
               jsonb_build_object('op', c.op, 'role', c.role, 'member', c.member, 'member_can_login', c.can_login,
                                  'admin_option', c.admin, 'statement', 'rowsec.reconcile_memberships()', 'reconciled', true)
        FROM changes c ORDER BY c.role, c.member, c.op DESC
        RETURNING 1
    )
    SELECT count(*) INTO n FROM logged;
    DELETE FROM rowsec.spec_role_members s
    WHERE NOT EXISTS (SELECT FROM jsonb_to_recordset(now_members) AS w (role name, member name)
                      WHERE w.role = s.role AND w.member = s.member);
    INSERT INTO rowsec.spec_role_members (role, member)
        SELECT w.role, w.member FROM jsonb_to_recordset(now_members) AS w (role name, member name) ON CONFLICT DO NOTHING;
    RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION rowsec.record_apply(spec_sha256 text, rowsec_version text, changes jsonb DEFAULT '{}') RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO rowsec.audit_log (actor, kind, object, detail)
    VALUES (NULL, 'apply', spec_sha256, jsonb_build_object('spec_sha256', spec_sha256, 'rowsec_version', rowsec_version,
                                                           'backend', 'sql', 'changes', changes))
    RETURNING id
$$;

-- Head count and manager cycles (owner only: the org chart). A person is in a cycle when their
-- manager is in their own subtree; each cycle is written from its smallest id round to it again.
CREATE OR REPLACE FUNCTION rowsec.directory_status(OUT version bigint, OUT people bigint, OUT active_people bigint,
    OUT loaded_at timestamptz, OUT load_ms double precision, OUT cycles text[], OUT duplicate_ids bigint[])
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    start bigint;
    cur bigint;
    path text;
    seen bigint[] := '{}';
BEGIN
    version := 0;
    loaded_at := now();
    load_ms := 0;
    duplicate_ids := '{}';
    cycles := '{}';
    SELECT count(*), count(*) FILTER (WHERE p.active) INTO people, active_people FROM rowsec.people p;
    FOR start IN
        SELECT p.id FROM rowsec.people p
        WHERE p.manager <> p.id AND EXISTS (SELECT FROM rowsec.closure c WHERE c.ancestor = p.id AND c.descendant = p.manager)
           OR p.manager = p.id
        ORDER BY p.id
    LOOP
        CONTINUE WHEN start = ANY (seen);
        path := start::text;
        cur := start;
        LOOP
            seen := seen || cur;
            SELECT p.manager INTO cur FROM rowsec.people p WHERE p.id = cur;
            path := path || ' -> ' || cur;
            EXIT WHEN cur = start;
        END LOOP;
        cycles := cycles || path;
    END LOOP;
END
$$;
REVOKE EXECUTE ON FUNCTION rowsec.configure(regclass, name, name, name, name, name, text, text),
    rowsec.protect_table(regclass, name, name, boolean), rowsec.unprotect_table(regclass),
    rowsec.subtree_of(bigint), rowsec.team_of(bigint), rowsec.directory_status(),
    rowsec.set_audit_readers(name[]), rowsec.audit_table(regclass, name, name[]), rowsec.audit_only(regclass[]),
    rowsec.configure_requests(integer), rowsec.configure_limits(jsonb), rowsec.configure_monitoring(boolean, jsonb),
    rowsec.reconcile_memberships(), rowsec.record_apply(text, text, jsonb), rowsec.closure_refresh(bigint[]),
    rowsec.large_subtrees_refresh(bigint[]),
    rowsec.directory_sync(bigint[], bigint[]), rowsec.directory_rebuild(), rowsec.sql_backend_refuses(text),
    rowsec.directory_audit_before(jsonb), rowsec.directory_audit_write(jsonb, regclass, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rowsec.may_update(regclass, bigint), rowsec.may_update_own(regclass, bigint),
    rowsec.visible_owner(regclass, bigint) TO PUBLIC;

-- The policies that name functions defined above (created here on a first run).
BEGIN
    PERFORM rowsec.ensure_policy('rowsec.update_proofs', 'proven',
        'FOR INSERT TO PUBLIC
        WITH CHECK (person = rowsec.current_person() AND xid = pg_catalog.txid_current()
        AND rowsec.may_update(tbl, row_key) AND own = rowsec.may_update_own(tbl, row_key)
        AND (row_owner IS NULL OR row_owner = rowsec.visible_owner(tbl, row_key)))');
    PERFORM rowsec.ensure_policy('rowsec.requests', 'mine_or_in_reach',
        'FOR SELECT TO PUBLIC
        USING (requester = (SELECT rowsec.current_person()) OR rowsec.request_in_reach(tbl, row_key))');
    PERFORM rowsec.ensure_policy('rowsec.decision_proofs', 'decidable',
        'FOR INSERT TO PUBLIC
        WITH CHECK (person = rowsec.current_person() AND xid = pg_catalog.txid_current() AND rowsec.may_decide(request))');
    PERFORM rowsec.ensure_policy('rowsec.audit_log', 'audit_readers_only',
        'FOR SELECT TO PUBLIC USING (rowsec.is_audit_reader())');
END;
BEGIN
    PERFORM pg_catalog.set_config('client_min_messages', pg_catalog.current_setting('rowsec_sql_backend.saved_client_min_messages'), true);
END;
END
$rowsec$;
