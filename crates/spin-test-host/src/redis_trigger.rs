//! The Redis trigger, following Spin's `trigger-redis`.
//!
//! One subscriber (one pub/sub connection) per Redis address, subscribed with
//! plain `SUBSCRIBE` to every channel of that address (Spin does not use
//! pattern subscriptions; keyspace channels such as `__keyevent@0__:expired`
//! are ordinary channel names). Messages are handled one at a time, in order;
//! each message goes to every component subscribed to its channel (those run
//! concurrently, as in Spin), each in a fresh instance calling the exported
//! `spin:redis/inbound-redis@3.0.0#handle-message`. An error or trap is logged
//! and the message is not redelivered. The old `fermyon:spin/inbound-redis`
//! export is not supported.
//!
//! Reconnection: Spin ends its Redis trigger (and so `spin up`) with
//! "disconnected from ..." when the pub/sub connection drops. We instead
//! reconnect with exponential backoff (100 ms doubling to 5 s) and resubscribe;
//! messages published while disconnected are lost, as with any pub/sub. The
//! first connection must succeed, as in Spin, or startup fails.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use futures::StreamExt;
use wasmtime::component::InstancePre;
use wasmtime::{Engine, Store};

use crate::http_trigger::{HttpApp, OutboundHttp};
use crate::runtime::{ComponentContext, SpinTestHostPre, StoreData};

/// A component that handles Redis messages.
pub struct RedisComponent {
    pub ctx: Arc<ComponentContext>,
    pre: SpinTestHostPre<StoreData>,
}

impl RedisComponent {
    pub fn new(ctx: Arc<ComponentContext>, pre: InstancePre<StoreData>) -> anyhow::Result<Self> {
        let pre = SpinTestHostPre::new(pre)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "component {:?} does not export spin:redis/inbound-redis@3.0.0",
                    ctx.id
                )
            })?;
        Ok(Self { ctx, pre })
    }
}

/// All the channels of one Redis address: channel -> component ids.
pub struct Subscription {
    pub address: String,
    pub channels: BTreeMap<String, Vec<String>>,
}

/// Shared by all subscribers.
pub struct RedisTrigger {
    pub engine: Engine,
    pub components: BTreeMap<String, RedisComponent>,
    /// For service chaining from Redis-triggered components.
    pub http: Option<Arc<HttpApp>>,
}

impl RedisTrigger {
    /// Connects and subscribes every subscription, then keeps them running in
    /// background tasks. Fails if a first connection or subscription fails.
    pub async fn start(self: Arc<Self>, subscriptions: Vec<Subscription>) -> anyhow::Result<()> {
        for sub in subscriptions {
            let client = redis::Client::open(sub.address.as_str())
                .with_context(|| format!("invalid Redis address {:?}", sub.address))?;
            let server = client.get_connection_info().addr.to_string();
            let pubsub = subscribe(&client, &sub.channels)
                .await
                .with_context(|| format!("Redis trigger failed to connect to {server}"))?;
            println!("Active Channels on {server}:");
            for (channel, components) in &sub.channels {
                println!("\t{server}/{channel}: [{}]", components.join(","));
            }
            let trigger = self.clone();
            tokio::spawn(async move {
                trigger.run(client, server, sub.channels, pubsub).await;
            });
        }
        Ok(())
    }

    async fn run(
        &self,
        client: redis::Client,
        server: String,
        channels: BTreeMap<String, Vec<String>>,
        mut pubsub: redis::aio::PubSub,
    ) {
        loop {
            {
                let mut messages = pubsub.on_message();
                while let Some(msg) = messages.next().await {
                    self.handle_message(&server, &channels, &msg).await;
                }
            }
            tracing::error!("disconnected from Redis at {server}; reconnecting");
            let mut backoff = Duration::from_millis(100);
            pubsub = loop {
                tokio::time::sleep(backoff).await;
                match subscribe(&client, &channels).await {
                    Ok(p) => {
                        tracing::warn!("reconnected to Redis at {server}");
                        break p;
                    }
                    Err(e) => {
                        tracing::error!("reconnecting to Redis at {server} failed: {e:#}");
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            };
        }
    }

    async fn handle_message(
        &self,
        server: &str,
        channels: &BTreeMap<String, Vec<String>>,
        msg: &redis::Msg,
    ) {
        let channel = msg.get_channel_name();
        let Some(components) = channels.get(channel) else {
            tracing::error!("message from unexpected channel {channel:?} on {server}");
            return;
        };
        let payload = msg.get_payload_bytes().to_vec();
        tracing::debug!(
            "redis message on {server}/{channel} ({} bytes)",
            payload.len()
        );
        let calls = components.iter().map(|id| {
            let payload = payload.clone();
            async move {
                if let Err(e) = self.deliver(id, payload).await {
                    tracing::error!(
                        "component {id:?} failed to handle message on {channel:?}: {e:#}"
                    );
                }
            }
        });
        futures::future::join_all(calls).await;
    }

    /// Runs one message through a fresh instance of the component.
    async fn deliver(&self, id: &str, payload: Vec<u8>) -> anyhow::Result<()> {
        let component = self
            .components
            .get(id)
            .with_context(|| format!("unknown component {id:?}"))?;
        let app = self.http.as_ref().map(Arc::downgrade).unwrap_or_default();
        let data = StoreData::new(
            component.ctx.clone(),
            OutboundHttp::new(component.ctx.clone(), app),
        );
        let mut store = Store::new(&self.engine, data);
        let instance = component
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(anyhow::Error::from)?;
        let result = store
            .run_concurrent(async |accessor| {
                instance
                    .spin_redis_inbound_redis()
                    .call_handle_message(accessor, payload)
                    .await
            })
            .await
            .map_err(anyhow::Error::from)?
            .map_err(anyhow::Error::from)?;
        result.map_err(|e| anyhow!("handler returned an error: {e:?}"))
    }
}

async fn subscribe(
    client: &redis::Client,
    channels: &BTreeMap<String, Vec<String>>,
) -> anyhow::Result<redis::aio::PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    for channel in channels.keys() {
        pubsub
            .subscribe(channel)
            .await
            .with_context(|| format!("failed to subscribe to channel {channel:?}"))?;
    }
    Ok(pubsub)
}
