//! The inventory's listings: what an owner sends to list or change an item, what a reader gets
//! (`GET /stock/items/{id}`, and each entry of `GET /stock/items`), and the list's filters and
//! cursor.

use market_core::{ApiError, parse_id};
use serde::{Deserialize, Serialize};

pub const TITLE_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 5000;
pub const CATEGORY_MAX: usize = 64;
/// The most items one page holds, and how many when the client does not say.
pub const PAGE_MAX: i64 = 100;
pub const PAGE_DEFAULT: i64 = 20;
/// The longest search text.
pub const QUERY_MAX: usize = 200;

/// An item as the list shows it: its listing, without its stock (a page of the list changes
/// only when a listing does; the item's own page has its stock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListEntry {
    pub item_id: String,
    /// `null` for an item nobody owns (made by the WDM routes or `batch_init`).
    pub owner_id: Option<String>,
    pub title: String,
    pub description: String,
    pub category: String,
    pub daily_price: i64,
    pub price: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// An item as its page shows it: its listing and its stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemDetail {
    #[serde(flatten)]
    pub listing: ListEntry,
    pub stock: i64,
}

/// `POST /stock/items` `{"title", "description"?, "category"?, "daily_price", "price"?, "stock"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewItem {
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub category: String,
    pub daily_price: i64,
    #[serde(default)]
    pub price: i64,
    #[serde(default = "one")]
    pub stock: i64,
}

fn one() -> i64 {
    1
}

impl NewItem {
    pub fn parse(body: &[u8]) -> Result<NewItem, ApiError> {
        let item: NewItem = serde_json::from_slice(body).map_err(|e| {
            ApiError::BadRequest(format!(
                "the body must be JSON {{\"title\", \"daily_price\", and optionally \"description\", \"category\", \"price\", \"stock\"}}: {e}"
            ))
        })?;
        check_title(&item.title)?;
        check_text("description", &item.description, DESCRIPTION_MAX)?;
        check_category(&item.category)?;
        for (name, value) in [("daily_price", item.daily_price), ("price", item.price), ("stock", item.stock)] {
            check_non_negative(name, value)?;
        }
        Ok(item)
    }
}

/// `PATCH /stock/items/{id}`: the listing fields to change (at least one). Stock changes through
/// `/stock/add` and `/stock/subtract`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ItemPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub daily_price: Option<i64>,
    pub price: Option<i64>,
}

impl ItemPatch {
    pub fn parse(body: &[u8]) -> Result<ItemPatch, ApiError> {
        let patch: ItemPatch = serde_json::from_slice(body).map_err(|e| {
            ApiError::BadRequest(format!(
                "the body must be JSON with any of \"title\", \"description\", \"category\", \"daily_price\", \"price\": {e}"
            ))
        })?;
        if patch == ItemPatch::default() {
            return Err(ApiError::BadRequest("nothing to change: give at least one field".into()));
        }
        if let Some(title) = &patch.title {
            check_title(title)?;
        }
        if let Some(description) = &patch.description {
            check_text("description", description, DESCRIPTION_MAX)?;
        }
        if let Some(category) = &patch.category {
            check_category(category)?;
        }
        for (name, value) in [("daily_price", patch.daily_price), ("price", patch.price)] {
            if let Some(value) = value {
                check_non_negative(name, value)?;
            }
        }
        Ok(patch)
    }
}

/// A value a listing change sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchValue {
    Text(String),
    Number(i64),
}

impl ItemPatch {
    /// The columns to set, with their values, in a fixed order (for [`crate::sql::patch_item`]).
    pub fn columns(&self) -> Vec<(&'static str, PatchValue)> {
        let mut set = Vec::new();
        let texts = [("title", &self.title), ("description", &self.description), ("category", &self.category)];
        for (column, value) in texts {
            if let Some(v) = value {
                set.push((column, PatchValue::Text(v.clone())));
            }
        }
        for (column, value) in [("daily_price", self.daily_price), ("price", self.price)] {
            if let Some(v) = value {
                set.push((column, PatchValue::Number(v)));
            }
        }
        set
    }
}

fn check_title(title: &str) -> Result<(), ApiError> {
    if title.trim().is_empty() {
        return Err(ApiError::BadRequest("the title must not be empty".into()));
    }
    check_text("title", title, TITLE_MAX)
}

fn check_text(name: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.chars().count() > max || value.contains('\0') {
        return Err(ApiError::BadRequest(format!("{name}: at most {max} characters, no NUL")));
    }
    Ok(())
}

/// A category is a short tag: lower-case letters, digits, `-` and `_` (or empty: none).
fn check_category(category: &str) -> Result<(), ApiError> {
    let ok = category.len() <= CATEGORY_MAX
        && category.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err(ApiError::BadRequest(format!("category: up to {CATEGORY_MAX} of a-z, 0-9, - and _"))) }
}

fn check_non_negative(name: &str, value: i64) -> Result<(), ApiError> {
    if value < 0 { Err(ApiError::BadRequest(format!("{name} must not be negative"))) } else { Ok(()) }
}

/// `GET /stock/items?owner=&category=&q=&limit=&cursor=`: filters (each optional, all must
/// hold), the page size, and where the last page ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub owner: Option<String>,
    pub category: Option<String>,
    pub text: Option<String>,
    pub limit: i64,
    /// The `listed_seq` the previous page ended at (items before it come next).
    pub after: Option<i64>,
}

