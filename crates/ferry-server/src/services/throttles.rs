//! Failed attempts to prove who one is, counted in this server process: dashboard logins per
//! address and per user name, and agent enrollments per address. Past ten failures a minute
//! the next attempt waits, even with the right proof, so guessing passwords (each costing an
//! argon2 verification) or enrollment tokens goes no faster than that. Servers sharing a
//! database each count their own: behind N servers an address gets N times the attempts.

use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

use ferry_domain::login::Throttle;

use super::{ServiceError, ServiceResult};

#[derive(Default)]
pub struct Throttles {
    logins_by_address: Mutex<Throttle<IpAddr>>,
    logins_by_user: Mutex<Throttle<String>>,
    enrollments_by_address: Mutex<Throttle<IpAddr>>,
}

impl Throttles {
    /// Refuses a login from `from` (as `user`) that must wait.
    pub fn check_login(&self, from: IpAddr, user: Option<&str>, now_ms: i64) -> ServiceResult<()> {
        let by_address = lock(&self.logins_by_address).wait(&from, now_ms);
        let by_user =
            user.and_then(|user| lock(&self.logins_by_user).wait(&user.to_owned(), now_ms));
        wait_refused("failed logins", by_address.max(by_user))
    }

    pub fn login_failed(&self, from: IpAddr, user: Option<&str>, now_ms: i64) {
        lock(&self.logins_by_address).failed(from, now_ms);
        if let Some(user) = user {
            lock(&self.logins_by_user).failed(user.to_owned(), now_ms);
        }
    }

    pub fn login_succeeded(&self, from: IpAddr, user: &str) {
        lock(&self.logins_by_address).succeeded(&from);
        lock(&self.logins_by_user).succeeded(&user.to_owned());
    }

    /// Refuses an enrollment from `from` that must wait.
    pub fn check_enrollment(&self, from: IpAddr, now_ms: i64) -> ServiceResult<()> {
        let by_address = lock(&self.enrollments_by_address).wait(&from, now_ms);
        wait_refused("failed enrollments from this address", by_address)
    }

    pub fn enrollment_failed(&self, from: IpAddr, now_ms: i64) {
        lock(&self.enrollments_by_address).failed(from, now_ms);
    }
}

fn wait_refused(what: &str, wait_ms: Option<i64>) -> ServiceResult<()> {
    match wait_ms {
        None => Ok(()),
        Some(wait_ms) => Err(ServiceError::too_many(format!(
            "too many {what}: wait {} seconds before trying again",
            (wait_ms + 999) / 1000
        ))),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().expect("the throttle lock is never poisoned")
}
