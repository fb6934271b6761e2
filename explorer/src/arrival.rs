//! Out-of-order arrival: an order's lifecycle events (one legal life of an order: placed;
//! placed then cancelled; placed and shipped; placed, shipped and delivered) reach a consumer
//! in any order, each any number of times, some deliveries at the same time, some meeting a
//! fault, every failed one redelivered as SQS does. The consumer must end where in-order
//! delivery leaves it:
//! - loyalty: the same balance and the same ledger entries, never a negative balance;
//! - inventory: the same stock;
//! - e-mail: what the rule allows: each due notice once, no receipt after the cancellation
//!   notice, the receipt missing only when the cancellation was applied first, and the
//!   order's record naming exactly the notices sent. Under a fault in the documented window
//!   (a notice sent, its stage not recorded: see the `email` crate), that notice may go out
//!   twice and the order of notices is not checked.
//!
//! Generated (and shrunk towards in-order delivery) by proptest in `tests/arrival.rs`.

use crate::checkout_world::Checked;
use crate::consumers::{
    initial_stock, may_send_twice, receive, EmailWorld, InventoryWorld, LoyaltyWorld, Ran, Subject, CUSTOMER, LINES,
    MAX_RECEIVES, T0_MS, VISIBILITY_MS,
};
use crate::schedule::Report;
use email::Notice;
use shared::consumer::Consumer;
use shared::domain::OrderId;
use shared::events::{Accepts, Envelope, OrderPlacedV2};
use shared::faults::{Fault, Faults};
use shared::out_of_order::{Stage, Stages};
use shared::ports::ErrorKind;
use shared::testing::{eventbridge_body, order_cancelled, order_delivered, order_placed, order_shipped};
use std::sync::Arc;

/// The legal lives of an order after checkout (the domain allows no other sequence).
pub const LIVES: [&[Stage]; 4] = [
    &[Stage::Placed],
    &[Stage::Placed, Stage::Cancelled],
    &[Stage::Placed, Stage::Shipped],
    &[Stage::Placed, Stage::Shipped, Stage::Delivered],
];

/// The faults a delivery may meet, by index.
pub const FAULTS: [Fault; 4] = [
    Fault::FailBefore(ErrorKind::Transient),
    Fault::FailBefore(ErrorKind::Conflict),
    Fault::FailAfter,
    Fault::CrashAfter,
];

/// One delivery of a schedule.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// Which of the events the consumer receives (modulo their number).
    pub event: usize,
    /// Where it goes in the schedule: deliveries run sorted by key (ties in generated order),
    /// so keys shrinking to 0 shrink the schedule towards in-order delivery.
    pub key: u8,
    /// Runs at the same time as the delivery after it.
    pub with_next: bool,
    /// `(call, fault)`: a fault at that call of its first receive.
    pub fault: Option<(usize, usize)>,
}

