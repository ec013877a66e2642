//! Bearer tokens and roles.
//!
//! Tokens are kept as their SHA-256 (a config may give only the hash, `token_sha256`); the hash
//! of the presented token is compared with every configured one in constant time (`subtle`),
//! all of them every time, so neither the answer's timing nor which token matched leaks the
//! secret.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::{header, request::Parts};
use subtle::ConstantTimeEq;

use super::{ApiError, ApiState};
use crate::config::ApiToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Agent,
    Supervisor,
    Wallboard,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Wallboard => "wallboard",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        match s {
            "agent" => Some(Role::Agent),
            "supervisor" => Some(Role::Supervisor),
            "wallboard" => Some(Role::Wallboard),
            _ => None,
        }
    }
}

/// The configured tokens' hashes (validated by the config; entries with an unknown role are
/// ignored).
pub(super) struct Tokens(Vec<([u8; 32], Role, Option<String>)>);

impl Tokens {
    pub(super) fn new(cfg: &[ApiToken]) -> Tokens {
        Tokens(
            cfg.iter()
                .filter_map(|t| Some((t.digest(), Role::parse(&t.role)?, t.agent.clone())))
                .collect(),
        )
    }

    fn find(&self, presented: &[u8]) -> Option<(Role, Option<String>)> {
        let presented = crate::config::token_digest(presented);
        let mut found = None;
        for (token, role, agent) in &self.0 {
            // No early exit: every token is compared.
            if bool::from(token.as_slice().ct_eq(presented.as_slice())) {
                found = Some((*role, agent.clone()));
            }
        }
        found
    }
}

/// Who is asking. The extractor never fails: handlers decide (after writing the audit row, for
/// state-changing requests) with [`Caller::require`] and friends.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `Err` holds the 401 to answer.
    pub auth: Result<Principal, ApiError>,
    pub from: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub role: Role,
    /// For role agent: the agent the token acts as.
    pub agent: Option<String>,
}

impl Principal {
    /// Supervisor, or an agent token acting on itself.
    pub fn may_act_on_agent(&self, id: &str) -> bool {
        match self.role {
            Role::Supervisor => true,
            Role::Agent => self.agent.as_deref() == Some(id),
            Role::Wallboard => false,
        }
    }
}

impl Caller {
    /// The principal, or the 401.
    pub fn principal(&self) -> Result<&Principal, ApiError> {
        self.auth.as_ref().map_err(Clone::clone)
    }

    /// The principal if its role is one of `roles`, else 401/403.
    pub fn require(&self, roles: &[Role]) -> Result<&Principal, ApiError> {
        let p = self.principal()?;
        if roles.contains(&p.role) {
            Ok(p)
        } else {
            Err(ApiError::forbidden(format!(
                "role {} may not do this",
                p.role.as_str()
            )))
        }
    }

    /// Supervisor, or the agent itself.
    pub fn require_agent_self(&self, id: &str) -> Result<&Principal, ApiError> {
        let p = self.principal()?;
        if p.may_act_on_agent(id) {
            Ok(p)
        } else {
            Err(ApiError::forbidden(match p.role {
                Role::Agent => "an agent token may act only on its own agent".to_string(),
                r => format!("role {} may not do this", r.as_str()),
            }))
        }
    }
}

/// A principal already authenticated by a signed-in web session (`crate::web`), put on the
/// request as an extension by the web layer before it hands the request to the API router. An
/// extension cannot come from the network, so only ctid's own code can set it; when present it
/// replaces the bearer token.
#[derive(Debug, Clone)]
pub struct SessionPrincipal(pub Principal);

impl ApiState {
    /// The principal of a configured bearer token (every token compared, as for a request):
    /// lets the web pages' sign-in accept the same tokens as the API.
    pub fn principal_for_token(&self, presented: &[u8]) -> Option<Principal> {
        self.inner
            .tokens
            .find(presented)
            .map(|(role, agent)| Principal { role, agent })
    }
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Caller, Self::Rejection> {
        let from = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        if let Some(SessionPrincipal(p)) = parts.extensions.get::<SessionPrincipal>() {
            return Ok(Caller {
                auth: Ok(p.clone()),
                from,
            });
        }
        let auth = match parts.headers.get(header::AUTHORIZATION) {
            None => Err(ApiError::unauthorized("missing bearer token")),
            Some(v) => {
                let v = v.as_bytes();
                let token = v
                    .get(..7)
                    .filter(|p| p.eq_ignore_ascii_case(b"bearer "))
                    .map(|_| v[7..].trim_ascii());
                match token.and_then(|t| state.inner.tokens.find(t)) {
                    Some((role, agent)) => Ok(Principal { role, agent }),
                    None => Err(ApiError::unauthorized("unknown bearer token")),
                }
            }
        };
        Ok(Caller { auth, from })
    }
}

/// Extractor for read routes: rejects with 401 at once.
pub struct Authed(pub Principal);

impl FromRequestParts<ApiState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Authed, ApiError> {
        let Ok(c) = Caller::from_request_parts(parts, state).await;
        c.auth.map(Authed)
    }
}
