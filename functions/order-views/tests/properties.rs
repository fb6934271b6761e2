//! Properties of the read side over random legal histories:
//! - any arrival order of an order's events, with duplicates and in any batching, ends in the
//!   view in-order delivery gives (which is the fold of the history);
//! - after a random mix of orders and events, delivered late, twice or out of order, the views
//!   maintained event by event are exactly what a rebuild from the event store writes.

mod common;

use common::*;
use order_views::memory::MemoryViews;
use order_views::projector::{handle, Projector};
use order_views::rebuild::rebuild;
use order_views::View;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use shared::adapters::memory::MemoryShop;
use shared::domain::{OrderId, Recorded};
use std::collections::BTreeMap;

/// Failing cases are kept beside this file (tests/ has no lib.rs to put them parallel to).
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    }
}

/// One order of a scenario: its life, how far it got, its customer and total.
#[derive(Debug, Clone)]
struct Spec {
    life: Life,
    len: usize,
    customer: &'static str,
    total: i64,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::sample::select(Life::ALL.to_vec()),
        1usize..=4,
        prop::sample::select(vec!["ada", "bob", "cy"]),
        1i64..100_000,
    )
        .prop_map(|(life, len, customer, total)| Spec { life, len: len.min(life.len()), customer, total })
}

/// The orders' histories, each opened an hour after the previous.
fn histories(specs: &[Spec]) -> Vec<Vec<Recorded>> {
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let all = recorded(events(s.life, s.customer, s.total, start() + chrono::Duration::hours(i as i64)));
            assert_eq!(all.len(), s.life.len());
            all.into_iter().take(s.len).collect()
        })
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
}

fn projector() -> Projector<MemoryViews, MemoryShop> {
    Projector { views: MemoryViews::default(), events: MemoryShop::default() }
}

/// Feeds `deliveries` (order index, event index) to `p` in batches of the given sizes.
async fn deliver(
    p: &Projector<MemoryViews, MemoryShop>,
    ids: &[OrderId],
    histories: &[Vec<Recorded>],
    deliveries: &[(usize, usize)],
    sizes: &[usize],
) {
    let records: Vec<_> = deliveries
        .iter()
        .enumerate()
        .map(|(seq, &(o, e))| record(ids[o], &histories[o][e], &seq.to_string()))
        .collect();
    let mut rest = &records[..];
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (now, later) = rest.split_at((*size).min(rest.len()));
        let response = handle(p, &batch(now.to_vec())).await;
        assert!(failed(&response).is_empty(), "no failure in memory: {response:?}");
        rest = later;
    }
}

/// The views in-order delivery of every event gives.
async fn in_order(histories: &[Vec<Recorded>], ids: &[OrderId]) -> BTreeMap<OrderId, View> {
    let p = projector();
    let deliveries: Vec<(usize, usize)> =
        histories.iter().enumerate().flat_map(|(o, h)| (0..h.len()).map(move |e| (o, e))).collect();
    deliver(&p, ids, histories, &deliveries, &[deliveries.len()]).await;
    p.views.views()
}

/// Orders, and every one of their events 1 to 3 times, shuffled, with batch sizes.
fn shuffled_deliveries() -> impl Strategy<Value = (Vec<Spec>, Vec<(usize, usize)>, Vec<usize>)> {
    prop::collection::vec(spec(), 1..=4)
        .prop_flat_map(|specs| {
            let events: Vec<(usize, usize)> =
                specs.iter().enumerate().flat_map(|(o, s)| (0..s.len).map(move |e| (o, e))).collect();
            let copies = prop::collection::vec(1usize..=3, events.len());
            (Just(specs), Just(events), copies)
        })
        .prop_flat_map(|(specs, events, copies)| {
            let deliveries: Vec<(usize, usize)> =
                events.iter().zip(copies).flat_map(|(e, n)| std::iter::repeat_n(*e, n)).collect();
            let sizes = prop::collection::vec(1usize..=6, 1..=4);
            (Just(specs), Just(deliveries).prop_shuffle(), sizes)
        })
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn any_arrival_order_with_duplicates_ends_in_the_views_of_in_order_delivery(
        (specs, deliveries, sizes) in shuffled_deliveries()
    ) {
        runtime().block_on(async {
            let histories = histories(&specs);
            let p = projector();
            let mut ids = Vec::new();
            for h in &histories {
                ids.push(given_order(&p.events, h).await);
            }

            deliver(&p, &ids, &histories, &deliveries, &sizes).await;

            let expected = in_order(&histories, &ids).await;
            prop_assert_eq!(&p.views.views(), &expected);
            for (id, h) in ids.iter().zip(&histories) {
                prop_assert_eq!(&expected[id], &fold(*id, h), "in-order delivery is the fold");
            }
            Ok(())
        })?;
    }
}

