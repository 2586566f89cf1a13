//! The rental saga's payment steps, `payment.credit` (credit an item's owner) and its
//! compensation `payment.reverse_credit`, against the real database. Only other services reach
//! them (through private endpoints), so these tests call the functions in SQL, as
//! tests/batch_steps.rs does: each step idempotent per saga, a reverse that the owner's credit
//! cannot cover refused with nothing changed, a reverse before the credit blocking it, a credit
//! past 2^63 − 1 refused. Users are created through the public API; credit and the ledger are
//! read back in SQL.

use e2e::{App, sql};
use std::sync::OnceLock;

fn app() -> &'static App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(App::start)
}

fn credit_of(user: &str) -> i64 {
    sql(&format!("SELECT credit FROM payment.users WHERE user_id = '{user}'"))[0].parse().expect("a number")
}

/// A saga id no other test run uses (the user's id is fresh).
fn saga(name: &str, user: &str) -> String {
    format!("rental:{name}-{user}")
}

fn credit(saga: &str, user: &str, amount: i64) -> String {
    sql(&format!("SELECT payment.credit('{saga}', '{user}', {amount})"))[0].clone()
}

fn reverse(saga: &str) -> String {
    sql(&format!("SELECT payment.reverse_credit('{saga}')"))[0].clone()
}

/// The saga's ledger row: `state|user|amount|reason` (empty for a null).
fn ledger(saga: &str) -> Vec<String> {
    sql(&format!(
        "SELECT state || '|' || coalesce(user_id, '') || '|' || coalesce(amount::text, '') || '|' || coalesce(reason, '') \
         FROM payment.credits WHERE saga_id = '{saga}'"
    ))
}

#[test]
fn a_credit_is_made_once_per_saga() {
    let owner = app().new_user(10);
    let s = saga("once", &owner);
    assert_eq!(credit(&s, &owner, 7), "credited");
    assert_eq!(credit_of(&owner), 17);
    for _ in 0..3 {
        assert_eq!(credit(&s, &owner, 7), "credited", "a repeated credit answers from the ledger");
    }
    assert_eq!(credit(&s, &owner, 1000), "credited", "whatever the repeat says, the saga's credit stands");
    assert_eq!(credit_of(&owner), 17, "credited once");
    assert_eq!(ledger(&s), [format!("credited|{owner}|7|")]);
    // A credit of 0 is a credit.
    let zero = saga("zero", &owner);
    assert_eq!(credit(&zero, &owner, 0), "credited");
    assert_eq!(credit_of(&owner), 17);
}

#[test]
fn a_credit_to_an_unknown_user_is_refused() {
    let someone = app().new_user(0);
    let nobody = format!("no-such-user-{someone}");
    let s = saga("unknown", &someone);
    assert_eq!(credit(&s, &nobody, 5), "unknown_user");
    assert_eq!(ledger(&s), [format!("refused|{nobody}|5|unknown user")]);
    assert_eq!(credit(&s, &nobody, 5), "refused", "refused for good");
    assert_eq!(sql(&format!("SELECT count(*) FROM payment.users WHERE user_id = '{nobody}'")), ["0"]);
    assert_eq!(reverse(&s), "nothing_credited");
    assert_eq!(ledger(&s), [format!("refused|{nobody}|5|unknown user")], "the reverse changes nothing");
}

#[test]
fn a_reverse_takes_the_credit_back_once() {
    let owner = app().new_user(3);
    let s = saga("reverse", &owner);
    assert_eq!(credit(&s, &owner, 9), "credited");
    assert_eq!(credit_of(&owner), 12);
    assert_eq!(reverse(&s), "reversed");
    assert_eq!(credit_of(&owner), 3, "the credit as it was before");
    assert_eq!(reverse(&s), "reversed", "a repeated reverse answers from the ledger");
    assert_eq!(credit_of(&owner), 3, "taken back once");
    assert_eq!(credit(&s, &owner, 9), "reversed", "a credit after its reverse credits nothing");
    assert_eq!(credit_of(&owner), 3);
    assert_eq!(ledger(&s), [format!("reversed|{owner}|9|reversed")]);
}

#[test]
fn a_reverse_the_owner_cannot_cover_is_refused_and_changes_nothing() {
    let owner = app().new_user(0);
    let s = saga("spent", &owner);
    assert_eq!(credit(&s, &owner, 20), "credited");
    // The owner spends part of it meanwhile.
    let paid = app().post(&format!("/payment/pay/{owner}/15"));
    assert_eq!(paid.status, 200, "{paid:?}");
    assert_eq!(credit_of(&owner), 5);
    for _ in 0..2 {
        assert_eq!(reverse(&s), "insufficient_credit");
        assert_eq!(credit_of(&owner), 5, "nothing taken");
        assert_eq!(ledger(&s), [format!("credited|{owner}|20|reverse refused: the owner no longer has the amount")]);
    }
    // Once the owner has it again, a later call (an operator's) takes it back.
    assert_eq!(app().post(&format!("/payment/add_funds/{owner}/15")).status, 200);
    assert_eq!(reverse(&s), "reversed");
    assert_eq!(credit_of(&owner), 0);
}

#[test]
fn a_reverse_before_the_credit_blocks_it() {
    let owner = app().new_user(4);
    let s = saga("early", &owner);
    assert_eq!(reverse(&s), "nothing_credited");
    assert_eq!(ledger(&s), ["blocked|||reversed before it was credited"]);
    assert_eq!(reverse(&s), "nothing_credited", "again: still nothing");
    assert_eq!(credit(&s, &owner, 6), "blocked", "the late credit is refused");
    assert_eq!(credit(&s, &owner, 6), "blocked");
    assert_eq!(credit_of(&owner), 4, "nothing credited");
    assert_eq!(ledger(&s), ["blocked|||reversed before it was credited"]);
}

#[test]
fn a_credit_past_the_largest_credit_is_refused() {
    let owner = app().new_user(0);
    let max = i64::MAX;
    assert_eq!(app().post(&format!("/payment/add_funds/{owner}/{}", max - 10)).status, 200);
    let s = saga("overflow", &owner);
    assert_eq!(credit(&s, &owner, 11), "credit_overflow");
    assert_eq!(credit_of(&owner), max - 10, "nothing credited");
    assert_eq!(
        ledger(&s),
        [format!("refused|{owner}|11|the credit of the user cannot take the amount below 2^63 - 1")]
    );
    assert_eq!(credit(&s, &owner, 11), "refused", "refused for good");
    assert_eq!(reverse(&s), "nothing_credited");
    assert_eq!(credit_of(&owner), max - 10);
    // Up to the largest credit exactly is fine.
    let fits = saga("fits", &owner);
    assert_eq!(credit(&fits, &owner, 10), "credited");
    assert_eq!(credit_of(&owner), max);
    assert_eq!(reverse(&fits), "reversed");
    assert_eq!(credit_of(&owner), max - 10);
}
