//! `spin:redis/redis@3.0.0`, following Spin's `factor-outbound-redis`.
//!
//! `open` checks `allowed_outbound_hosts` (scheme `redis`), then makes a new
//! multiplexed connection — no pooling, exactly as Spin. The connection lives
//! in the resource table; dropping the resource closes it. `execute` flattens
//! nested array replies into one list and maps status replies (including
//! `OK`) to `status`, as Spin does.

use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, FromRedisValue, Value};
use wasmtime::component::{Accessor, Resource};

use crate::runtime::{SpinHost, StoreData, redis_wit as wit, store_call_span};

/// The host side of a `connection` resource.
pub struct RedisConnection {
    conn: MultiplexedConnection,
}

fn other(e: impl std::fmt::Display) -> wit::Error {
    wit::Error::Other(e.to_string())
}

fn conn_of<T>(
    accessor: &Accessor<T, SpinHost>,
    connection: &Resource<RedisConnection>,
) -> Result<MultiplexedConnection, wit::Error> {
    accessor.with(|mut access| {
        let data = access.get();
        data.table
            .get(connection)
            .map(|c| c.conn.clone())
            .map_err(|_| wit::Error::Other("could not find connection for resource".into()))
    })
}

impl wit::Host for StoreData {
    fn convert_error(&mut self, err: wit::Error) -> wasmtime::Result<wit::Error> {
        Ok(err)
    }
}

impl wit::HostConnection for StoreData {
    async fn drop(&mut self, connection: Resource<RedisConnection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}

impl<T: Send> wit::HostConnectionWithStore<T> for SpinHost {
    async fn open(accessor: &Accessor<T, Self>, address: String) -> Result<Resource<RedisConnection>, wit::Error> {
        let _span = store_call_span(accessor, "spin_outbound_redis.open_connection", "redis");
        // Unresolvable allowed hosts are `other`, a host not allowed is
        // `invalid-address`, as in Spin.
        let allowed = accessor.with(|mut access| {
            let data = access.get();
            data.ctx.allowed_hosts.check_url(&address, "redis")
        });
        if !allowed.map_err(wit::Error::Other)? {
            tracing::error!("redis connection to {address:?} is not allowed by allowed_outbound_hosts");
            return Err(wit::Error::InvalidAddress);
        }
        let client = redis::Client::open(address.as_str()).map_err(|_| wit::Error::InvalidAddress)?;
        let conn = client.get_multiplexed_async_connection().await.map_err(other)?;
        accessor.with(|mut access| {
            let data = access.get();
            data.table.push(RedisConnection { conn }).map_err(|_| wit::Error::TooManyConnections)
        })
    }

    async fn publish(
        accessor: &Accessor<T, Self>,
        connection: Resource<RedisConnection>,
        channel: String,
        payload: Vec<u8>,
    ) -> Result<(), wit::Error> {
        let _span = store_call_span(accessor, "PUBLISH", "redis");
        let mut conn = conn_of(accessor, &connection)?;
        let () = conn.publish(&channel, &payload).await.map_err(other)?;
        Ok(())
    }

    async fn get(
        accessor: &Accessor<T, Self>,
        connection: Resource<RedisConnection>,
        key: String,
    ) -> Result<Option<Vec<u8>>, wit::Error> {
        let _span = store_call_span(accessor, "GET", "redis");
        let mut conn = conn_of(accessor, &connection)?;
        conn.get::<_, Option<Vec<u8>>>(&key).await.map_err(other)
    }

    async fn set(
        accessor: &Accessor<T, Self>,
        connection: Resource<RedisConnection>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), wit::Error> {
        let _span = store_call_span(accessor, "SET", "redis");
        let mut conn = conn_of(accessor, &connection)?;
        let () = conn.set(&key, &value).await.map_err(other)?;
        Ok(())
    }

    async fn incr(
        accessor: &Accessor<T, Self>,
        connection: Resource<RedisConnection>,
        key: String,
    ) -> Result<i64, wit::Error> {
        let _span = store_call_span(accessor, "INCRBY", "redis");
        let mut conn = conn_of(accessor, &connection)?;
        conn.incr(&key, 1).await.map_err(other)
    }

    async fn del(
        accessor: &Accessor<T, Self>,
        connection: Resource<RedisConnection>,
        keys: Vec<String>,
    ) -> Result<u32, wit::Error> {
        let _span = store_call_span(accessor, "DEL", "redis");
        let mut conn = conn_of(accessor, &connection)?;
        conn.del(&keys).await.map_err(other)
    }

