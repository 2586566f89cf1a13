//! How other services call the stock service: the calls (component URL, request body) and the
//! answers they read. The request and answer types are the ones the stock service's own
//! endpoints parse and write, so the two sides cannot drift apart.

use crate::item::Item;
use crate::listing::ItemDetail;
use crate::reservation::{ReserveRequest, SagaReservation};
use market_core::service_call::ServiceCall;
use serde::Serialize;

/// `GET /stock/find/:item_id`: the item's stock and price ([`Item`]), 404 if unknown.
pub fn find(item_id: &str) -> ServiceCall {
    ServiceCall::get(format!("http://stock-find.spin.internal/stock/find/{item_id}"))
}

/// Reads a 200 answer of [`find`].
pub fn read_item(body: &[u8]) -> Option<Item> {
    serde_json::from_slice(body).ok()
}

/// `GET /stock/items/:item_id`: the item's page ([`ItemDetail`]: its listing and stock), 404 if
/// unknown.
pub fn item_page(item_id: &str) -> ServiceCall {
    ServiceCall::get(format!("http://stock-item.spin.internal/stock/items/{item_id}"))
}

/// Reads a 200 answer of [`item_page`].
pub fn read_item_page(body: &[u8]) -> Option<ItemDetail> {
    serde_json::from_slice(body).ok()
}

/// The saga step "reserve": `POST /stock/reserve/:saga_id` with the saga's lines.
pub fn reserve(saga_id: &str, lines: &ReserveRequest) -> ServiceCall {
    ServiceCall::post_json(format!("http://stock-reserve.spin.internal/stock/reserve/{saga_id}"), lines)
}

/// The "reserve" step of several sagas in one call: `POST /stock/reserve_many`, answered with a
/// [`market_core::service_call::BatchAnswer`] in the sagas' order.
pub fn reserve_many(sagas: &[SagaReservation]) -> ServiceCall {
    #[derive(Serialize)]
    struct Body<'a> {
        sagas: &'a [SagaReservation],
    }
    ServiceCall::post_json("http://stock-reserve-many.spin.internal/stock/reserve_many".into(), &Body { sagas })
}

/// The saga compensation "release": `POST /stock/release/:saga_id`.
pub fn release(saga_id: &str) -> ServiceCall {
    ServiceCall::post(format!("http://stock-release.spin.internal/stock/release/{saga_id}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reservation::ReserveManyRequest;

    #[test]
    fn the_stock_service_parses_what_its_client_sends() {
        let lines = ReserveRequest { items: vec![("item-1".into(), 2), ("item-2".into(), 1)] };
        let one = reserve("o.0.0", &lines);
        assert_eq!(one.url, "http://stock-reserve.spin.internal/stock/reserve/o.0.0");
        assert_eq!(ReserveRequest::parse(one.body.as_bytes()), Ok(lines.clone()));

        let sagas = vec![
            SagaReservation { saga_id: "a.0.0".into(), lines: lines.clone() },
            SagaReservation { saga_id: "b.0.0".into(), lines },
        ];
        let many = reserve_many(&sagas);
        let parsed = ReserveManyRequest::parse(many.body.as_bytes()).map(|r| r.sagas.len());
        assert_eq!(parsed, Ok(2));
    }

    #[test]
    fn find_answers_read_back() {
        let body = serde_json::to_vec(&Item { stock: 3, price: 7 }).unwrap_or_default();
        assert_eq!(read_item(&body), Some(Item { stock: 3, price: 7 }));
        assert_eq!(find("i").url, "http://stock-find.spin.internal/stock/find/i");
    }
}