/// A consumer world whose end state can be compared with in-order delivery's.
pub trait Converges: Subject {
    /// Checks this world against `in_order`; `faulty` are the faults the schedule met.
    fn check_converged(&self, in_order: &Self, life: &Life, faulty: &[(&'static str, Fault)], c: &mut Checked);
}

impl Converges for LoyaltyWorld {
    fn check_converged(&self, in_order: &Self, _: &Life, _: &[(&'static str, Fault)], c: &mut Checked) {
        let (balance, expected) = (self.ledger.balance(CUSTOMER), in_order.ledger.balance(CUSTOMER));
        c.expect(balance == expected, || format!("loyalty balance {balance}, in order {expected}"));
        c.expect(balance >= 0, || format!("a negative loyalty balance: {balance}"));
        let (entries, expected) = (self.ledger.entries(), in_order.ledger.entries());
        c.expect(entries == expected, || format!("loyalty entries {entries:?}, in order {expected:?}"));
    }
}

impl Converges for InventoryWorld {
    fn check_converged(&self, in_order: &Self, _: &Life, _: &[(&'static str, Fault)], c: &mut Checked) {
        for (sku, ..) in LINES {
            let (now, expected) = (self.stock.product(sku), in_order.stock.product(sku));
            c.expect(now == expected, || format!("inventory {sku}: {now:?}, in order {expected:?}"));
            let before = initial_stock(sku);
            let held = now.map_or(0, |p| p.available + p.reserved);
            c.expect(held <= before.available + before.reserved, || {
                format!("inventory {sku}: {now:?} from {before:?}")
            });
        }
    }
}

fn stage_of(notice: Notice) -> Stage {
    match notice {
        Notice::Receipt => Stage::Placed,
        Notice::Shipping => Stage::Shipped,
        Notice::Cancellation => Stage::Cancelled,
    }
}

impl Converges for EmailWorld {
    fn check_converged(&self, in_order: &Self, life: &Life, faulty: &[(&'static str, Fault)], c: &mut Checked) {
        // At most one duplicate per fault in the documented window (a notice sent, its stage
        // not recorded): each such fault can make one redelivery send it again.
        let in_window = faulty.iter().filter(|(call, fault)| may_send_twice(Some((call, *fault)))).count();
        let window = in_window > 0;
        let most = 1 + in_window;
        let sent: Vec<Notice> = self.mailer.sent().iter().map(|m| m.notice).collect();
        let expected: Vec<Notice> = in_order.mailer.sent().iter().map(|m| m.notice).collect();
        let count = |notice: Notice| sent.iter().filter(|n| **n == notice).count();
        for notice in [Notice::Shipping, Notice::Cancellation] {
            let due = usize::from(life.stages.contains(&stage_of(notice)));
            c.expect((due..=due * most).contains(&count(notice)), || {
                format!("{} {notice:?} sent, {due} due: {sent:?} (in order: {expected:?})", count(notice))
            });
        }
        let least = usize::from(!life.stages.contains(&Stage::Cancelled));
        let receipts = count(Notice::Receipt);
        c.expect((least..=most).contains(&receipts), || format!("{receipts} receipts: {sent:?}"));
        let record = self.records.get("email", life.order_id());
        c.expect(record.lease_until_ms.is_none(), || format!("the order is still held: {record:?}"));
        if !window {
            let late = sent.iter().skip_while(|n| **n != Notice::Cancellation).any(|n| *n == Notice::Receipt);
            c.expect(!late, || format!("a receipt after the cancellation notice: {sent:?}"));
            let recorded: Stages = sent.iter().map(|n| stage_of(*n)).collect();
            c.expect(record.applied == recorded, || format!("recorded {:?}, sent {sent:?}", record.applied));
        }
    }
}

/// One order and the stages of its life.
pub struct Life {
    pub stages: &'static [Stage],
    placed: Envelope<OrderPlacedV2>,
}

impl Life {
    pub fn new(stages: &'static [Stage]) -> Life {
        Life { stages, placed: order_placed(CUSTOMER, LINES) }
    }

    pub fn order_id(&self) -> OrderId {
        self.placed.order_id
    }

    /// The event of `stage`, in a fresh EventBridge envelope (as a retry or replay has it).
    fn body(&self, stage: Stage) -> String {
        match stage {
            Stage::Placed => eventbridge_body(&self.placed),
            Stage::Cancelled => eventbridge_body(&order_cancelled(&self.placed)),
            Stage::Shipped => eventbridge_body(&order_shipped(&self.placed)),
            Stage::Delivered => eventbridge_body(&order_delivered(&self.placed)),
        }
    }
}

/// The stages of `life` whose events the rules of `S`'s consumer route to it, in order.
fn routed<S: Subject>(life: &[Stage]) -> Vec<Stage> {
    let accepted = <<S::Consumer as Consumer>::Event as Accepts>::ACCEPTED;
    life.iter().filter(|stage| accepted.iter().any(|(_, t, _)| *t == detail_type(**stage))).copied().collect()
}

fn detail_type(stage: Stage) -> &'static str {
    match stage {
        Stage::Placed => "order.placed",
        Stage::Cancelled => "order.cancelled",
        Stage::Shipped => "order.shipped",
        Stage::Delivered => "order.delivered",
    }
}

/// A message in the consumer's queue.
struct Message {
    stage: Stage,
    body: String,
    receives: u32,
    fault: Option<Fault>,
    fault_at: usize,
}

/// What delivering a schedule did.
struct Delivered<S> {
    world: S,
    faulty: Vec<(&'static str, Fault)>,
    /// Messages that were dead-lettered or never processed.
    lost: Vec<String>,
}

/// Delivers `steps` (already in schedule order) to a fresh world, then redelivers what failed,
/// as SQS does, until every message is processed or has had its receives.
async fn deliver<S: Subject>(life: &Life, stages: &[Stage], steps: &[Step]) -> Delivered<S> {
    let world = S::given();
    let mut out = Delivered { world, faulty: Vec::new(), lost: Vec::new() };
    let mut waves: Vec<Vec<Message>> = vec![Vec::new()];
    for step in steps {
        let stage = stages[step.event % stages.len()];
        let (fault, fault_at) = step.fault.map_or((None, 0), |(at, f)| (Some(FAULTS[f % FAULTS.len()]), at));
        waves
            .last_mut()
            .into_iter()
            .for_each(|w| w.push(Message { stage, body: life.body(stage), receives: 0, fault, fault_at }));
        if !step.with_next {
            waves.push(Vec::new());
        }
    }
    let mut now = T0_MS;
    let mut failed = Vec::new();
    for wave in waves.into_iter().filter(|w| !w.is_empty()) {
        failed.extend(receive_all(&mut out, wave, now).await);
        now += 1;
    }
    // Each failed message comes back after its own visibility timeout (which outlasts any
    // lease): one at a time, since their timeouts end at different moments.
    while !failed.is_empty() {
        let (give_up, retry): (Vec<_>, Vec<_>) = failed.into_iter().partition(|m: &Message| m.receives >= MAX_RECEIVES);
        out.lost.extend(give_up.iter().map(|m| format!("{:?} failed {} receives", m.stage, m.receives)));
        failed = Vec::new();
        for message in retry {
            now += VISIBILITY_MS;
            failed.extend(receive_all(&mut out, vec![message], now).await);
        }
    }
    out
}

/// Receives every message of `wave` at once (their port calls interleave at every yield, as
/// concurrent invocations do); those that failed.
async fn receive_all<S: Subject>(out: &mut Delivered<S>, wave: Vec<Message>, now: i64) -> Vec<Message> {
    let plans: Vec<Arc<Faults>> = wave
        .iter()
        .map(|m| match m.fault.filter(|_| m.receives == 0) {
            Some(fault) => Faults::new().plan(m.fault_at, fault),
            None => Faults::new(),
        })
        .collect();
    let world = &out.world;
    let runs = wave.iter().zip(&plans).map(|(m, faults)| receive(world, faults, &m.body, m.receives + 1, now));
    let ran = futures::future::join_all(runs).await;
    let mut failed = Vec::new();
    for ((message, faults), ran) in wave.into_iter().zip(&plans).zip(ran) {
        if let (Some(fault), 0) = (message.fault, message.receives) {
            if let Some(call) = faults.calls().get(message.fault_at) {
                out.faulty.push((call, fault));
            }
        }
        match ran {
            Ran::Processed => {}
            Ran::DeadLettered => out.lost.push(format!("{:?} dead-lettered", message.stage)),
            Ran::Failed | Ran::Crashed => failed.push(Message { receives: message.receives + 1, ..message }),
        }
    }
    failed
}

/// One schedule: every event of `life` the consumer receives is delivered at least once (the
/// first `n` steps are made to cover them), all in key order; then compared with in-order
/// delivery to another fresh world.
pub async fn run<S: Converges>(life: usize, steps: &[Step]) -> Checked {
    run_counting::<S>(life, steps).await.0
}

/// [`run`], and how many of the planned faults were met (a fault planned past a delivery's
/// last call is not).
async fn run_counting<S: Converges>(life: usize, steps: &[Step]) -> (Checked, usize) {
    let life = Life::new(LIVES[life % LIVES.len()]);
    let stages = routed::<S>(life.stages);
    let mut c = Checked::default();
    let in_order: Vec<Step> =
        (0..stages.len()).map(|event| Step { event, key: 0, with_next: false, fault: None }).collect();
    let expected = deliver::<S>(&life, &stages, &in_order).await;
    c.expect(expected.lost.is_empty(), || format!("in-order delivery lost {:?}", expected.lost));

    let mut schedule: Vec<Step> = steps.to_vec();
    for event in 0..stages.len() {
        match schedule.get_mut(event) {
            Some(step) => step.event = event,
            None => schedule.push(Step { event, key: 0, with_next: false, fault: None }),
        }
    }
    schedule.sort_by_key(|step| step.key);
    let got = deliver::<S>(&life, &stages, &schedule).await;
    c.expect(got.lost.is_empty(), || format!("messages lost: {:?}", got.lost));
    got.world.check_converged(&expected.world, &life, &got.faulty, &mut c);
    (c, got.faulty.len())
}

/// Every order of `n` items.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut all = Vec::new();
    for rest in permutations(n - 1) {
        for at in 0..=rest.len() {
            let mut order = rest.clone();
            order.insert(at, n - 1);
            all.push(order);
        }
    }
    all
}

/// The enumeration behind the random schedules: every legal life, its events delivered in
/// every order, and, once per schedule, each fault at every call of each delivery's first
/// receive; recovered as SQS recovers and checked as [`run`] checks.
pub async fn explore<S: Converges>(name: &str, report: &mut Report) {
    for (l, stages) in LIVES.iter().enumerate() {
        let routed = routed::<S>(stages);
        let n = routed.len();
        for order in permutations(n) {
            // Step `event` goes where `order` puts it: its key is its position.
            let key = |event: usize| order.iter().position(|e| *e == event).unwrap_or(0) as u8;
            let steps = |fault: Option<(usize, (usize, usize))>| -> Vec<Step> {
                (0..n)
                    .map(|event| Step {
                        event,
                        key: key(event),
                        with_next: false,
                        fault: fault.filter(|(at, _)| *at == event).map(|(_, f)| f),
                    })
                    .collect()
            };
            let arrival: Vec<Stage> = order.iter().map(|e| routed[*e]).collect();
            report.record(&format!("{name} {arrival:?}"), run::<S>(l, &steps(None)).await);
            for delivery in 0..n {
                for call in 0.. {
                    let mut met = false;
                    for (index, fault) in FAULTS.iter().enumerate() {
                        let (checked, faults) = run_counting::<S>(l, &steps(Some((delivery, (call, index))))).await;
                        met |= faults > 0;
                        let what = format!("{name} {arrival:?}, {fault:?} at call {call} of delivery {delivery}");
                        report.record(&what, checked);
                    }
                    if !met {
                        break;
                    }
                }
            }
        }
    }
}
