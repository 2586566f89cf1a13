//! The checkout saga worker: any message on its channels means "look for due sagas"; due sagas
//! are driven by the order service's HTTP drain endpoint (see `order_service::worker`).
// spin-sdk's `redis_subscriber` expands to the component's exported ABI glue, which is unsafe
// code of the SDK's making (the HTTP macro's is not flagged); this crate writes none itself.
#![allow(unsafe_code)]
#[spin_sdk::redis_subscriber]
async fn on_message(_doorbell: Vec<u8>) -> anyhow::Result<()> {
    order_service::worker::wake().await
}