/// Orders, a commit schedule interleaving their events (each order's in its own order), and
/// for each commit how late its record arrives (in commits) and whether it arrives twice.
#[allow(clippy::type_complexity)]
fn mixed_history() -> impl Strategy<Value = (Vec<Spec>, Vec<usize>, Vec<(usize, bool)>)> {
    prop::collection::vec(spec(), 1..=6).prop_flat_map(|specs| {
        let tokens: Vec<usize> = specs.iter().enumerate().flat_map(|(o, s)| std::iter::repeat_n(o, s.len)).collect();
        let n = tokens.len();
        (Just(specs), Just(tokens).prop_shuffle(), prop::collection::vec((0usize..=4, any::<bool>()), n))
    })
}

proptest! {
    #![proptest_config(config(200))]

    #[test]
    fn after_a_random_mix_of_orders_and_events_a_rebuild_equals_the_views_kept_event_by_event(
        (specs, schedule, arrivals) in mixed_history()
    ) {
        runtime().block_on(async {
            let histories = histories(&specs);
            let ids: Vec<OrderId> = histories.iter().map(|_| OrderId::new()).collect();
            let p = projector();
            let mut next = vec![0usize; histories.len()];
            // Records in flight: (due after commit number, sequence, order, event).
            let mut stream: Vec<(usize, usize, usize, usize)> = Vec::new();
            for (step, &o) in schedule.iter().enumerate() {
                let e = next[o];
                next[o] += 1;
                commit(&p.events, ids[o], &histories[o][e]).await;
                let (delay, twice) = arrivals[step];
                stream.push((step + delay, stream.len(), o, e));
                if twice {
                    stream.push((step + delay + 1, stream.len(), o, e));
                }
                let (due, later): (Vec<_>, Vec<_>) = stream.into_iter().partition(|d| d.0 <= step);
                stream = later;
                let deliveries: Vec<(usize, usize)> = due.iter().map(|d| (d.2, d.3)).collect();
                deliver(&p, &ids, &histories, &deliveries, &[deliveries.len().max(1)]).await;
            }
            stream.sort();
            let deliveries: Vec<(usize, usize)> = stream.iter().map(|d| (d.2, d.3)).collect();
            deliver(&p, &ids, &histories, &deliveries, &[3]).await;

            let fresh = MemoryViews::default();
            let report = rebuild(&p.events, &fresh, &p.views).await.unwrap();

            prop_assert!(report.matches(), "{:?}", report);
            prop_assert_eq!((report.orders, report.written, report.identical), (specs.len(), specs.len(), specs.len()));
            prop_assert_eq!(fresh.views(), p.views.views());
            Ok(())
        })?;
    }
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    permutations(n - 1)
        .into_iter()
        .flat_map(|p| {
            (0..n).map(move |at| {
                let mut q = p.clone();
                q.insert(at, n - 1);
                q
            })
        })
        .collect()
}

#[tokio::test]
async fn every_permutation_of_a_four_event_life_delivered_twice_ends_in_its_fold() {
    for life in [Life::Delivered, Life::Refunded] {
        for order in permutations(4) {
            let history = recorded(events(life, "ada", 4200, start()));
            let p = projector();
            let id = given_order(&p.events, &history).await;
            let twice: Vec<(usize, usize)> = order.iter().chain(&order).map(|&e| (0, e)).collect();

            deliver(&p, &[id], std::slice::from_ref(&history), &twice, &[1]).await;

            assert_eq!(p.views.view(id), Some(fold(id, &history)), "{life:?} delivered as {order:?} twice");
        }
    }
}
