//! The view's scripts against the real Redis that `./dev test` starts, each test in a Redis
//! database of its own (the scripts name their keys: see `redis-test-support`); arguments built
//! and replies read with this module's functions, as the stock service does.

use super::*;
use redis_test_support::{TestRedis, texts};

fn run(redis: &mut TestRedis, script: &Script, argv: &[String]) -> String {
    let reply =
        redis.run_script(script.source(), script.sha1(), argv).unwrap_or_else(|e| panic!("the script failed: {e}"));
    assert_eq!(reply.len(), 1, "{reply:?}");
    texts(&reply).concat()
}

fn ids(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn lookup(redis: &mut TestRedis, id: &str) -> Lookup {
    let reply = run(redis, &LOOKUP, &ids(&[id]));
    Lookup::parse(&reply).unwrap_or_else(|| panic!("unexpected LOOKUP reply {reply:?}"))
}

/// A lookup's miss, offered with this row: whether it was stored.
fn offer(redis: &mut TestRedis, id: &str, miss: &Lookup, stock: i64, price: i64) -> bool {
    let Lookup::Miss { epoch, stamp } = miss else { panic!("not a miss: {miss:?}") };
    run(redis, &OFFER, &offer_argv(id, epoch, stamp, stock, price)) == "1"
}

fn begin(redis: &mut TestRedis, items: &[&str]) -> String {
    run(redis, &BEGIN, &begin_argv(&ids(items)))
}

fn end(redis: &mut TestRedis, items: &[&str]) -> String {
    run(redis, &END, &end_argv(&ids(items)))
}

fn freeze(redis: &mut TestRedis) -> Freeze {
    let reply = run(redis, &FREEZE, &[FREEZE_MS.to_string()]);
    Freeze::parse(&reply).unwrap_or_else(|| panic!("unexpected FREEZE reply {reply:?}"))
}

fn populate(redis: &mut TestRedis, batch: &Freeze, stock: i64, price: i64, from: i64, to: i64) -> i64 {
    run(redis, &POPULATE, &populate_argv(batch, stock, price, from, to)).parse().expect("a count")
}

fn thaw(redis: &mut TestRedis) {
    assert_eq!(run(redis, &THAW, &[]), "1");
}

fn hit(stock: i64, price: i64) -> Lookup {
    Lookup::Hit { stock, price }
}

#[test]
fn a_miss_offered_is_a_hit_until_a_writer_counts_in_and_its_keys_expire_as_documented() {
    let Some(mut redis) = TestRedis::claim() else { return };
    let miss = lookup(&mut redis, "a");
    assert_eq!(miss, Lookup::Miss { epoch: "0".into(), stamp: "0".into() }, "a view never written");
    assert!(offer(&mut redis, "a", &miss, 5, 12));
    assert_eq!(lookup(&mut redis, "a"), hit(5, 12));
    assert!((1..=ENTRY_TTL_SECONDS as i64 * 1000).contains(&redis.pttl("stock:view:item:a")));

    // A writer counts in: the entry is dropped, readers bypass the view.
    let tick = begin(&mut redis, &["a", "b"]);
    assert_eq!(lookup(&mut redis, "a"), Lookup::Bypass);
    assert!(!redis.exists("stock:view:item:a"));
    assert!((1..=BUSY_MS as i64).contains(&redis.pttl("stock:view:busy:a")));
    assert_eq!(redis.get("stock:view:stamp:b"), Some(tick.clone()));
    // A stamp outlives every check that reads it: a reader's offer, a batch's populate.
    let stamp_ttl = redis.pttl("stock:view:stamp:a");
    assert!(stamp_ttl > FREEZE_MS as i64 && stamp_ttl > MAX_OFFER_DELAY_MS as i64 && stamp_ttl <= STAMP_MS as i64);

    // It counts out: a new stamp (a later tick), the count gone, a miss with that stamp.
    let after = end(&mut redis, &["a", "b"]);
    assert!(after.parse::<u64>().expect("a tick") > tick.parse::<u64>().expect("a tick"));
    assert!(!redis.exists("stock:view:busy:a"));
    assert_eq!(lookup(&mut redis, "a"), Lookup::Miss { epoch: "0".into(), stamp: after });
    assert!((1..=STAMP_MS as i64).contains(&redis.pttl("stock:view:stamp:a")));
    // Every key left expires, but the clock (one key, which must never go back).
    for key in redis.keys("stock:view:*") {
        assert!(key == "stock:view:clock" || redis.pttl(&key) > 0, "{key} does not expire");
    }
}

#[test]
fn an_offer_is_refused_when_anything_changed_since_its_lookup() {
    let Some(mut redis) = TestRedis::claim() else { return };
    // A writer's step between the lookup and the offer: the stamp moved.
    let miss = lookup(&mut redis, "a");
    begin(&mut redis, &["a"]);
    end(&mut redis, &["a"]);
    assert!(!offer(&mut redis, "a", &miss, 1, 1));
    assert!(!redis.exists("stock:view:item:a"));

    // A writer counted in at the offer.
    let miss = lookup(&mut redis, "a");
    begin(&mut redis, &["a"]);
    assert!(!offer(&mut redis, "a", &miss, 1, 1));
    end(&mut redis, &["a"]);

    // A batch running, then one that ran (another epoch).
    let miss = lookup(&mut redis, "a");
    freeze(&mut redis);
    assert!(!offer(&mut redis, "a", &miss, 1, 1));
    thaw(&mut redis);
    assert!(!offer(&mut redis, "a", &miss, 1, 1));

    // Nothing changed: stored.
    let miss = lookup(&mut redis, "a");
    assert_eq!(miss, Lookup::Miss { epoch: "1".into(), stamp: redis.get("stock:view:stamp:a").expect("a stamp") });
    assert!(offer(&mut redis, "a", &miss, 3, 4));
    assert_eq!(lookup(&mut redis, "a"), hit(3, 4));
}

#[test]
fn writers_count_in_and_out_and_a_count_that_expired_stays_gone() {
    let Some(mut redis) = TestRedis::claim() else { return };
    begin(&mut redis, &["a"]);
    begin(&mut redis, &["a"]);
    end(&mut redis, &["a"]);
    assert_eq!(lookup(&mut redis, "a"), Lookup::Bypass, "one writer still counted in");
    end(&mut redis, &["a"]);
    assert!(matches!(lookup(&mut redis, "a"), Lookup::Miss { .. }));
    // A writer whose count expired (or was lost) counts out of nothing: no negative count.
    end(&mut redis, &["a"]);
    assert!(!redis.exists("stock:view:busy:a"));
    assert!(matches!(lookup(&mut redis, "a"), Lookup::Miss { .. }));
}

#[test]
fn a_batch_retires_every_entry_and_populates_what_no_writer_touched_since_its_freeze() {
    let Some(mut redis) = TestRedis::claim() else { return };
    let miss = lookup(&mut redis, "x");
    assert!(offer(&mut redis, "x", &miss, 1, 1));
    // A writer that finished before the freeze does not keep its item out.
    begin(&mut redis, &["0"]);
    end(&mut redis, &["0"]);

    let batch = freeze(&mut redis);
    assert_eq!(batch.epoch, "1");
    assert!((1..=FREEZE_MS as i64).contains(&redis.pttl("stock:view:frozen")));
    assert_eq!(lookup(&mut redis, "x"), Lookup::Bypass, "no reads from the view while a batch runs");
    // Writers during the batch: one finished (its statement may have run after the batch's),
    // one still writing.
    begin(&mut redis, &["1"]);
    end(&mut redis, &["1"]);
    begin(&mut redis, &["2"]);
    assert_eq!(populate(&mut redis, &batch, 100, 9, 0, 4), 2);
    thaw(&mut redis);
    assert!(!redis.exists("stock:view:frozen"));

    let found: Vec<Lookup> = ["0", "1", "2", "3"].iter().map(|id| lookup(&mut redis, id)).collect();
    assert_eq!(found[0], hit(100, 9));
    assert!(matches!(&found[1], Lookup::Miss { epoch, .. } if epoch == "1"));
    assert_eq!(found[2], Lookup::Bypass);
    assert_eq!(found[3], hit(100, 9));
    assert!(matches!(lookup(&mut redis, "x"), Lookup::Miss { .. }), "the entry of the old epoch is retired");
    assert!((1..=ENTRY_TTL_SECONDS as i64 * 1000).contains(&redis.pttl("stock:view:item:3")));
}

#[test]
fn a_batch_populates_nothing_once_another_batch_runs_or_ran() {
    let Some(mut redis) = TestRedis::claim() else { return };
    let first = freeze(&mut redis);
    let second = freeze(&mut redis);
    assert_eq!(populate(&mut redis, &first, 1, 1, 0, 3), 0, "two batches running");
    assert_eq!(populate(&mut redis, &second, 1, 1, 0, 3), 0, "two batches running");
    thaw(&mut redis);
    assert_eq!(populate(&mut redis, &first, 1, 1, 0, 3), 0, "its epoch is gone");
    assert_eq!(populate(&mut redis, &second, 7, 8, 0, 3), 3);
    thaw(&mut redis);
    assert_eq!(populate(&mut redis, &second, 7, 8, 0, 3), 0, "not frozen any more");
    assert_eq!(lookup(&mut redis, "2"), hit(7, 8));
}

#[test]
fn replies_that_are_none_of_the_answers_do_not_parse() {
    for bad in ["", "H5", "Hx:1", "M3", "M:1", "M3:x", "Q"] {
        assert_eq!(Lookup::parse(bad), None, "{bad:?}");
    }
    for bad in ["41", ":7", "4:x"] {
        assert_eq!(Freeze::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn chunks_cover_every_id_once() {
    assert_eq!(populate_chunks(0).count(), 0);
    assert_eq!(populate_chunks(3).collect::<Vec<_>>(), vec![(0, 3)]);
    let chunks: Vec<_> = populate_chunks(2 * POPULATE_CHUNK + 1).collect();
    assert_eq!(
        chunks,
        vec![(0, POPULATE_CHUNK), (POPULATE_CHUNK, 2 * POPULATE_CHUNK), (2 * POPULATE_CHUNK, 2 * POPULATE_CHUNK + 1)]
    );
}

#[test]
fn ids_are_distinct_and_ordered() {
    assert_eq!(distinct_ids(["b", "a", "b"]), vec!["a".to_string(), "b".to_string()]);
}

fn detail_lookup(redis: &mut TestRedis, id: &str) -> DetailLookup {
    let reply = run(redis, &LOOKUP, &detail_lookup_argv(id));
    DetailLookup::parse(&reply).unwrap_or_else(|| panic!("unexpected LOOKUP reply {reply:?}"))
}

fn detail_offer(redis: &mut TestRedis, id: &str, miss: &DetailLookup, json: &str) -> bool {
    let DetailLookup::Miss { epoch, stamp } = miss else { panic!("not a miss: {miss:?}") };
    run(redis, &OFFER, &detail_offer_argv(id, epoch, stamp, json.to_string())) == "1"
}

#[test]
fn an_items_page_follows_the_same_protocol_as_its_find_entry() {
    let Some(mut redis) = TestRedis::claim() else { return };
    let page = r#"{"item_id":"a","title":"Drill: 18V","stock":3}"#;
    let miss = detail_lookup(&mut redis, "a");
    assert_eq!(miss, DetailLookup::Miss { epoch: "0".into(), stamp: "0".into() });
    assert!(detail_offer(&mut redis, "a", &miss, page));
    assert_eq!(detail_lookup(&mut redis, "a"), DetailLookup::Hit(page.into()));
    assert_eq!(lookup(&mut redis, "a"), Lookup::Miss { epoch: "0".into(), stamp: "0".into() }, "kinds apart");

    // A page read before a writer's step is never stored after it.
    let stale = detail_lookup(&mut redis, "b");
    begin(&mut redis, &["a", "b"]);
    assert_eq!(detail_lookup(&mut redis, "a"), DetailLookup::Bypass, "the writer dropped it");
    assert!(!redis.exists("stock:view:detail:a"));
    assert!(!detail_offer(&mut redis, "b", &stale, page), "offered while the writer writes");
    end(&mut redis, &["a", "b"]);
    assert!(!detail_offer(&mut redis, "b", &stale, page), "offered after the writer's stamp");
    let fresh = detail_lookup(&mut redis, "b");
    assert!(detail_offer(&mut redis, "b", &fresh, page));

    // A batch retires every page with every find entry.
    let batch = freeze(&mut redis);
    assert_eq!(detail_lookup(&mut redis, "b"), DetailLookup::Bypass);
    thaw(&mut redis);
    assert!(matches!(detail_lookup(&mut redis, "b"), DetailLookup::Miss { epoch, .. } if epoch == batch.epoch));
}

fn list_lookup(redis: &mut TestRedis, key: &str) -> ListLookup {
    let reply = run(redis, &LIST_LOOKUP, &[key.to_string()]);
    ListLookup::parse(&reply).unwrap_or_else(|| panic!("unexpected LIST_LOOKUP reply {reply:?}"))
}

fn list_offer(redis: &mut TestRedis, key: &str, miss: &ListLookup, json: &str) -> bool {
    let ListLookup::Miss { generation } = miss else { panic!("not a miss: {miss:?}") };
    run(redis, &LIST_OFFER, &list_offer_argv(key, generation, json.to_string())) == "1"
}

#[test]
fn a_list_page_read_before_a_listing_change_is_never_stored_after_it() {
    let Some(mut redis) = TestRedis::claim() else { return };
    let miss = list_lookup(&mut redis, "p1");
    assert_eq!(miss, ListLookup::Miss { generation: "0".into() });
    assert!(list_offer(&mut redis, "p1", &miss, "[1]"));
    assert_eq!(list_lookup(&mut redis, "p1"), ListLookup::Hit("[1]".into()));
    assert!((1..=LIST_ENTRY_TTL_SECONDS as i64 * 1000).contains(&redis.pttl("stock:view:list:p1")));

    let stale = list_lookup(&mut redis, "p2");
    run(&mut redis, &LIST_BEGIN, &[BUSY_MS.to_string()]);
    assert_eq!(list_lookup(&mut redis, "p1"), ListLookup::Bypass, "a change runs");
    assert!(!list_offer(&mut redis, "p2", &stale, "[old]"), "offered while it runs");
    assert!((1..=BUSY_MS as i64).contains(&redis.pttl("stock:view:list-busy")));
    run(&mut redis, &LIST_END, &[] as &[String]);
    assert!(!redis.exists("stock:view:list-busy"));
    assert!(!list_offer(&mut redis, "p2", &stale, "[old]"), "offered after the change");
    assert!(matches!(list_lookup(&mut redis, "p1"), ListLookup::Miss { .. }), "every page retired");
    let fresh = list_lookup(&mut redis, "p2");
    assert!(list_offer(&mut redis, "p2", &fresh, "[new]"));
    assert_eq!(list_lookup(&mut redis, "p2"), ListLookup::Hit("[new]".into()));
}
