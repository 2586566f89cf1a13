//! `/stock/items`: the inventory's list (`GET`, public) and listing a new item (`POST`, token) as a Spin component.
spin_kit::endpoint!("/stock/items" { GET => stock_service::list_items, POST => stock_service::list_item });
