//! `spin:postgres/postgres@4.2.0`, following Spin's `factor-outbound-pg`.
//!
//! Connections come from a `deadpool-postgres` pool per address (at most 64
//! connections each, as Spin); a `connection` resource holds one pooled client
//! until it is dropped. `open` checks `allowed_outbound_hosts` as Spin does:
//! the address is parsed as a `tokio-postgres` connection string (URL or
//! `key=value` form) and each of its hosts, as `host[:port]` with scheme
//! `postgres`, must be allowed. Values are converted as Spin converts them,
//! failures included: a `timestamptz` value cannot be read (Spin reads
//! `timestamp` and `timestamptz` alike as a naive date-time, which fails for
//! `timestamptz`), and a query's columns are those of its first row, so a
//! query without rows reports none. Errors have Spin's kinds: a parameter
//! that cannot be converted is `value-conversion-failed` for `execute` and
//! `bad-parameter` for `query`.
//!
//! Differences from Spin, all deliberate and small:
//! - no TLS: `sslmode=disable`/`prefer` connect in clear text, `sslmode=require`
//!   fails with `connection-failed`; `connection-builder.set-ca-root` fails;
//! - range types are neither accepted as parameters nor decoded (they come
//!   back as `unsupported` bytes with data type `other`);
//! - no limit on the size of a result (Spin's is 128 MiB).

// The WIT `error` is what every function returns to the guest; boxing it
// would only add conversions (Spin allows this lint too).
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::BufMut;
use futures::StreamExt;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{NoTls, Row};
use wasmtime::StoreContextMut;
use wasmtime::component::{Accessor, Destination, FutureReader, Resource, StreamProducer, StreamReader, StreamResult};

use crate::outbound_hosts::AllowedHosts;
use crate::runtime::{SpinHost, StoreData, pg as wit};
use wit::{Column, DbDataType, DbValue, ParameterValue, RowSet};

/// Maximum connections per address, as in Spin.
const POOL_SIZE: usize = 64;

/// Connection pools, one per address string.
#[derive(Default)]
pub struct PgPools {
    pools: Mutex<HashMap<String, deadpool_postgres::Pool>>,
}

impl PgPools {
    fn pool(&self, address: &str) -> Result<deadpool_postgres::Pool, wit::Error> {
        let mut pools = self.pools.lock().map_err(|_| wit::Error::Other("connection pool lock poisoned".into()))?;
        if let Some(pool) = pools.get(address) {
            return Ok(pool.clone());
        }
        let config: tokio_postgres::Config =
            address.parse().map_err(|e| wit::Error::ConnectionFailed(format!("invalid address: {e}")))?;
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(wit::Error::ConnectionFailed(
                "sslmode=require is not supported by spin-test-host (it has no TLS)".into(),
            ));
        }
        let manager = deadpool_postgres::Manager::from_config(
            config,
            NoTls,
            deadpool_postgres::ManagerConfig { recycling_method: deadpool_postgres::RecyclingMethod::Clean },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| wit::Error::ConnectionFailed(format!("building pool: {e}")))?;
        pools.insert(address.to_owned(), pool.clone());
        Ok(pool)
    }

    async fn connect(&self, address: &str) -> Result<PgConnection, wit::Error> {
        let pool = self.pool(address)?;
        // Spin formats an `anyhow` error with `{:?}`: the message and its causes.
        let client =
            pool.get().await.map_err(|e| wit::Error::ConnectionFailed(format!("{:?}", anyhow::Error::from(e))))?;
        Ok(PgConnection { client: Arc::new(client) })
    }
}

/// The host side of a `connection` resource: one pooled client.
pub struct PgConnection {
    client: Arc<deadpool_postgres::Object>,
}

/// The host side of a `connection-builder` resource.
pub struct PgConnectionBuilder {
    address: String,
}

fn ensure_allowed(data: &StoreData, address: &str) -> Result<(), wit::Error> {
    check_address(&data.ctx.allowed_hosts, address)
}

