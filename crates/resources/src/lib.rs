//! The catalogue of resources pernode serves, and every document derived from it.
//!
//! - [`RESOURCES`]: group, version, names, scope, verbs and subresources of each built-in
//!   resource; [`Catalog`]/[`View`]: those plus the entries CustomResourceDefinitions add
//!   while the server runs ([`intern`]), which every lookup and document below reads;
//! - [`version_info`]: `/version` (its minor picks the kubectl the dispatcher runs);
//! - discovery: aggregated (`/api`, `/apis` with [`AGGREGATED_CONTENT_TYPE`]) and legacy
//!   (`APIVersions`, `APIGroupList`, `APIResourceList`);
//! - OpenAPI v3: the index and one document per group version, generated from
//!   k8s-openapi's schemars schemas;
//! - OpenAPI v2: one Swagger 2.0 document made from the same schemas and paths, as JSON and
//!   as gnostic protobuf, with kube-openapi's Accept negotiation.
//!
//! The HTTP layer (pernode-apiserver) only routes to these functions; nothing here does I/O.

mod catalog;
mod custom;
mod discovery;
mod openapi;
mod openapi_v2;
mod version;

pub use catalog::{
    APIEXTENSIONS, AUTHENTICATION, AUTHORIZATION, CERTIFICATES, CREATE_ONLY, Catalog,
    READ_ONLY_VERBS, RESOURCES, ResourceInfo, SubresourceInfo, View, find, find_kind,
    group_versions,
};
pub use custom::{
    CUSTOM_VERBS, CustomDefinition, CustomInfo, PrinterColumn, ScalePaths, intern,
    kube_version_order,
};
pub use discovery::{
    AGGREGATED_CONTENT_TYPE, aggregated_discovery_apis, aggregated_discovery_core, api_group_list,
    api_resource_list, api_versions, wants_aggregated,
};
pub use openapi::{GvDocument, OpenApi, openapi_v3_document, openapi_v3_hash, openapi_v3_index};
pub use openapi_v2::{
    OPENAPI_V2_PROTOBUF, OpenApiV2Body, openapi_v2_for, openapi_v2_json, openapi_v2_protobuf,
};
pub use version::{GIT_VERSION, KUBERNETES_MINOR, version_info};
