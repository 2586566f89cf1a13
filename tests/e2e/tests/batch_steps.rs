//! The batched saga steps, `stock.reserve_many` and `payment.charge_many`, against the real
//! database. Only other services reach them (through private endpoints), so these tests call the
//! functions in SQL: a batch must answer each saga as the single-saga function (`stock.reserve`,
//! `payment.charge`) would, called for each saga in turn, and leave the same stock, credit and
//! ledgers. The items and users are created through the public API; stock and credit are read
//! back in SQL (a direct call bypasses the `find` view, so `find` may not show it yet).

use e2e::{App, sql};
use std::sync::OnceLock;

fn app() -> &'static App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(App::start)
}

fn texts(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    format!("ARRAY[{}]::text[]", quoted.join(","))
}

fn numbers(values: &[i64]) -> String {
    let listed: Vec<String> = values.iter().map(i64::to_string).collect();
    format!("ARRAY[{}]::bigint[]", listed.join(","))
}

/// Replaces each id of `items` by its label, so answers about twin rows compare equal.
fn labelled(text: &str, items: &[(String, &str)]) -> String {
    items.iter().fold(text.to_string(), |t, (id, label)| t.replace(id.as_str(), label))
}

/// A saga of the reserve scenario: its name and its lines (item label, quantity), in the
/// ascending order of the item ids.
type ReserveSaga = (&'static str, Vec<(&'static str, i64)>);

fn reserve_scenario() -> Vec<ReserveSaga> {
    vec![
        ("s1", vec![("A", 2), ("B", 1)]),
        ("s2", vec![("A", 1), ("B", 1)]),
        ("s3", vec![("A", 1)]),
        ("s1", vec![("A", 2), ("B", 1)]),
        ("s4", vec![("U", 1)]),
        ("s2", vec![("A", 1), ("B", 1)]),
        ("s5", vec![("A", 1), ("U", 1)]),
        ("s6", vec![]),
    ]
}

/// Items A (stock 3) and B (stock 1), A's id below B's, and an unknown id U above both.
fn reserve_items() -> Vec<(String, &'static str)> {
    let mut ids = [app().new_item(1, 0), app().new_item(1, 0)];
    ids.sort();
    for (id, stock) in [(&ids[0], 3), (&ids[1], 1)] {
        let added = app().post(&format!("/stock/add/{id}/{stock}"));
        assert_eq!(added.status, 200, "{added:?}");
    }
    let unknown = format!("zz-no-such-item-{}", &ids[0][..8]);
    let [a, b] = ids;
    vec![(a, "A"), (b, "B"), (unknown, "U")]
}

fn id_of<'a>(items: &'a [(String, &str)], label: &str) -> &'a str {
    &items.iter().find(|(_, l)| *l == label).expect("a label of the scenario").0
}

fn stock(item: &str) -> i64 {
    sql(&format!("SELECT stock FROM stock.items WHERE item_id = '{item}'"))[0].parse().expect("a number")
}

/// Runs the scenario as one batch; each saga's answer as `name=outcome`, items as labels.
fn reserve_as_batch(items: &[(String, &str)], prefix: &str) -> Vec<String> {
    let scenario = reserve_scenario();
    let sagas: Vec<String> = scenario.iter().map(|(name, _)| format!("{prefix}-{name}")).collect();
    let counts: Vec<i64> = scenario.iter().map(|(_, lines)| lines.len() as i64).collect();
    let ids: Vec<&str> = scenario.iter().flat_map(|(_, lines)| lines.iter().map(|(l, _)| id_of(items, l))).collect();
    let quantities: Vec<i64> = scenario.iter().flat_map(|(_, lines)| lines.iter().map(|(_, q)| *q)).collect();
    let saga_refs: Vec<&str> = sagas.iter().map(String::as_str).collect();
    let rows = sql(&format!(
        "SELECT o_saga || '=' || o_outcome FROM stock.reserve_many({}, {}, {}, {})",
        texts(&saga_refs),
        numbers(&counts),
        texts(&ids),
        numbers(&quantities)
    ));
    rows.iter().map(|r| labelled(&r.replacen(&format!("{prefix}-"), "", 1), items)).collect()
}

/// Runs the scenario through the single-saga function, one saga after the other.
fn reserve_one_by_one(items: &[(String, &str)], prefix: &str) -> Vec<String> {
    reserve_scenario()
        .iter()
        .map(|(name, lines)| {
            let ids: Vec<&str> = lines.iter().map(|(l, _)| id_of(items, l)).collect();
            let quantities: Vec<i64> = lines.iter().map(|(_, q)| *q).collect();
            let outcome =
                sql(&format!("SELECT stock.reserve('{prefix}-{name}', {}, {})", texts(&ids), numbers(&quantities)));
            format!("{name}={}", labelled(&outcome[0], items))
        })
        .collect()
}

/// The ledger rows of the sagas named `prefix-*` in `table`: `name state detail`, by name.
fn ledger_rows(table: &str, detail: &str, prefix: &str) -> Vec<String> {
    sql(&format!(
        "SELECT substr(saga_id, length('{prefix}-') + 1) || ' ' || state || ' ' || {detail} \
         FROM {table} WHERE saga_id LIKE '{prefix}-%' ORDER BY saga_id"
    ))
}

/// The reservations of the sagas named `prefix-*`, items as labels.
fn reservations(items: &[(String, &str)], prefix: &str) -> Vec<String> {
    ledger_rows("stock.reservations", "coalesce(reason, '')", prefix).iter().map(|r| labelled(r, items)).collect()
}