/// Spin's `ensure_address_allowed`: every TCP host of the connection string,
/// with the port at the same index (or the only port), must be allowed.
fn check_address(allowed_hosts: &AllowedHosts, address: &str) -> Result<(), wit::Error> {
    let config: tokio_postgres::Config =
        address.parse().map_err(|e: tokio_postgres::Error| wit::Error::ConnectionFailed(e.to_string()))?;
    let ports = config.get_ports();
    for (i, host) in config.get_hosts().iter().enumerate() {
        match host {
            tokio_postgres::config::Host::Tcp(host) => {
                let port = ports.get(i).or_else(|| if ports.len() == 1 { ports.first() } else { None });
                let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                let url = format!("{host}{port}");
                let allowed = allowed_hosts.check_url(&url, "postgres").map_err(wit::Error::Other)?;
                if !allowed {
                    tracing::error!("postgres connection to {url} is not allowed by allowed_outbound_hosts");
                    return Err(wit::Error::ConnectionFailed(format!("address postgres://{url} is not permitted")));
                }
            }
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(_) => {
                return Err(wit::Error::ConnectionFailed("Unix sockets are not supported on WebAssembly".into()));
            }
        }
    }
    Ok(())
}

// ---- errors ------------------------------------------------------------------

fn query_failed(e: tokio_postgres::Error) -> wit::Error {
    let as_text = format!("{e:?}");
    let Some(db) = e.as_db_error() else {
        return wit::Error::QueryFailed(wit::QueryError::Text(as_text));
    };
    let mut extras = Vec::new();
    let mut add = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            extras.push((k.to_owned(), v));
        }
    };
    add("column", db.column().map(str::to_owned));
    add("constraint", db.constraint().map(str::to_owned));
    add("routine", db.routine().map(str::to_owned));
    add("hint", db.hint().map(str::to_owned));
    add("table", db.table().map(str::to_owned));
    add("datatype", db.datatype().map(str::to_owned));
    add("schema", db.schema().map(str::to_owned));
    add("file", db.file().map(str::to_owned));
    add("line", db.line().map(|l| l.to_string()));
    add("where_", db.where_().map(str::to_owned));
    wit::Error::QueryFailed(wit::QueryError::DbError(wit::DbError {
        as_text,
        severity: db.severity().to_owned(),
        code: db.code().code().to_owned(),
        message: db.message().to_owned(),
        detail: db.detail().map(str::to_owned),
        extras,
    }))
}

fn conversion_failed(e: impl std::fmt::Display) -> wit::Error {
    wit::Error::QueryFailed(wit::QueryError::Text(e.to_string()))
}

// ---- parameters ----------------------------------------------------------------

/// A NULL that fits any column type (Rust `None` would be typed).
#[derive(Debug)]
struct PgNull;

impl ToSql for PgNull {
    fn to_sql(&self, _: &Type, _: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        Ok(IsNull::Yes)
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    to_sql_checked!();
}

/// Postgres `interval` in its binary wire form.
#[derive(Debug)]
struct Interval(wit::Interval);

impl ToSql for Interval {
    fn to_sql(&self, _: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.put_i64(self.0.micros);
        out.put_i32(self.0.days);
        out.put_i32(self.0.months);
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }
    to_sql_checked!();
}

impl<'a> FromSql<'a> for Interval {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let bytes: [u8; 16] = raw.try_into().map_err(|_| "interval: unexpected length")?;
        let (micros, rest) = bytes.split_at(8);
        let (days, months) = rest.split_at(4);
        Ok(Self(wit::Interval {
            micros: i64::from_be_bytes(micros.try_into()?),
            days: i32::from_be_bytes(days.try_into()?),
            months: i32::from_be_bytes(months.try_into()?),
        }))
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }
}

/// Any value, as raw bytes (for types we do not decode).
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Self(raw.to_vec()))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

type Param = Box<dyn ToSql + Send + Sync>;

