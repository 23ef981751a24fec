//! What signed identity costs per statement (issue 14), printed as ratios, never asserted
//! (timings depend on the machine). Its own test binary, so nothing else runs beside it.
//!
//! In one transaction, a PL/pgSQL loop sets the identity setting and runs
//! `SELECT count(*) FROM crm.accounts` (11 of 44 rows visible) `ROWSEC_BENCH_STATEMENTS` times
//! (default 2000): under login identity (rep 21's own login, the setting ignored; no limits),
//! under the unsigned setting (crm-setting.yaml), under a signed one with the same token every
//! time (the pool's case within a transaction), and with a new token every statement (each one's
//! signature checked). Medians of 3; ratios against the unsigned setting and against login.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use postgres::Client;
use rowsec_core::token::{sign, Claims};
use rowsec_e2e::cluster::repo_root;
use rowsec_e2e::fixture::{env, login_of, setting_spec_path};

const KEY: &[u8] = b"bench: thirty-two bytes of key..";

/// Microseconds per statement as `role`, the median of 3 runs.
fn median_us_per_statement(c: &mut Client, role: &str, tokens: &[String]) -> f64 {
    let mut runs: Vec<f64> = (0..3)
        .map(|_| {
            let mut tx = c.transaction().unwrap();
            tx.batch_execute(&format!(
                "SET LOCAL ROLE {role}; CREATE TEMP TABLE toks (n serial, t text) ON COMMIT DROP"
            ))
            .unwrap();
            tx.execute("INSERT INTO toks (t) SELECT unnest($1::text[])", &[&tokens]).unwrap();
            let started = Instant::now();
            tx.batch_execute(
                "DO $$ DECLARE v text; seen bigint; BEGIN
                   FOR v IN SELECT t FROM toks ORDER BY n LOOP
                     PERFORM set_config('app.person_id', v, true);
                     SELECT count(*) INTO seen FROM crm.accounts;
                     IF seen <> 11 THEN RAISE EXCEPTION 'saw % rows', seen; END IF;
                   END LOOP; END $$",
            )
            .unwrap();
            let us = started.elapsed().as_secs_f64() * 1e6 / tokens.len() as f64;
            tx.rollback().unwrap();
            us
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[1]
}

#[test]
fn benchmark_signed_identity_per_statement() {
    let n: usize = std::env::var("ROWSEC_BENCH_STATEMENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let env = env();
    let signed_db = env.database_for(&repo_root().join("tests/fixtures/crm-signed.yaml"));
    let plain_db = env.database_for(&setting_spec_path());
    // Login identity without crm.yaml's limits, whose row counting would be measured too: the
    // setting fixtures have none. (Its references rule and audit act on writes only.)
    let login_db = env.database_for(&repo_root().join("tests/fixtures/crm-references.yaml"));
    let hex: String = KEY.iter().map(|b| format!("{b:02x}")).collect();
    env.cluster
        .admin(&signed_db)
        .batch_execute(&format!("INSERT INTO rowsec.identity_keys VALUES ('kb', '\\x{hex}')"))
        .unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let token = |i: usize| {
        let claims = Claims {
            key_id: "kb".into(),
            person: 21,
            expires_at: now + 600 + i as i64,
            database: signed_db.clone(),
            roles: vec!["sales_rep".into()],
        };
        sign(KEY, &claims).unwrap()
    };
    let mut plain = env.cluster.admin(&plain_db);
    let mut signed = env.cluster.admin(&signed_db);
    let mut login = env.cluster.admin(&login_db);
    let rep = login_of(21);
    // Interleaved, each twice, so a neighbour's load on a shared machine falls on all four.
    let (mut by_login, mut unsigned, mut same, mut fresh) = (0.0, 0.0, 0.0, 0.0);
    for _ in 0..2 {
        by_login += median_us_per_statement(&mut login, &rep, &vec!["21".to_owned(); n]) / 2.0;
        unsigned += median_us_per_statement(&mut plain, "sales_rep", &vec!["21".to_owned(); n]) / 2.0;
        same += median_us_per_statement(&mut signed, "sales_rep", &vec![token(0); n]) / 2.0;
        fresh += median_us_per_statement(&mut signed, "sales_rep", &(0..n).map(token).collect::<Vec<_>>()) / 2.0;
    }
    println!(
        "signed identity, {n} statements in one transaction (median of 3, mean of 2 rounds), us/statement and ratio to \
         the unsigned setting / to login:\n\
         login (current_user)          {by_login:7.1} us  {:.2}x  1.00x\n\
         unsigned setting              {unsigned:7.1} us  1.00x  {:.2}x\n\
         signed, same token            {same:7.1} us  {:.2}x  {:.2}x\n\
         signed, a new token each time {fresh:7.1} us  {:.2}x  {:.2}x",
        by_login / unsigned,
        unsigned / by_login,
        same / unsigned,
        same / by_login,
        fresh / unsigned,
        fresh / by_login
    );
}
