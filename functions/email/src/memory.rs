//! In-memory customers and mailer for tests. Each call yields once, as a network round trip
//! would, so that concurrent deliveries really interleave.

use crate::{Customer, Customers, MailError, Mailer, Message};
use async_trait::async_trait;
use shared::domain::CustomerId;
use shared::ports::StoreError;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct MemoryCustomers {
    customers: Mutex<HashMap<CustomerId, Customer>>,
}

impl MemoryCustomers {
    pub fn with(self, id: &str, email: &str, name: &str) -> Self {
        let customer = Customer { email: email.to_owned(), name: name.to_owned() };
        self.customers.lock().unwrap().insert(CustomerId(id.to_owned()), customer);
        self
    }
}

#[async_trait]
impl Customers for MemoryCustomers {
    async fn find(&self, id: &CustomerId) -> Result<Option<Customer>, StoreError> {
        tokio::task::yield_now().await;
        Ok(self.customers.lock().unwrap().get(id).cloned())
    }
}

#[derive(Default)]
struct Outbox {
    sent: Vec<Message>,
    fail_next: u32,
}

/// Keeps what it sends; can be told to fail, as SES does when throttled.
#[derive(Default)]
pub struct MemoryMailer {
    state: Mutex<Outbox>,
}

impl MemoryMailer {
    pub fn sent(&self) -> Vec<Message> {
        self.state.lock().unwrap().sent.clone()
    }

    pub fn fail_next(&self, sends: u32) {
        self.state.lock().unwrap().fail_next = sends;
    }
}

#[async_trait]
impl Mailer for MemoryMailer {
    async fn send(&self, message: &Message) -> Result<(), MailError> {
        tokio::task::yield_now().await;
        let mut s = self.state.lock().unwrap();
        if s.fail_next > 0 {
            s.fail_next -= 1;
            return Err(MailError("injected fault".into()));
        }
        s.sent.push(message.clone());
        Ok(())
    }
}
