//! The checkout saga worker: any message on its channels means "look for due sagas"; due sagas
//! are driven by the order service's HTTP drain endpoint (see `order_service::worker`).
#[spin_sdk::redis_subscriber]
async fn on_message(_doorbell: Vec<u8>) -> anyhow::Result<()> {
    order_service::worker::wake().await
}
