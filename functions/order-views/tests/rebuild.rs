//! The rebuild, specified: every order of the event store re-folded into a fresh table, and
//! each way the live views can differ from it reported by order ID.

mod common;

use common::*;
use order_views::memory::MemoryViews;
use order_views::projector::{handle, Projector};
use order_views::rebuild::{rebuild, RebuildReport};
use order_views::View;
use serde_json::json;
use shared::adapters::memory::MemoryShop;
use shared::domain::{Order, OrderId, OrderStatus, Recorded};

/// Three orders in the event store, projected into the live views event by event.
async fn given_projected_orders() -> (Projector<MemoryViews, MemoryShop>, Vec<(OrderId, Vec<Recorded>)>) {
    let p = Projector { views: MemoryViews::default(), events: MemoryShop::default() };
    let mut orders = Vec::new();
    for (i, life) in [Life::Delivered, Life::Refunded, Life::Declined].into_iter().enumerate() {
        let history = recorded(events(life, "ada", 100 * (i as i64 + 1), start() + chrono::Duration::hours(i as i64)));
        let id = given_order(&p.events, &history).await;
        let records = history.iter().map(|r| record(id, r, &format!("{i}-{}", r.version))).collect();
        assert!(failed(&handle(&p, &batch(records)).await).is_empty());
        orders.push((id, history));
    }
    (p, orders)
}

#[tokio::test]
async fn given_views_kept_event_by_event_when_rebuilt_then_the_fresh_table_holds_the_same_views() {
    let (p, _) = given_projected_orders().await;
    let fresh = MemoryViews::default();

    let report = rebuild(&p.events, &fresh, &p.views).await.unwrap();

    assert_eq!(report, RebuildReport { orders: 3, written: 3, identical: 3, ..RebuildReport::default() });
    assert!(report.matches());
    assert_eq!(fresh.views(), p.views.views());
}

#[tokio::test]
async fn given_a_tampered_a_lagging_a_missing_and_an_extra_live_view_when_rebuilt_then_each_is_reported() {
    let (p, orders) = given_projected_orders().await;
    let (tampered, lagging, missing) = (orders[0].0, orders[1].0, orders[2].0);
    let mut view = p.views.view(tampered).unwrap();
    view.status = OrderStatus::Cancelled;
    p.views.insert(view);
    let behind = Order::replay(lagging, orders[1].1[..2].iter().map(|r| &r.event)).unwrap().unwrap();
    p.views.insert(View::of(behind));
    p.views.remove(missing);
    let stray = View::of(Order::open(OrderId::new(), &opened("eve", 1, start())).unwrap());
    p.views.insert(stray.clone());

    let report = rebuild(&p.events, &MemoryViews::default(), &p.views).await.unwrap();

    let mut differing = vec![tampered.to_string(), lagging.to_string()];
    differing.sort();
    assert_eq!(report.differing, differing);
    assert_eq!(report.missing_from_live, vec![missing.to_string()]);
    assert_eq!(report.extra_in_live, vec![stray.order_id.to_string()]);
    assert_eq!((report.orders, report.written, report.identical), (3, 3, 0));
    assert!(!report.matches());
}

#[tokio::test]
async fn given_an_order_whose_history_cannot_be_folded_when_rebuilt_then_it_is_reported_and_not_written() {
    let (p, orders) = given_projected_orders().await;
    // Shipped before it was paid: the fold refuses it (the in-memory store does not check).
    let history = recorded(events(Life::Delivered, "ada", 100, start()));
    let broken = vec![history[0].clone(), Recorded { version: 2, ..history[2].clone() }];
    let id = given_order(&p.events, &broken).await;
    let fresh = MemoryViews::default();

    let report = rebuild(&p.events, &fresh, &p.views).await.unwrap();

    assert_eq!(report.unfoldable, vec![id.to_string()]);
    assert_eq!((report.orders, report.written, report.identical), (4, 3, 3));
    assert!(fresh.view(id).is_none() && fresh.view(orders[0].0).is_some());
    assert!(!report.matches());
}

#[tokio::test]
async fn given_the_fresh_table_fails_when_rebuilding_then_the_rebuild_fails_instead_of_reporting() {
    let (p, _) = given_projected_orders().await;
    let fresh = MemoryViews::default();
    fresh.fail_next_writes(1);

    assert!(rebuild(&p.events, &fresh, &p.views).await.is_err());
}

#[tokio::test]
async fn the_report_reads_as_the_operator_expects() {
    let report =
        RebuildReport { orders: 2, written: 2, identical: 1, differing: vec!["X".into()], ..Default::default() };

    assert_eq!(
        serde_json::to_value(&report).unwrap(),
        json!({"orders": 2, "written": 2, "identical": 1, "differing": ["X"], "missingFromLive": [], "extraInLive": [], "unfoldable": []})
    );
}
