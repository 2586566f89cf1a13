//! The I/O of the `find` view whose protocol `stock_domain::find_view` defines.
//!
//! A writer that cannot count itself in does not write (503). Reading, offering, counting out
//! and populating are best effort: a reader whose lookup fails reads Postgres, and a count left
//! behind expires (until then `find` reads Postgres for those items).

use market_core::ApiError;
use spin_kit::redis_store::{reply_text, script_idempotent, script_once};
use std::future::Future;
use std::time::{Duration, Instant};
use stock_domain::find_view::{
    BEGIN, BUSY_MS, END, ENTRY_TTL_SECONDS, FREEZE, FREEZE_MS, Freeze, LOOKUP, Lookup, MAX_OFFER_DELAY_MS,
    MAX_WRITE_DELAY_MS, OFFER, POPULATE, STAMP_MS, THAW, populate_chunks,
};

async fn eval_text(script: &str, argv: &[String], retry: bool) -> Result<Option<String>, ApiError> {
    let reply = if retry { script_idempotent(script, argv).await? } else { script_once(script, argv).await? };
    Ok(reply_text(&reply))
}

/// What the view says of `item_id`; a bypass when Redis cannot be asked.
///
/// A miss is to be offered with [`offer`] before [`MAX_OFFER_DELAY_MS`] have passed since the
/// lookup began ([`offer`] checks that, given when).
pub async fn lookup(item_id: &str) -> Lookup {
    match eval_text(LOOKUP, &[item_id.to_string()], true).await {
        Ok(Some(reply)) => Lookup::parse(&reply).unwrap_or(Lookup::Bypass),
        Ok(None) => Lookup::Bypass,
        Err(e) => {
            eprintln!("stock view lookup skipped: {e}");
            Lookup::Bypass
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
    let argv = [item_id, epoch, stamp, &stock.to_string(), &price.to_string(), &ENTRY_TTL_SECONDS.to_string()]
        .map(str::to_string);
    if let Err(e) = eval_text(OFFER, &argv, true).await {
        eprintln!("stock view offer skipped for {item_id}: {e}");
    }
}

/// Runs `write` (one statement changing `item_ids`) inside the writer protocol: counted in
/// before; counted out after, whatever its outcome, in the background (the count only has to be
/// gone eventually: until then `find` reads those items from Postgres), so that the answer does
/// not wait for it.
pub async fn writing<T>(item_ids: &[String], write: impl Future<Output = Result<T, ApiError>>) -> Result<T, ApiError> {
    let mut argv = vec![BUSY_MS.to_string(), STAMP_MS.to_string()];
    argv.extend(item_ids.iter().cloned());
    let started = Instant::now();
    // Not retried: a lost reply would count this writer in twice (that count then expires).
    eval_text(BEGIN, &argv, false).await?;
    let result = if started.elapsed() <= Duration::from_millis(MAX_WRITE_DELAY_MS) {
        write.await
    } else {
        Err(ApiError::Unavailable("the stock change could not start in time; try again".into()))
    };
    let mut end_argv = vec![STAMP_MS.to_string()];
    end_argv.extend(item_ids.iter().cloned());
    spin_sdk::wit_bindgen::spawn(async move {
        if let Err(e) = eval_text(END, &end_argv, false).await {
            eprintln!("stock view: {} items left counted in (the counts expire): {e}", end_argv.len() - 1);
        }
    });
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
    let reply = eval_text(FREEZE, &[FREEZE_MS.to_string()], false).await?;
    let freeze = reply.as_deref().and_then(Freeze::parse);
    let result = batch.await;
    if let (Ok(_), Some(freeze)) = (&result, &freeze) {
        for (from, to) in populate_chunks(n) {
            let argv = [
                &freeze.tick,
                &freeze.epoch,
                &ENTRY_TTL_SECONDS.to_string(),
                &stock.to_string(),
                &price.to_string(),
                &from.to_string(),
                &to.to_string(),
            ]
            .map(|s| s.to_string());
            if let Err(e) = eval_text(POPULATE, &argv, true).await {
                eprintln!("stock view: populating items {from}..{to} skipped: {e}");
                break;
            }
        }
    }
    // Not retried: counting out twice could count out another batch.
    if let Err(e) = eval_text(THAW, &[], false).await {
        eprintln!("stock view thaw skipped (the freeze expires): {e}");
    }
    result
}