fn date_of((y, m, d): (i32, u8, u8)) -> anyhow::Result<chrono::NaiveDate> {
    chrono::NaiveDate::from_ymd_opt(y, m.into(), d.into())
        .ok_or_else(|| anyhow::anyhow!("invalid date y={y}, m={m}, d={d}"))
}

fn time_of((h, mi, s, ns): (u8, u8, u8, u32)) -> anyhow::Result<chrono::NaiveTime> {
    chrono::NaiveTime::from_hms_nano_opt(h.into(), mi.into(), s.into(), ns)
        .ok_or_else(|| anyhow::anyhow!("invalid time {h}:{mi}:{s}:{ns}"))
}

fn to_param(value: ParameterValue) -> anyhow::Result<Param> {
    use ParameterValue as P;
    Ok(match value {
        P::Boolean(v) => Box::new(v),
        P::Int8(v) => Box::new(v),
        P::Int16(v) => Box::new(v),
        P::Int32(v) => Box::new(v),
        P::Int64(v) => Box::new(v),
        P::Floating32(v) => Box::new(v),
        P::Floating64(v) => Box::new(v),
        P::Str(v) => Box::new(v),
        P::Binary(v) => Box::new(v),
        P::Date(v) => Box::new(date_of(v)?),
        P::Time(v) => Box::new(time_of(v)?),
        P::Datetime((y, mo, d, h, mi, s, ns)) => {
            Box::new(chrono::NaiveDateTime::new(date_of((y, mo, d))?, time_of((h, mi, s, ns))?))
        }
        P::Timestamp(v) => Box::new(
            chrono::DateTime::<chrono::Utc>::from_timestamp(v, 0)
                .ok_or_else(|| anyhow::anyhow!("invalid epoch timestamp {v}"))?,
        ),
        P::Uuid(v) => Box::new(uuid::Uuid::parse_str(&v).map_err(|_| anyhow::anyhow!("invalid UUID {v}"))?),
        P::Jsonb(v) => Box::new(
            serde_json::from_slice::<serde_json::Value>(&v)
                .map_err(|_| anyhow::anyhow!("invalid JSON {}", String::from_utf8_lossy(&v)))?,
        ),
        P::Decimal(v) => {
            Box::new(rust_decimal::Decimal::from_str_exact(&v).map_err(|_| anyhow::anyhow!("invalid decimal {v}"))?)
        }
        P::ArrayInt32(v) => Box::new(v),
        P::ArrayInt64(v) => Box::new(v),
        P::ArrayStr(v) => Box::new(v),
        P::ArrayDecimal(v) => Box::new(
            v.iter()
                .map(|d| {
                    d.as_deref()
                        .map(|s| {
                            rust_decimal::Decimal::from_str_exact(s).map_err(|_| anyhow::anyhow!("invalid decimal {s}"))
                        })
                        .transpose()
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
        ),
        P::Interval(v) => Box::new(Interval(v)),
        P::DbNull => Box::new(PgNull),
        P::RangeInt32(_) | P::RangeInt64(_) | P::RangeDecimal(_) => {
            anyhow::bail!("range parameters are not supported by spin-test-host")
        }
    })
}

fn to_params(params: Vec<ParameterValue>) -> Result<Vec<Param>, wit::Error> {
    params
        .into_iter()
        .map(to_param)
        .collect::<anyhow::Result<_>>()
        .map_err(|e| wit::Error::BadParameter(format!("{e:?}")))
}

// ---- results ---------------------------------------------------------------------

fn data_type(ty: &Type) -> DbDataType {
    match *ty {
        Type::BOOL => DbDataType::Boolean,
        Type::BYTEA => DbDataType::Binary,
        Type::FLOAT4 => DbDataType::Floating32,
        Type::FLOAT8 => DbDataType::Floating64,
        Type::INT2 => DbDataType::Int16,
        Type::INT4 => DbDataType::Int32,
        Type::INT8 => DbDataType::Int64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR => DbDataType::Str,
        Type::TIMESTAMP | Type::TIMESTAMPTZ => DbDataType::Datetime,
        Type::DATE => DbDataType::Date,
        Type::TIME => DbDataType::Time,
        Type::UUID => DbDataType::Uuid,
        Type::JSONB => DbDataType::Jsonb,
        Type::NUMERIC => DbDataType::Decimal,
        Type::INT4_ARRAY => DbDataType::ArrayInt32,
        Type::INT8_ARRAY => DbDataType::ArrayInt64,
        Type::NUMERIC_ARRAY => DbDataType::ArrayDecimal,
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY => DbDataType::ArrayStr,
        Type::INTERVAL => DbDataType::Interval,
        _ => DbDataType::Other(ty.name().to_owned()),
    }
}

fn columns_of(columns: &[tokio_postgres::Column]) -> Vec<Column> {
    columns.iter().map(|c| Column { name: c.name().to_owned(), data_type: data_type(c.type_()) }).collect()
}

fn get<'a, T: FromSql<'a>>(
    row: &'a Row,
    i: usize,
    f: impl FnOnce(T) -> anyhow::Result<DbValue>,
) -> anyhow::Result<DbValue> {
    match row.try_get::<_, Option<T>>(i)? {
        Some(v) => f(v),
        None => Ok(DbValue::DbNull),
    }
}

fn datetime_tuple(v: chrono::NaiveDateTime) -> anyhow::Result<DbValue> {
    use chrono::{Datelike, Timelike};
    Ok(DbValue::Datetime((
        v.year(),
        v.month().try_into()?,
        v.day().try_into()?,
        v.hour().try_into()?,
        v.minute().try_into()?,
        v.second().try_into()?,
        v.nanosecond(),
    )))
}

fn convert_value(row: &Row, i: usize) -> anyhow::Result<DbValue> {
    use chrono::{Datelike, Timelike};
    let ty = row.columns()[i].type_().clone();
    match ty {
        Type::BOOL => get(row, i, |v| Ok(DbValue::Boolean(v))),
        Type::BYTEA => get(row, i, |v| Ok(DbValue::Binary(v))),
        Type::FLOAT4 => get(row, i, |v| Ok(DbValue::Floating32(v))),
        Type::FLOAT8 => get(row, i, |v| Ok(DbValue::Floating64(v))),
        Type::INT2 => get(row, i, |v| Ok(DbValue::Int16(v))),
        Type::INT4 => get(row, i, |v| Ok(DbValue::Int32(v))),
        Type::INT8 => get(row, i, |v| Ok(DbValue::Int64(v))),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR => get(row, i, |v| Ok(DbValue::Str(v))),
        // As Spin: a naive date-time for both, which cannot be read from a
        // `timestamptz` (the row then fails to convert).
        Type::TIMESTAMP | Type::TIMESTAMPTZ => get(row, i, datetime_tuple),
        Type::DATE => get(row, i, |v: chrono::NaiveDate| {
            Ok(DbValue::Date((v.year(), v.month().try_into()?, v.day().try_into()?)))
        }),
        Type::TIME => get(row, i, |v: chrono::NaiveTime| {
            Ok(DbValue::Time((v.hour().try_into()?, v.minute().try_into()?, v.second().try_into()?, v.nanosecond())))
        }),
        Type::UUID => get(row, i, |v: uuid::Uuid| Ok(DbValue::Uuid(v.to_string()))),
        Type::JSONB => get(row, i, |v: serde_json::Value| Ok(DbValue::Jsonb(serde_json::to_vec(&v)?))),
        Type::NUMERIC => get(row, i, |v: rust_decimal::Decimal| Ok(DbValue::Decimal(v.to_string()))),
        Type::INT4_ARRAY => get(row, i, |v| Ok(DbValue::ArrayInt32(v))),
        Type::INT8_ARRAY => get(row, i, |v| Ok(DbValue::ArrayInt64(v))),
        Type::NUMERIC_ARRAY => get(row, i, |v: Vec<Option<rust_decimal::Decimal>>| {
            Ok(DbValue::ArrayDecimal(v.into_iter().map(|d| d.map(|d| d.to_string())).collect()))
        }),
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY => get(row, i, |v| Ok(DbValue::ArrayStr(v))),
        Type::INTERVAL => get(row, i, |v: Interval| Ok(DbValue::Interval(v.0))),
        _ => get(row, i, |v: Raw| Ok(DbValue::Unsupported(v.0))),
    }
}

fn convert_row(row: &Row) -> Result<Vec<DbValue>, wit::Error> {
    (0..row.len())
        .map(|i| convert_value(row, i))
        .collect::<anyhow::Result<_>>()
        .map_err(|e| conversion_failed(format!("{e:?}")))
}

// ---- operations shared by the sync and async functions --------------------------------

async fn execute(
    client: &deadpool_postgres::Object,
    statement: &str,
    params: Vec<ParameterValue>,
) -> Result<u64, wit::Error> {
    // Spin reports a parameter it cannot convert differently here than in `query`.
    let params = to_params(params).map_err(|e| match e {
        wit::Error::BadParameter(m) => wit::Error::ValueConversionFailed(m),
        other => other,
    })?;
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as _).collect();
    client.execute(statement, &refs).await.map_err(query_failed)
}

/// A query's rows, its first one already read. A stream that has ended is
/// not polled again (tokio-postgres then answers `Closed`).
struct Rows {
    first: Option<Result<Row, tokio_postgres::Error>>,
    rest: Option<Pin<Box<tokio_postgres::RowStream>>>,
}

impl Rows {
    async fn next(&mut self) -> Option<Result<Row, tokio_postgres::Error>> {
        if let Some(row) = self.first.take() {
            return Some(row);
        }
        let row = self.rest.as_mut()?.next().await;
        if row.is_none() {
            self.rest = None;
        }
        row
    }
}

/// Sends the query and waits for its first row (or its end): the columns are
/// those of the first row, as in Spin, so a query without rows has none.
async fn start_query(
    client: &deadpool_postgres::Object,
    statement: &str,
    params: Vec<ParameterValue>,
) -> Result<(Vec<Column>, Rows), wit::Error> {
    let params = to_params(params)?;
    let rows = client
        .query_raw(statement, params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)))
        .await
        .map_err(query_failed)?;
    let mut rest = Box::pin(rows);
    let first = rest.next().await;
    let columns = match &first {
        Some(Ok(row)) => columns_of(row.columns()),
        _ => Vec::new(),
    };
    let rest = first.is_some().then_some(rest);
    Ok((columns, Rows { first, rest }))
}