    async fn sadd(
        accessor: &Accessor<T, Self>,
        connection: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> Result<u32, wit::Error> {
        let _span = store_call_span(accessor, "SADD", "redis");
        let mut conn = conn_of(accessor, &connection)?;
        conn.sadd(&key, &values)
            .await
            .map_err(|e| if e.kind() == redis::ErrorKind::TypeError { wit::Error::TypeError } else { other(e) })
    }

    async fn smembers(
        accessor: &Accessor<T, Self>,
        connection: Resource<RedisConnection>,
        key: String,
    ) -> Result<Vec<String>, wit::Error> {
        let _span = store_call_span(accessor, "SMEMBERS", "redis");
        let mut conn = conn_of(accessor, &connection)?;
        conn.smembers(&key).await.map_err(other)
    }

    async fn srem(
        accessor: &Accessor<T, Self>,
        connection: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> Result<u32, wit::Error> {
        let _span = store_call_span(accessor, "SREM", "redis");
        let mut conn = conn_of(accessor, &connection)?;
        conn.srem(&key, &values).await.map_err(other)
    }

    async fn execute(
        accessor: &Accessor<T, Self>,
        connection: Resource<RedisConnection>,
        command: String,
        arguments: Vec<wit::RedisParameter>,
    ) -> Result<Vec<wit::RedisResult>, wit::Error> {
        let _span = store_call_span(accessor, &command, "redis");
        let mut conn = conn_of(accessor, &connection)?;
        let mut cmd = redis::cmd(&command);
        for arg in arguments {
            match arg {
                wit::RedisParameter::Int64(v) => cmd.arg(v),
                wit::RedisParameter::Binary(v) => cmd.arg(v),
            };
        }
        let results: Flattened = cmd.query_async(&mut conn).await.map_err(other)?;
        Ok(results.0)
    }
}

/// A reply flattened into `redis-result`s the way Spin does it.
struct Flattened(Vec<wit::RedisResult>);

fn unsupported(what: &str) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::TypeError, "Could not convert Redis response", what.to_string()))
}

fn flatten_into(out: &mut Vec<wit::RedisResult>, value: &Value) -> redis::RedisResult<()> {
    match value {
        Value::Nil => out.push(wit::RedisResult::Nil),
        Value::Int(v) => out.push(wit::RedisResult::Int64(*v)),
        Value::BulkString(b) => out.push(wit::RedisResult::Binary(b.clone())),
        Value::SimpleString(s) => out.push(wit::RedisResult::Status(s.clone())),
        Value::Okay => out.push(wit::RedisResult::Status("OK".to_owned())),
        Value::Array(items) | Value::Set(items) => {
            for item in items {
                flatten_into(out, item)?;
            }
        }
        Value::Double(d) => out.push(wit::RedisResult::Binary(d.to_string().into_bytes())),
        Value::Boolean(b) => out.push(wit::RedisResult::Int64(i64::from(*b))),
        Value::BigNumber(n) => out.push(wit::RedisResult::Binary(n.to_string().into_bytes())),
        Value::Map(_) => return Err(unsupported("Redis Map type is not supported")),
        Value::Attribute { .. } => {
            return Err(unsupported("Redis Attribute type is not supported"));
        }
        Value::VerbatimString { .. } => {
            return Err(unsupported("Redis string with format attribute is not supported"));
        }
        Value::Push { .. } => return Err(unsupported("Redis Pub/Sub types are not supported")),
        Value::ServerError(err) => {
            return Err(redis::RedisError::from((redis::ErrorKind::ResponseError, "Server error", format!("{err:?}"))));
        }
    }
    Ok(())
}

impl FromRedisValue for Flattened {
    fn from_redis_value(value: &Value) -> redis::RedisResult<Self> {
        let mut out = Vec::new();
        flatten_into(&mut out, value)?;
        Ok(Self(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(v: Value) -> Vec<wit::RedisResult> {
        Flattened::from_redis_value(&v).unwrap().0
    }

    #[test]
    fn flattening_matches_spin() {
        use wit::RedisResult as R;
        assert_eq!(flat(Value::Okay), vec![R::Status("OK".into())]);
        assert_eq!(flat(Value::Nil), vec![R::Nil]);
        assert_eq!(
            flat(Value::Array(vec![
                Value::Int(1),
                Value::Array(vec![Value::BulkString(b"a".to_vec()), Value::Nil]),
                Value::SimpleString("PONG".into()),
            ])),
            vec![R::Int64(1), R::Binary(b"a".to_vec()), R::Nil, R::Status("PONG".into())]
        );
        assert_eq!(flat(Value::Boolean(true)), vec![R::Int64(1)]);
        assert_eq!(flat(Value::Double(1.5)), vec![R::Binary(b"1.5".to_vec())]);
        assert!(Flattened::from_redis_value(&Value::Map(vec![])).is_err());
    }
}
