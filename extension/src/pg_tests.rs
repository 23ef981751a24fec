// In-database tests: `cargo pgrx test pg15 --runas postgres --pgdata /tmp/rowsec-pgrx-data` (or pg18).
// Each test runs in its own backend and transaction (rolled back), with its own schema and roles
// named after it, so tests do not see each other's data.

use pgrx::prelude::*;

/// The tests that alter rowsec's own tables take ALTER's lock on all three before configuring:
/// locking only the table each alters let two of them deadlock (one held rowsec.config and
/// waited for rowsec.protected_tables, the other the reverse), and so did waiting with some of
/// the three held.
fn lock_rowsec_tables() {
    // All three or none: a lock taken while waiting for the next can close a cycle with a
    // concurrent test that holds the next and wants the first (one read shares, then needed the
    // configuration). NOWAIT in a subtransaction gives back what it got when one is busy.
    run("DO $$ BEGIN
           LOOP
             BEGIN
               LOCK TABLE rowsec.config, rowsec.protected_tables, rowsec.shares IN ACCESS EXCLUSIVE MODE NOWAIT;
               EXIT;
             EXCEPTION WHEN lock_not_available THEN
               PERFORM pg_catalog.pg_sleep(0.01);
             END;
           END LOOP;
         END $$");
}

fn run(sql: &str) {
    Spi::run(sql).unwrap_or_else(|e| panic!("{e}: {sql}"));
}

fn one<T: FromDatum + IntoDatum>(sql: &str) -> Option<T> {
    Spi::get_one::<T>(sql).unwrap_or_else(|e| panic!("{e}: {sql}"))
}

fn ids(sql: &str) -> Vec<i64> {
    one::<Vec<i64>>(sql).unwrap_or_default()
}

/// "SQLSTATE|message|detail|hint" of the error `sql` raises, or "ok".
fn error_of(s: &str, sql: &str) -> String {
    one::<String>(&format!("SELECT {s}.error_of({})", pgrx::spi::quote_literal(sql))).unwrap()
}

/// A small organisation in schema `s`:
///   1 (exec) manages 2 (sales); 2 manages 3 (sales) and 4 (no team, inactive); 4 manages 5 (support);
///   6 (sales) has no manager and no login. Logins are `{s}_p<id>`.
fn org(s: &str) {
    run(&format!(
        r#"
        CREATE SCHEMA {s};
        CREATE TABLE {s}.people (id bigint PRIMARY KEY, manager_id bigint, team text, login text, active boolean);
        INSERT INTO {s}.people VALUES
            (1, NULL, 'exec',    '{s}_p1', true),
            (2, 1,    'sales',   '{s}_p2', true),
            (3, 2,    'sales',   '{s}_p3', true),
            (4, 2,    NULL,      '{s}_p4', false),
            (5, 4,    'support', '{s}_p5', true),
            (6, NULL, 'sales',   NULL,     true);
        SELECT rowsec.configure('{s}.people', 'id', 'manager_id', 'team', 'login', 'active');
        CREATE FUNCTION {s}.error_of(q text) RETURNS text LANGUAGE plpgsql AS $f$
        DECLARE st text; msg text; det text; hin text;
        BEGIN
            EXECUTE q;
            RETURN 'ok';
        EXCEPTION WHEN others THEN
            GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hin = PG_EXCEPTION_HINT;
            RETURN st || '|' || msg || '|' || det || '|' || hin;
        END $f$;
        CREATE ROLE {s}_p1; CREATE ROLE {s}_p2; CREATE ROLE {s}_p3; CREATE ROLE {s}_p4; CREATE ROLE {s}_p5;
        CREATE ROLE {s}_stranger;
        GRANT USAGE ON SCHEMA {s} TO {s}_p1, {s}_p2, {s}_p3, {s}_p4, {s}_p5, {s}_stranger;
        "#
    ));
}

/// `org` plus a protected, shareable table `{s}.deals` (key id, owner owner_id) whose policies
/// are what the generator writes: select = subtree or shared read; update = subtree or shared write.
fn deals(s: &str) {
    org(s);
    run(&format!(
        r#"
        CREATE TABLE {s}.deals (id bigint PRIMARY KEY, owner_id bigint NOT NULL, title text);
        INSERT INTO {s}.deals VALUES (10, 1, 'a'), (20, 2, 'b'), (30, 3, 'c'), (40, 4, 'd'), (50, 5, 'e'), (60, 6, 'f');
        ALTER TABLE {s}.deals ENABLE ROW LEVEL SECURITY;
        ALTER TABLE {s}.deals FORCE ROW LEVEL SECURITY;
        CREATE POLICY sel ON {s}.deals FOR SELECT
            USING (rowsec.in_subtree(owner_id) OR rowsec.is_shared('{s}.deals'::regclass, id, 'read'));
        CREATE POLICY upd ON {s}.deals FOR UPDATE
            USING (rowsec.in_subtree(owner_id) OR rowsec.is_shared('{s}.deals'::regclass, id, 'write'))
            WITH CHECK (rowsec.in_subtree(owner_id) OR rowsec.shared_write_keeps_owner('{s}.deals'::regclass, id, owner_id));
        GRANT SELECT, UPDATE ON {s}.deals TO {s}_p1, {s}_p2, {s}_p3, {s}_p4, {s}_p5, {s}_stranger;
        SELECT rowsec.protect_table('{s}.deals', 'id', 'owner_id', true);
        "#
    ));
}

/// The share and unshare rows of `rowsec.audit_log`, with the columns earlier builds' separate
/// `rowsec.share_audit` had (the trail now keeps them in `detail`).
const SHARE_TRAIL: &str = "(SELECT id, kind AS action, (detail->>'share_id')::bigint AS share_id, object AS tbl, \
    (detail->>'key')::bigint AS row_key, (detail->>'grantee_person')::bigint AS grantee_person, detail->>'grantee_team' AS grantee_team, \
    detail->>'access' AS access, actor AS actor_person, detail->>'role' AS actor_role, detail->>'reason' AS reason, \
    (detail->>'derived_from')::bigint AS derived_from, (detail->>'expiry_capped')::boolean AS expiry_capped, \
    detail->>'requested_expires_at' AS requested_expires_at FROM rowsec.audit_log WHERE kind IN ('share', 'unshare')) AS t";

fn visible(s: &str) -> Vec<i64> {
    ids(&format!("SELECT coalesce(array_agg(id ORDER BY id), '{{}}') FROM {s}.deals"))
}

#[pg_test]
fn policy_functions_raise_not_configured_with_a_hint() {
    // A fresh rowsec.config is empty in this transaction's snapshot unless a test committed one;
    // tests roll back, so it is empty.
    run("CREATE SCHEMA nc; CREATE FUNCTION nc.error_of(q text) RETURNS text LANGUAGE plpgsql AS $f$
         DECLARE st text; msg text; det text; hin text;
         BEGIN EXECUTE q; RETURN 'ok';
         EXCEPTION WHEN others THEN
           GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hin = PG_EXCEPTION_HINT;
           RETURN st || '|' || msg || '|' || det || '|' || hin; END $f$;");
    let e = error_of("nc", "SELECT rowsec.current_person()");
    assert!(e.starts_with("55000|rowsec is not configured|"), "{e}");
    assert!(e.contains("rowsec compile"), "{e}");
}

#[pg_test]
fn login_identity_resolves_the_caller_role() {
    org("li");
    run("SET ROLE li_p2");
    assert_eq!(one::<i64>("SELECT rowsec.current_person()"), Some(2));
    run("RESET ROLE");
    run("SET ROLE li_p3");
    assert_eq!(one::<i64>("SELECT rowsec.current_person()"), Some(3));
}

#[pg_test]
fn people_need_no_privilege_on_the_directory() {
    org("np");
    run("SET ROLE np_p1");
    assert_eq!(one::<bool>("SELECT has_table_privilege('np.people', 'SELECT')"), Some(false));
    assert_eq!(ids("SELECT rowsec.subtree()"), vec![1, 2, 3, 4, 5]);
}

#[pg_test]
fn an_unknown_login_is_nobody() {
    org("ul");
    run("SET ROLE ul_stranger");
    assert_eq!(one::<i64>("SELECT rowsec.current_person()"), None);
    assert_eq!(ids("SELECT rowsec.subtree()"), Vec::<i64>::new());
    assert_eq!(ids("SELECT rowsec.team()"), Vec::<i64>::new());
    assert_eq!(one::<bool>("SELECT rowsec.in_subtree(1)"), Some(false));
}

#[pg_test]
fn an_inactive_person_is_nobody() {
    org("ia");
    run("SET ROLE ia_p4");
    assert_eq!(one::<i64>("SELECT rowsec.current_person()"), None);
    assert_eq!(ids("SELECT rowsec.subtree()"), Vec::<i64>::new());
    assert_eq!(one::<bool>("SELECT rowsec.in_team(4)"), Some(false));
}

#[pg_test]
fn setting_identity_reads_the_setting_and_treats_bad_values_as_nobody() {
    org("si");
    run("SELECT rowsec.configure('si.people', 'id', 'manager_id', 'team', NULL, 'active', 'setting', 'app.person')");
    assert_eq!(one::<i64>("SELECT rowsec.current_person()"), None, "missing setting");
    run("SET LOCAL app.person = ''");
    assert_eq!(one::<i64>("SELECT rowsec.current_person()"), None, "empty setting");
    run("SET LOCAL app.person = 'two'");
    assert_eq!(one::<i64>("SELECT rowsec.current_person()"), None, "malformed setting");
    run("SET LOCAL app.person = '99'");
    assert_eq!(one::<i64>("SELECT rowsec.current_person()"), None, "unknown person");
    run("SET LOCAL app.person = '4'");
    assert_eq!(one::<i64>("SELECT rowsec.current_person()"), None, "inactive person");
    run("SET LOCAL app.person = ' 2 '");
    assert_eq!(one::<i64>("SELECT rowsec.current_person()"), Some(2));
    assert_eq!(ids("SELECT rowsec.subtree()"), vec![2, 3, 4, 5]);
    run("SET LOCAL app.person = '3'");
    assert_eq!(one::<i64>("SELECT rowsec.current_person()"), Some(3), "a changed setting is seen");
}

#[pg_test]
fn the_setting_can_change_within_one_statement() {
    org("sc");
    run("SELECT rowsec.configure('sc.people', 'id', 'manager_id', 'team', NULL, 'active', 'setting', 'app.person')");
    let got = ids("SELECT array_agg(p ORDER BY n) FROM (SELECT n, set_config('app.person', n::text, true) AS s, rowsec.current_person() AS p \
                   FROM generate_series(1, 3) n) x");
    assert_eq!(got, vec![1, 2, 3]);
}

#[pg_test]
fn subtree_is_self_plus_transitive_reports_including_inactive_ones() {
    org("st");
    run("SET ROLE st_p2");
    // 4 is inactive but still reports to 2, and 5 reports to 4.
    assert_eq!(ids("SELECT rowsec.subtree()"), vec![2, 3, 4, 5]);
}

#[pg_test]
fn team_is_self_plus_the_same_non_null_team() {
    org("tm");
    run("SET ROLE tm_p3");
    assert_eq!(ids("SELECT rowsec.team()"), vec![2, 3, 6]);
    run("RESET ROLE; SET ROLE tm_p1");
    assert_eq!(ids("SELECT rowsec.team()"), vec![1]);
}

#[pg_test]
fn explicit_person_variants_ignore_active_and_unknown_ids_give_empty_sets() {
    org("ex");
    assert_eq!(ids("SELECT rowsec.subtree_of(4)"), vec![4, 5]);
    assert_eq!(ids("SELECT rowsec.team_of(4)"), vec![4], "a NULL team is a team of one");
    assert_eq!(ids("SELECT rowsec.team_of(6)"), vec![2, 3, 6]);
    assert_eq!(ids("SELECT rowsec.subtree_of(42)"), Vec::<i64>::new());
    assert_eq!(ids("SELECT rowsec.team_of(42)"), Vec::<i64>::new());
}

#[pg_test]
fn in_subtree_and_in_team_answer_membership() {
    org("mb");
    run("SET ROLE mb_p2");
    let got = one::<String>(
        "SELECT string_agg(o || ':' || rowsec.in_subtree(o) || ':' || rowsec.in_team(o), ' ' ORDER BY o) FROM generate_series(1, 7) o",
    );
    assert_eq!(
        got.as_deref(),
        Some("1:false:false 2:true:true 3:true:true 4:true:false 5:true:false 6:false:true 7:false:false")
    );
    assert_eq!(one::<bool>("SELECT rowsec.in_subtree(NULL)"), None);
}

#[pg_test]
fn a_manager_cycle_is_finite_warned_and_listed() {
    org("cy");
    run("UPDATE cy.people SET manager_id = 5 WHERE id = 2");
    assert_eq!(ids("SELECT rowsec.subtree_of(2)"), vec![2, 3, 4, 5]);
    assert_eq!(ids("SELECT rowsec.subtree_of(5)"), vec![2, 3, 4, 5]);
    let cycles = one::<Vec<String>>("SELECT cycles FROM rowsec.directory_status()").unwrap();
    assert_eq!(cycles, vec!["2 -> 5 -> 4 -> 2".to_string()]);
}

#[pg_test]
fn directory_status_reports_the_loaded_directory() {
    org("ds");
    let (people, active) = Spi::get_two::<i64, i64>("SELECT people, active_people FROM rowsec.directory_status()").unwrap();
    assert_eq!((people, active), (Some(6), Some(5)));
}

#[pg_test]
fn a_directory_change_is_seen_by_the_next_statement_of_the_same_session() {
    org("dc");
    run("SET ROLE dc_p3");
    assert_eq!(ids("SELECT rowsec.subtree()"), vec![3]);
    run("RESET ROLE");
    let v1 = one::<i64>("SELECT version FROM rowsec.directory_status()").unwrap();
    run("INSERT INTO dc.people VALUES (7, 3, NULL, NULL, true)");
    run("SET ROLE dc_p3");
    assert_eq!(ids("SELECT rowsec.subtree()"), vec![3, 7]);
    run("RESET ROLE");
    run("UPDATE dc.people SET active = false WHERE id = 3");
    run("SET ROLE dc_p3");
    assert_eq!(one::<i64>("SELECT rowsec.current_person()"), None, "deactivation takes effect at once");
    run("RESET ROLE");
    assert!(one::<i64>("SELECT version FROM rowsec.directory_status()").unwrap() > v1);
}

#[pg_test]
fn truncating_the_directory_invalidates_the_cache() {
    org("tr");
    assert_eq!(ids("SELECT rowsec.subtree_of(1)"), vec![1, 2, 3, 4, 5]);
    run("TRUNCATE tr.people");
    assert_eq!(ids("SELECT rowsec.subtree_of(1)"), Vec::<i64>::new());
}

#[pg_test]
fn configure_validates_the_directory_shape() {
    org("cv");
    run("CREATE TABLE cv.bad (id int8, manager_id text, active int)");
    let e = error_of("cv", "SELECT rowsec.configure('cv.people', 'nope', 'manager_id', login_column => 'login')");
    assert!(e.starts_with("42703|"), "{e}");
    let e = error_of("cv", "SELECT rowsec.configure('cv.bad', 'id', 'manager_id', identity => 'setting', identity_setting => 'x.y')");
    assert!(e.starts_with("42804|"), "{e}");
    let e = error_of("cv", "SELECT rowsec.configure('cv.people', 'id', 'manager_id', login_column => 'login', active_column => 'team')");
    assert!(e.starts_with("42804|"), "{e}");
    run("CREATE TABLE cv.nounique (id int8, manager_id int8)");
    let e = error_of("cv", "SELECT rowsec.configure('cv.nounique', 'id', 'manager_id', identity => 'setting', identity_setting => 'x.y')");
    assert!(e.starts_with("42P16|"), "{e}");
    assert!(e.contains("PRIMARY KEY"), "{e}");
    let e = error_of("cv", "SELECT rowsec.configure('cv.people', 'id', 'manager_id')");
    assert!(e.starts_with("22023|identity 'login' needs a login column"), "{e}");
    let e = error_of("cv", "SELECT rowsec.configure('cv.people', 'id', 'manager_id', identity => 'setting')");
    assert!(e.starts_with("22023|"), "{e}");
}

#[pg_test]
fn configure_twice_with_the_same_arguments_changes_nothing() {
    org("c2");
    let before = one::<String>("SELECT xmin::text FROM rowsec.config");
    run("SELECT rowsec.configure('c2.people', 'id', 'manager_id', 'team', 'login', 'active')");
    assert_eq!(one::<String>("SELECT xmin::text FROM rowsec.config"), before);
    assert_eq!(one::<i64>("SELECT count(*) FROM pg_trigger WHERE tgname = 'rowsec_directory_changed' AND tgrelid = 'c2.people'::regclass"), Some(1));
}

#[pg_test]
fn reconfiguring_moves_the_invalidation_trigger() {
    org("mv");
    run("CREATE TABLE mv.other (id bigint PRIMARY KEY, boss bigint, login text)");
    run("SELECT rowsec.configure('mv.other', 'id', 'boss', login_column => 'login')");
    assert_eq!(one::<i64>("SELECT count(*) FROM pg_trigger WHERE tgname = 'rowsec_directory_changed' AND tgrelid = 'mv.people'::regclass"), Some(0));
    assert_eq!(one::<i64>("SELECT count(*) FROM pg_trigger WHERE tgname = 'rowsec_directory_changed' AND tgrelid = 'mv.other'::regclass"), Some(1));
    assert_eq!(one::<i64>("SELECT people FROM rowsec.directory_status()"), Some(0));
}

#[pg_test]
fn the_directory_and_share_triggers_call_invalidate_caches() {
    org("ic");
    let triggers = one::<String>(
        "SELECT string_agg(tgrelid::regclass || ':' || tgname || ':' || tgfoid::regprocedure, ' ' ORDER BY tgname)
         FROM pg_trigger WHERE tgname IN ('rowsec_directory_changed', 'rowsec_shares_changed')",
    );
    assert_eq!(
        triggers.as_deref(),
        Some("ic.people:rowsec_directory_changed:rowsec.invalidate_caches() rowsec.shares:rowsec_shares_changed:rowsec.invalidate_caches()")
    );
    // Called directly (not as a trigger) it refuses as PL/pgSQL's trigger functions do, in SQL's
    // words (pgrx's own trigger wrapper panicked with "PgTrigger::from_fcinfo failed: NotTrigger").
    let e = error_of("ic", "SELECT rowsec.invalidate_caches()");
    assert_eq!(
        e,
        "0A000|trigger functions can only be called as triggers|rowsec.invalidate_caches() was called directly.|\
         rowsec.configure installs it as a statement trigger on the directory; nothing else needs to call it."
    );
}

#[pg_test]
fn configuration_functions_are_not_executable_by_public() {
    org("pr");
    for f in [
        "rowsec.configure(regclass, name, name, name, name, name, text, text)",
        "rowsec.protect_table(regclass, name, name, boolean)",
        "rowsec.unprotect_table(regclass)",
        "rowsec.cleanup_expired_shares()",
        "rowsec.set_audit_readers(name[])",
        "rowsec.audit_table(regclass, name, name[])",
        "rowsec.audit_only(regclass[])",
        "rowsec.record_apply(text, text, jsonb)",
        "rowsec.reconcile_memberships()",
        "rowsec.configure_requests(integer)",
        "rowsec.configure_limits(jsonb)",
    ] {
        assert_eq!(one::<bool>(&format!("SELECT has_function_privilege('pr_p1', '{f}', 'EXECUTE')")), Some(false), "{f}");
    }
    for t in ["rowsec.config", "rowsec.protected_tables", "rowsec.shares", "rowsec.requests", "rowsec.spec_role_members", "rowsec.role_limits"] {
        assert_eq!(
            one::<bool>(&format!("SELECT has_table_privilege('pr_p1', '{t}', 'SELECT,INSERT,UPDATE,DELETE')")),
            Some(false),
            "{t}"
        );
    }
    assert_eq!(one::<bool>("SELECT has_function_privilege('pr_p1', 'rowsec.subtree()', 'EXECUTE')"), Some(true));
    assert_eq!(one::<bool>("SELECT has_function_privilege('pr_p1', 'rowsec.my_shares()', 'EXECUTE')"), Some(true));
    assert_eq!(one::<bool>("SELECT has_table_privilege('pr_p1', 'rowsec.my_shares', 'SELECT')"), Some(true));
}

#[pg_test]
fn protect_table_registers_and_unprotect_table_forgets() {
    deals("pt");
    assert_eq!(one::<String>("SELECT key_column || '/' || owner_column || '/' || sharing FROM rowsec.protected_tables WHERE tbl = 'pt.deals'::regclass").as_deref(), Some("id/owner_id/true"));
    run("SELECT rowsec.protect_table('pt.deals', 'id', 'owner_id', false)");
    assert_eq!(one::<bool>("SELECT sharing FROM rowsec.protected_tables WHERE tbl = 'pt.deals'::regclass"), Some(false));
    run("SELECT rowsec.unprotect_table('pt.deals')");
    assert_eq!(one::<i64>("SELECT count(*) FROM rowsec.protected_tables WHERE tbl = 'pt.deals'::regclass"), Some(0));
    let e = error_of("pt", "SELECT rowsec.protect_table('pt.deals', 'title', 'owner_id', true)");
    assert!(e.starts_with("42804|"), "{e}");
}

#[pg_test]
fn policies_show_the_subtree() {
    deals("ps");
    run("SET ROLE ps_p2");
    assert_eq!(visible("ps"), vec![20, 30, 40, 50]);
    run("RESET ROLE; SET ROLE ps_p4");
    assert_eq!(visible("ps"), Vec::<i64>::new(), "an inactive person sees nothing");
}

#[pg_test]
fn a_share_to_a_person_makes_the_row_visible() {
    deals("sp");
    run("SET ROLE sp_p2");
    run("SELECT rowsec.share('sp.deals', 30, to_person => 1, reason => 'review')");
    run("RESET ROLE; SET ROLE sp_p5");
    assert_eq!(visible("sp"), vec![50]);
    run("RESET ROLE; SET ROLE sp_p3");
    run("SELECT rowsec.share('sp.deals', 30, to_person => 5)");
    run("RESET ROLE; SET ROLE sp_p5");
    assert_eq!(visible("sp"), vec![30, 50]);
    assert_eq!(ids("SELECT rowsec.shared_keys('sp.deals', 'read')"), vec![30]);
    assert_eq!(ids("SELECT rowsec.shared_keys('sp.deals', 'write')"), Vec::<i64>::new());
}

#[pg_test]
fn a_share_to_a_team_reaches_every_member() {
    deals("sm");
    run("SET ROLE sm_p5");
    run("SELECT rowsec.share('sm.deals', 50, to_team => 'sales')");
    run("RESET ROLE; SET ROLE sm_p3");
    assert_eq!(visible("sm"), vec![30, 50]);
    run("RESET ROLE");
    // 6 has no login: check through the explicit table of shares instead.
    run("SET ROLE sm_p1");
    assert_eq!(visible("sm"), vec![10, 20, 30, 40, 50], "exec is not in sales but 5 is in 1's subtree");
}

#[pg_test]
fn an_expired_share_grants_nothing() {
    deals("xp");
    run("INSERT INTO rowsec.shares (tbl, row_key, grantee_person, access, granted_by, expires_at) VALUES
         ('xp.deals', 10, 3, 'read', 1, now() - interval '1 minute'),
         ('xp.deals', 60, 3, 'read', 1, now() + interval '1 hour')");
    run("SET ROLE xp_p3");
    assert_eq!(visible("xp"), vec![30, 60]);
    run("RESET ROLE");
    let e = error_of("xp", "SELECT rowsec.share('xp.deals', 30, to_person => 1, expires_at => now() - interval '1 second')");
    assert!(e.starts_with("22023|expires_at is not in the future"), "{e}");
}

#[pg_test]
fn a_write_share_allows_updates_and_a_read_share_does_not() {
    deals("wr");
    run("SET ROLE wr_p3");
    run("SELECT rowsec.share('wr.deals', 30, to_person => 5, access => 'write')");
    run("RESET ROLE; SET ROLE wr_p2");
    run("SELECT rowsec.share('wr.deals', 20, to_person => 5, access => 'read')");
    run("RESET ROLE; SET ROLE wr_p5");
    assert_eq!(visible("wr"), vec![20, 30, 50]);
    run("UPDATE wr.deals SET title = 'edited' WHERE id IN (20, 30)");
    run("RESET ROLE");
    assert_eq!(one::<String>("SELECT string_agg(id || ':' || title, ' ' ORDER BY id) FROM wr.deals WHERE id IN (20, 30)").as_deref(), Some("20:b 30:edited"));
}

#[pg_test]
fn a_write_share_never_hands_the_row_to_someone_else() {
    deals("wo");
    run("SET ROLE wo_p3");
    run("SELECT rowsec.share('wo.deals', 30, to_person => 5, access => 'write')");
    run("RESET ROLE");
    let e = error_of("wo", "SET ROLE wo_p5; UPDATE wo.deals SET owner_id = 6 WHERE id = 30");
    assert!(e.starts_with("42501|new row violates row-level security policy"), "{e}");
}

#[pg_test]
fn sharing_a_row_one_may_not_update_is_refused_with_detail_and_hint() {
    deals("un");
    let e = error_of("un", "SET ROLE un_p3; SELECT rowsec.share('un.deals', 10, to_person => 3)");
    let parts: Vec<&str> = e.split('|').collect();
    assert_eq!(parts[0], "42501", "{e}");
    assert!(parts[1].contains("permission denied to share row 10"), "{e}");
    assert!(!parts[2].is_empty() && !parts[3].is_empty(), "{e}");
    run("RESET ROLE");
    let e = error_of("un", "SET ROLE un_stranger; SELECT rowsec.share('un.deals', 10, to_person => 3)");
    assert!(e.starts_with("42501|only an active person"), "{e}");
    run("RESET ROLE");
    run("REVOKE UPDATE ON un.deals FROM un_p1");
    let e = error_of("un", "SET ROLE un_p1; SELECT rowsec.share('un.deals', 10, to_person => 3)");
    assert!(e.starts_with("42501|") && e.contains("no UPDATE privilege"), "{e}");
}

#[pg_test]
fn a_share_needs_exactly_one_grantee_and_a_valid_access() {
    deals("g1");
    run("SET ROLE g1_p1");
    let e = error_of("g1", "SELECT rowsec.share('g1.deals', 10)");
    assert!(e.starts_with("22023|a share needs exactly one grantee"), "{e}");
    let e = error_of("g1", "SELECT rowsec.share('g1.deals', 10, to_person => 2, to_team => 'sales')");
    assert!(e.starts_with("22023|"), "{e}");
    let e = error_of("g1", "SELECT rowsec.share('g1.deals', 10, to_person => 2, access => 'admin')");
    assert!(e.starts_with("22023|invalid share access"), "{e}");
    let e = error_of("g1", "SELECT rowsec.share('g1.deals', 10, to_person => 99)");
    assert!(e.starts_with("22023|person 99 is not in the directory"), "{e}");
    let e = error_of("g1", "SELECT rowsec.share('g1.deals', 10)");
    assert!(e.contains("|rowsec.share was called with to_person => NULL, to_team => NULL.|"), "SQL, not Rust: {e}");
    run("RESET ROLE");
    run("SELECT rowsec.protect_table('g1.deals', 'id', 'owner_id', false)");
    let e = error_of("g1", "SET ROLE g1_p1; SELECT rowsec.share('g1.deals', 10, to_person => 2)");
    assert!(e.starts_with("55000|"), "{e}");
}

#[pg_test]
fn policy_functions_refuse_an_unknown_access() {
    deals("ua");
    run("SET ROLE ua_p2");
    for q in ["SELECT rowsec.shared_keys('ua.deals', 'Write')", "SELECT count(*) FROM ua.deals WHERE rowsec.is_shared('ua.deals', id, 'all')"] {
        let e = error_of("ua", q);
        assert!(e.starts_with("22023|invalid share access"), "{q}: {e}");
    }
}

#[pg_test]
fn share_and_unshare_are_audited() {
    deals("au");
    run("SET ROLE au_p2");
    let id = one::<i64>("SELECT rowsec.share('au.deals', 30, to_team => 'support', access => 'write', reason => 'cover')").unwrap();
    run(&format!("SELECT rowsec.unshare({id}, 'done')"));
    run("RESET ROLE");
    let trail = one::<String>(&format!(
        "SELECT string_agg(concat_ws(',', action, share_id = {id}, tbl, row_key, grantee_person, grantee_team, access, actor_person, actor_role, reason), ' ; ' ORDER BY id) FROM {SHARE_TRAIL} WHERE tbl = 'au.deals'"
    ));
    assert_eq!(
        trail.as_deref(),
        Some("share,t,au.deals,30,support,write,2,au_p2,cover ; unshare,t,au.deals,30,support,write,2,au_p2,done")
    );
    assert_eq!(one::<i64>(&format!("SELECT count(*) FROM rowsec.shares WHERE id = {id}")), Some(0));
}

#[pg_test]
fn unsharing_needs_the_right_to_update_the_row() {
    deals("uu");
    run("SET ROLE uu_p3");
    let id = one::<i64>("SELECT rowsec.share('uu.deals', 30, to_person => 5)").unwrap();
    run("RESET ROLE");
    let e = error_of("uu", &format!("SET ROLE uu_p5; SELECT rowsec.unshare({id})"));
    assert!(e.starts_with("42501|"), "{e}");
    run("RESET ROLE");
    let e = error_of("uu", "SELECT rowsec.unshare(123456789)");
    assert!(e.starts_with("22023|share 123456789 does not exist"), "{e}");
}

#[pg_test]
fn the_audit_log_is_append_only_even_for_its_owner() {
    deals("ao");
    run("SET ROLE ao_p2");
    run("SELECT rowsec.share('ao.deals', 30, to_person => 1)");
    run("RESET ROLE");
    // Nor may the seal's columns be set by hand on a row not sealed yet.
    let e = error_of("ao", "UPDATE rowsec.audit_log SET seq = 1, hash = '\\x00'");
    assert!(e.starts_with("42501|rowsec.audit_log is append-only"), "{e}");
    // Sealed now (as at commit): TRUNCATE refuses a table with pending trigger events by itself.
    run("SET CONSTRAINTS ALL IMMEDIATE");
    for q in ["UPDATE rowsec.audit_log SET object = 'x'", "DELETE FROM rowsec.audit_log", "TRUNCATE rowsec.audit_log"] {
        let e = error_of("ao", q);
        assert!(e.starts_with("42501|rowsec.audit_log is append-only"), "{q}: {e}");
    }
    let e = error_of("ao", "SET ROLE ao_p2; UPDATE rowsec.audit_log SET object = 'x'");
    assert!(e.starts_with("42501|permission denied"), "{e}");
    let e = error_of("ao", "SET ROLE ao_p2; INSERT INTO rowsec.audit_log (kind, object) VALUES ('share', 'x')");
    assert!(e.starts_with("42501|permission denied"), "{e}");
}

#[pg_test]
fn the_audit_log_shows_no_row_to_a_role_that_is_not_a_reader() {
    deals("rd");
    run("SET ROLE rd_p2");
    run("SELECT rowsec.share('rd.deals', 30, to_person => 1)");
    run("RESET ROLE");
    assert_eq!(one::<i64>("SELECT count(*) FROM rowsec.audit_log"), Some(1), "a superuser reads it");
    run("SET ROLE rd_p3");
    assert_eq!(one::<i64>("SELECT count(*) FROM rowsec.audit_log"), Some(0));
    let e = error_of("rd", "SELECT rowsec.verify_audit()");
    assert!(e.starts_with("42501|permission denied for function rowsec.verify_audit"), "{e}");
    run("RESET ROLE");
    run("CREATE ROLE rd_auditors; GRANT rd_auditors TO rd_p3; SELECT rowsec.set_audit_readers(ARRAY['rd_auditors'])");
    run("SET ROLE rd_p3");
    assert_eq!(one::<i64>("SELECT count(*) FROM rowsec.audit_log"), Some(1), "a member of a reader role reads it");
    run("RESET ROLE");
    let e = error_of("rd", "SELECT rowsec.set_audit_readers(ARRAY['rd_nobody'])");
    assert!(e.starts_with("42704|role \"rd_nobody\" does not exist"), "{e}");
}

#[pg_test]
fn a_table_under_audit_data_records_changed_columns_and_redacts_classed_ones() {
    deals("ad");
    run("ALTER TABLE ad.deals ADD COLUMN amount numeric");
    run("SELECT rowsec.audit_table('ad.deals', 'id', ARRAY['amount'])");
    run("INSERT INTO ad.deals VALUES (70, 2, 'new', 5)");
    run("UPDATE ad.deals SET title = 'renamed', amount = 6 WHERE id = 70");
    run("UPDATE ad.deals SET title = title WHERE id = 70");
    run("DELETE FROM ad.deals WHERE id = 70");
    let trail = one::<String>("SELECT string_agg(concat_ws(' ', kind, object, detail::text), E'\n' ORDER BY id) FROM rowsec.audit_log");
    assert_eq!(
        trail.as_deref(),
        Some(
            "data ad.deals {\"op\": \"insert\", \"key\": 70, \"columns\": {\"id\": {\"new\": \"70\", \"old\": null}, \"title\": {\"new\": \"new\", \"old\": null}, \"amount\": {\"new\": \"redacted\", \"old\": \"redacted\"}, \"owner_id\": {\"new\": \"2\", \"old\": null}}}\n\
             data ad.deals {\"op\": \"update\", \"key\": 70, \"columns\": {\"title\": {\"new\": \"renamed\", \"old\": \"new\"}, \"amount\": {\"new\": \"redacted\", \"old\": \"redacted\"}}}\n\
             data ad.deals {\"op\": \"update\", \"key\": 70, \"columns\": {}}\n\
             data ad.deals {\"op\": \"delete\", \"key\": 70, \"columns\": {\"id\": {\"new\": null, \"old\": \"70\"}, \"title\": {\"new\": null, \"old\": \"renamed\"}, \"amount\": {\"new\": \"redacted\", \"old\": \"redacted\"}, \"owner_id\": {\"new\": null, \"old\": \"2\"}}}"
        )
    );
    // A statement changing several rows records each; TRUNCATE is recorded too.
    run("UPDATE ad.deals SET title = title || '!' WHERE id IN (10, 20)");
    assert_eq!(
        one::<String>("SELECT string_agg(detail->>'key', ',' ORDER BY id) FROM rowsec.audit_log WHERE detail->>'op' = 'update' AND detail->'columns' ? 'title' AND (detail->>'key')::bigint IN (10, 20)").as_deref(),
        Some("10,20")
    );
    run("TRUNCATE ad.deals");
    assert_eq!(
        one::<String>("SELECT detail::text FROM rowsec.audit_log ORDER BY id DESC LIMIT 1").as_deref(),
        Some("{\"op\": \"truncate\", \"key\": null, \"columns\": {}}")
    );
    assert_eq!(one::<i64>("SELECT rowsec.audit_only(ARRAY[]::regclass[])"), Some(1));
    run("INSERT INTO ad.deals VALUES (80, 2, 'x', 1)");
    assert_eq!(one::<i64>("SELECT count(*) FROM rowsec.audit_log"), Some(7), "no longer audited");
    assert_eq!(one::<i64>("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'ad.deals'::regclass AND tgname LIKE 'rowsec_audit%'"), Some(0));
}

#[pg_test]
fn a_directory_change_records_old_and_new_and_what_it_did_to_access() {
    org("dc");
    run("UPDATE dc.people SET manager_id = 1 WHERE id = 4");
    run("UPDATE dc.people SET login = login WHERE id = 4");
    run("UPDATE dc.people SET team = 'exec', active = false WHERE id = 3");
    let trail = one::<String>("SELECT string_agg(concat_ws(' ', kind, object, detail::text), E'\n' ORDER BY id) FROM rowsec.audit_log");
    assert_eq!(
        trail.as_deref(),
        Some(
            "directory dc.people {\"id\": 4, \"op\": \"update\", \"access\": {\"manager\": {\"people_moved\": 2, \"left_subtree_of\": [2], \"entered_subtree_of\": []}}, \"changes\": {\"manager\": {\"new\": 1, \"old\": 2}}}\n\
             directory dc.people {\"id\": 3, \"op\": \"update\", \"access\": {\"team\": {\"teammates_lost\": 2, \"teammates_gained\": 1}}, \"changes\": {\"team\": {\"new\": \"exec\", \"old\": \"sales\"}, \"active\": {\"new\": false, \"old\": true}}}"
        )
    );
}

#[pg_test]
fn the_hash_chain_is_sealed_at_commit_and_verifies() {
    // Sealing happens at commit; SET CONSTRAINTS ... IMMEDIATE seals now, inside the test's
    // transaction.
    deals("hc");
    run("SET ROLE hc_p2");
    run("SELECT rowsec.share('hc.deals', 30, to_person => 1)");
    run("SELECT rowsec.share('hc.deals', 30, to_person => 5)");
    run("RESET ROLE");
    assert_eq!(one::<i64>("SELECT count(*) FROM rowsec.audit_log WHERE seq IS NULL"), Some(2));
    run("SET CONSTRAINTS ALL IMMEDIATE");
    assert_eq!(one::<String>("SELECT string_agg(seq::text || ':' || length(hash), ',' ORDER BY seq) FROM rowsec.audit_log").as_deref(), Some("1:32,2:32"));
    assert_eq!(one::<i64>("SELECT rowsec.verify_audit()"), None);
    run("ALTER TABLE rowsec.audit_log DISABLE TRIGGER audit_log_no_update");
    run("UPDATE rowsec.audit_log SET detail = detail || '{\"key\": 31}' WHERE seq = 2");
    let edited = one::<i64>("SELECT id FROM rowsec.audit_log WHERE seq = 2");
    assert_eq!(one::<i64>("SELECT rowsec.verify_audit()"), edited);
}

#[pg_test]
fn spec_role_grants_and_revokes_by_any_statement_are_recorded() {
    run("CREATE ROLE mb_rep NOLOGIN; COMMENT ON ROLE mb_rep IS 'rowsec: group role of spec role mb_rep'");
    run("CREATE ROLE mb_other NOLOGIN");
    run("CREATE ROLE mb_a LOGIN IN ROLE mb_rep");
    run("CREATE ROLE mb_b LOGIN; GRANT mb_rep TO mb_b WITH ADMIN OPTION");
    run("GRANT mb_other TO mb_b");
    run("ALTER GROUP mb_rep ADD USER mb_other");
    run("REVOKE mb_rep FROM mb_b");
    run("DROP ROLE mb_a");
    let trail = one::<String>(
        "SELECT string_agg(concat_ws(' ', object, detail->>'op', detail->>'member', detail->>'member_can_login', detail->>'admin_option', detail->>'statement'), ' ; ' ORDER BY id) FROM rowsec.audit_log WHERE kind = 'membership'",
    );
    assert_eq!(
        trail.as_deref(),
        Some("mb_rep grant mb_a true false CREATE ROLE ; mb_rep grant mb_b true true GRANT ; mb_rep grant mb_other false false ALTER ROLE ; mb_rep revoke mb_b true true REVOKE ; mb_rep revoke mb_a true false DROP ROLE")
    );
    assert_eq!(one::<String>("SELECT string_agg(member, ',') FROM rowsec.spec_role_members").as_deref(), Some("mb_other"));
    // What the hook did not see (here: the record was lost) is found by reconciling.
    run("DELETE FROM rowsec.spec_role_members");
    assert_eq!(one::<i64>("SELECT rowsec.reconcile_memberships()"), Some(1));
    let last = one::<String>("SELECT concat_ws(' ', object, detail->>'op', detail->>'member', detail->>'reconciled', coalesce(actor::text, 'no actor')) FROM rowsec.audit_log ORDER BY id DESC LIMIT 1");
    assert_eq!(last.as_deref(), Some("mb_rep grant mb_other true no actor"));
    assert_eq!(one::<i64>("SELECT rowsec.reconcile_memberships()"), Some(0));
}

/// `deals` with requests enabled (14 days).
fn requests(s: &str) {
    deals(s);
    run("SELECT rowsec.configure_requests(14)");
    run(&format!("CREATE TABLE {s}.notes (id bigint PRIMARY KEY, owner_id bigint NOT NULL); SELECT rowsec.protect_table('{s}.notes', 'id', 'owner_id', false)"));
}

#[pg_test]
fn an_approved_request_shares_the_row_until_its_end() {
    requests("rq");
    run("SET ROLE rq_p3");
    assert_eq!(visible("rq"), vec![30]);
    let id = one::<i64>("SELECT rowsec.request_access('rq.deals', 10, 'read', now() + interval '2 days', 'audit prep')").unwrap();
    assert_eq!(one::<String>("SELECT string_agg(concat_ws(',', id, row_key, status), ';') FROM rowsec.my_requests").as_deref(), Some(format!("{id},10,pending").as_str()));
    assert_eq!(visible("rq"), vec![30], "nothing is granted without a decision");
    run("RESET ROLE; SET ROLE rq_p2");
    assert_eq!(one::<i64>("SELECT count(*) FROM rowsec.requests_to_decide"), Some(0), "2's subtree does not hold deal 10's owner");
    let e = error_of("rq", &format!("SELECT rowsec.decide({id}, true)"));
    assert!(e.starts_with(&format!("42501|permission denied to decide request {id}|")), "{e}");
    run("RESET ROLE; SET ROLE rq_p1");
    assert_eq!(one::<i64>("SELECT count(*) FROM rowsec.requests_to_decide"), Some(1));
    let share = one::<i64>(&format!("SELECT rowsec.decide({id}, true, 'ok for a week')")).unwrap();
    let e = error_of("rq", &format!("SELECT rowsec.decide({id}, false)"));
    assert!(e.starts_with(&format!("22023|request {id} was already decided")), "{e}");
    run("RESET ROLE; SET ROLE rq_p3");
    assert_eq!(visible("rq"), vec![10, 30]);
    run("RESET ROLE");
    assert_eq!(
        one::<String>(&format!("SELECT concat_ws(',', grantee_person, access, expires_at = now() + interval '2 days', granted_by, reason) FROM rowsec.shares WHERE id = {share}")).as_deref(),
        Some(format!("3,read,t,1,request {id}").as_str())
    );
    let trail = one::<String>("SELECT string_agg(concat_ws(' ', kind, actor, object, detail->>'request', detail->>'approve', detail->>'note', detail->>'reason'), ' ; ' ORDER BY id) FROM rowsec.audit_log");
    assert_eq!(trail, Some(format!("request 3 rq.deals {id} audit prep ; share 1 rq.deals request {id} ; decision 1 rq.deals {id} true ok for a week")));
}

#[pg_test]
fn a_request_never_reveals_whether_its_row_exists() {
    requests("rx");
    run("SET ROLE rx_p3");
    let missing = one::<i64>("SELECT rowsec.request_access('rx.deals', 999, 'read', now() + interval '1 day', NULL)").unwrap();
    let existing = one::<i64>("SELECT rowsec.request_access('rx.deals', 10, 'read', now() + interval '1 day', NULL)").unwrap();
    run("RESET ROLE; SET ROLE rx_p5");
    let a = error_of("rx", &format!("SELECT rowsec.decide({missing}, true)"));
    let b = error_of("rx", &format!("SELECT rowsec.decide({existing}, true)"));
    let c = error_of("rx", "SELECT rowsec.decide(123456, true)");
    let strip = |e: &str, id: i64| e.replace(&format!("request {id}"), "request N");
    assert_eq!(strip(&a, missing), strip(&b, existing));
    assert_eq!(strip(&a, missing), strip(&c, 123456));
    assert!(a.starts_with("42501|"), "{a}");
}

#[pg_test]
fn bad_requests_are_refused_with_22023() {
    requests("rb");
    run("SET ROLE rb_p3");
    for (q, message) in [
        ("SELECT rowsec.request_access('rb.notes', 1, 'read', now() + interval '1 day', NULL)", "rb.notes does not allow sharing"),
        ("SELECT rowsec.request_access('rb.deals', 10, 'read', now() - interval '1 second', NULL)", "until is not in the future"),
        ("SELECT rowsec.request_access('rb.deals', 10, 'read', now() + interval '15 days', NULL)", "until is more than 14 days ahead"),
        ("SELECT rowsec.request_access('rb.deals', 10, 'admin', now() + interval '1 day', NULL)", "invalid share access \"admin\""),
    ] {
        let e = error_of("rb", q);
        assert!(e.starts_with(&format!("22023|{message}|")), "{q}: {e}");
    }
    run("RESET ROLE; SET ROLE rb_stranger");
    let e = error_of("rb", "SELECT rowsec.request_access('rb.deals', 10, 'read', now() + interval '1 day', NULL)");
    assert!(e.starts_with("42501|only an active person in the directory may request access"), "{e}");
}

#[pg_test]
fn a_manager_attests_people_of_their_subtree_only() {
    org("at");
    run("SET ROLE at_p2");
    let id = one::<i64>("SELECT rowsec.attest(3, true, 'still on the team')").unwrap();
    for person in [2, 1, 6, 999] {
        let e = error_of("at", &format!("SELECT rowsec.attest({person}, false, NULL)"));
        assert!(e.starts_with(&format!("42501|permission denied to attest person {person}|")), "{e}");
    }
    run("RESET ROLE");
    let row = one::<String>(&format!("SELECT concat_ws(' ', kind, actor, object, detail::text) FROM rowsec.audit_log WHERE id = {id}"));
    assert_eq!(
        row.as_deref(),
        Some("attest 2 at.people {\"keep\": true, \"note\": \"still on the team\", \"login\": \"at_p3\", \"roles\": [], \"person\": 3}")
    );
}

#[pg_test]
fn record_apply_writes_an_apply_row() {
    run("SELECT rowsec.record_apply('abc', '0.1.0', '{\"created\": 3}')");
    assert_eq!(
        one::<String>("SELECT concat_ws(' ', kind, object, detail::text) FROM rowsec.audit_log").as_deref(),
        Some("apply abc {\"changes\": {\"created\": 3}, \"spec_sha256\": \"abc\", \"rowsec_version\": \"0.1.0\"}")
    );
}

fn explain(sql: &str) -> String {
    Spi::connect(|c| {
        c.select(&format!("EXPLAIN (COSTS OFF) {sql}"), None, &[])
            .unwrap()
            .map(|row| row.get::<String>(1).unwrap().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// A 200,000-row table over a 2,000-person directory, indexed on owner_id.
fn big(s: &str) {
    org(s);
    run(&format!(
        r#"
        INSERT INTO {s}.people SELECT g, CASE WHEN g = 100 THEN NULL ELSE 100 + (g - 100) / 8 END, 't' || (g / 50), '{s}_u' || g, true
            FROM generate_series(100, 2099) g;
        CREATE TABLE {s}.big (id bigint PRIMARY KEY, owner_id bigint NOT NULL, pad text);
        INSERT INTO {s}.big SELECT g, 100 + g % 2000, 'x' FROM generate_series(1, 200000) g;
        CREATE INDEX ON {s}.big (owner_id);
        ANALYZE {s}.big;
        CREATE ROLE {s}_u2000;
        GRANT USAGE ON SCHEMA {s} TO {s}_u2000;
        GRANT SELECT ON {s}.big TO {s}_u2000;
        SET LOCAL max_parallel_workers_per_gather = 0;
        "#
    ));
}

#[pg_test]
fn in_subtree_becomes_an_index_condition() {
    big("ix");
    run("SET ROLE ix_u2000");
    assert_eq!(ids("SELECT rowsec.subtree()"), vec![2000]);
    let plan = explain("SELECT * FROM ix.big WHERE rowsec.in_subtree(owner_id)");
    assert!(plan.contains("Index Cond: (owner_id = ANY (rowsec.subtree()))"), "{plan}");
    assert!(plan.contains("Index Scan") || plan.contains("Bitmap Index Scan"), "{plan}");
    assert_eq!(one::<i64>("SELECT count(*) FROM ix.big WHERE rowsec.in_subtree(owner_id)"), Some(100));
    let plan = explain("SELECT * FROM ix.big WHERE rowsec.in_team(owner_id)");
    assert!(plan.contains("Index Cond: (owner_id = ANY (rowsec.team()))"), "{plan}");
}

#[pg_test]
fn row_level_security_policies_keep_the_index_scan() {
    big("rx");
    run("ALTER TABLE rx.big ENABLE ROW LEVEL SECURITY; ALTER TABLE rx.big FORCE ROW LEVEL SECURITY;
         CREATE POLICY p ON rx.big FOR SELECT USING (rowsec.in_subtree(owner_id) OR rowsec.is_shared('rx.big'::regclass, id, 'read'));
         SELECT rowsec.protect_table('rx.big', 'id', 'owner_id', true);");
    run("SET ROLE rx_u2000");
    let plan = explain("SELECT * FROM rx.big");
    assert!(plan.contains("Index Cond: (owner_id = ANY (rowsec.subtree()))"), "{plan}");
    assert!(plan.contains("Index Cond: (id = ANY (rowsec.shared_keys('rx.big'::regclass, 'read'::text)))"), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");
    assert_eq!(one::<i64>("SELECT count(*) FROM rx.big"), Some(100));
}

#[pg_test]
fn a_large_subtree_is_estimated_as_large() {
    big("lg");
    // Person 100 manages everyone 100..2099: the whole table, so no index is worth it.
    run("CREATE ROLE lg_u100; GRANT USAGE ON SCHEMA lg TO lg_u100; GRANT SELECT ON lg.big TO lg_u100;");
    run("SET ROLE lg_u100");
    let plan = explain("SELECT * FROM lg.big WHERE rowsec.in_subtree(owner_id)");
    assert!(plan.contains("Seq Scan"), "{plan}");
}

#[pg_test]
fn policy_functions_answer_inside_parallel_workers() {
    big("pw");
    run("SET LOCAL max_parallel_workers_per_gather = 2; SET LOCAL parallel_setup_cost = 0; SET LOCAL parallel_tuple_cost = 0;
         SET LOCAL min_parallel_table_scan_size = 0; SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off;");
    run(&format!("SET LOCAL {} = on", crate::compat::FORCE_PARALLEL_SETTING));
    run("SET ROLE pw_u2000");
    let plan = explain("SELECT count(*) FROM pw.big WHERE rowsec.in_subtree(owner_id)");
    assert!(plan.contains("Parallel Seq Scan"), "{plan}");
    assert_eq!(one::<i64>("SELECT count(*) FROM pw.big WHERE rowsec.in_subtree(owner_id)"), Some(100));
    assert_eq!(one::<i64>("SELECT count(*) FROM pw.big WHERE owner_id = rowsec.current_person()"), Some(100));
}

#[pg_test]
fn renaming_a_role_changes_who_it_is() {
    org("rn");
    run("SET ROLE rn_p3");
    assert_eq!(one::<i64>("SELECT rowsec.current_person()"), Some(3));
    run("RESET ROLE; ALTER ROLE rn_p3 RENAME TO rn_p3_old; SET ROLE rn_p3_old");
    assert_eq!(one::<i64>("SELECT rowsec.current_person()"), None);
    run("RESET ROLE; ALTER ROLE rn_stranger RENAME TO rn_p3; SET ROLE rn_p3");
    assert_eq!(one::<i64>("SELECT rowsec.current_person()"), Some(3));
}

#[pg_test]
fn configure_refuses_null_arguments_with_a_clear_error() {
    org("cn");
    let e = error_of("cn", "SELECT rowsec.configure(NULL, 'id', 'manager_id')");
    assert!(e.starts_with("22004|directory must not be NULL"), "{e}");
}

#[pg_test]
fn a_dropped_or_reshaped_directory_raises_a_clear_error() {
    org("dd");
    run("ALTER TABLE dd.people ALTER COLUMN active TYPE text");
    let e = error_of("dd", "SELECT rowsec.subtree_of(1)");
    assert!(e.starts_with("42804|the active column \"active\" of dd.people has type text"), "{e}");
    run("DROP TABLE dd.people");
    let e = error_of("dd", "SELECT rowsec.current_person()");
    assert!(e.starts_with("42P01|the rowsec directory table"), "{e}");
}

#[pg_test]
fn share_leaves_the_callers_role_and_search_path_alone() {
    deals("sr");
    run("SET ROLE sr_p2; SET search_path = sr, public");
    run("SELECT rowsec.share('sr.deals', 30, to_person => 1)");
    assert_eq!(one::<String>("SELECT current_user::text").as_deref(), Some("sr_p2"));
    assert_eq!(one::<String>("SELECT current_setting('search_path')").as_deref(), Some("sr, public"));
}

// A lookup that fails is an error with its SQLSTATE, never an answer such as "not registered",
// "no such share" or "nobody": these tests damage rowsec's own tables (as only a superuser can)
// or the tables it registered, and expect the error.

#[pg_test]
fn a_retyped_registry_column_raises_instead_of_refusing_to_share() {
    // As in a_reshaped_or_impossible_configuration_raises_instead_of_guessing: take the lock
    // ALTER needs before configuring, or a test waiting for this one's configuration deadlocks.
    lock_rowsec_tables();
    deals("rt");
    run("ALTER TABLE rowsec.protected_tables ALTER COLUMN sharing TYPE text USING sharing::text");
    let e = error_of("rt", "SET ROLE rt_p2; SELECT rowsec.share('rt.deals', 30, to_person => 1)");
    // In words, not pgrx's "Postgres type text (Oid(25)) is not compatible with the Rust type bool".
    assert!(
        e.starts_with("XX000|rowsec: looking up the table in rowsec.protected_tables failed|column sharing: the value has type text where rowsec reads boolean|"),
        "{e}"
    );
}

#[pg_test]
fn a_null_in_the_registry_raises_instead_of_refusing_to_share() {
    // As in a_reshaped_or_impossible_configuration_raises_instead_of_guessing: take the lock
    // ALTER needs before configuring, or a test waiting for this one's configuration deadlocks.
    lock_rowsec_tables();
    deals("rn0");
    run("ALTER TABLE rowsec.protected_tables ALTER COLUMN key_column DROP NOT NULL;
         UPDATE rowsec.protected_tables SET key_column = NULL WHERE tbl = 'rn0.deals'::regclass");
    let e = error_of("rn0", "SET ROLE rn0_p2; SELECT rowsec.share('rn0.deals', 30, to_person => 1)");
    assert!(e.starts_with("XX000|rowsec: looking up the table in rowsec.protected_tables failed|column key_column is NULL"), "{e}");
}

#[pg_test]
fn a_renamed_registry_raises_postgres_own_error() {
    // As in a_reshaped_or_impossible_configuration_raises_instead_of_guessing: take the lock
    // ALTER needs before configuring, or a test waiting for this one's configuration deadlocks.
    lock_rowsec_tables();
    deals("rr");
    run("ALTER TABLE rowsec.protected_tables RENAME COLUMN sharing TO allows_sharing");
    let e = error_of("rr", "SET ROLE rr_p2; SELECT rowsec.share('rr.deals', 30, to_person => 1)");
    assert!(e.starts_with("42703|column \"sharing\" does not exist"), "{e}");
    run("RESET ROLE; ALTER TABLE rowsec.protected_tables RENAME COLUMN allows_sharing TO sharing;
         ALTER TABLE rowsec.protected_tables RENAME TO registry");
    let e = error_of("rr", "SET ROLE rr_p2; SELECT rowsec.share('rr.deals', 30, to_person => 1)");
    assert!(e.starts_with("42P01|relation \"rowsec.protected_tables\" does not exist"), "{e}");
}

#[pg_test]
fn a_renamed_key_column_raises_instead_of_refusing_the_update() {
    deals("kc");
    run("SET ROLE kc_p3");
    run("SELECT rowsec.share('kc.deals', 30, to_person => 5, access => 'write')");
    run("RESET ROLE; ALTER TABLE kc.deals RENAME COLUMN id TO deal_id");
    // The policies follow the rename; the registry still names "id".
    let e = error_of("kc", "SET ROLE kc_p5; UPDATE kc.deals SET title = 'x' WHERE deal_id = 30");
    assert!(e.starts_with("42703|the key column \"id\" does not exist in kc.deals|rowsec.protect_table was given"), "{e}");
}

#[pg_test]
fn a_retyped_shares_table_raises_instead_of_reading_garbage() {
    // The lock ALTER needs, before configuring (see the registry tests above).
    lock_rowsec_tables();
    deals("rs");
    run("SET ROLE rs_p3");
    let id = one::<i64>("SELECT rowsec.share('rs.deals', 30, to_person => 5)").unwrap();
    run("RESET ROLE; ALTER TABLE rowsec.shares ALTER COLUMN row_key TYPE numeric");
    let e = error_of("rs", "SET ROLE rs_p5; SELECT count(*) FROM rs.deals");
    assert!(
        e.starts_with("XX000|rowsec: reading rowsec.shares failed|column 3 should be \"row_key\" of type bigint, found a column of type numeric"),
        "{e}"
    );
    run("RESET ROLE");
    let e = error_of("rs", &format!("SET ROLE rs_p3; SELECT rowsec.unshare({id})"));
    assert!(e.starts_with("XX000|rowsec: reading the share from rowsec.shares failed|column row_key:"), "{e}");
}

#[pg_test]
fn a_reshaped_or_impossible_configuration_raises_instead_of_guessing() {
    // Tests run concurrently and each configure() waits, holding a lock on rowsec.config, for the
    // configuration row of the test that configured before it: take the lock that ALTER needs
    // before configuring, or this test and a waiting one deadlock.
    lock_rowsec_tables();
    org("rc");
    run("ALTER TABLE rowsec.config DROP CONSTRAINT config_identity_check;
         ALTER TABLE rowsec.config DROP CONSTRAINT config_check;
         UPDATE rowsec.config SET identity = 'setting', identity_setting = NULL");
    let e = error_of("rc", "SELECT rowsec.current_person()");
    assert!(e.starts_with("XX000|rowsec: reading rowsec.config failed|identity 'setting' with identity_setting NULL is not"), "{e}");
    run("UPDATE rowsec.config SET identity = 'login'; ALTER TABLE rowsec.config DROP COLUMN team_column");
    let e = error_of("rc", "SELECT rowsec.current_person()");
    assert!(e.starts_with("XX000|rowsec: reading rowsec.config failed|column 5 should be \"team_column\" of type name, found a dropped column"), "{e}");
}

#[pg_test]
fn a_share_to_an_unknown_team_or_an_inactive_person_is_refused() {
    deals("gt");
    run("SET ROLE gt_p2");
    let e = error_of("gt", "SELECT rowsec.share('gt.deals', 20, to_team => 'no-such-team')");
    assert!(e.starts_with("22023|no person of the directory has the team \"no-such-team\"|"), "{e}");
    assert!(e.ends_with("|Check the spelling against the team column of the directory table (SELECT DISTINCT on it lists the teams)."), "{e}");
    // Teams compare exactly.
    let e = error_of("gt", "SELECT rowsec.share('gt.deals', 20, to_team => 'Sales')");
    assert!(e.starts_with("22023|"), "{e}");
    // 4 is inactive.
    let e = error_of("gt", "SELECT rowsec.share('gt.deals', 20, to_person => 4)");
    assert!(e.starts_with("22023|person 4 is inactive|"), "{e}");
    assert_eq!(one::<i64>("SELECT count(*) FROM rowsec.my_shares"), Some(0));
    run("SELECT rowsec.share('gt.deals', 20, to_team => 'support')");
    // Someone who may not share the row learns nothing about teams or people.
    run("RESET ROLE");
    let e = error_of("gt", "SET ROLE gt_p3; SELECT rowsec.share('gt.deals', 10, to_team => 'no-such-team')");
    assert!(e.starts_with("42501|permission denied to share row 10"), "{e}");
    run("RESET ROLE; SET ROLE gt_p2");
    run("RESET ROLE");
    run("SELECT rowsec.configure('gt.people', 'id', 'manager_id', login_column => 'login', active_column => 'active')");
    let e = error_of("gt", "SET ROLE gt_p2; SELECT rowsec.share('gt.deals', 20, to_team => 'sales')");
    assert!(e.starts_with("22023|rowsec is configured without a team column|"), "{e}");
}

/// `deals` plus a one-day write share of deal 30 (owner 3) to person 5, made by 3; its id.
fn day_share(s: &str) -> i64 {
    deals(s);
    run(&format!("SET ROLE {s}_p3"));
    let id = one::<i64>(&format!(
        "SELECT rowsec.share('{s}.deals', 30, to_person => 5, access => 'write', expires_at => now() + interval '1 day', reason => 'cover')"
    ))
    .unwrap();
    run("RESET ROLE");
    id
}

#[pg_test]
fn a_share_made_through_a_share_is_derived_from_it_and_capped_at_its_expiry() {
    let parent = day_share("dv");
    // 5's own scope is their subtree {5}: they may update deal 30 only through the share.
    run("SET ROLE dv_p5");
    let child = one::<i64>("SELECT rowsec.share('dv.deals', 30, to_team => 'sales', access => 'write', reason => 'team')").unwrap();
    run("RESET ROLE");
    let row = one::<String>(&format!(
        "SELECT concat_ws(',', derived_from = {parent}, expiry_capped, expires_at = (SELECT expires_at FROM rowsec.shares WHERE id = {parent}), granted_by)
         FROM rowsec.shares WHERE id = {child}"
    ));
    assert_eq!(row.as_deref(), Some("t,t,t,5"));
    let audit = one::<String>(&format!(
        "SELECT concat_ws(',', action, derived_from = {parent}, expiry_capped, coalesce(requested_expires_at::text, 'no expiry asked'))
         FROM {SHARE_TRAIL} WHERE share_id = {child}"
    ));
    assert_eq!(audit.as_deref(), Some("share,t,t,no expiry asked"));
    // An earlier expiry than the parent's is kept as asked.
    run("SET ROLE dv_p5");
    let short = one::<i64>("SELECT rowsec.share('dv.deals', 30, to_person => 1, expires_at => now() + interval '1 hour')").unwrap();
    run("RESET ROLE");
    let row = one::<String>(&format!("SELECT concat_ws(',', derived_from = {parent}, expiry_capped, expires_at = now() + interval '1 hour') FROM rowsec.shares WHERE id = {short}"));
    assert_eq!(row.as_deref(), Some("t,f,t"));
}

#[pg_test]
fn a_share_made_with_ones_own_right_to_update_is_not_derived() {
    let parent = day_share("nd");
    // 2 manages 3: their own update scope covers deal 30, whatever is shared to them.
    run("SET ROLE nd_p3");
    run("SELECT rowsec.share('nd.deals', 30, to_person => 2, access => 'write', expires_at => now() + interval '1 day')");
    run("RESET ROLE; SET ROLE nd_p2");
    let id = one::<i64>("SELECT rowsec.share('nd.deals', 30, to_person => 1)").unwrap();
    run("RESET ROLE");
    let row = one::<String>(&format!("SELECT concat_ws(',', coalesce(derived_from::text, 'none'), expiry_capped, coalesce(expires_at::text, 'never')) FROM rowsec.shares WHERE id = {id}"));
    assert_eq!(row.as_deref(), Some("none,f,never"));
    assert!(parent > 0);
}

#[pg_test]
fn a_share_made_through_a_team_share_derives_from_the_team_share() {
    deals("dt");
    run("SET ROLE dt_p1");
    let parent = one::<i64>("SELECT rowsec.share('dt.deals', 10, to_team => 'support', access => 'write', expires_at => now() + interval '2 hours')").unwrap();
    run("RESET ROLE; SET ROLE dt_p5");
    let child = one::<i64>("SELECT rowsec.share('dt.deals', 10, to_person => 3, expires_at => now() + interval '1 week')").unwrap();
    run("RESET ROLE");
    let row = one::<String>(&format!(
        "SELECT concat_ws(',', derived_from = {parent}, expiry_capped, expires_at = now() + interval '2 hours') FROM rowsec.shares WHERE id = {child}"
    ));
    assert_eq!(row.as_deref(), Some("t,t,t"));
}

#[pg_test]
fn unsharing_a_share_ends_the_shares_derived_from_it_and_records_each() {
    let parent = day_share("uc");
    run("SET ROLE uc_p5");
    let child = one::<i64>("SELECT rowsec.share('uc.deals', 30, to_team => 'support', access => 'write')").unwrap();
    run("RESET ROLE; SET ROLE uc_p1");
    let unrelated = one::<i64>("SELECT rowsec.share('uc.deals', 10, to_person => 5)").unwrap();
    run("RESET ROLE");
    // A share derived from the derived one (as a support member other than 5 would make it).
    run(&format!("INSERT INTO rowsec.shares (tbl, row_key, grantee_person, access, granted_by, derived_from) VALUES ('uc.deals', 30, 1, 'read', 5, {child})"));
    let grandchild = one::<i64>("SELECT max(id) FROM rowsec.shares").unwrap();
    run("SET ROLE uc_p3");
    run(&format!("SELECT rowsec.unshare({parent}, 'cover over')"));
    run("RESET ROLE");
    assert_eq!(one::<String>("SELECT string_agg(id::text, ',') FROM rowsec.shares").as_deref(), Some(unrelated.to_string().as_str()));
    let trail = one::<String>(&format!(
        "SELECT string_agg(concat_ws(',', share_id, actor_person, reason), ' ; ' ORDER BY id) FROM {SHARE_TRAIL} WHERE action = 'unshare'",
    ));
    run("SET ROLE uc_p5");
    assert_eq!(visible("uc"), vec![10, 50], "the derived share no longer lets 5's team see deal 30");
    run("RESET ROLE");
    assert_eq!(
        trail,
        Some(format!(
            "{parent},3,cover over ; {child},3,derived from share {parent}, which was removed ; {grandchild},3,derived from share {child}, which was removed"
        ))
    );
}

#[pg_test]
fn a_derived_share_grants_nothing_once_a_share_it_derives_from_is_gone() {
    // rowsec.shares has no foreign key on derived_from (a Citus reference table cannot keep it):
    // a parent deleted by hand, without its derived shares, takes their grants with it.
    deals("fk");
    run("INSERT INTO rowsec.shares (tbl, row_key, grantee_person, access, granted_by) VALUES ('fk.deals', 60, 2, 'write', 1)");
    let parent = one::<i64>("SELECT max(id) FROM rowsec.shares").unwrap();
    run(&format!("INSERT INTO rowsec.shares (tbl, row_key, grantee_person, access, granted_by, derived_from) VALUES ('fk.deals', 10, 5, 'write', 2, {parent})"));
    let child = one::<i64>("SELECT max(id) FROM rowsec.shares").unwrap();
    run(&format!("INSERT INTO rowsec.shares (tbl, row_key, grantee_person, access, granted_by, derived_from) VALUES ('fk.deals', 20, 5, 'read', 5, {child})"));
    run("SET ROLE fk_p5");
    assert_eq!(visible("fk"), vec![10, 20, 50], "while the parent is there");
    run("RESET ROLE");
    run(&format!("DELETE FROM rowsec.shares WHERE id = {parent}"));
    run("SET ROLE fk_p5");
    assert_eq!(visible("fk"), vec![50], "the derived share and the one derived from it grant nothing");
    run("RESET ROLE");
}

#[pg_test]
fn cleanup_removes_expired_shares_and_their_derived_shares_and_records_them() {
    deals("ce");
    run("INSERT INTO rowsec.shares (tbl, row_key, grantee_person, access, granted_by, expires_at) VALUES
         ('ce.deals', 10, 3, 'write', 1, now() - interval '1 minute'),
         ('ce.deals', 20, 3, 'read', 1, now() + interval '1 hour'),
         ('ce.deals', 60, 3, 'read', 1, NULL)");
    let expired = one::<i64>("SELECT id FROM rowsec.shares WHERE row_key = 10").unwrap();
    run(&format!("INSERT INTO rowsec.shares (tbl, row_key, grantee_person, access, granted_by, expires_at, derived_from, expiry_capped)
                  VALUES ('ce.deals', 10, 5, 'read', 3, now() - interval '1 minute', {expired}, true)"));
    let derived = one::<i64>("SELECT max(id) FROM rowsec.shares").unwrap();
    assert_eq!(one::<i64>("SELECT rowsec.cleanup_expired_shares()"), Some(2));
    assert_eq!(one::<String>("SELECT string_agg(row_key::text, ',' ORDER BY row_key) FROM rowsec.shares").as_deref(), Some("20,60"));
    let trail = one::<String>(&format!("SELECT string_agg(concat_ws(',', action, share_id, coalesce(actor_person::text, 'no person'), actor_role = current_user, reason), ' ; ' ORDER BY id) FROM {SHARE_TRAIL}"));
    assert_eq!(trail, Some(format!("unshare,{expired},no person,t,expired ; unshare,{derived},no person,t,expired")));
    assert_eq!(one::<i64>("SELECT rowsec.cleanup_expired_shares()"), Some(0), "nothing left to clean");
}

#[pg_test]
fn my_shares_lists_what_a_person_made_received_or_owns_or_manages() {
    deals("ms");
    run("SET ROLE ms_p3");
    let to5 = one::<i64>("SELECT rowsec.share('ms.deals', 30, to_person => 5, reason => 'cover')").unwrap();
    run("RESET ROLE; SET ROLE ms_p5");
    let to_sales = one::<i64>("SELECT rowsec.share('ms.deals', 50, to_team => 'sales')").unwrap();
    run("RESET ROLE; SET ROLE ms_p1");
    let to_exec = one::<i64>("SELECT rowsec.share('ms.deals', 10, to_person => 2)").unwrap();
    run("RESET ROLE");
    let listing = |who: &str| {
        run(&format!("SET ROLE {who}"));
        let l = one::<String>("SELECT coalesce(string_agg(share_id || ':' || seen_as, ' ' ORDER BY share_id), '') FROM rowsec.my_shares");
        run("RESET ROLE");
        l.unwrap_or_default()
    };
    // 3 made to5 and is in team sales; 2 manages 3 (and 5 through 4), is in sales and got to_exec.
    assert_eq!(listing("ms_p3"), format!("{to5}:granter {to_sales}:grantee"));
    assert_eq!(listing("ms_p5"), format!("{to5}:grantee {to_sales}:granter"));
    assert_eq!(listing("ms_p2"), format!("{to5}:manager {to_sales}:grantee {to_exec}:grantee"));
    assert_eq!(listing("ms_p1"), format!("{to5}:manager {to_sales}:manager {to_exec}:granter"));
    assert_eq!(listing("ms_stranger"), "", "nobody lists nothing");
    assert_eq!(listing("ms_p4"), "", "an inactive person lists nothing");
    // Metadata only: the columns of the view.
    let columns = one::<String>("SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'rowsec.my_shares'::regclass AND attnum > 0");
    assert_eq!(
        columns.as_deref(),
        Some("share_id,tbl,row_key,grantee_person,grantee_team,access,expires_at,granted_by,granted_at,reason,derived_from,expiry_capped,seen_as")
    );
    run("SET ROLE ms_p3");
    assert_eq!(one::<String>(&format!("SELECT tbl::text || '/' || row_key || '/' || reason FROM rowsec.my_shares WHERE share_id = {to5}")).as_deref(), Some("ms.deals/30/cover"));
}

#[pg_test]
fn the_unshare_hint_points_at_my_shares() {
    deals("uh");
    let e = error_of("uh", "SET ROLE uh_p2; SELECT rowsec.unshare(987654321)");
    assert!(e.ends_with("|SELECT * FROM rowsec.my_shares lists the shares you made, the shares you received and the shares of your subtree's records, with their ids."), "{e}");
    assert_eq!(error_of("uh", "SET ROLE uh_p2; SELECT * FROM rowsec.my_shares"), "ok");
}

#[pg_test]
fn configure_refuses_a_directory_that_is_not_an_ordinary_table() {
    org("nt");
    run("CREATE VIEW nt.v AS SELECT * FROM nt.people;
         CREATE MATERIALIZED VIEW nt.m AS SELECT * FROM nt.people; CREATE UNIQUE INDEX ON nt.m (id);
         CREATE TABLE nt.p (id bigint PRIMARY KEY, manager_id bigint, login text) PARTITION BY RANGE (id);");
    for (rel, kind) in [("nt.v", "view"), ("nt.m", "materialized view"), ("nt.p", "partitioned table")] {
        let e = error_of("nt", &format!("SELECT rowsec.configure('{rel}', 'id', 'manager_id', login_column => 'login')"));
        assert!(e.starts_with(&format!("42809|the rowsec directory {rel} is a {kind}|")), "{e}");
    }
}

#[pg_test]
fn a_failing_trigger_creation_says_what_configure_was_doing() {
    org("et");
    run("CREATE TABLE et.other (id bigint PRIMARY KEY, manager_id bigint, login text);
         CREATE FUNCTION et.no_triggers() RETURNS event_trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'triggers are frozen' USING ERRCODE = 'P0001', DETAIL = 'change freeze'; END $$;
         CREATE EVENT TRIGGER et_no_triggers ON ddl_command_start WHEN TAG IN ('CREATE TRIGGER') EXECUTE FUNCTION et.no_triggers();");
    let e = error_of("et", "SELECT rowsec.configure('et.other', 'id', 'manager_id', login_column => 'login')");
    assert!(
        e.starts_with("P0001|triggers are frozen|rowsec was creating the trigger rowsec_directory_changed on the directory et.other. change freeze|"),
        "{e}"
    );
}

/// `deals` with `{s}_p1` (subtree 1..5: deals 10..50) a member of `{s}_limited`, which may
/// read at most 4 rows and change at most 1 per statement.
fn limited(s: &str) {
    deals(s);
    run(&format!(
        r#"
        CREATE ROLE {s}_limited; GRANT {s}_limited TO {s}_p1;
        SELECT rowsec.configure_limits('{{"{s}_limited": {{"select": 4, "update": 1}}}}');
        CREATE FUNCTION {s}.one_by_one() RETURNS bigint LANGUAGE plpgsql AS $f$
        DECLARE n bigint := 0; k bigint;
        BEGIN
            FOREACH k IN ARRAY ARRAY[10, 20, 30, 40, 50] LOOP
                PERFORM 1 FROM {s}.deals WHERE id = k;
                n := n + 1;
            END LOOP;
            RETURN n;
        END $f$;
        "#
    ));
}

#[pg_test]
fn configure_limits_rejects_unknown_commands_and_negative_rows() {
    org("lv");
    assert_eq!(
        error_of("lv", r#"SELECT rowsec.configure_limits('{"r": {"insert": 1}}')"#),
        "22023|unknown command \"insert\" in the limits of role \"r\"|Limits exist for select, update and delete.|rowsec.configure_limits is called by the script rowsec compile writes from roles.<name>.limits."
    );
    assert!(error_of("lv", r#"SELECT rowsec.configure_limits('{"r": {"select": -1}}')"#).starts_with("22023|the select limit of role \"r\" must be"));
    assert!(error_of("lv", r#"SELECT rowsec.configure_limits('[1]')"#).starts_with("22023|limits must be a JSON object"));
}

#[pg_test]
fn a_statement_past_the_limit_fails_naming_table_command_and_limit() {
    limited("lm");
    // A pg_test is one statement: every query below counts against the same limit.
    run("SET ROLE lm_p1");
    assert_eq!(
        error_of("lm", "SELECT * FROM lm.deals"),
        "42501|select of more than 4 rows of table lm.deals in one statement is not allowed|The roles of the current user allow at most 4 rows of lm.deals per select statement (roles.<name>.limits of the spec); the statement failed at row 5.|Narrow the query with a condition, or read fewer rows per statement."
    );
}

#[pg_test]
fn a_function_reading_row_by_row_counts_against_its_callers_limit() {
    limited("lf");
    run("SET ROLE lf_p1");
    assert!(error_of("lf", "SELECT lf.one_by_one()").starts_with("42501|select of more than 4 rows of table lf.deals"));
}

#[pg_test]
fn an_update_past_the_limit_changes_nothing() {
    limited("lu");
    run("SET ROLE lu_p1");
    assert!(error_of("lu", "UPDATE lu.deals SET title = 'x' WHERE id IN (10, 20)").starts_with("42501|update of more than 1 rows"));
    run("RESET ROLE");
    assert_eq!(one::<i64>("SELECT count(*) FROM lu.deals WHERE title = 'x'"), Some(0));
}

#[pg_test]
fn a_role_without_limits_lifts_them() {
    limited("ln");
    run("CREATE ROLE ln_unlimited; GRANT ln_unlimited TO ln_p1");
    run(r#"SELECT rowsec.configure_limits('{"ln_limited": {"select": 4}, "ln_unlimited": {}}')"#);
    run("SET ROLE ln_p1");
    assert_eq!(one::<i64>("SELECT count(*) FROM ln.deals"), Some(5));
}

/// `{s}.deals`: 100,000 rows of 2,000 people in a tree of fan-out 8 (person 1 sees every row,
/// leaf 2000 sees 50), an index on the owner, setting identity `app.{s}_person`, and a
/// statement `{s}_q` prepared as a pool's driver prepares it.
fn plan_fit_org(s: &str) {
    run(&format!(
        r#"
        CREATE SCHEMA {s};
        CREATE TABLE {s}.people (id bigint PRIMARY KEY, manager_id bigint, team text, login text, active boolean);
        INSERT INTO {s}.people SELECT g, CASE WHEN g > 1 THEN (g - 2) / 8 + 1 END, NULL, NULL, true FROM generate_series(1, 2000) g;
        SELECT rowsec.configure('{s}.people', 'id', 'manager_id', 'team', NULL, 'active', 'setting', 'app.{s}_person');
        CREATE TABLE {s}.deals (id bigint PRIMARY KEY, owner_id bigint NOT NULL, amount int NOT NULL);
        INSERT INTO {s}.deals SELECT g, 1 + g % 2000, g % 100 FROM generate_series(1, 100000) g;
        CREATE INDEX {s}_deals_owner ON {s}.deals (owner_id);
        ANALYZE {s}.deals;
        ALTER TABLE {s}.deals ENABLE ROW LEVEL SECURITY;
        ALTER TABLE {s}.deals FORCE ROW LEVEL SECURITY;
        CREATE POLICY sel ON {s}.deals FOR SELECT USING (rowsec.in_subtree(owner_id));
        CREATE ROLE {s}_pool;
        GRANT USAGE ON SCHEMA {s} TO {s}_pool;
        GRANT SELECT ON {s}.deals TO {s}_pool;
        SET max_parallel_workers_per_gather = 0;
        "#
    ));
}

fn plan_of(sql: &str) -> String {
    Spi::connect(|c| {
        c.select(&format!("EXPLAIN (COSTS OFF) {sql}"), None, &[])
            .unwrap()
            .map(|r| r.get::<String>(1).unwrap().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// Issue 12: a generic plan made for the CEO (every row: a sequential scan) is not kept for a
/// rep once the identity setting names them: the statement is replanned and finds the rep's 50
/// rows through the owner index; the CEO gets the scan back. Plans are compared by shape.
#[pg_test]
fn a_prepared_statement_is_replanned_when_the_setting_names_a_person_of_another_size() {
    plan_fit_org("pf");
    run("SET plan_cache_mode = force_generic_plan; SET ROLE pf_pool;
         PREPARE pf_q AS SELECT count(*), sum(amount) FROM pf.deals");
    run("SET app.pf_person = '1'");
    for _ in 0..3 {
        assert_eq!(one::<i64>("EXECUTE pf_q"), Some(100_000));
    }
    let ceo = plan_of("EXECUTE pf_q");
    assert!(ceo.contains("Seq Scan on deals") && !ceo.contains("pf_deals_owner"), "CEO:\n{ceo}");

    run("SET app.pf_person = '2000'");
    let rep = plan_of("EXECUTE pf_q");
    assert!(rep.contains("pf_deals_owner"), "the rep runs the CEO's plan:\n{rep}");
    assert_eq!(one::<i64>("EXECUTE pf_q"), Some(50));

    // SET LOCAL and set_config are seen the same way; back to the CEO, back to the scan.
    run("SELECT set_config('app.pf_person', '1', true)");
    let again = plan_of("EXECUTE pf_q");
    assert!(again.contains("Seq Scan on deals") && !again.contains("pf_deals_owner"), "CEO again:\n{again}");
    assert_eq!(one::<i64>("EXECUTE pf_q"), Some(100_000));
}

/// A rep after another rep (same class) keeps the plan and still gets exactly their own rows:
/// the plan carries no person, the index condition is evaluated when it runs.
#[pg_test]
fn people_of_one_class_share_a_plan_and_each_gets_their_rows() {
    plan_fit_org("pc");
    run("SET plan_cache_mode = force_generic_plan; SET ROLE pc_pool;
         PREPARE pc_q AS SELECT array_agg(DISTINCT owner_id) FROM pc.deals");
    for leaf in [2000_i64, 1999, 1500, 1200] {
        run(&format!("SET app.pc_person = '{leaf}'"));
        assert_eq!(ids("EXECUTE pc_q"), vec![leaf], "leaf {leaf}");
        assert!(plan_of("EXECUTE pc_q").contains("pc_deals_owner"));
    }
    run("SET app.pc_person = '1'");
    assert_eq!(ids("EXECUTE pc_q").len(), 2000);
}
