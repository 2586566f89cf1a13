//! The I/O of the `find` view whose protocol `stock_domain::find_view` defines.
//!
//! A writer that cannot count itself in does not write (503). Reading, offering, counting out
//! and populating are best effort: a reader whose lookup fails reads Postgres, and a count left
//! behind expires (until then `find` reads Postgres for those items).

use market_core::{ApiError, Script};
use spin_kit::redis_store::{reply_text, script_idempotent, script_once};
use std::future::Future;
use std::time::{Duration, Instant};
use stock_domain::find_view::{
    BEGIN, BUSY_MS, DetailLookup, END, FREEZE, FREEZE_MS, Freeze, LIST_BEGIN, LIST_END, LIST_LOOKUP, LIST_OFFER,
    LOOKUP, ListLookup, Lookup, MAX_OFFER_DELAY_MS, MAX_WRITE_DELAY_MS, OFFER, POPULATE, THAW, begin_argv,
    detail_lookup_argv, detail_offer_argv, end_argv, list_offer_argv, offer_argv, populate_argv, populate_chunks,
};

async fn eval_text(script: &Script, argv: &[String], retry: bool) -> Result<Option<String>, ApiError> {
    let reply = if retry { script_idempotent(script, argv).await? } else { script_once(script, argv).await? };
    Ok(reply_text(&reply))
}

/// What the view says of `item_id`; a bypass when Redis cannot be asked.
///
/// A miss is to be offered with [`offer`] before [`MAX_OFFER_DELAY_MS`] have passed since the
/// lookup began ([`offer`] checks that, given when).
pub async fn lookup(item_id: &str) -> Lookup {
    look_up(&LOOKUP, &[item_id.to_string()], Lookup::parse).await.unwrap_or(Lookup::Bypass)
}

/// `script`'s reply read by `parse`; `None` (the caller bypasses the view) when Redis cannot
/// be asked or answers something else.
async fn look_up<T>(script: &Script, argv: &[String], parse: fn(&str) -> Option<T>) -> Option<T> {
    match eval_text(script, argv, true).await {
        Ok(reply) => reply.as_deref().and_then(parse),
        Err(e) => {
            spin_kit::log::warn(format_args!("stock view lookup skipped: {e}"));
            None
        }
    }
}

/// Offers a row read from Postgres after a [`Lookup::Miss`] by a lookup that began at
/// `looked_up`; nothing is offered later than [`MAX_OFFER_DELAY_MS`] after that (the item's
/// stamp might have expired meanwhile: see `stock_domain::find_view`).
pub async fn offer(looked_up: Instant, item_id: &str, epoch: &str, stamp: &str, stock: i64, price: i64) {
    if looked_up.elapsed() > Duration::from_millis(MAX_OFFER_DELAY_MS) {
        return;
    }
    if let Err(e) = eval_text(&OFFER, &offer_argv(item_id, epoch, stamp, stock, price), true).await {
        spin_kit::log::write(
            spin_kit::log::Level::Warn,
            format_args!("stock view offer skipped: {e}"),
            &[("item_id", item_id)],
        );
    }
}

/// Runs `write` (one statement changing `item_ids`) inside the writer protocol: counted in
/// before; counted out after, whatever its outcome, in the background (the count only has to be
/// gone eventually: until then `find` reads those items from Postgres), so that the answer does
/// not wait for it.
pub async fn writing<T>(item_ids: &[String], write: impl Future<Output = Result<T, ApiError>>) -> Result<T, ApiError> {
    counted_in((&BEGIN, begin_argv(item_ids)), (&END, end_argv(item_ids)), "stock change", write).await
}

