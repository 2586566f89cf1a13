//! The orders' plan copies in Redis (`orders:plan:<order>`), from which checkouts start their
//! sagas without reading Postgres. See `order_domain::redis_scripts` for why a copy that is old
//! or missing never makes a checkout wrong.

use crate::orders::{StoredOrder, load};
use market_core::ApiError;
use order_domain::redis_scripts::{PUT_PLANS, put_plans_argv};
use order_domain::saga::Plan;
use spin_kit::redis_store::script_idempotent;

/// Orders per `PUT_PLANS` call (four arguments each).
const CHUNK: usize = 2_000;

/// The plan a checkout of this order would run (attempt not chosen yet).
pub(crate) fn plan_of(stored: &StoredOrder) -> Plan {
    Plan {
        saga_id: String::new(),
        order_id: stored.order.order_id.clone(),
        generation: stored.generation,
        attempt: 0,
        user_id: stored.order.user_id.clone(),
        items: stored.order.items.clone(),
        total: stored.order.total_cost,
    }
}

/// Stores the plan copies of `orders` (as they are in Postgres, just committed), keeping any
/// newer copy. Idempotent, so retried once on a fresh connection.
pub(crate) async fn put(orders: &[StoredOrder]) -> Result<(), ApiError> {
    for chunk in orders.chunks(CHUNK) {
        let plans: Vec<Plan> = chunk.iter().map(plan_of).collect();
        script_idempotent(&PUT_PLANS, put_plans_argv(&plans)).await?;
    }
    Ok(())
}

/// Like [`put`], after a change that is already committed and answered for: a copy that cannot
/// be written only costs checkouts a refresh (they find it missing or refused as old).
pub(crate) async fn put_after_commit(orders: &[StoredOrder]) {
    if let Err(e) = put(orders).await {
        spin_kit::log::warn(format_args!(
            "plan copies of {} order(s) not written ({e}); checkouts will refresh them",
            orders.len()
        ));
    }
}

/// Reads the order from Postgres and stores its copy; 404 when the order is unknown.
pub(crate) async fn refresh(order_id: &str) -> Result<StoredOrder, ApiError> {
    let stored = load(order_id).await?;
    put(std::slice::from_ref(&stored)).await?;
    Ok(stored)
}
