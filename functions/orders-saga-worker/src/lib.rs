//! The checkout saga worker: a message on its channels means "look for due sagas".
#[spin_sdk::redis_subscriber]
async fn on_message(message: Vec<u8>) -> anyhow::Result<()> {
    order_service::worker::on_message(&message).await
}