/// Runs `write` between a writer's count in (`begin`: not retried, as a lost reply would count
/// it in twice; one that fails means nothing is written, 503) and its count out (`end`, in the
/// background after `write`, whatever its outcome: a count left behind expires). `write` does
/// not start later than [`MAX_WRITE_DELAY_MS`] after `begin` was sent.
async fn counted_in<T>(
    (begin, begin_args): (&Script, Vec<String>),
    (end, end_args): (&'static Script, Vec<String>),
    what: &'static str,
    write: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let started = Instant::now();
    eval_text(begin, &begin_args, false).await?;
    let result = if started.elapsed() <= Duration::from_millis(MAX_WRITE_DELAY_MS) {
        write.await
    } else {
        Err(ApiError::Unavailable(format!("the {what} could not start in time; try again")))
    };
    spin_sdk::wit_bindgen::spawn(spin_kit::request_context::bind(async move {
        if let Err(e) = eval_text(end, &end_args, false).await {
            spin_kit::log::warn(format_args!("stock view: a {what} left counted in (its count expires): {e}"));
        }
    }));
    result
}

/// Runs `batch` (a statement that sets items "0".."n-1" to `stock` and `price`) inside the batch
/// protocol, then stores those items' entries.
pub async fn batch<T>(
    n: i64,
    stock: i64,
    price: i64,
    batch: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let reply = eval_text(&FREEZE, &[FREEZE_MS.to_string()], false).await?;
    let freeze = reply.as_deref().and_then(Freeze::parse);
    let result = batch.await;
    if let (Ok(_), Some(freeze)) = (&result, &freeze) {
        for (from, to) in populate_chunks(n) {
            if let Err(e) = eval_text(&POPULATE, &populate_argv(freeze, stock, price, from, to), true).await {
                spin_kit::log::warn(format_args!("stock view: populating items {from}..{to} skipped: {e}"));
                break;
            }
        }
    }
    // Not retried: counting out twice could count out another batch.
    if let Err(e) = eval_text(&THAW, &[], false).await {
        spin_kit::log::warn(format_args!("stock view thaw skipped (the freeze expires): {e}"));
    }
    result
}

/// What the view holds of `item_id`'s page; a bypass when Redis cannot be asked.
pub async fn lookup_detail(item_id: &str) -> DetailLookup {
    look_up(&LOOKUP, &detail_lookup_argv(item_id), DetailLookup::parse).await.unwrap_or(DetailLookup::Bypass)
}

/// Offers a page read from Postgres after a [`DetailLookup::Miss`], as [`offer`] does a row.
pub async fn offer_detail(looked_up: Instant, item_id: &str, epoch: &str, stamp: &str, json: String) {
    if looked_up.elapsed() > Duration::from_millis(MAX_OFFER_DELAY_MS) {
        return;
    }
    if let Err(e) = eval_text(&OFFER, &detail_offer_argv(item_id, epoch, stamp, json), true).await {
        spin_kit::log::write(
            spin_kit::log::Level::Warn,
            format_args!("stock view offer skipped: {e}"),
            &[("item_id", item_id)],
        );
    }
}

/// What the view holds of the list's page `key`; a bypass when Redis cannot be asked.
pub async fn lookup_list(key: &str) -> ListLookup {
    look_up(&LIST_LOOKUP, &[key.to_string()], ListLookup::parse).await.unwrap_or(ListLookup::Bypass)
}

/// Offers a page of the list read from Postgres after a [`ListLookup::Miss`] (best effort).
pub async fn offer_list(looked_up: Instant, key: &str, generation: &str, json: String) {
    if looked_up.elapsed() > Duration::from_millis(MAX_OFFER_DELAY_MS) {
        return;
    }
    if let Err(e) = eval_text(&LIST_OFFER, &list_offer_argv(key, generation, json), true).await {
        spin_kit::log::warn(format_args!("stock view list offer skipped: {e}"));
    }
}

/// Runs `write` (a listing change: list, change or take down an item) inside the list's writer
/// protocol: counted in before (503 if that cannot be done: nothing is written); counted out
/// after, whatever its outcome, in the background.
pub async fn listing_change<T>(write: impl Future<Output = Result<T, ApiError>>) -> Result<T, ApiError> {
    counted_in((&LIST_BEGIN, vec![BUSY_MS.to_string()]), (&LIST_END, Vec::new()), "listing change", write).await
}