impl ListQuery {
    /// From the URL's query string (`None`: no query).
    pub fn parse(query: Option<&str>) -> Result<ListQuery, ApiError> {
        let mut list = ListQuery { owner: None, category: None, text: None, limit: PAGE_DEFAULT, after: None };
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(raw).ok_or_else(|| {
                ApiError::BadRequest(format!("the query parameter {name} is not valid percent-encoded UTF-8"))
            })?;
            let value = Some(value).filter(|v| !v.is_empty());
            match name {
                "owner" => list.owner = value.map(|v| parse_id("owner", &v).map(str::to_string)).transpose()?,
                "category" => {
                    if let Some(v) = &value {
                        check_category(v)?;
                    }
                    list.category = value;
                }
                "q" => {
                    if value.as_ref().is_some_and(|v| v.chars().count() > QUERY_MAX || v.contains('\0')) {
                        return Err(ApiError::BadRequest(format!("q: at most {QUERY_MAX} characters")));
                    }
                    list.text = value;
                }
                "limit" => {
                    list.limit = value
                        .and_then(|v| v.parse::<i64>().ok())
                        .filter(|n| (1..=PAGE_MAX).contains(n))
                        .ok_or_else(|| ApiError::BadRequest(format!("limit must be 1 to {PAGE_MAX}")))?;
                }
                "cursor" => list.after = value.map(|v| decode_cursor(&v)).transpose()?,
                other => return Err(ApiError::BadRequest(format!("unknown query parameter {other:?}"))),
            }
        }
        Ok(list)
    }
}

impl ListQuery {
    /// The key of this page in the view: a digest of everything that selects it.
    pub fn view_key(&self) -> String {
        let text = format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
            self.owner.as_deref().unwrap_or(""),
            self.category.as_deref().unwrap_or(""),
            self.text.as_deref().unwrap_or(""),
            self.after.unwrap_or(0),
            self.limit
        );
        let mut digest = market_core::sha256::Sha256::new();
        digest.update(text.as_bytes());
        market_core::sha256::hex(&digest.finish())
    }
}

/// The cursor a page hands out: opaque to clients (`i` and the last item's listing position).
pub fn encode_cursor(listed_seq: i64) -> String {
    format!("i{listed_seq}")
}

fn decode_cursor(cursor: &str) -> Result<i64, ApiError> {
    cursor
        .strip_prefix('i')
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::BadRequest("cursor: not one this API gave".into()))
}

/// `%XX` and `+` decoded; `None` if that is not UTF-8 or an escape is cut short.
fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_item_needs_a_title_and_a_daily_price() {
        let item = NewItem::parse(br#"{"title": "Drill", "daily_price": 5}"#).unwrap();
        assert_eq!((item.stock, item.price, item.category.as_str()), (1, 0, ""));
        for bad in [
            &br#"{"daily_price": 5}"#[..],
            br#"{"title": " ", "daily_price": 5}"#,
            br#"{"title": "x", "daily_price": -1}"#,
            br#"{"title": "x", "daily_price": 1, "category": "Tools!"}"#,
            br#"{"title": "x", "daily_price": 1, "owner_id": "me"}"#,
            b"nope",
        ] {
            assert_eq!(NewItem::parse(bad).map_err(|e| e.status()), Err(400), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_patch_changes_at_least_one_listing_field() {
        assert_eq!(ItemPatch::parse(br#"{"title": "New"}"#).unwrap().title.as_deref(), Some("New"));
        let patch = ItemPatch::parse(br#"{"price": 3, "title": "T"}"#).unwrap();
        assert_eq!(patch.columns(), vec![("title", PatchValue::Text("T".into())), ("price", PatchValue::Number(3))]);
        assert_eq!(
            crate::sql::patch_item(&["title", "price"]).split(" WHERE").next(),
            Some("UPDATE stock.items SET title = $2, price = $3, updated_at = now(), version = version + 1")
        );
        for bad in [&b"{}"[..], br#"{"stock": 3}"#, br#"{"price": -2}"#, br#"{"title": ""}"#] {
            assert_eq!(ItemPatch::parse(bad).map_err(|e| e.status()), Err(400));
        }
    }

    #[test]
    fn list_queries_are_parsed_and_checked() {
        let q = ListQuery::parse(Some("owner=u-1&category=tools&q=power+drill%21&limit=5&cursor=i42")).unwrap();
        assert_eq!(
            q,
            ListQuery {
                owner: Some("u-1".into()),
                category: Some("tools".into()),
                text: Some("power drill!".into()),
                limit: 5,
                after: Some(42)
            }
        );
        assert_eq!(ListQuery::parse(None).unwrap().limit, PAGE_DEFAULT);
        assert_eq!(ListQuery::parse(Some("q=")).unwrap().text, None);
        for bad in
            ["limit=0", "limit=101", "limit=x", "cursor=42", "cursor=i-1", "nope=1", "q=%zz", "q=%ff", "category=A"]
        {
            assert_eq!(ListQuery::parse(Some(bad)).map_err(|e| e.status()), Err(400), "{bad}");
        }
        assert_eq!(encode_cursor(42), "i42");
        let key = |q: &str| ListQuery::parse(Some(q)).unwrap().view_key();
        assert_eq!(key("q=a&limit=5"), key("limit=5&q=a"));
        assert_ne!(key("q=a"), key("category=a"));
        assert_ne!(key("q=a"), key("q=a&cursor=i3"));
        assert_eq!(
            crate::sql::list_items(true, false, true).split(" FROM stock.items ").nth(1),
            Some(
                "WHERE owner_id IS NOT NULL AND title <> '' AND listed_seq < $1 AND owner_id = $3 AND search @@ websearch_to_tsquery('english', $4) ORDER BY listed_seq DESC LIMIT $2"
            )
        );
    }
}
