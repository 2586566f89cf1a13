//! The checkout saga worker: any message on its channels means "look for due sagas".
#[spin_sdk::redis_subscriber]
async fn on_message(_doorbell: Vec<u8>) -> anyhow::Result<()> {
    order_service::worker::drain().await
}
