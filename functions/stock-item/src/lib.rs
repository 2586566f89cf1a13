//! `/stock/items/:item_id`: an item's page (`GET`, public), changing its listing (`PATCH`) and taking it down (`DELETE`, the owner's token) as a Spin component.
spin_kit::endpoint!("/stock/items/:item_id" {
    GET => stock_service::item_page,
    PATCH => stock_service::change_item,
    DELETE => stock_service::remove_item,
});
