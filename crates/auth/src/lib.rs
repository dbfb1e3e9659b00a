//! Who is asking, and may they: the identity of a request ([`user::UserInfo`]), the
//! decision on it ([`authorizer`]), as upstream's `k8s.io/apiserver/pkg/authentication/user`
//! and `pkg/authorization/authorizer`, role-based access control ([`rbac`]), and the tokens of
//! service accounts ([`serviceaccount`]: signing key, issuing, verifying), as upstream's
//! `pkg/serviceaccount`, and the cluster's certificates ([`pki`]; certificate requests read as
//! upstream's certificates API reads them in [`csr`], PEM as Go's in [`pem`]).
//!
//! The API server authenticates each request once (TLS client certificate, bearer token, or
//! anonymous) and hands the resulting [`user::UserInfo`] to the authorizers as part of
//! [`authorizer::Attributes`]; the first authorizer with an opinion decides. [`node`] is the
//! Node authorizer, deciding on kubelets' requests over a graph the API server implements.
//!
//! ```
//! use pernode_auth::authorizer::{Attributes, Authorizer, Decision, PrivilegedGroups};
//! use pernode_auth::user::UserInfo;
//!
//! let admin = UserInfo::new("system:admin", ["system:masters"]);
//! let attrs = Attributes::resource(&admin, "create", "default", "apps", "v1", "daemonsets", "", "");
//! assert_eq!(PrivilegedGroups.authorize(&attrs), Decision::Allow);
//! ```

pub mod authorizer;
pub mod bootstrap_token;
pub mod csr;
pub mod discovery;
pub mod node;
pub mod pem;
pub mod pki;
pub mod plain_http;
pub mod rbac;
pub mod serviceaccount;
pub mod tls;
pub mod user;
pub mod x509;
