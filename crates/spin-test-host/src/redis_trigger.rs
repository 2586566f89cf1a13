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
//! No reconnection, as in Spin: the first connection must succeed or startup
//! fails, and when a subscriber's connection drops its task ends with
//! "disconnected from <host:port>", which ends the trigger and with it the
//! whole process (see `main`), HTTP serving included.
//!
//! Redis-triggered components get no service chaining, as in Spin (whose
//! chaining is part of the HTTP trigger): a request to
//! `http://<component>.spin.internal` goes to the network like any other and
//! fails to resolve. Spin refuses to start a Redis trigger whose component
//! lists a `*.spin.internal` host at all (checked in `main`).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use futures::StreamExt;
use wasmtime::component::InstancePre;
use wasmtime::{Engine, Store};

use crate::http_trigger::OutboundHttp;
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
            .with_context(|| format!("component {:?} does not export spin:redis/inbound-redis@3.0.0", ctx.id))?;
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
}

impl RedisTrigger {
    /// Connects and subscribes every subscription, then keeps each running in
    /// a task of its own. Fails if a first connection or subscription fails.
    /// Each task ends only when its connection drops, with the error to end
    /// the trigger with.
    pub async fn start(
        self: Arc<Self>,
        subscriptions: Vec<Subscription>,
    ) -> anyhow::Result<Vec<tokio::task::JoinHandle<anyhow::Error>>> {
        let mut tasks = Vec::new();
        for sub in subscriptions {
            let client = redis::Client::open(sub.address.as_str())
                .with_context(|| format!("invalid Redis address {:?}", sub.address))?;
            let server = client.get_connection_info().addr.to_string();
            let mut pubsub = client
                .get_async_pubsub()
                .await
                .with_context(|| format!("Redis trigger failed to connect to {server}"))?;
            println!("Active Channels on {server}:");
            for (channel, components) in &sub.channels {
                pubsub
                    .subscribe(channel)
                    .await
                    .with_context(|| format!("Redis trigger failed to subscribe to channel {channel:?} on {server}"))?;
                println!("\t{server}/{channel}: [{}]", components.join(","));
            }
            let trigger = self.clone();
            tasks.push(tokio::spawn(async move { trigger.run(server, sub.channels, pubsub).await }));
        }
        Ok(tasks)
    }

    /// Handles messages, one at a time, until the connection drops.
    async fn run(
        &self,
        server: String,
        channels: BTreeMap<String, Vec<String>>,
        mut pubsub: redis::aio::PubSub,
    ) -> anyhow::Error {
        let mut messages = pubsub.on_message();
        while let Some(msg) = messages.next().await {
            self.handle_message(&server, &channels, &msg).await;
        }
        anyhow!("disconnected from {server}")
    }

    async fn handle_message(&self, server: &str, channels: &BTreeMap<String, Vec<String>>, msg: &redis::Msg) {
        let channel = msg.get_channel_name();
        let Some(components) = channels.get(channel) else {
            tracing::error!("message from unexpected channel {channel:?} on {server}");
            return;
        };
        let payload = msg.get_payload_bytes().to_vec();
        tracing::debug!("redis message on {server}/{channel} ({} bytes)", payload.len());
        let calls = components.iter().map(|id| {
            let payload = payload.clone();
            async move {
                if let Err(e) = self.deliver(id, payload).await {
                    tracing::error!("component {id:?} failed to handle message on {channel:?}: {e:#}");
                }
            }
        });
        futures::future::join_all(calls).await;
    }

    /// Runs one message through a fresh instance of the component.
    async fn deliver(&self, id: &str, payload: Vec<u8>) -> anyhow::Result<()> {
        let component = self.components.get(id).with_context(|| format!("unknown component {id:?}"))?;
        let data = StoreData::new(component.ctx.clone(), OutboundHttp::new(component.ctx.clone(), None));
        let mut store = Store::new(&self.engine, data);
        let instance = component.pre.instantiate_async(&mut store).await.map_err(anyhow::Error::from)?;
        let result = store
            .run_concurrent(async |accessor| {
                instance.spin_redis_inbound_redis().call_handle_message(accessor, payload).await
            })
            .await
            .map_err(anyhow::Error::from)?
            .map_err(anyhow::Error::from)?;
        result.map_err(|e| anyhow!("handler returned an error: {e:?}"))
    }
}