#[test]
fn reserve_many_answers_each_saga_as_reserve_would_in_turn() {
    let batch_items = reserve_items();
    let single_items = reserve_items();
    let batch_prefix = format!("rm-{}", batch_items[0].0);
    let single_prefix = format!("r1-{}", single_items[0].0);

    let expected = [
        "s1=reserved",
        "s2=refused: out of stock: B",
        "s3=reserved",
        "s1=reserved",
        "s4=refused: unknown item: U",
        "s2=refused: out of stock: B",
        "s5=refused: out of stock: A",
        "s6=reserved",
    ];
    let batch = reserve_as_batch(&batch_items, &batch_prefix);
    assert_eq!(batch, expected);
    assert_eq!(reserve_one_by_one(&single_items, &single_prefix), batch, "a batch answers as single calls in turn");

    assert_eq!(
        reservations(&batch_items, &batch_prefix),
        [
            "s1 reserved ",
            "s2 refused out of stock: B",
            "s3 reserved ",
            "s4 refused unknown item: U",
            "s5 refused out of stock: A",
            "s6 reserved "
        ]
    );
    assert_eq!(reservations(&single_items, &single_prefix), reservations(&batch_items, &batch_prefix));
    for items in [&batch_items, &single_items] {
        assert_eq!((stock(id_of(items, "A")), stock(id_of(items, "B"))), (0, 0), "3 - 2 - 1 of A, 1 - 1 of B");
    }

    // The same batch again: every saga answers from its ledger row, and nothing changes.
    assert_eq!(reserve_as_batch(&batch_items, &batch_prefix), expected);
    assert_eq!((stock(id_of(&batch_items, "A")), stock(id_of(&batch_items, "B"))), (0, 0));
}

/// A saga of the charge scenario: its name, its user's label and the amount.
fn charge_scenario() -> Vec<(&'static str, &'static str, i64)> {
    vec![
        ("c1", "X", 3),
        ("c2", "X", 3),
        ("c3", "X", 2),
        ("c4", "Y", 1),
        ("c5", "Z", 1),
        ("c1", "X", 3),
        ("c5", "Z", 1),
        ("c6", "X", 0),
    ]
}

/// Users X (credit 5) and Y (credit 0), and an unknown id Z.
fn charge_users() -> Vec<(String, &'static str)> {
    let x = app().new_user(5);
    let y = app().new_user(0);
    let z = format!("unknown-{x}");
    vec![(x, "X"), (y, "Y"), (z, "Z")]
}

fn credit(user: &str) -> i64 {
    sql(&format!("SELECT credit FROM payment.users WHERE user_id = '{user}'"))[0].parse().expect("a number")
}

fn charge_as_batch(users: &[(String, &str)], prefix: &str) -> Vec<String> {
    let scenario = charge_scenario();
    let sagas: Vec<String> = scenario.iter().map(|(name, _, _)| format!("{prefix}-{name}")).collect();
    let saga_refs: Vec<&str> = sagas.iter().map(String::as_str).collect();
    let ids: Vec<&str> = scenario.iter().map(|(_, u, _)| id_of(users, u)).collect();
    let amounts: Vec<i64> = scenario.iter().map(|(_, _, a)| *a).collect();
    sql(&format!(
        "SELECT o_saga || '=' || o_outcome FROM payment.charge_many({}, {}, {})",
        texts(&saga_refs),
        texts(&ids),
        numbers(&amounts)
    ))
    .iter()
    .map(|r| r.replacen(&format!("{prefix}-"), "", 1))
    .collect()
}

fn charge_one_by_one(users: &[(String, &str)], prefix: &str) -> Vec<String> {
    charge_scenario()
        .iter()
        .map(|(name, u, amount)| {
            let outcome = sql(&format!("SELECT payment.charge('{prefix}-{name}', '{}', {amount})", id_of(users, u)));
            format!("{name}={}", outcome[0])
        })
        .collect()
}

fn charges(prefix: &str) -> Vec<String> {
    ledger_rows("payment.charges", "amount", prefix)
}

#[test]
fn charge_many_answers_each_saga_as_charge_would_in_turn() {
    let batch_users = charge_users();
    let single_users = charge_users();
    let batch_prefix = format!("cm-{}", batch_users[0].0);
    let single_prefix = format!("c1-{}", single_users[0].0);

    let expected = [
        "c1=charged",
        "c2=refused",
        "c3=charged",
        "c4=refused",
        "c5=unknown_user",
        "c1=charged",
        "c5=refused",
        "c6=charged",
    ];
    let batch = charge_as_batch(&batch_users, &batch_prefix);
    assert_eq!(batch, expected);
    assert_eq!(charge_one_by_one(&single_users, &single_prefix), batch, "a batch answers as single calls in turn");

    assert_eq!(
        charges(&batch_prefix),
        ["c1 charged 3", "c2 refused 3", "c3 charged 2", "c4 refused 1", "c5 refused 1", "c6 charged 0"]
    );
    assert_eq!(charges(&single_prefix), charges(&batch_prefix));
    for users in [&batch_users, &single_users] {
        assert_eq!((credit(id_of(users, "X")), credit(id_of(users, "Y"))), (0, 0), "5 - 3 - 2 for X, nothing for Y");
    }

    // Again: answered from the ledger (the unknown user's charge is now a refused row).
    let again: Vec<String> = expected.iter().map(|e| e.replace("c5=unknown_user", "c5=refused")).collect();
    assert_eq!(charge_as_batch(&batch_users, &batch_prefix), again);
    assert_eq!((credit(id_of(&batch_users, "X")), credit(id_of(&batch_users, "Y"))), (0, 0));
}