async fn query(
    client: &deadpool_postgres::Object,
    statement: &str,
    params: Vec<ParameterValue>,
) -> Result<RowSet, wit::Error> {
    let (columns, mut rows) = start_query(client, statement, params).await?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().await {
        out.push(convert_row(&row.map_err(query_failed)?)?);
    }
    Ok(RowSet { columns, rows: out })
}

fn connection(data: &StoreData, r: &Resource<PgConnection>) -> Result<Arc<deadpool_postgres::Object>, wit::Error> {
    data.table.get(r).map(|c| c.client.clone()).map_err(|_| wit::Error::ConnectionFailed("no connection found".into()))
}

// ---- the WIT traits --------------------------------------------------------------------

impl wit::Host for StoreData {
    fn convert_error(&mut self, err: wit::Error) -> wasmtime::Result<wit::Error> {
        Ok(err)
    }
}

impl wit::HostConnection for StoreData {
    async fn open(&mut self, address: String) -> Result<Resource<PgConnection>, wit::Error> {
        ensure_allowed(self, &address)?;
        let conn = self.ctx.pg_pools.connect(&address).await?;
        self.table.push(conn).map_err(|_| wit::Error::ConnectionFailed("too many connections".into()))
    }

    async fn query(
        &mut self,
        conn: Resource<PgConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Result<RowSet, wit::Error> {
        let client = connection(self, &conn)?;
        query(&client, &statement, params).await
    }

    async fn execute(
        &mut self,
        conn: Resource<PgConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Result<u64, wit::Error> {
        let client = connection(self, &conn)?;
        execute(&client, &statement, params).await
    }

    async fn drop(&mut self, conn: Resource<PgConnection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

impl wit::HostConnectionBuilder for StoreData {
    async fn new(&mut self, address: String) -> wasmtime::Result<Resource<PgConnectionBuilder>> {
        Ok(self.table.push(PgConnectionBuilder { address })?)
    }

    async fn set_ca_root(
        &mut self,
        _builder: Resource<PgConnectionBuilder>,
        _certificate: String,
    ) -> Result<(), wit::Error> {
        Err(wit::Error::Other("custom CA roots (TLS) are not supported by spin-test-host".into()))
    }

    async fn build(&mut self, builder: Resource<PgConnectionBuilder>) -> Result<Resource<PgConnection>, wit::Error> {
        let address = self
            .table
            .get(&builder)
            .map(|b| b.address.clone())
            .map_err(|_| wit::Error::ConnectionFailed("no builder found".into()))?;
        <Self as wit::HostConnection>::open(self, address).await
    }

    async fn drop(&mut self, builder: Resource<PgConnectionBuilder>) -> wasmtime::Result<()> {
        self.table.delete(builder)?;
        Ok(())
    }
}

async fn open_async<T>(
    accessor: &Accessor<T, SpinHost>,
    address: String,
) -> Result<Resource<PgConnection>, wit::Error> {
    let pools = accessor.with(|mut access| {
        let data = access.get();
        ensure_allowed(data, &address).map(|()| data.ctx.pg_pools.clone())
    })?;
    let conn = pools.connect(&address).await?;
    accessor.with(|mut access| {
        access.get().table.push(conn).map_err(|_| wit::Error::ConnectionFailed("too many connections".into()))
    })
}

impl<T: Send> wit::HostConnectionBuilderWithStore<T> for SpinHost {
    async fn build_async(
        accessor: &Accessor<T, Self>,
        builder: Resource<PgConnectionBuilder>,
    ) -> Result<Resource<PgConnection>, wit::Error> {
        let address = accessor.with(|mut access| {
            access
                .get()
                .table
                .get(&builder)
                .map(|b| b.address.clone())
                .map_err(|_| wit::Error::ConnectionFailed("no builder found".into()))
        })?;
        open_async(accessor, address).await
    }
}

impl<T: Send> wit::HostConnectionWithStore<T> for SpinHost {
    async fn open_async(accessor: &Accessor<T, Self>, address: String) -> Result<Resource<PgConnection>, wit::Error> {
        let _span = crate::runtime::store_call_span(accessor, "spin_outbound_pg.open_async", "postgresql");
        open_async(accessor, address).await
    }

    async fn execute_async(
        accessor: &Accessor<T, Self>,
        conn: Resource<PgConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Result<u64, wit::Error> {
        let _span = crate::runtime::store_call_span(accessor, "spin_outbound_pg.execute", "postgresql");
        let client = accessor.with(|mut access| connection(access.get(), &conn))?;
        execute(&client, &statement, params).await
    }

    async fn query_async(
        accessor: &Accessor<T, Self>,
        conn: Resource<PgConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Result<(Vec<Column>, StreamReader<Vec<DbValue>>, FutureReader<Result<(), wit::Error>>), wit::Error> {
        let _span = crate::runtime::store_call_span(accessor, "spin_outbound_pg.query_async", "postgresql");
        let client = accessor.with(|mut access| connection(access.get(), &conn))?;
        let (columns, mut rows) = start_query(&client, &statement, params).await?;

        // A task pumps rows into a small channel; the guest reads them as a
        // stream, and the final status through the future.
        let (row_tx, row_rx) = tokio::sync::mpsc::channel::<Vec<DbValue>>(4);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<Result<(), wit::Error>>();
        tokio::spawn(async move {
            // Keep the pooled client alive while rows are being read.
            let _client = client;
            let result = loop {
                tokio::select! {
                    biased;
                    _ = row_tx.closed() => break Ok(()),
                    next = rows.next() => match next {
                        None => break Ok(()),
                        Some(Err(e)) => break Err(query_failed(e)),
                        Some(Ok(row)) => match convert_row(&row) {
                            Err(e) => break Err(e),
                            Ok(values) => {
                                if row_tx.send(values).await.is_err() {
                                    break Ok(());
                                }
                            }
                        },
                    },
                }
            };
            let _ = done_tx.send(result);
        });

        accessor
            .with(|mut access| -> wasmtime::Result<_> {
                let rows = StreamReader::new(&mut access, RowProducer(row_rx))?;
                let done = FutureReader::new(&mut access, done_rx)?;
                Ok((rows, done))
            })
            .map(|(rows, done)| (columns, rows, done))
            .map_err(|e| wit::Error::Other(e.to_string()))
    }
}

/// Feeds rows from a channel to a guest `stream<row>`, one at a time.
struct RowProducer(tokio::sync::mpsc::Receiver<Vec<DbValue>>);

impl<D> StreamProducer<D> for RowProducer {
    type Item = Vec<DbValue>;
    type Buffer = Option<Vec<DbValue>>;

    fn poll_produce<'a>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        store: StoreContextMut<'a, D>,
        mut destination: Destination<'a, Self::Item, Self::Buffer>,
        finish: bool,
    ) -> Poll<wasmtime::Result<StreamResult>> {
        if destination.remaining(store) == Some(0) {
            return Poll::Ready(Ok(StreamResult::Completed));
        }
        match self.get_mut().0.poll_recv(cx) {
            Poll::Ready(Some(row)) => {
                destination.set_buffer(Some(row));
                Poll::Ready(Ok(StreamResult::Completed))
            }
            Poll::Ready(None) => Poll::Ready(Ok(StreamResult::Dropped)),
            Poll::Pending if finish => Poll::Ready(Ok(StreamResult::Cancelled)),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_mapping() {
        assert!(matches!(data_type(&Type::INT4), DbDataType::Int32));
        assert!(matches!(data_type(&Type::BPCHAR), DbDataType::Str));
        assert!(matches!(data_type(&Type::TIMESTAMPTZ), DbDataType::Datetime));
        assert!(matches!(data_type(&Type::NUMERIC), DbDataType::Decimal));
        assert!(matches!(data_type(&Type::INET), DbDataType::Other(ref n) if n == "inet"));
    }

    #[test]
    fn bad_parameters() {
        assert!(to_param(ParameterValue::Uuid("nope".into())).is_err());
        assert!(to_param(ParameterValue::Decimal("1.2.3".into())).is_err());
        assert!(to_param(ParameterValue::Date((2024, 2, 30))).is_err());
        assert!(to_param(ParameterValue::Jsonb(b"{".to_vec())).is_err());
        assert!(to_param(ParameterValue::Decimal("12.50".into())).is_ok());
    }

    #[test]
    fn address_checks_like_spin() {
        let allowed = AllowedHosts::resolve(
            &["postgres://db:5433".to_string(), "postgres://other".to_string()],
            &crate::variables::AppVariables::default(),
            &[],
        );
        let check = |a: &str| check_address(&allowed, a);
        assert_eq!(check("postgres://u:secret@db:5433/shop"), Ok(()));
        assert_eq!(check("host=db port=5433 user=u dbname=shop"), Ok(()));
        assert_eq!(check("postgres://u@other/shop"), Ok(()));
        // The message names host and port only (never the password); the
        // port is tokio-postgres's default when the string has none.
        assert_eq!(
            check("postgres://u:secret@db/shop"),
            Err(wit::Error::ConnectionFailed("address postgres://db:5432 is not permitted".into()))
        );
        // Every host of a multi-host string must be allowed.
        assert!(check("postgres://u@db:5433,evil:5433/shop").is_err());
        assert!(matches!(check("postgres://u@db:notaport/shop"), Err(wit::Error::ConnectionFailed(_))));
    }
}
